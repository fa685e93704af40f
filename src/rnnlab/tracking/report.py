"""The comparison report of a sweep: rows read back from MLflow, a Markdown table and DVC metrics."""

from __future__ import annotations

from rnnlab.tracking import runs

COLUMNS = [  # (header, row key, format)
    ("embedding", "embedding", "{}"), ("cell", "cell", "{}"), ("layers", "layers", "{}"), ("direction", "direction", "{}"),
    ("parameters", "params_total", "{:,.0f}"), ("best val acc", "best_val_acc", "{:.4f}"),
    ("test acc", "test_acc", "{:.4f}"), ("test macro-F1", "test_f1", "{:.4f}"),
    ("epochs", "epochs", "{:.0f}"), ("train time (s)", "fit_seconds", "{:.1f}"),
    ("tokens/s", "train_tokens_per_sec", "{:,.0f}"),
]


def sweep_rows(mlflow_client, parent_run_id: str) -> list[dict]:
    """One row per child run of the sweep: its configuration, status and summary metrics."""
    rows = []
    for child in runs.child_runs(mlflow_client, parent_run_id):
        params, metrics = child.data.params, child.data.metrics
        rows.append({
            "run_id": child.info.run_id, "run_name": child.info.run_name, "status": child.info.status,
            "cell": params.get("model.cell"), "layers": int(params.get("model.num_layers", 0)),
            "direction": "bi" if params.get("model.bidirectional") == "True" else "uni",
            "seed": params.get("seed"), "embedding": params.get("embedding.name"),
            **{key: metrics[key] for _, key, _ in COLUMNS if key in metrics},
        })
    cells = {"rnn": 0, "lstm": 1, "gru": 2}
    inputs = {"onehot": 0, "learned": 1, "word2vec": 2, "glove": 3, "pretrained": 4}
    return sorted(rows, key=lambda r: (inputs.get(r["embedding"], 9), cells.get(r["cell"], 9), r["layers"],
                                       r["direction"], r["run_name"]))


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(header for header, _, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for _, key, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_markdown(title: str, rows: list[dict]) -> str:
    finished = [r for r in rows if r["status"] == "FINISHED" and "test_acc" in r]
    parts = [f"# {title}", "", markdown_table(rows), ""]
    if finished:
        best = max(finished, key=lambda r: r["test_acc"])
        parts.append(f"Best test accuracy: {best['test_acc']:.4f} ({best['run_name']}, MLflow run {best['run_id']}).")
    failed = [r["run_name"] for r in rows if r["status"] != "FINISHED"]
    if failed:
        parts.append(f"Runs not finished: {', '.join(failed)}.")
    parts.append("Hidden size is per direction; parameters include the embedding. "
                 "Train time is the wall time of `fit` (validation included); tokens/s counts real (non-pad) "
                 "training tokens per second of optimisation steps.")
    return "\n".join(parts) + "\n"


def dvc_metrics(rows: list[dict]) -> dict:
    """Metrics keyed by configuration, plus the best one, for `dvc metrics show` / `dvc metrics diff`."""
    metrics = {}
    for row in rows:
        key = f"{row['embedding']}-{row['cell']}-{row['layers']}l-{row['direction']}"
        metrics[key] = {name: round(float(row[name]), 5) for name in
                        ("best_val_acc", "test_acc", "test_f1", "params_total", "fit_seconds")
                        if row.get(name) is not None}
    finished = [r for r in rows if r.get("test_acc") is not None]
    if finished:
        best = max(finished, key=lambda r: r["test_acc"])
        metrics["best"] = {"test_acc": round(best["test_acc"], 5), "test_f1": round(best.get("test_f1", 0.0), 5)}
    return metrics
