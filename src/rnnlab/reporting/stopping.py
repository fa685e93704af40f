"""Where a study's runs stop (issue 16): a run selected at the last epoch its budget allows (the cap) was still
improving when training ended, and a configuration whose mean validation curve is best at the cap was still
improving on average. The report counts both, so a reader sees whether the epoch budget, not the cell, limited a
score."""

from __future__ import annotations

from rnnlab.reporting.configurations import config_key
from rnnlab.reporting.statistics import SELECTED_EPOCH, is_number, metric_name, objective

CAP, PATIENCE = "trainer.max_epochs", "callbacks.early_stopping.patience"


def stopping_settings(configs: dict | None) -> dict | None:
    """{"cap": max epochs, "patience": early-stopping patience or None} shared by every job of a study, from its
    results/<study>/configs.json (what configure@<study> resolved). None where the jobs differ in them or train by
    steps (max_epochs -1)."""
    common = (configs or {}).get("common", {})
    cap = common.get(CAP)
    if not isinstance(cap, int) or cap < 1:
        return None
    patience = common.get(PATIENCE)
    return {"cap": cap, "patience": patience if isinstance(patience, int) and patience < cap else None}


def settings_from_params(params: list[dict[str, str]]) -> dict | None:
    """stopping_settings from the runs' logged params (MLflow keeps the resolved config's keys as strings): for a
    sweep read back from MLflow (`rnnlab-report`), which has no configs.json."""
    common = {}
    for key in (CAP, PATIENCE):
        values = {p.get(key) for p in params}
        value = values.pop() if len(values) == 1 else None
        if value is not None and value.lstrip("-").isdigit():
            common[key] = int(value)
    return stopping_settings({"common": common})


def stopping_lines(groups: list[dict], settings: dict | None) -> list[str]:
    """The report's sentence on where the groups' runs stopped against the study's epoch cap."""
    finished = {config_key(g["config"]): [r for r in g["runs"] if r["status"] == "FINISHED" and SELECTED_EPOCH in r]
                for g in groups}
    total = sum(len(runs) for runs in finished.values())
    if not settings or not total:
        return []
    cap, patience = settings["cap"], settings["patience"]
    metric, higher = objective(groups[0])
    name = metric_name(groups[0]["task"], metric)
    if patience:
        budget = (f"up to {cap} epochs, stopped after {patience} epoch{'s' if patience > 1 else ''} without a better "
                  f"validation {name}")
        early = sum(r["epochs"] < cap for runs in finished.values() for r in runs if is_number(r.get("epochs")))
        start, last = f"{early} of {total} runs stopped early; ", "the cap"
    else:
        budget, start, last = f"{cap} epochs, no early stopping", "", "the last"
    capped = {key: sum(r[SELECTED_EPOCH] == cap for r in runs) for key, runs in finished.items()}
    n_capped = sum(capped.values())
    listed = "; ".join(f"{key} {n}" for key, n in capped.items() if n)
    counted = f"{n_capped}{'' if patience else f' of {total} runs'} {'was' if n_capped == 1 else 'were'}"
    at_cap = (f"{counted} selected at epoch {cap}, {last}: still improving when training ended ({listed})" if n_capped
              else f"no run was selected at epoch {cap}, {last}")
    rising = [key for key, runs in finished.items() if _best_at_cap(runs, metric, higher, cap)]
    mean = (f"the mean validation {name} over the seeds is best at epoch {cap} for {len(rising)} of {len(groups)} "
            f"configurations ({', '.join(rising)}): still improving on average" if rising else
            f"no configuration's mean validation {name} over the seeds is best at epoch {cap}: none was stopped "
            "while still improving on average")
    mean += " (a run stopped early counts at its last value)" if patience else ""
    return [f"Where the runs stop ({budget}): {start}{at_cap}; {mean}."]


def _best_at_cap(runs: list[dict], metric: str, higher: bool, cap: int) -> bool:
    """Whether the mean over the runs of the objective's validation curve is first at its best at epoch `cap`, each
    run that stopped early held at its last value (it had not improved for `patience` epochs)."""
    curves = [[value for _, value in r["history"][metric]] for r in runs if r.get("history", {}).get(metric)]
    curves = [c + c[-1:] * (cap - len(c)) for c in curves if c]
    if not curves or any(len(c) != cap for c in curves):
        return False
    mean = [sum(c[i] for c in curves) / len(curves) for i in range(cap)]
    # the first best, as checkpoints are chosen: runs held flat after their stop do not make the cap a best
    return mean.index(max(mean) if higher else min(mean)) == cap - 1
