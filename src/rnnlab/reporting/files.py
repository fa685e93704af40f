"""A sweep's report files: report.md, report.html, figures/*.png, curves/*.csv and metrics.json."""

from __future__ import annotations

from pathlib import Path

from rnnlab.io import atomic_file, write_json
from rnnlab.reporting.figures import report_figures
from rnnlab.reporting.html import report_html
from rnnlab.reporting.markdown import report_markdown, sweep_machine
from rnnlab.reporting.statistics import config_groups, curve_tables, dvc_metrics
from rnnlab.reporting.tuning import tune, tuning_table

WALL_TIME_FIGURES = ("cost",)  # drawn from wall times: in report.html only


def write_report(out_dir: str | Path, title: str, sweep: dict, tuned: dict | None = None,
                 stopping: dict | None = None) -> dict[str, Path]:
    """report.md, report.html (self-contained: images inlined), figures/*.png, curves/<configuration>.csv (the
    learning curves as data, for `dvc plots`) and metrics.json in out_dir. All but report.html repeat byte for
    byte when the runs' metrics do; wall-time figures go to report.html only. `tuned` ({config key: its untuned
    default}): each configuration is reported at its chosen setting of those keys (reporting/tuning.py); `stopping`:
    the study's epoch cap and patience, for where its runs stop (reporting/stopping.py)."""
    out = Path(out_dir)
    rows, tuning = sweep["runs"], None
    if tuned:
        rows, summary = tune(rows, tuned)
        tuning = tuning_table(summary)
    groups = config_groups(rows)
    figures = report_figures(rows, groups)  # {name: (caption, png bytes)}
    repeatable = {name: figure for name, figure in figures.items() if name not in WALL_TIME_FIGURES}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for stale in (out / "figures").glob("*.png"):
        stale.unlink()
    for name, (_, png) in repeatable.items():
        with atomic_file(out / "figures" / f"{name}.png", "wb") as handle:
            handle.write(png)
    (out / "curves").mkdir(exist_ok=True)
    for stale in (out / "curves").glob("*.csv"):
        stale.unlink()
    for key, table in curve_tables(groups).items():
        with atomic_file(out / "curves" / f"{key}.csv") as handle:
            handle.write(table)
    markdown = report_markdown(title, rows, {caption: f"figures/{name}.png"
                                             for name, (caption, _) in repeatable.items()}, sweep_machine(rows), tuning,
                               stopping)
    with atomic_file(out / "report.md") as handle:
        handle.write(markdown)
    with atomic_file(out / "report.html") as handle:
        handle.write(report_html(title, rows, groups, figures, sweep, tuning, stopping))
    write_json(out / "metrics.json", dvc_metrics(rows))
    return {"markdown": out / "report.md", "html": out / "report.html", "metrics": out / "metrics.json"}
