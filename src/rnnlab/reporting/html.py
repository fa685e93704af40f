"""The comparison report as one self-contained HTML page: inline CSS, images inlined as data URIs, no scripts
or network access, so it opens offline and can be mailed as one file."""

from __future__ import annotations

import base64
import html

from rnnlab.reporting.markdown import (
    NOTES,
    WALL_TIME_NOTES,
    examples_table,
    group_table,
    machine_line,
    melody_scale,
    reproducibility,
    summary_lines,
    sweep_machine,
)
from rnnlab.reporting.statistics import config_groups, ranked
from rnnlab.reporting.views import sizing_views

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
tr.best td { background: #eaf6ea; font-weight: 600; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: 13px; }
img { max-width: 100%; } p.note { color: #555; font-size: 13px; } code { background: #f6f6f6; }
"""


def report_html(title: str, rows: list[dict], groups: list[dict], figures: dict[str, tuple[str, bytes]],
                sweep: dict | None = None, tuning: dict | None = None, stopping: dict | None = None) -> str:
    """The page: report.md's content plus what differs between reruns (wall times, MLflow run ids)."""
    sweep = sweep or {}
    tuned = [f"<p>{_inline(tuning['intro'])}</p>", _table(tuning["header"], tuning["body"])] if tuning else []
    sections = []
    for view, members in sizing_views(rows):
        view_groups = groups if not view else config_groups(members)
        sections += [f"<h2>{html.escape(view or 'Configurations')}</h2>", *_group_table(view_groups),
                     _summary(members, view_groups, stopping)]
    scale = melody_scale(rows)
    sections += [f"<p>{_inline(scale)}</p>"] if scale else []
    runs = ["<table>", "<tr><th>run</th><th>seed</th><th>status</th><th>MLflow run id</th></tr>"]
    runs += [f"<tr><td>{html.escape(str(r['run_name']))}</td><td>{html.escape(str(r.get('seed')))}</td>"
             f"<td>{html.escape(r['status'])}</td><td><code>{html.escape(r['run_id'])}</code></td></tr>"
             for r in rows]
    runs.append("</table>")
    images = [f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
              f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(caption)}</figcaption></figure>'
              for caption, png in figures.values()]
    machine = sweep_machine(rows)
    provenance = [f"MLflow parent run <code>{html.escape(sweep['parent_run_id'])}</code>"] if sweep.get(
        "parent_run_id") else []
    provenance += [f"machine: {html.escape(machine_line(machine))}"] if machine else []
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{_inline(title)}</h1>",
        *([f'<p class="note">{"; ".join(provenance)}</p>'] if provenance else []),
        *sections, *tuned,
        f'<p class="note">{html.escape(NOTES + " " + WALL_TIME_NOTES)}</p>',
        f'<p class="note">{_inline(reproducibility(machine))}</p>',
        "<h2>Figures</h2>", *images, "<h2>Runs</h2>", *runs, "</body></html>", ""])


def _group_table(groups: list[dict]) -> list[str]:
    """The configurations' table, the best configuration's row marked."""
    header, body = group_table(groups, wall_times=True)
    order = ranked(groups)
    best = order[0]["config"] if order else None
    table = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for group, cells in zip(groups, body, strict=True):
        mark = ' class="best"' if group["config"] == best else ""
        table.append(f"<tr{mark}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    table.append("</table>")
    return table


def _summary(rows: list[dict], groups: list[dict], stopping: dict | None = None) -> str:
    """The sentences, and the lecture's sentences' probabilities when the runs labelled them."""
    summary = "".join(f"<p>{_inline(line)}</p>" for line in summary_lines(rows, groups, links=True, stopping=stopping))
    probe = examples_table(groups)
    if probe:
        summary += (f"<p>{_inline(probe['intro'])}</p><table><tr>"
                    + "".join(f"<th>{html.escape(h)}</th>" for h in probe["header"]) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                              for cells in probe["body"]) + f"</table><p>{_inline(probe['odds'])}</p>")
    return summary


def _table(header: list[str], body: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>" for cells in body)
            + "</table>")


def _inline(text: str) -> str:
    """Escape, then render the two Markdown marks the report's sentences use: `code` and **bold**."""
    out = html.escape(text)
    parts = out.split("`")
    out = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
