"""The comparison report of a sweep (`rnnlab-report`, the `report@<study>` DVC stage): runs read back from MLflow
(reporting/sweep_runs.py, named by reporting/configurations.py), grouped and compared (reporting/statistics.py),
written as report.md and metrics.json (reporting/markdown.py), figures (reporting/figures.py) and one
self-contained HTML page (reporting/html.py); reporting/files.py writes them all. The score columns follow each
run's selection rule (task.objective).

This package's __init__ imports nothing: the sweep stage reads runs through reporting.sweep_runs alone, so its
DVC dependencies (and so every study's training) do not include the report's code."""
