"""A sweep's runs grouped by configuration and compared: seeds pooled into a mean and its 95% interval, the ranking
by each task's headline score, the tests behind the report's sentences (reporting/comparisons.py), the GRU / LSTM
cost comparison,
and the mean metrics per configuration that DVC shows (`dvc metrics show`). The figures (reporting/figures.py),
report.md (reporting/markdown.py) and report.html (reporting/html.py) are all drawn from these."""

from __future__ import annotations

import math
import statistics

from rnnlab.errors import RnnlabError
from rnnlab.reporting.comparisons import (
    against_the_best,
    change_sentence,
    factor_comparisons,
    half_width,
    p_text,
    sentence,
)
from rnnlab.reporting.configurations import ORDER, config_key, config_of, describe, sort_key

SCORE_COLUMNS = {  # (header, metric, format); the selected checkpoint's validation score comes first (columns())
    "classify": [("test acc", "test_acc", "{:.4f}"), ("test macro-F1", "test_f1", "{:.4f}"),
                 ("test acc, words shuffled", "test_acc_shuffled", "{:.4f}"), ("order drop", "test_order_drop", "{:+.4f}")],
    "ner": [("test precision", "test_precision", "{:.4f}"),
            ("test recall", "test_recall", "{:.4f}"), ("test F1", "test_f1", "{:.4f}"),
            ("PER", "test_f1_PER", "{:.3f}"), ("LOC", "test_f1_LOC", "{:.3f}"), ("ORG", "test_f1_ORG", "{:.3f}"),
            ("MISC", "test_f1_MISC", "{:.3f}")],
    "lm": [("test ppl", "test_ppl", "{:.1f}"), ("test next-token acc", "test_acc", "{:.3f}")],
    "longrange": [("test MSE", "test_mse", "{:.4f}"), ("baseline MSE", "baseline_mse", "{:.4f}"),
                  ("test acc", "test_acc", "{:.4f}"), ("grad ratio init", "grad_h_ratio_init", "{:.1e}"),
                  ("grad ratio trained", "grad_h_ratio_trained", "{:.1e}"),
                  ("solved", "solved", "{:.2f}"), ("steps to solve", "steps_to_solve", "{:,.0f}")],
    "translation": [("test BLEU", "test_bleu", "{:.2f}"),
                    ("test chrF", "test_chrf", "{:.2f}"), ("BLEU, >= 10 words", "test_bleu_long", "{:.2f}"),
                    ("BLEU, shorter", "test_bleu_short", "{:.2f}"), ("BLEU greedy", "test_bleu_greedy", "{:.2f}"),
                    ("test token acc", "test_acc", "{:.4f}")],
    "generate": [("test ppl", "test_ppl", "{:.1f}"),
                 ("match rate", "test_match_rate", "{:.3f}"), ("judge acc", "judge_test_acc", "{:.3f}")],
}
# The music study's judge (music/callbacks.py) logs melody_<measure> of the generated melodies against the test
# chorales, and melody_<reference>_<measure> of three reference sets; the measures are the keys of
# melody_measures() in music/measures.py. Named here, not imported: the report does not load the music code.
MELODY_MEASURES = {"pitch_class_tv": ("pitch-class TV", "{:.3f}"), "interval_tv": ("interval TV", "{:.3f}"),
                   "duration_tv": ("duration TV", "{:.3f}"), "in_key_ratio": ("in key", "{:.3f}"),
                   "pitch_range": ("pitch range", "{:.1f}"), "repeated_note_ratio": ("repeated ratio", "{:.3f}")}
MELODY_COLUMNS = [(header, f"melody_{name}", fmt) for name, (header, fmt) in MELODY_MEASURES.items()]
REFERENCE_SETS = {"train": "training chorales", "shuffled_test": "shuffled test notes", "random": "random notes"}
GAP = "gap_selected"  # a row's train-vs-validation gap at its selected checkpoint (selected_gap)
SELECTED_EPOCH = "selected_epoch"  # the epoch of a row's selected checkpoint (selected_point): beside the epochs
# run, it shows whether early stopping ended runs that were still improving
RUN_COLUMNS = [("selected epoch", SELECTED_EPOCH, "{:.1f}"), ("epochs", "epochs", "{:.1f}"),
               ("time / epoch (s)", "seconds_per_epoch", "{:.1f}"), ("tokens/s", "train_tokens_per_sec", "{:,.0f}")]
# Wall-clock figures differ from one run to the next: report.md, metrics.json and figures/ leave them out (those
# repeat byte for byte on a rerun), report.html and runs.json show them.
WALL_TIME = ("seconds_per_epoch", "train_tokens_per_sec", "fit_seconds", "train_seconds", "judge_train_seconds")
# A run's selection rule is its config's task.objective (tasks/base.py selection_rule), which runs.json rows carry
# as "objective": the report's learning curves, its validation column (the selected checkpoint's score) and its
# headline (the same metric on the test split) all follow it. Generation alone is ranked by another score: its
# objective, perplexity, is not what a generator is for, and the judged match rate needs generated text.
HEADLINE_INSTEAD = {"generate": ("test_match_rate", "judged match rate", True)}
METRIC_NAMES = {"acc": "accuracy", "f1": "F1", "ppl": "perplexity", "bleu": "BLEU", "chrf": "chrF", "mse": "MSE",
                "loss": "loss", "precision": "precision", "recall": "recall"}
SHORT_NAMES = {"acc": "acc", "ppl": "ppl", "loss": "loss", "mse": "MSE"}
VALUE_FORMATS = {"ppl": "{:.1f}", "bleu": "{:.2f}", "chrf": "{:.2f}"}


def objective(item: dict) -> tuple[str, bool]:
    """(metric, higher is better) of the rule a run, or a group of runs, was selected by."""
    rule = item.get("objective")
    if not rule:
        raise RnnlabError("a runs.json row without the run's selection rule (\"objective\"): it was written before "
                          "task.objective existed; run its sweep again (`dvc repro sweep@<study>`)")
    return rule["metric"], rule["mode"] == "max"


def metric_name(task: str, metric: str) -> str:
    """`val_f1` -> "F1" ("entity F1" for the tagger): what a sentence of the report calls a metric."""
    name = metric.split("_", 1)[1] if "_" in metric else metric
    if task == "ner" and name == "f1":
        return "entity F1"
    return METRIC_NAMES.get(name, name)


def headline(item: dict) -> tuple[str, str, bool]:
    """(test metric, its name, higher is better) that ranks configurations: the objective on the test split."""
    if item["task"] in HEADLINE_INSTEAD:
        return HEADLINE_INSTEAD[item["task"]]
    metric, higher = objective(item)
    test_metric = "test_" + metric.removeprefix("val_")
    return test_metric, f"test {metric_name(item['task'], metric)}", higher


def selected_column(item: dict) -> tuple[str, str, str]:
    """The report's validation column: best_<objective>, the selected checkpoint's validation score."""
    metric, _ = objective(item)
    name = metric.removeprefix("val_")
    return (f"selected val {SHORT_NAMES.get(name, metric_name(item['task'], metric))}", f"best_{metric}",
            VALUE_FORMATS.get(name, "{:.4f}"))


def gap_column(item: dict) -> tuple[str, str, str]:
    """The column of the train-vs-validation gap at the selected checkpoint, signed so that more overfitting is
    a larger number: train - val for a higher-is-better objective, val - train for a lower-is-better one."""
    metric, higher = objective(item)
    name = metric.removeprefix("val_")
    short = SHORT_NAMES.get(name, metric_name(item["task"], metric))
    header = f"train − val {short} (selected)" if higher else f"val − train {short} (selected)"
    return header, GAP, "{:+.1f}" if name == "ppl" else "{:+.4f}"


def selected_point(row: dict) -> tuple[int, int] | None:
    """(position from 1, global step) of the selected checkpoint in the objective's validation curve: the first
    best value, as ModelCheckpoint keeps the first best. None where the run's history has no such curve."""
    metric, higher = objective(row)
    curve = row.get("history", {}).get(metric) or []
    scored = [(position, step, value) for position, (step, value) in enumerate(curve, 1) if is_number(value)]
    if not scored:
        return None
    position, step, _ = (max if higher else min)(scored, key=lambda point: point[2])
    return position, step


def selected_gap(row: dict, point: tuple[int, int] | None) -> float | None:
    """The gap of gap_column for one run: the objective's train value at the selected point (selected_point)
    against the reported validation value best_<objective>. None where the run's history has no train curve of
    the objective."""
    metric, higher = objective(row)
    train = row.get("history", {}).get("train_" + metric.removeprefix("val_"))
    best = row.get(f"best_{metric}")
    if point is None or not train or not is_number(best):
        return None
    at = [value for train_step, value in train if train_step == point[1]]  # logged at the same global step
    if not at or not is_number(at[-1]):
        return None
    return at[-1] - best if higher else best - at[-1]


def config_groups(rows: list[dict]) -> list[dict]:
    """Runs of one configuration pooled over seeds: for each metric its values, mean, (sample) std and the
    half-width of the mean's 95% confidence interval ("ci"). Each run gains its GAP and SELECTED_EPOCH where its
    history allows."""
    if not rows:
        return []
    task, rule = rows[0]["task"], rows[0].get("objective")
    groups: dict[tuple, dict] = {}
    for row in rows:
        point = selected_point(row)
        if (gap := selected_gap(row, point)) is not None:
            row = {**row, GAP: gap}
        if point and task != "longrange":  # longrange validates every N steps, not once per epoch
            row = {**row, SELECTED_EPOCH: point[0]}
        config = config_of(row)
        group = groups.setdefault(tuple(config.items()), {"config": config, "task": task, "objective": rule,
                                                          "runs": []})
        group["runs"].append(row)
    metrics = [key for _, key, _ in columns(rows[0])]
    for group in groups.values():
        finished = [r for r in group["runs"] if r["status"] == "FINISHED"]
        group["n"], group["failed"] = len(finished), len(group["runs"]) - len(finished)
        group["values"] = {key: [v for r in finished if is_number(v := r.get(key))] for key in metrics}
        group["mean"] = {key: statistics.fmean(v) for key, v in group["values"].items() if v}
        group["std"] = {key: statistics.stdev(v) for key, v in group["values"].items() if len(v) > 1}
        group["ci"] = {key: half_width(v) for key, v in group["values"].items() if len(v) > 1}
    return sorted(groups.values(), key=lambda g: sort_key(g["config"]))


def is_number(value) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def ranked(groups: list[dict]) -> list[dict]:
    """Configurations by their mean headline score, best first."""
    if not groups:
        return []
    key, _, higher = headline(groups[0])
    scored = [g for g in groups if key in g["mean"]]
    return sorted(scored, key=lambda g: -g["mean"][key] if higher else g["mean"][key])


def significance(groups: list[dict]) -> list[str]:
    """The report's sentences on the ranking: the best configuration against each other one (Holm-adjusted),
    the runner-up, the smallest difference the sweep's seeds can detect, then the sweep's factors."""
    order = ranked(groups)
    if len(order) < 2:
        return ["Fewer than two configurations finished: nothing to compare."]
    key, name, higher = headline(order[0])
    best = order[0]
    lines = [f"The best configuration by mean {name}: {describe(best['config'])}, {spread(best, key)}."]
    versus = against_the_best(order, key, config_key)
    if not versus:
        lines.append("One seed per configuration: configurations cannot be compared beyond that; sweep `seed=` "
                     "(the sentiment study runs 3 seeds per configuration).")
    else:
        tied = [c for c in versus if not c.told_apart]
        lines.append(f"Against each of the other {len(order) - 1} configurations ({versus[0].test.split(' over')[0]}"
                     f"s by seed, Holm-adjusted over {len(versus)}): told apart from {len(versus) - len(tied)}"
                     + (f"; **cannot be told apart** from {len(tied)}: "
                        + "; ".join(f"{c.second} ({p_text(c.p_holm)})" for c in tied) if tied else
                        " (every one)") + ".")
        lines.append("The runner-up: " + sentence(versus[0], name, higher))
        detectable = sorted(c.detectable for c in versus if c.detectable is not None)
        if detectable:
            lines.append(f"With {versus[0].pairs} seeds, two configurations are told apart (power 0.8 at the 5% "
                         f"level, before Holm's correction) only when they differ by about "
                         f"{statistics.median(detectable):.4f} {name} or more (the median over these comparisons "
                         "at their spread between seeds); smaller true differences go unseen.")
    factors = factor_comparisons(order, key)
    if factors:
        family = f"Holm-adjusted over {len(factors)} comparisons" if len(factors) > 1 else "one comparison"
        lines.append(f"By factor, each paired over the configurations that differ only in it and their seeds "
                     f"({family}):")
        lines += ["- " + sentence(c, name, higher) for c in factors]
    return lines


def depth_lines(groups: list[dict], wall_times: bool = False) -> list[str]:
    """The lecture's "deep RNN: overfitting and training time go up", tested: going from one depth to the next,
    the change in the train-vs-validation gap at the selected checkpoint and in the headline score, each
    paired over the configurations that differ only in depth and their seeds; with `wall_times` (report.html)
    also the time per epoch. A study sized two ways gets these per sizing (the report's views)."""
    if not groups:
        return []
    key, name, _ = headline(groups[0])
    gap_header = gap_column(groups[0])[0].removesuffix(" (selected)")
    measured = [(GAP, f"the {gap_header} gap at the selected checkpoint", 4, ""), (key, name, 4, "")]
    if wall_times:
        measured.append(("seconds_per_epoch", "the time per epoch", 1, " s"))
    found = [change_sentence(c, what, digits, unit) for metric, what, digits, unit in measured
             for c in factor_comparisons(groups, metric, factors=("layers",))]
    if not found:
        return []
    intro = ("Depth and overfitting (the lecture's \"deep RNN: overfitting and training time go up\"), each change "
             "paired over the configurations that differ only in depth and their seeds (a question of its own: its "
             "p is not adjusted with the factor tests above):")
    return [intro] + [f"- {line[0].upper()}{line[1:]}" for line in found]


def spread(group: dict, key: str) -> str:
    mean, ci = group["mean"].get(key), group["ci"].get(key)
    if mean is None:
        return "-"
    seeds = len(group["values"].get(key, []))
    return (f"{mean:.4f} (95% CI ± {ci:.4f} over {seeds} seeds)" if ci is not None
            else f"{mean:.4f} (one seed)")


def cell_comparison(groups: list[dict]) -> list[dict]:
    """Per cell, averaged over the other factors of the sweep: parameters, time per epoch, headline score.
    This is what "GRU: fewer parameters, faster training" is checked against."""
    if not groups:
        return []
    key = headline(groups[0])[0]
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


def gru_versus_lstm(cells: list[dict], group: dict, wall_times: bool = False) -> str | None:
    """The sentence on "GRU: fewer parameters, faster training"; `group` is any group of the sweep (its task and
    selection rule)."""
    found = {row["cell"]: row for row in cells}
    if not {"gru", "lstm"} <= found.keys():
        return None
    gru, lstm = found["gru"], found["lstm"]
    key, name, higher = headline(group)
    parts = []
    if gru["params_encoder"] and lstm["params_encoder"]:
        parts.append(f"{gru['params_encoder'] / lstm['params_encoder']:.2f}x the LSTM's recurrent parameters")
    if wall_times and gru["seconds_per_epoch"] and lstm["seconds_per_epoch"]:
        ratio = gru["seconds_per_epoch"] / lstm["seconds_per_epoch"]
        parts.append(f"{ratio:.2f}x its time per epoch ({'faster' if ratio < 1 else 'not faster'})")
    if gru.get(key) is not None and lstm.get(key) is not None:  # whether that is a difference: the factor tests
        parts.append(f"mean {name} {gru[key]:.4f} vs {lstm[key]:.4f}")
    return "GRU against LSTM, averaged over the sweep's other factors: " + "; ".join(parts) + "."


def columns(item: dict, wall_times: bool = True) -> list[tuple[str, str, str]]:
    """The report table's columns for a sweep of `item`'s task and selection rule (a row or a group)."""
    return ([("hidden", "hidden_size", "{:,.0f}"), ("parameters", "params_total", "{:,.0f}"),
             ("recurrent parameters", "params_encoder", "{:,.0f}"),
             selected_column(item), gap_column(item)]
            + score_columns(item["task"], SCORE_COLUMNS["classify"])
            + [c for c in RUN_COLUMNS if wall_times or c[1] not in WALL_TIME])


def score_columns(task: str, default: list | None = None) -> list[tuple[str, str, str]]:
    """A task's score columns; a language model's include the melody measures, which only music runs log (a
    column no configuration has is left out of the table, so the text studies' reports do not show them)."""
    return SCORE_COLUMNS.get(task, default or []) + (MELODY_COLUMNS if task == "lm" else [])


def chosen_run(rows: list[dict], groups: list[dict] | None = None) -> dict | None:
    """The run a user would deploy, chosen without the test split: the configuration with the best mean
    selected validation score (the runs' selection rule), and its run with the best one. `groups`: the rows'
    config_groups where the caller has them already."""
    groups = [g for g in (config_groups(rows) if groups is None else groups) if g["n"]]
    if not groups:
        return None
    key, higher = selected_column(groups[0])[1], objective(groups[0])[1]
    sign = 1 if higher else -1
    scored = [g for g in groups if key in g["mean"]]
    if not scored:
        return None
    best = max(scored, key=lambda g: sign * g["mean"][key])
    runs_ = [r for r in best["runs"] if r["status"] == "FINISHED" and is_number(r.get(key))]
    return max(runs_, key=lambda r: sign * r[key]) if runs_ else None


def mean_curve(group: dict, metric: str) -> tuple[list, list[float]]:
    """(x, mean over the group's finished runs) of a per-epoch validation metric, over the epochs every run has;
    x is the epoch (1, 2, ...), or the optimisation step for a long-range task (validated every N steps)."""
    curves = [c for r in group["runs"] if r["status"] == "FINISHED" and (c := r.get("history", {}).get(metric))]
    if not curves:
        return [], []
    length = min(len(c) for c in curves)
    xs = [c[0] for c in curves[0][:length]] if group["task"] == "longrange" else list(range(1, length + 1))
    return xs, [statistics.fmean(c[i][1] for c in curves) for i in range(length)]


def curve_tables(groups: list[dict]) -> dict[str, str]:
    """{configuration key: CSV text} of each configuration's learning curve (the metric it was selected by,
    mean over seeds, per epoch or step): the data of `dvc plots show` / `dvc plots diff`."""
    tables = {}
    for group in groups:
        metric = objective(group)[0]
        xs, ys = mean_curve(group, metric)
        if xs:
            x_name = "step" if group["task"] == "longrange" else "epoch"
            tables[config_key(group["config"])] = "".join(
                [f"{x_name},{metric}\n", *(f"{x},{y:.6g}\n" for x, y in zip(xs, ys, strict=True))])
    return tables


def dvc_metrics(rows: list[dict]) -> dict:
    """Mean metrics keyed by configuration, plus the best configuration, for `dvc metrics show` / `diff`."""
    metrics = {}
    groups = config_groups(rows)
    for group in groups:
        key = config_key(group["config"])
        scores = [selected_column(group)[1], *(k for _, k, _ in score_columns(group["task"]))]
        metrics[key] = {name: round(group["mean"][name], 5) for name in (*scores, "params_total")
                        if name in group["mean"]}
    order = ranked(groups)
    if order:
        key = headline(order[0])[0]
        metrics["best"] = {key: round(order[0]["mean"][key], 5)}
    return metrics

