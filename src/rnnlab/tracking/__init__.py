"""MLflow wiring (URI, experiments, parent/child runs, artifacts) and the comparison report."""
