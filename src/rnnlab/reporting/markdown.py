"""The report's table and sentences, and report.md: the same bytes on every rerun (no run ids, no wall times)."""

from __future__ import annotations

import statistics

from rnnlab.reporting.configurations import config_key
from rnnlab.reporting.statistics import (
    MELODY_MEASURES,
    REFERENCE_SETS,
    cell_comparison,
    chosen_run,
    columns,
    config_groups,
    depth_lines,
    gru_versus_lstm,
    headline,
    is_number,
    selected_column,
    significance,
)
from rnnlab.reporting.stopping import stopping_lines
from rnnlab.reporting.views import sizing_views


def group_table(groups: list[dict], wall_times: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the comparison table: configuration, seeds, each metric as mean ± the half-width of its
    95% confidence interval."""
    if not groups:
        return [], []
    metrics = [(h, k, f) for h, k, f in columns(groups[0], wall_times) if any(k in g["mean"] for g in groups)]
    if len({g["mean"].get("hidden_size") for g in groups}) < 2:  # shown where it differs (a parameter budget)
        metrics = [m for m in metrics if m[1] != "hidden_size"]
    config_headers = list(dict.fromkeys(key for group in groups for key in group["config"]))  # a bag has no cell
    header = config_headers + ["seeds"] + [h for h, _, _ in metrics]
    body = []
    for group in groups:
        cells = [str(group["config"].get(h, "-")) for h in config_headers]
        cells.append(str(group["n"]) + (f" (+{group['failed']} failed)" if group["failed"] else ""))
        for _, key, fmt in metrics:
            if key not in group["mean"]:
                cells.append("-")
            elif group["ci"].get(key) is not None and not key.startswith(("params_", "hidden_size")):
                cells.append(f"{fmt.format(group['mean'][key])} ± {fmt.replace('+', '').format(group['ci'][key])}")
            else:
                cells.append(fmt.format(group["mean"][key]))
        body.append(cells)
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


NOTES = ("Hidden size is per direction; parameters include the embedding. Each score is the mean over the seeds "
         "of a configuration ± the half-width of its 95% confidence interval (Student's t); the selected val column "
         "is the validation score of the checkpoint each run was tested at (the task's objective), the selected epoch "
         "that checkpoint's epoch; epochs counts the epochs run (early stopping ends a run `patience` epochs after "
         "its selected one).")
WALL_TIME_NOTES = ("Time per epoch is the wall time of `fit` (validation included) over the epochs run, with the "
                   "sweep's workers sharing the machine; tokens/s counts real (non-pad) training tokens per second "
                   "of optimisation steps. Wall times differ from run to run.")


def reproducibility(machine: dict | None) -> str:
    """Which of the report's figures a rerun repeats exactly, and which only within their spread."""
    where = f" on this machine ({machine_line(machine)})" if machine else ""
    same = (f"Rerun from a fresh clone{where}, `dvc repro` repeats every number in this table, metrics.json and "
            "figures/ byte for byte (seeded, deterministic kernels, one Word2Vec thread).")
    differ = ("scores (and the epoch selected) agree only within their intervals (the ± column), and where "
              "intervals overlap another configuration may come out on top.")
    if machine and machine.get("kernels", "native") != "native":
        return (f"{same} Another x86-64 CPU with AVX2 runs the same float kernels (rnnlab/cpu_kernels.py): data "
                "splits, vocabularies, embeddings and parameter counts are identical, and so are most runs (an AMD "
                "EPYC and an Intel Xeon agreed to the last bit on 33 of the 51 runs of the sentiment and why_rnn "
                "studies: 26 of 30 LSTM and GRU runs, 2 of 15 tanh RNN runs). A run that differs in one bit trains "
                "into another model: its " + differ)
    return (f"{same} On another CPU model the data splits, vocabularies and parameter counts are identical, but "
            "float kernels take other code paths (oneDNN / BLAS per vector unit): embeddings and weights differ "
            "in their last bits and training amplifies that, so " + differ)


def machine_line(machine: dict) -> str:
    parts = [machine.get("cpu"), f"{machine['cores']} cores" if machine.get("cores") else None, machine.get("torch"),
             f"kernels: {machine['kernels']}" if machine.get("kernels") else None]
    return ", ".join(part for part in parts if part)


def sweep_machine(rows: list[dict]) -> dict | None:
    """The machine the runs ran on (from their `rnnlab.machine.*` tags); None when they do not say or differ."""
    found = {tuple(sorted(row.get("machine", {}).items())) for row in rows}
    return dict(found.pop()) if len(found) == 1 and rows and rows[0].get("machine") else None


def summary_lines(rows: list[dict], groups: list[dict], links: bool = False, stopping: dict | None = None) -> list[str]:
    """The report's sentences; `links`: with MLflow run ids and wall-time comparisons (report.html); `stopping`:
    the study's epoch cap and patience (reporting/stopping.py), for where its runs stop."""
    lines = []
    chosen = chosen_run(rows, groups)
    if chosen:  # chosen without the test split, as the registry's `@best` is: no single run picked by its test score
        key, name, _ = headline(chosen)
        header, val_key, fmt = selected_column(chosen)
        run = f", MLflow run {chosen['run_id']}" if links else ""
        test_fmt = next((f for _, k, f in columns(chosen) if k == key), "{:.4f}")
        test = f", {name} {test_fmt.format(chosen[key])}" if is_number(chosen.get(key)) else ""
        lines.append(f"The run chosen on validation alone (the configuration with the best mean {header}, then its "
                     f"seed with the best; over the whole study, this choice is the registry's `@best`): "
                     f"{chosen['run_name']}, seed {chosen.get('seed')}{run}: {header} "
                     f"{fmt.format(chosen[val_key])}{test}.")
    lines += significance(groups)
    comparison = gru_versus_lstm(cell_comparison(groups), groups[0] if groups else None,
                                 wall_times=links)
    if comparison:
        lines.append(comparison)
    lines += depth_lines(groups, wall_times=links)
    lines += stopping_lines(groups, stopping)
    failed = [r["run_name"] for r in rows if r["status"] != "FINISHED"]
    if failed:
        lines.append(f"Runs not finished: {', '.join(failed)}.")
    return lines


def melody_scale(rows: list[dict]) -> str | None:
    """The scale of the melody columns: each reference set's measures against the test chorales (logged by
    every music run as melody_<reference>_<measure>, the same for each: their mean). None without them."""
    finished = [r for r in rows if r["status"] == "FINISHED"]
    sentences = []
    for tag, reference in REFERENCE_SETS.items():
        values = {name: [v for r in finished if is_number(v := r.get(f"melody_{tag}_{name}"))]
                  for name in MELODY_MEASURES}
        parts = [f"{header} {fmt.format(statistics.fmean(values[name]))}"
                 for name, (header, fmt) in MELODY_MEASURES.items() if values[name]]
        if parts:
            sentences.append(f"{reference[0].upper()}{reference[1:]}: {', '.join(parts)}.")
    if not sentences:
        return None
    return ("Scale of the melody columns: the same measures of reference sets against the test chorales (the "
            "shuffled notes are the test chorales' own notes in another order). " + " ".join(sentences))


def examples_table(groups: list[dict]) -> dict | None:
    """The fixed sentences each classifier labelled (task.examples): per configuration the mean probability of the
    last label over its seeds, and the words' log-odds in the train split, which say why. None without them."""
    probes = [(g, [r["examples"] for r in g["runs"] if r.get("examples") and r["status"] == "FINISHED"])
              for g in groups]
    probes = [(g, found) for g, found in probes if found]
    if not probes:
        return None
    first = probes[0][1][0]
    label = first["word_log_odds"]["of"].split(" against ")[0]
    texts = [e["text"] for e in first["examples"]]
    body = []
    for group, found in probes:
        means = [statistics.fmean(p["examples"][i]["probabilities"][label] for p in found) for i in range(len(texts))]
        body.append([config_key(group["config"]), *(f"{m:.2f}" for m in means)])
    odds = ", ".join(f"{word} {value:+.2f}" for word, value in first["word_log_odds"]["words"].items())
    return {"intro": f"P({label}) that each configuration gives the lecture's sentences (`task.examples`), mean "
                     "over seeds:",
            "header": ["configuration", *(f'"{t}"' for t in texts)], "body": body,
            "odds": f"Their words' log-odds of {first['word_log_odds']['of']} in the train split (add-one "
                    f"smoothed; words the split lacks are left out): {odds}."}


def examples_lines(groups: list[dict]) -> list[str]:
    table = examples_table(groups)
    if table is None:
        return []
    return [f"{table['intro']}\n\n{markdown_table(table['header'], table['body'])}", table["odds"]]


def report_markdown(title: str, rows: list[dict], figures: dict[str, str] | None = None,
                    machine: dict | None = None, tuning: dict | None = None, stopping: dict | None = None) -> str:
    """The report as Markdown, the same bytes on every rerun (no run ids, no wall times); `figures` maps a caption
    to an image path relative to the report; `tuning`: the tuning section (reporting/tuning.py), if tuned;
    `stopping`: the study's epoch cap and patience (reporting/stopping.py)."""
    parts = [f"# {title}", ""]
    for view, members in sizing_views(rows):
        groups = config_groups(members)
        header, body = group_table(groups)
        parts += ([f"## {view}", ""] if view else []) + [markdown_table(header, body), ""]
        parts += [line + "\n" for line in summary_lines(members, groups, stopping=stopping)]
        parts += [line + "\n" for line in examples_lines(groups)]
    scale = melody_scale(rows)
    if scale:
        parts += [scale, ""]
    if tuning:
        parts += [tuning["intro"], "", markdown_table(tuning["header"], tuning["body"]), ""]
    parts += [NOTES + " Wall times per configuration and the MLflow run ids are in report.html.", "",
              reproducibility(machine)]
    for caption, path in (figures or {}).items():
        parts += ["", f"![{caption}]({path})"]
    return "\n".join(parts) + "\n"
