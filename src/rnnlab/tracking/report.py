"""The comparison report of a sweep: runs read back from MLflow, grouped by configuration (seeds pooled into a
mean and a spread), a significance statement for the best against the runner-up, Markdown and DVC metrics.

The figures are in tracking/figures.py and the self-contained HTML page in tracking/html.py; `write_report`
writes all of them. The score columns are the task's (accuracy for classification, entity F1 for tagging,
perplexity for language models, MSE for the adding problem)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from rnnlab.tracking import runs

SCORE_COLUMNS = {  # (header, metric, format)
    "classify": [("best val acc", "best_val_acc", "{:.4f}"), ("test acc", "test_acc", "{:.4f}"),
                 ("test macro-F1", "test_f1", "{:.4f}")],
    "ner": [("best val F1", "best_val_f1", "{:.4f}"), ("test precision", "test_precision", "{:.4f}"),
            ("test recall", "test_recall", "{:.4f}"), ("test F1", "test_f1", "{:.4f}"),
            ("PER", "test_f1_PER", "{:.3f}"), ("LOC", "test_f1_LOC", "{:.3f}"), ("ORG", "test_f1_ORG", "{:.3f}"),
            ("MISC", "test_f1_MISC", "{:.3f}")],
    "lm": [("best val ppl", "best_val_ppl", "{:.1f}"), ("test ppl", "test_ppl", "{:.1f}")],
    "longrange": [("test MSE", "test_mse", "{:.4f}"), ("baseline MSE", "baseline_mse", "{:.4f}"),
                  ("test acc", "test_acc", "{:.4f}"), ("grad ratio init", "grad_h_ratio_init", "{:.1e}"),
                  ("grad ratio trained", "grad_h_ratio_trained", "{:.1e}"),
                  ("solved", "solved", "{:.2f}"), ("steps to solve", "steps_to_solve", "{:,.0f}")],
    "translation": [("best val BLEU", "best_val_bleu", "{:.2f}"), ("test BLEU", "test_bleu", "{:.2f}"),
                    ("test chrF", "test_chrf", "{:.2f}"), ("BLEU, >= 10 words", "test_bleu_long", "{:.2f}"),
                    ("BLEU, shorter", "test_bleu_short", "{:.2f}"), ("BLEU greedy", "test_bleu_greedy", "{:.2f}"),
                    ("test token acc", "test_acc", "{:.4f}")],
    "generate": [("best val ppl", "best_val_ppl", "{:.1f}"), ("test ppl", "test_ppl", "{:.1f}"),
                 ("match rate", "test_match_rate", "{:.3f}"), ("judge acc", "judge_test_acc", "{:.3f}")],
}
RUN_COLUMNS = [("epochs", "epochs", "{:.0f}"), ("time / epoch (s)", "seconds_per_epoch", "{:.1f}"),
               ("tokens/s", "train_tokens_per_sec", "{:,.0f}")]
# Wall-clock figures differ from one run to the next: report.md, metrics.json and figures/ leave them out (those
# repeat byte for byte on a rerun), report.html and runs.json show them.
WALL_TIME = ("seconds_per_epoch", "train_tokens_per_sec", "fit_seconds", "train_seconds", "judge_train_seconds")
# the headline score of each task and whether higher is better
HEADLINE = {"classify": ("test_acc", "test accuracy", True), "ner": ("test_f1", "test entity F1", True),
            "lm": ("test_ppl", "test perplexity", False), "longrange": ("test_mse", "test MSE", False),
            "translation": ("test_bleu", "test BLEU", True), "generate": ("test_match_rate", "judged match rate", True)}
# the validation curve each task's learning-curve figure shows
CURVE = {"classify": "val_acc", "ner": "val_f1", "lm": "val_ppl", "longrange": "val_mse", "translation": "val_bleu",
         "generate": "val_ppl"}
# configuration keys shown under a short name (every other key that varies in a sweep is shown as is)
CONFIG_LABELS = {"embedding.name": "embedding", "model.cell": "cell", "model.num_layers": "layers",
                 "model.bidirectional": "direction", "model.crf": "crf", "data.length": "T",
                 "model.forget_bias": "forget bias", "model.hidden_size": "hidden", "model.attention": "attention"}
ALWAYS_SHOWN = ["embedding.name", "model.cell", "model.num_layers", "model.bidirectional"]
NOT_CONFIG = ("seed", "run_name", "hydra.", "paths.", "logger.", "launcher.")
ORDER = {"rnn": 0, "lstm": 1, "gru": 2, "onehot": 0, "learned": 1, "word2vec": 2, "glove": 3, "pretrained": 4,
         "uni": 0, "bi": 1, "none": 0, "additive": 1, "dot": 2}
WALL_TIME_FIGURES = ("cost",)  # drawn from wall times: in report.html only
ANALYSIS_FILES = {"gradient_flow": "analysis/gradient_flow.csv", "gate_stats": "analysis/gate_stats.csv"}


def headline(task: str) -> tuple[str, str, bool]:
    return HEADLINE.get(task, HEADLINE["classify"])


# ---- reading a sweep back from MLflow ------------------------------------------------------------------------

def sweep_rows(mlflow_client, parent_run_id: str) -> list[dict]:
    """One row per child run of the sweep: its configuration (the keys that vary across the sweep), seed,
    status, summary metrics, validation history and any analysis tables the run logged."""
    children = runs.child_runs(mlflow_client, parent_run_id)
    varying = varying_keys([child.data.params for child in children])
    rows = []
    for child in children:
        params, metrics = child.data.params, child.data.metrics
        task = params.get("task.kind", "classify")
        config = {CONFIG_LABELS.get(key, key): display_value(key, params.get(key))
                  for key in shown_keys(task, varying) if key in params}
        machine = {key.removeprefix(runs.MACHINE_TAG): value for key, value in sorted(child.data.tags.items())
                   if key.startswith(runs.MACHINE_TAG)}
        row = {"run_id": child.info.run_id, "run_name": child.info.run_name, "status": child.info.status,
               "task": task, "seed": params.get("seed"), "config": config, "machine": machine,
               **legacy_fields(params),
               **{key: value for key, value in metrics.items() if not key.startswith(("train_", "val_"))}}
        for key in ("train_tokens_per_sec", "train_seconds"):
            if key in metrics:
                row[key] = metrics[key]
        if metrics.get("epochs") and metrics.get("fit_seconds"):
            row["seconds_per_epoch"] = metrics["fit_seconds"] / metrics["epochs"]
        curve = CURVE.get(task, "val_loss")
        row["history"] = {name: [[m.step, m.value] for m in mlflow_client.get_metric_history(child.info.run_id,
                                                                                             name)]
                          for name in (curve, "train_loss")}
        row["analysis"] = analysis_tables(mlflow_client, child.info.run_id)
        rows.append(row)
    return sorted(rows, key=lambda r: (sort_key(r["config"]), str(r["seed"]), r["run_name"]))


def varying_keys(all_params: list[dict]) -> list[str]:
    """The parameter keys whose value differs between runs (seed and bookkeeping keys excluded)."""
    keys = sorted({key for params in all_params for key in params})
    return [key for key in keys if not key.startswith(NOT_CONFIG) and not key.endswith("seed")  # follow `seed`
            and len({params.get(key) for params in all_params}) > 1]


def shown_keys(task: str, varying: list[str]) -> list[str]:
    base = [key for key in ALWAYS_SHOWN if task != "longrange" or key != "embedding.name"]
    if task == "ner":
        base.append("model.crf")
    return base + [key for key in varying if key not in base]


def display_value(key: str, value):
    if key == "model.bidirectional":
        return "bi" if value == "True" else "uni"
    return value


def legacy_fields(params: dict) -> dict:
    """Flat fields that older runs.json files (and dvc_metrics keys) use."""
    return {"cell": params.get("model.cell"), "layers": int(params.get("model.num_layers", 0) or 0),
            "direction": "bi" if params.get("model.bidirectional") == "True" else "uni",
            "embedding": params.get("embedding.name"), "crf": params.get("model.crf")}


def analysis_tables(mlflow_client, run_id: str) -> dict:
    """The CSV tables the analysis callbacks logged (gradient flow, gate statistics), as lists of dicts."""
    import csv
    import tempfile

    tables = {}
    logged = {item.path for item in mlflow_client.list_artifacts(run_id, "analysis")}
    for name, path in ANALYSIS_FILES.items():
        if path not in logged:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(mlflow_client.download_artifacts(run_id, path, tmp))
            with local.open() as handle:
                tables[name] = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return tables


def _number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def sort_key(config: dict) -> tuple:
    return tuple((ORDER.get(str(v), 9), _number(str(v)) if isinstance(_number(str(v)), float) else 0, str(v))
                 for v in config.values())


# ---- grouping seeds and comparing configurations --------------------------------------------------------------

def config_of(row: dict) -> dict:
    """A row's configuration; rows from before `config` was recorded rebuild it from their flat fields."""
    if "config" in row:  # runs.json stores keys sorted: put the usual columns first again
        first = [CONFIG_LABELS[key] for key in ALWAYS_SHOWN + ["model.crf"]]
        return {**{k: row["config"][k] for k in first if k in row["config"]},
                **{k: v for k, v in sorted(row["config"].items()) if k not in first}}
    config = {"embedding": row.get("embedding"), "cell": row.get("cell"), "layers": row.get("layers"),
              "direction": row.get("direction")}
    if row.get("task") == "ner":
        config["crf"] = row.get("crf")
    return config


def config_groups(rows: list[dict]) -> list[dict]:
    """Runs of one configuration pooled over seeds: for each metric its values, mean and (sample) std."""
    task = rows[0]["task"] if rows else "classify"
    groups: dict[tuple, dict] = {}
    for row in rows:
        config = config_of(row)
        group = groups.setdefault(tuple(config.items()), {"config": config, "task": task, "runs": []})
        group["runs"].append(row)
    metrics = [key for _, key, _ in columns(task)]
    for group in groups.values():
        finished = [r for r in group["runs"] if r["status"] == "FINISHED"]
        group["n"], group["failed"] = len(finished), len(group["runs"]) - len(finished)
        group["values"] = {key: [v for r in finished if _is_number(v := metric_of(r, key))] for key in metrics}
        group["mean"] = {key: statistics.fmean(v) for key, v in group["values"].items() if v}
        group["std"] = {key: statistics.stdev(v) for key, v in group["values"].items() if len(v) > 1}
    return sorted(groups.values(), key=lambda g: sort_key(g["config"]))


def metric_of(row: dict, key: str):
    if key == "seconds_per_epoch" and key not in row and row.get("epochs"):  # rows from older runs.json files
        return row.get("fit_seconds", math.nan) / row["epochs"]
    return row.get(key)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def ranked(groups: list[dict]) -> list[dict]:
    """Configurations by their mean headline score, best first."""
    if not groups:
        return []
    key, _, higher = headline(groups[0]["task"])
    scored = [g for g in groups if key in g["mean"]]
    return sorted(scored, key=lambda g: -g["mean"][key] if higher else g["mean"][key])


def significance(groups: list[dict]) -> str:
    """One sentence: is the best configuration's headline score better than the runner-up's beyond seed noise?"""
    order = ranked(groups)
    if len(order) < 2:
        return "Fewer than two configurations finished: nothing to compare."
    key, name, _ = headline(order[0]["task"])
    best, second = order[0], order[1]
    a, b = best["values"][key], second["values"][key]
    pair = (f"The best configuration ({describe(best['config'])}: {name} {_spread(best, key)}) against the "
            f"runner-up ({describe(second['config'])}: {_spread(second, key)})")
    if len(a) < 2 or len(b) < 2:
        return (f"{pair}: one seed each, so no significance test is possible; sweep `seed=` (the sentiment "
                "study's default runs 3 seeds per configuration).")
    from scipy.stats import ttest_ind

    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        p = 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    else:
        p = float(ttest_ind(a, b, equal_var=False).pvalue)
    verdict = ("is significant at the 5% level" if p < 0.05 else
               "is **not** significant at the 5% level: with these seeds the two cannot be told apart")
    return (f"{pair}: difference {statistics.fmean(a) - statistics.fmean(b):+.4f}, Welch's t-test over "
            f"{len(a)} and {len(b)} seeds p = {p:.3f}; the difference {verdict}.")


def _spread(group: dict, key: str) -> str:
    mean, std = group["mean"].get(key), group["std"].get(key)
    if mean is None:
        return "-"
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def describe(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def cell_comparison(groups: list[dict]) -> list[dict]:
    """Per cell, averaged over the other factors of the sweep: parameters, time per epoch, headline score.
    This is what "GRU: fewer parameters, faster training" is checked against."""
    if not groups:
        return []
    key = headline(groups[0]["task"])[0]
    by_cell: dict[str, list[dict]] = {}
    for group in groups:
        by_cell.setdefault(str(group["config"].get("cell")), []).append(group)
    rows = []
    for cell, members in sorted(by_cell.items(), key=lambda item: ORDER.get(item[0], 9)):
        def mean_of(metric, members=members):
            values = [g["mean"][metric] for g in members if metric in g["mean"]]
            return statistics.fmean(values) if values else None
        rows.append({"cell": cell, "configurations": len(members), "params_encoder": mean_of("params_encoder"),
                     "seconds_per_epoch": mean_of("seconds_per_epoch"), key: mean_of(key)})
    return rows


def gru_versus_lstm(cells: list[dict], task: str, wall_times: bool = False) -> str | None:
    found = {row["cell"]: row for row in cells}
    if not {"gru", "lstm"} <= found.keys():
        return None
    gru, lstm = found["gru"], found["lstm"]
    key, name, higher = headline(task)
    parts = []
    if gru["params_encoder"] and lstm["params_encoder"]:
        parts.append(f"{gru['params_encoder'] / lstm['params_encoder']:.2f}x the LSTM's recurrent parameters")
    if wall_times and gru["seconds_per_epoch"] and lstm["seconds_per_epoch"]:
        ratio = gru["seconds_per_epoch"] / lstm["seconds_per_epoch"]
        parts.append(f"{ratio:.2f}x its time per epoch ({'faster' if ratio < 1 else 'not faster'})")
    if gru.get(key) is not None and lstm.get(key) is not None:
        better = gru[key] > lstm[key] if higher else gru[key] < lstm[key]
        parts.append(f"mean {name} {gru[key]:.4f} vs {lstm[key]:.4f} ({'better' if better else 'not better'})")
    return "GRU against LSTM, averaged over the sweep's other factors: " + "; ".join(parts) + "."


# ---- Markdown and DVC metrics ---------------------------------------------------------------------------------

def columns(task: str, wall_times: bool = True) -> list[tuple[str, str, str]]:
    return ([("parameters", "params_total", "{:,.0f}"), ("recurrent parameters", "params_encoder", "{:,.0f}")]
            + SCORE_COLUMNS.get(task, SCORE_COLUMNS["classify"])
            + [c for c in RUN_COLUMNS if wall_times or c[1] not in WALL_TIME])


def group_table(groups: list[dict], wall_times: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the comparison table: configuration, seeds, each metric as mean ± std."""
    if not groups:
        return [], []
    task = groups[0]["task"]
    metrics = [(h, k, f) for h, k, f in columns(task, wall_times) if any(k in g["mean"] for g in groups)]
    config_headers = list(groups[0]["config"].keys())
    header = config_headers + ["seeds"] + [h for h, _, _ in metrics]
    body = []
    for group in groups:
        cells = [str(group["config"].get(h, "-")) for h in config_headers]
        cells.append(str(group["n"]) + (f" (+{group['failed']} failed)" if group["failed"] else ""))
        for _, key, fmt in metrics:
            if key not in group["mean"]:
                cells.append("-")
            elif key in group["std"] and not key.startswith("params_"):
                cells.append(f"{fmt.format(group['mean'][key])} ± {fmt.format(group['std'][key])}")
            else:
                cells.append(fmt.format(group["mean"][key]))
        body.append(cells)
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def best_row(rows: list[dict]) -> dict | None:
    key, _, higher = headline(rows[0]["task"]) if rows else HEADLINE["classify"]
    finished = [r for r in rows if r["status"] == "FINISHED" and _is_number(r.get(key))]
    if not finished:
        return None
    return max(finished, key=lambda r: r[key] if higher else -r[key])


NOTES = ("Hidden size is per direction; parameters include the embedding. Each score is the mean ± the sample "
         "standard deviation over the seeds of a configuration.")
WALL_TIME_NOTES = ("Time per epoch is the wall time of `fit` (validation included) over the epochs run, with the "
                   "sweep's workers sharing the machine; tokens/s counts real (non-pad) training tokens per second "
                   "of optimisation steps. Wall times differ from run to run.")


def reproducibility(machine: dict | None) -> str:
    """Which of the report's figures a rerun repeats exactly, and which only within their spread."""
    where = f" on this machine ({machine_line(machine)})" if machine else ""
    return (f"Rerun from a fresh clone{where}, `dvc repro` repeats every number in this table, metrics.json and "
            "figures/ byte for byte (seeded, deterministic kernels, one Word2Vec thread). On another CPU model the "
            "data splits, vocabularies and parameter counts are identical, but float kernels take other code paths "
            "(oneDNN / BLAS per vector unit): embeddings and weights differ in their last bits and training "
            "amplifies that, so scores (and the epoch early stopping picks) agree only within their seed spread "
            "(the ± column), and where intervals overlap another configuration may come out on top.")


def machine_line(machine: dict) -> str:
    parts = [machine.get("cpu"), f"{machine['cores']} cores" if machine.get("cores") else None, machine.get("torch")]
    return ", ".join(part for part in parts if part)


def sweep_machine(rows: list[dict]) -> dict | None:
    """The machine the runs ran on (from their `rnnlab.machine.*` tags); None when they do not say or differ."""
    found = {tuple(sorted(row.get("machine", {}).items())) for row in rows}
    return dict(found.pop()) if len(found) == 1 and rows and rows[0].get("machine") else None


def summary_lines(rows: list[dict], groups: list[dict], links: bool = False) -> list[str]:
    """The report's sentences; `links`: with MLflow run ids and wall-time comparisons (report.html)."""
    lines = []
    best = best_row(rows)
    if best:
        key, name, _ = headline(best["task"])
        run = f", MLflow run {best['run_id']}" if links else ""
        lines.append(f"Best single run's {name}: {best[key]:.4f} ({best['run_name']}, seed {best.get('seed')}"
                     f"{run}).")
    lines.append(significance(groups))
    comparison = gru_versus_lstm(cell_comparison(groups), groups[0]["task"] if groups else "classify",
                                 wall_times=links)
    if comparison:
        lines.append(comparison)
    failed = [r["run_name"] for r in rows if r["status"] != "FINISHED"]
    if failed:
        lines.append(f"Runs not finished: {', '.join(failed)}.")
    return lines


def report_markdown(title: str, rows: list[dict], figures: dict[str, str] | None = None,
                    machine: dict | None = None) -> str:
    """The report as Markdown, the same bytes on every rerun (no run ids, no wall times); `figures` maps a caption
    to an image path relative to the report."""
    groups = config_groups(rows)
    header, body = group_table(groups)
    parts = [f"# {title}", "", markdown_table(header, body), ""]
    parts += [line + "\n" for line in summary_lines(rows, groups)]
    parts += [NOTES + " Wall times per configuration and the MLflow run ids are in report.html.", "",
              reproducibility(machine)]
    for caption, path in (figures or {}).items():
        parts += ["", f"![{caption}]({path})"]
    return "\n".join(parts) + "\n"


def dvc_metrics(rows: list[dict]) -> dict:
    """Mean metrics keyed by configuration, plus the best configuration, for `dvc metrics show` / `diff`."""
    metrics = {}
    groups = config_groups(rows)
    for group in groups:
        key = config_key(group["config"])
        scores = [k for _, k, _ in SCORE_COLUMNS.get(group["task"], [])]
        metrics[key] = {name: round(group["mean"][name], 5) for name in (*scores, "params_total")
                        if name in group["mean"]}
    order = ranked(groups)
    if order:
        key = headline(order[0]["task"])[0]
        metrics["best"] = {key: round(order[0]["mean"][key], 5)}
    return metrics


KEY_FORMS = {"embedding": "{}", "cell": "{}", "direction": "{}", "layers": "{}l", "T": "T{}", "forget bias": "fb{}",
             "hidden": "h{}"}


def config_key(config: dict) -> str:
    """A short stable name of a configuration, e.g. `word2vec-lstm-2l-bi` or `lstm-1l-uni-T400`."""
    parts = []
    for label, value in config.items():
        if label == "crf":
            parts += ["crf"] if str(value) == "True" else []
        elif value is not None:
            parts.append(KEY_FORMS.get(label, label.split(".")[-1] + "{}").format(value))
    return "-".join(parts)


# ---- everything at once ---------------------------------------------------------------------------------------

def write_report(out_dir: str | Path, title: str, sweep: dict) -> dict[str, Path]:
    """report.md, report.html (self-contained: images inlined), figures/*.png and metrics.json in out_dir.
    All but report.html repeat byte for byte when the runs' metrics do; wall-time figures go to report.html only."""
    from rnnlab.io import atomic_file, write_json
    from rnnlab.tracking.figures import report_figures
    from rnnlab.tracking.html import report_html

    out = Path(out_dir)
    rows = sweep["runs"]
    groups = config_groups(rows)
    figures = report_figures(rows, groups)  # {name: (caption, png bytes)}
    repeatable = {name: figure for name, figure in figures.items() if name not in WALL_TIME_FIGURES}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for stale in (out / "figures").glob("*.png"):
        stale.unlink()
    for name, (_, png) in repeatable.items():
        with atomic_file(out / "figures" / f"{name}.png", "wb") as handle:
            handle.write(png)
    markdown = report_markdown(title, rows, {caption: f"figures/{name}.png"
                                             for name, (caption, _) in repeatable.items()}, sweep_machine(rows))
    with atomic_file(out / "report.md") as handle:
        handle.write(markdown)
    with atomic_file(out / "report.html") as handle:
        handle.write(report_html(title, rows, groups, figures, sweep))
    write_json(out / "metrics.json", dvc_metrics(rows))
    return {"markdown": out / "report.md", "html": out / "report.html", "metrics": out / "metrics.json"}
