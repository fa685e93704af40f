"""A sweep's runs grouped by configuration and compared: seeds pooled into a mean and a spread, the ranking by
each task's headline score, a significance test of the best against the runner-up, the GRU / LSTM comparison,
and the mean metrics per configuration that DVC shows (`dvc metrics show`). The figures (reporting/figures.py),
report.md (reporting/markdown.py) and report.html (reporting/html.py) are all drawn from these."""

from __future__ import annotations

import math
import statistics

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
ORDER = {"rnn": 0, "lstm": 1, "gru": 2, "onehot": 0, "learned": 1, "word2vec": 2, "glove": 3, "pretrained": 4,
         "uni": 0, "bi": 1, "none": 0, "additive": 1, "dot": 2}


def headline(task: str) -> tuple[str, str, bool]:
    return HEADLINE.get(task, HEADLINE["classify"])


def number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def sort_key(config: dict) -> tuple:
    return tuple((ORDER.get(str(v), 9), number(str(v)) if isinstance(number(str(v)), float) else 0, str(v))
                 for v in config.values())


def config_of(row: dict) -> dict:
    """A row's configuration, the usual columns first (runs.json stores its keys sorted)."""
    first = [CONFIG_LABELS[key] for key in ALWAYS_SHOWN + ["model.crf"]]
    return {**{k: row["config"][k] for k in first if k in row["config"]},
            **{k: v for k, v in sorted(row["config"].items()) if k not in first}}


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
        group["values"] = {key: [v for r in finished if is_number(v := r.get(key))] for key in metrics}
        group["mean"] = {key: statistics.fmean(v) for key, v in group["values"].items() if v}
        group["std"] = {key: statistics.stdev(v) for key, v in group["values"].items() if len(v) > 1}
    return sorted(groups.values(), key=lambda g: sort_key(g["config"]))


def is_number(value) -> bool:
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
    pair = (f"The best configuration ({describe(best['config'])}: {name} {spread(best, key)}) against the "
            f"runner-up ({describe(second['config'])}: {spread(second, key)})")
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


def spread(group: dict, key: str) -> str:
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


def columns(task: str, wall_times: bool = True) -> list[tuple[str, str, str]]:
    return ([("parameters", "params_total", "{:,.0f}"), ("recurrent parameters", "params_encoder", "{:,.0f}")]
            + SCORE_COLUMNS.get(task, SCORE_COLUMNS["classify"])
            + [c for c in RUN_COLUMNS if wall_times or c[1] not in WALL_TIME])


def best_row(rows: list[dict]) -> dict | None:
    key, _, higher = headline(rows[0]["task"]) if rows else HEADLINE["classify"]
    finished = [r for r in rows if r["status"] == "FINISHED" and is_number(r.get(key))]
    if not finished:
        return None
    return max(finished, key=lambda r: r[key] if higher else -r[key])


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
