"""The comparison report of a sweep: rows read back from MLflow, a Markdown table and DVC metrics.

The configuration columns are shared; the score columns are the task's (accuracy for classification, entity F1
for tagging, perplexity for language models)."""

from __future__ import annotations

from rnnlab.tracking import runs

CONFIG_COLUMNS = [  # (header, row key, format)
    ("embedding", "embedding", "{}"), ("cell", "cell", "{}"), ("layers", "layers", "{}"),
    ("direction", "direction", "{}"), ("parameters", "params_total", "{:,.0f}")]
SCORE_COLUMNS = {
    "classify": [("best val acc", "best_val_acc", "{:.4f}"), ("test acc", "test_acc", "{:.4f}"),
                 ("test macro-F1", "test_f1", "{:.4f}")],
    "ner": [("crf", "crf", "{}"), ("best val F1", "best_val_f1", "{:.4f}"),
            ("test precision", "test_precision", "{:.4f}"), ("test recall", "test_recall", "{:.4f}"),
            ("test F1", "test_f1", "{:.4f}"), ("PER", "test_f1_PER", "{:.3f}"), ("LOC", "test_f1_LOC", "{:.3f}"),
            ("ORG", "test_f1_ORG", "{:.3f}"), ("MISC", "test_f1_MISC", "{:.3f}")],
    "lm": [("best val ppl", "best_val_ppl", "{:.1f}"), ("test ppl", "test_ppl", "{:.1f}")],
}
RUN_COLUMNS = [("epochs", "epochs", "{:.0f}"), ("train time (s)", "fit_seconds", "{:.1f}"),
               ("tokens/s", "train_tokens_per_sec", "{:,.0f}")]
# the headline score of each task and whether higher is better
HEADLINE = {"classify": ("test_acc", "test accuracy", True), "ner": ("test_f1", "test entity F1", True),
            "lm": ("test_ppl", "test perplexity", False)}


def columns(task: str) -> list[tuple[str, str, str]]:
    return CONFIG_COLUMNS + SCORE_COLUMNS.get(task, SCORE_COLUMNS["classify"]) + RUN_COLUMNS


def sweep_rows(mlflow_client, parent_run_id: str) -> list[dict]:
    """One row per child run of the sweep: its configuration, status and summary metrics."""
    rows = []
    for child in runs.child_runs(mlflow_client, parent_run_id):
        params, metrics = child.data.params, child.data.metrics
        task = params.get("task.kind", "classify")
        rows.append({
            "run_id": child.info.run_id, "run_name": child.info.run_name, "status": child.info.status,
            "task": task, "cell": params.get("model.cell"), "layers": int(params.get("model.num_layers", 0)),
            "direction": "bi" if params.get("model.bidirectional") == "True" else "uni",
            "seed": params.get("seed"), "embedding": params.get("embedding.name"), "crf": params.get("model.crf"),
            **{key: metrics[key] for _, key, _ in columns(task) if key in metrics},
        })
    cells = {"rnn": 0, "lstm": 1, "gru": 2}
    inputs = {"onehot": 0, "learned": 1, "word2vec": 2, "glove": 3, "pretrained": 4}
    return sorted(rows, key=lambda r: (inputs.get(r["embedding"], 9), cells.get(r["cell"], 9), r["layers"],
                                       r["direction"], r["run_name"]))


def markdown_table(rows: list[dict]) -> str:
    table = columns(rows[0]["task"] if rows else "classify")
    lines = ["| " + " | ".join(header for header, _, _ in table) + " |", "|" + "---|" * len(table)]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for _, key, fmt in table]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_row(rows: list[dict]) -> dict | None:
    key, _, higher = HEADLINE[rows[0]["task"]] if rows else HEADLINE["classify"]
    finished = [r for r in rows if r["status"] == "FINISHED" and r.get(key) is not None]
    if not finished:
        return None
    return max(finished, key=lambda r: r[key] if higher else -r[key])


def report_markdown(title: str, rows: list[dict]) -> str:
    parts = [f"# {title}", "", markdown_table(rows), ""]
    best = best_row(rows)
    if best:
        key, name, _ = HEADLINE[best["task"]]
        parts.append(f"Best {name}: {best[key]:.4f} ({best['run_name']}, MLflow run {best['run_id']}).")
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
        if row["task"] == "ner" and row.get("crf") == "True":
            key += "-crf"
        scores = [k for _, k, fmt in SCORE_COLUMNS.get(row["task"], []) if fmt != "{}"]
        metrics[key] = {name: round(float(row[name]), 5) for name in (*scores, "params_total", "fit_seconds")
                        if row.get(name) is not None}
    best = best_row(rows)
    if best:
        key = HEADLINE[best["task"]][0]
        metrics["best"] = {key: round(best[key], 5)}
    return metrics
