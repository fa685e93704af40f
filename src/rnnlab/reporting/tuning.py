"""An equal tuning budget per configuration (issue 16): a study that sweeps hyper-parameters (its `tuned` keys in
conf/pipeline.yaml, e.g. the learning rate) alongside its configurations gets, for each configuration, the setting
with the best mean validation score over its seeds (the task's objective, the one selection rule; the test split
is never looked at), and the report compares configurations at their chosen settings. Every configuration must
have tried the same settings; the report lists the choice and the untuned result (the shared default) beside it."""

from __future__ import annotations

import statistics

from rnnlab.errors import ConfigError
from rnnlab.reporting.comparisons import half_width
from rnnlab.reporting.configurations import CONFIG_LABELS, config_key, config_of, number, sort_key
from rnnlab.reporting.statistics import headline, is_number, objective, selected_column


def _label(key: str) -> str:
    return CONFIG_LABELS.get(key, key)


def _same(a, b) -> bool:
    return number(str(a)) == number(str(b))


def tune(rows: list[dict], tuned: dict) -> tuple[list[dict], dict]:
    """(the runs of each configuration's chosen setting, the tuned keys left out of their config, and the tuning
    summary). `tuned` maps each tuned config key to its shared default, the untuned setting."""
    if not rows:
        return rows, {"families": [], "keys": list(tuned), "settings": 0, "equal_budget": True}
    labels = {_label(key): default for key, default in tuned.items()}
    missing = [key for key, label in zip(tuned, labels, strict=True) if label not in rows[0]["config"]]
    if missing:
        raise ConfigError(f"the study's tuned keys {missing} are not swept by it (conf/pipeline.yaml `tuned`): sweep "
                          "them in conf/experiment/<study>.yaml (hydra.sweeper.params) or drop them from `tuned`")
    val_key = selected_column(rows[0])[1]
    _, higher = objective(rows[0])
    test_key = headline(rows[0])[0]
    families: dict[tuple, dict] = {}
    for row in rows:
        config = config_of(row)
        rest = {k: v for k, v in config.items() if k not in labels}
        setting = tuple((label, config[label]) for label in labels)
        family = families.setdefault(tuple(rest.items()), {"config": rest, "settings": {}})
        family["settings"].setdefault(setting, []).append(row)

    chosen_rows, summary = [], []
    for family in sorted(families.values(), key=lambda f: sort_key(f["config"])):
        scored = []
        for setting, runs in sorted(family["settings"].items(), key=lambda item: [number(str(v)) for _, v in item[0]]):
            values = _values(runs, val_key)
            if values:
                scored.append((statistics.fmean(values), setting, runs))
        if not scored:
            continue
        best = max(scored, key=lambda item: item[0] if higher else -item[0])  # first of equals: the smallest value
        _, setting, runs = best
        untuned = [runs_ for s, runs_ in family["settings"].items()
                   if all(_same(value, labels[label]) for label, value in s)]
        summary.append({"config": family["config"], "tried": len(family["settings"]), "chosen": dict(setting),
                        "edges": _edges(setting, family["settings"]),
                        "val": _mean_ci(runs, val_key), "test": _mean_ci(runs, test_key),
                        "untuned_test": _mean_ci(untuned[0], test_key) if untuned else None,
                        "untuned_val": _mean_ci(untuned[0], val_key) if untuned else None})
        for row in runs:
            chosen_rows.append({**row, "config": {k: v for k, v in row["config"].items() if k not in labels},
                                "tuned": dict(setting)})
    tried = {entry["tried"] for entry in summary}
    return chosen_rows, {"families": summary, "keys": list(labels), "defaults": labels, "val_key": val_key,
                         "test_key": test_key, "settings": max(tried, default=0), "equal_budget": len(tried) <= 1}


def _edges(chosen: tuple, settings: dict) -> dict[str, str]:
    """For each tuned key with 3 or more numeric values tried: "lowest" or "highest" where the chosen value is the
    grid's edge (the optimum may lie beyond it)."""
    edges = {}
    for position, (label, value) in enumerate(chosen):
        tried = {number(str(setting[position][1])) for setting in settings}
        if len(tried) < 3 or not all(is_number(v) for v in tried):
            continue
        if number(str(value)) in (min(tried), max(tried)):
            edges[label] = "lowest" if number(str(value)) == min(tried) else "highest"
    return edges


def _edge_sentence(summary: dict) -> str:
    """How often the chosen value of each tuned key is the grid's edge, and what to do when it mostly is."""
    sentences, total = [], len(summary["families"])
    for key in summary["keys"]:
        counts = {side: sum(e["edges"].get(key) == side for e in summary["families"]) for side in ("lowest", "highest")}
        if not any(counts.values()):
            continue
        sentence = (f" The chosen `{key}` is the lowest value tried for {counts['lowest']} and the highest for "
                    f"{counts['highest']} of the {total} configurations")
        side = max(counts, key=counts.get)
        if counts[side] * 2 > total:
            sentence += (f": the grid may not bracket the optimum; a value {'below' if side == 'lowest' else 'above'} "
                         "it, tried for every configuration, would tell")
        sentences.append(sentence + ".")
    return "".join(sentences)


def _values(runs: list[dict], key: str) -> list[float]:
    return [v for r in runs if r["status"] == "FINISHED" and is_number(v := r.get(key))]


def _mean_ci(runs: list[dict], key: str) -> tuple[float, float | None, int] | None:
    values = _values(runs, key)
    if not values:
        return None
    return statistics.fmean(values), half_width(values) if len(values) > 1 else None, len(values)


def _cell(value: tuple | None) -> str:
    if value is None:
        return "-"
    mean, ci, _ = value
    return f"{mean:.4f}" + (f" ± {ci:.4f}" if ci is not None else "")


def tuning_table(summary: dict) -> dict | None:
    """The report's tuning section: each configuration's chosen setting, its scores, and the untuned result."""
    if not summary["families"]:
        return None
    keys = ", ".join(f"`{key}`" for key in summary["keys"])
    defaults = ", ".join(f"{key}={value}" for key, value in summary["defaults"].items())
    header = ["configuration", "settings tried", *summary["keys"], "selected val (chosen)", "test (chosen)",
              f"test at {defaults} (untuned)"]
    body = [[config_key(entry["config"]), str(entry["tried"]), *(str(entry["chosen"][key]) for key in summary["keys"]),
             _cell(entry["val"]), _cell(entry["test"]), _cell(entry["untuned_test"])]
            for entry in summary["families"]]
    budget = (f"every configuration tried the same {summary['settings']} settings of {keys}"
              if summary["equal_budget"] else
              f"**unequal tuning budget**: the configurations tried between "
              f"{min(e['tried'] for e in summary['families'])} and {summary['settings']} settings of {keys} "
              "(runs failed or the sweep was cut short), so the comparison favours those that tried more")
    return {"intro": f"Tuning: {budget}; each configuration is reported at the setting with the best mean selected "
                     "validation score over its seeds (the test split plays no part in the choice), and the tables, "
                     f"tests and figures compare the configurations at their chosen settings.{_edge_sentence(summary)}"
                     " Chosen settings, and the untuned result (the shared default) beside them:",
            "header": header, "body": body}
