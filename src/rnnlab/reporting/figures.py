"""The comparison report's figures, drawn from the sweep's rows (no MLflow access): learning curves, score
against parameters, cost per configuration, gradient flow through time per cell and gate activity per cell.
Each figure is returned as PNG bytes so the HTML page can inline it and the Markdown can link it."""

from __future__ import annotations

import io
import statistics

from rnnlab.reporting.configurations import ORDER, describe
from rnnlab.reporting.statistics import headline, mean_curve, objective

CELL_COLORS = {"rnn": "#d62728", "lstm": "#1f77b4", "gru": "#2ca02c"}
STYLES = ["-", "--", ":", "-."]


def report_figures(rows: list[dict], groups: list[dict]) -> dict[str, tuple[str, bytes]]:
    """{file stem: (caption, png)} for every figure the sweep's data supports."""
    import matplotlib

    matplotlib.use("Agg")
    figures = {}
    for name, draw in (("learning_curves", learning_curves), ("score_vs_parameters", score_vs_parameters),
                       ("cost", cost), ("gradient_flow", gradient_flow), ("gates", gate_activity)):
        drawn = draw(rows, groups)
        if drawn is not None:
            caption, figure = drawn
            figures[name] = (caption, _png(figure))
    return figures


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _color(config: dict) -> str:
    return CELL_COLORS.get(str(config.get("cell")), "#7f7f7f")


def _style(groups: list[dict], group: dict) -> str:
    """Same cell -> same colour; the other factors of the configuration -> the line style."""
    others = sorted({describe({k: v for k, v in g["config"].items() if k != "cell"}) for g in groups})
    return STYLES[others.index(describe({k: v for k, v in group["config"].items() if k != "cell"})) % len(STYLES)]


def learning_curves(rows, groups):
    import matplotlib.pyplot as plt

    if not groups:
        return None
    task = groups[0]["task"]
    metric = objective(groups[0])[0]  # the curve of the metric the checkpoint was selected by
    by_step = task == "longrange"  # validated every N steps rather than once per epoch
    figure, axes = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for group in groups:
        xs, ys = mean_curve(group, metric)
        if not xs:
            continue
        axes.plot(xs, ys, _style(groups, group), color=_color(group["config"]), marker=".",
                  label=describe(group["config"]))
        drawn = True
    if not drawn:
        plt.close(figure)
        return None
    if metric in ("val_ppl", "val_mse"):
        axes.set_yscale("log")
    axes.set_xlabel("optimisation step" if by_step else "epoch")
    axes.set_ylabel(metric + " (mean over seeds)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes.set_title("Learning curves: validation score per epoch")
    return f"Learning curves ({metric}, mean over seeds)", figure


def score_vs_parameters(rows, groups):
    import matplotlib.pyplot as plt

    if not groups:
        return None
    key, name, _ = headline(groups[0])
    points = [g for g in groups if key in g["mean"] and "params_total" in g["mean"]]
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for group in points:
        axes.errorbar(group["mean"]["params_total"], group["mean"][key], yerr=group["ci"].get(key) or 0,
                      fmt="o", color=_color(group["config"]), capsize=3)
        label = describe({k: v for k, v in group["config"].items() if k not in ("cell", "embedding")})
        axes.annotate(f"{group['config'].get('cell')} {label}", (group["mean"]["params_total"],
                                                                 group["mean"][key]),
                      fontsize=6, xytext=(3, 3), textcoords="offset points")
    for cell, color in CELL_COLORS.items():
        axes.plot([], [], "o", color=color, label=cell)
    axes.set_xlabel("parameters")
    axes.set_ylabel(f"{name} (mean, 95% CI over seeds)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(f"{name} against model size")
    return f"{name} against parameters (error bars: 95% confidence intervals over seeds)", figure


def cost(rows, groups):
    import matplotlib.pyplot as plt

    shown = [g for g in groups if "params_total" in g["mean"] and "seconds_per_epoch" in g["mean"]]
    if not shown:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 0.35 * len(shown) + 1.5), sharey=True)
    labels = [describe(g["config"]) for g in shown]
    colors = [_color(g["config"]) for g in shown]
    positions = range(len(shown))
    left.barh(positions, [g["mean"]["params_total"] for g in shown], color=colors)
    right.barh(positions, [g["mean"]["seconds_per_epoch"] for g in shown], color=colors,
               xerr=[g["std"].get("seconds_per_epoch", 0) for g in shown])
    left.set_yticks(list(positions), labels, fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("parameters")
    right.set_xlabel("seconds per epoch (mean ± std over seeds)")
    figure.suptitle("Cost of each configuration")
    return "Parameters and time per epoch of each configuration", figure


def _top_forward_h(table: list[dict]) -> list[dict]:
    """The gradient-flow rows of the top layer's forward direction, w.r.t. the hidden states h_t."""
    rows = [r for r in table if r.get("quantity") == "h" and str(r.get("direction")) == "forward"]
    if not rows:
        return []
    top = max(r["layer"] for r in rows)
    rows = [r for r in rows if r["layer"] == top]
    # far distances that few sequences reach are averages of a handful of values: leave them out
    enough = 0.1 * max(r.get("count", 1) for r in rows)
    return [r for r in rows if r.get("count", enough) >= enough]


def gradient_flow(rows, groups):
    """One line per configuration (mean over its seeds): same cell, same colour; the other factors (depth,
    direction, T ...) set the line style, so cells are compared on the same data."""
    import matplotlib.pyplot as plt

    tables = [(group, [r["analysis"]["gradient_flow"] for r in group["runs"]
                       if r.get("analysis", {}).get("gradient_flow") and r["status"] == "FINISHED"])
              for group in groups]
    tables = [(group, runs) for group, runs in tables if runs]
    if not tables:
        return None
    stages = sorted({row["stage"] for _, runs in tables for table in runs for row in table},
                    key=lambda s: s != "init")
    figure, panels = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4.5), sharey=True, squeeze=False)
    for panel, stage in zip(panels[0], stages, strict=True):
        for group, runs in tables:
            by_distance: dict[float, list[float]] = {}
            for table in runs:
                for row in _top_forward_h([r for r in table if r["stage"] == stage]):
                    by_distance.setdefault(row["distance"], []).append(row["mean_norm"])
            if not by_distance:
                continue
            distances = sorted(by_distance)
            norms = [statistics.fmean(by_distance[d]) for d in distances]
            base = norms[0] or 1.0
            panel.plot(distances, [n / base for n in norms], _style(groups, group), color=_color(group["config"]),
                       label=describe(group["config"]))
        panel.set_yscale("log")
        panel.set_xlabel("distance from the loss (steps back in time)")
        panel.set_title(f"at {'initialisation' if stage == 'init' else 'the end of training'}")
        panel.grid(alpha=0.3)
    panels[0][0].set_ylabel("‖dL/dh_t‖ relative to the last step")
    panels[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle("Gradient flow through time (top layer, forward direction; a line ends where the norm "
                    "underflows to 0)")
    return "Gradient flow through time per configuration", figure


def gate_activity(rows, groups):
    import matplotlib.pyplot as plt

    stats: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        for entry in row.get("analysis", {}).get("gate_stats") or []:
            if str(entry.get("layer")) in ("0", "0.0") and str(entry.get("direction")) == "forward":
                stats.setdefault((str(row["config"].get("cell")), entry["gate"]),
                                 []).append(entry)
    if not stats:
        return None
    keys = sorted(stats, key=lambda k: (ORDER.get(k[0], 9), k[1]))
    figure, axes = plt.subplots(figsize=(max(6, 0.6 * len(keys) + 2), 4))
    positions = range(len(keys))
    means = [statistics.fmean(e["mean"] for e in stats[k]) for k in keys]
    low = [statistics.fmean(e["frac_below_0.1"] for e in stats[k]) for k in keys]
    high = [statistics.fmean(e["frac_above_0.9"] for e in stats[k]) for k in keys]
    width = 0.27
    axes.bar([p - width for p in positions], means, width, label="mean activation", color="#1f77b4")
    axes.bar(list(positions), low, width, label="fraction < 0.1 (closed)", color="#ff7f0e")
    axes.bar([p + width for p in positions], high, width, label="fraction > 0.9 (open)", color="#2ca02c")
    axes.set_xticks(list(positions), [f"{cell}\n{gate}" for cell, gate in keys], fontsize=7)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    axes.set_title("Gate activity after training (first layer, forward direction; mean over runs)")
    return "Gate activity per cell after training", figure
