"""A study compared at equal hidden size and at equal parameters (issue 16). Runs that differ in
`model.param_budget` (null: the configured hidden size; a number: per configuration, the hidden size whose encoder
comes nearest that many parameters) are compared within each sizing, never across: the report gives one table and
its sentences per sizing, so a claim such as "GRU: fewer parameters" is tested both ways."""

from __future__ import annotations

from rnnlab.reporting.configurations import number

SIZING_KEY = "model.param_budget"


def sizing_views(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """[(title, its rows with the sizing key left out of their config)] per sizing, equal hidden size first;
    [("", rows)] when the study has one sizing."""
    values = sorted({str(row["config"].get(SIZING_KEY)) for row in rows},
                    key=lambda v: (v != "None", number(v) if isinstance(number(v), float) else 0.0))
    if len(values) < 2:
        return [("", rows)]
    views = []
    for value in values:
        members = [{**row, "config": {k: v for k, v in row["config"].items() if k != SIZING_KEY}}
                   for row in rows if str(row["config"].get(SIZING_KEY)) == value]
        title = ("At equal hidden size" if value == "None" else
                 f"At equal parameters: each encoder within 2% of {float(value):,.0f} recurrent parameters")
        views.append((title, members))
    return views
