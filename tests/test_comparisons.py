"""The statistics behind the report's sentences, on hand-made scores: pairing by seed, Holm's correction, the
detectable difference and the intervals, checked against scipy's and statsmodels' own definitions."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats

from rnnlab.reporting.comparisons import Comparison, compare, factor_comparisons, half_width, holm
from rnnlab.reporting.statistics import config_groups, significance

# five seeds that differ a lot from each other; B is A plus a small, steady gain on every seed
A = {"1": 0.70, "2": 0.78, "3": 0.74, "4": 0.66, "5": 0.81}
B = {seed: score + gain for (seed, score), gain in zip(A.items(), [0.011, 0.009, 0.012, 0.010, 0.008],
                                                       strict=True)}


def test_pairing_by_seed_sees_a_steady_gain_that_an_unpaired_test_misses():
    paired = compare(B, A)
    assert paired.test == "paired t-test over 5 pairs"
    assert paired.p == pytest.approx(stats.ttest_rel(list(B.values()), list(A.values())).pvalue)
    assert paired.p < 0.001 and paired.difference == pytest.approx(0.01)
    unpaired = compare({f"b{k}": v for k, v in B.items()}, A)  # no seed in common: Welch's t-test
    assert unpaired.test == "Welch's t-test over 5 and 5 seeds"
    assert unpaired.p == pytest.approx(stats.ttest_ind(list(B.values()), list(A.values()), equal_var=False).pvalue)
    assert unpaired.p > 0.5


def test_a_p_value_below_the_shown_decimals_reads_as_a_bound_not_as_zero():
    from rnnlab.reporting.comparisons import sentence

    paired = compare(B, A)
    holm([paired])
    assert paired.p_holm < 0.0005
    text = sentence(paired, "test accuracy", True)
    assert ", p < 0.001:" in text and "0.000:" not in text
    loose = compare({"1": 0.7, "2": 0.72, "3": 0.69}, {"1": 0.71, "2": 0.70, "3": 0.70})
    holm([loose])
    assert f", p = {loose.p_holm:.3f}:" in sentence(loose, "test accuracy", True)


def test_the_interval_of_a_paired_difference_is_the_t_interval_of_the_differences():
    differences = [B[k] - A[k] for k in A]
    low, high = stats.t.interval(0.95, len(differences) - 1, loc=statistics.fmean(differences),
                                 scale=stats.sem(differences))
    assert compare(B, A).interval == pytest.approx((high - low) / 2)
    assert half_width(differences) == pytest.approx((high - low) / 2)
    assert half_width([0.5]) is None


def test_holm_adjusts_as_defined():
    """Holm (1979): sort the m p-values, multiply the i-th smallest by m - i + 1, keep them non-decreasing."""
    comparisons = [Comparison("a", "b", 0.0, None, p, "t", 3, None) for p in (0.01, 0.04, 0.03, 0.2)]
    holm(comparisons)
    assert [c.p_holm for c in comparisons] == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert [c.told_apart for c in comparisons] == [True, False, False, False]
    assert all(c.family == 4 for c in comparisons)


def test_the_detectable_difference_is_found_with_power_080():
    """At the difference it reports, a two-sided paired t-test at the 5% level rejects with probability 0.8:
    the noncentral t distribution's own power, not statsmodels' solver."""
    comparison = compare(B, A)
    n = comparison.pairs
    spread = statistics.stdev([B[k] - A[k] for k in A])
    df, critical = n - 1, stats.t.ppf(0.975, n - 1)
    noncentrality = comparison.detectable / (spread / math.sqrt(n))
    power = 1 - stats.nct.cdf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    assert power == pytest.approx(0.8, abs=1e-4)


def _row(cell, layers, seed, score):
    return {"run_id": f"{cell}{layers}{seed}", "run_name": f"{cell}-{layers}", "status": "FINISHED",
            "task": "classify", "objective": {"metric": "val_acc", "mode": "max"}, "seed": seed,
            "config": {"cell": cell, "layers": layers}, "test_acc": score}


def test_a_factor_is_paired_over_the_configurations_that_differ_only_in_it():
    # depth moves scores far more than the cell does, but GRU beats LSTM by 0.01 at every depth and seed
    rows = []
    for layers, base in ((1, 0.60), (2, 0.80)):
        for seed, noise in (("1", 0.0), ("2", 0.03), ("3", -0.02)):
            rows += [_row("lstm", layers, seed, base + noise), _row("gru", layers, seed, base + noise + 0.01)]
    groups = config_groups(rows)
    found = {(c.first, c.second): c for c in factor_comparisons(groups, "test_acc")}
    cells = found["LSTM", "GRU"]
    assert cells.pairs == 6 and cells.difference == pytest.approx(-0.01) and cells.told_apart
    depth = found["1 layer", "2 layers"]
    assert depth.pairs == 6 and depth.difference == pytest.approx(-0.2) and depth.told_apart
    text = "\n".join(significance(groups))
    assert "LSTM against GRU: test accuracy difference -0.0100" in text and "GRU is better" in text


def _depth_row(cell, layers, seed, gap, test, budget=None):
    """A classifier run whose selected epoch (the best validation accuracy) is epoch `seed` % 3 and whose train
    accuracy there is the validation accuracy + `gap`; at the other epochs train accuracy is 0.1 higher still."""
    chosen, val = int(seed) % 3, [0.70, 0.72, 0.71]
    val[chosen] = 0.75
    train = [v + gap + (0.0 if epoch == chosen else 0.1) for epoch, v in enumerate(val)]
    config = {"cell": cell, "layers": layers, **({"model.param_budget": budget} if budget else {})}
    return {"run_id": f"{cell}{layers}{seed}{budget}", "run_name": f"{cell}-{layers}", "status": "FINISHED",
            "task": "classify", "objective": {"metric": "val_acc", "mode": "max"}, "seed": seed, "config": config,
            "best_val_acc": 0.75, "test_acc": test, "seconds_per_epoch": 10.0 * layers + int(seed),
            "history": {"val_acc": [[10 * (e + 1), v] for e, v in enumerate(val)],
                        "train_acc": [[10 * (e + 1), t] for e, t in enumerate(train)]}}


# per (cell, seed): the gap grows by about 0.05 with the second layer, the test score moves both ways
DEPTH = {("lstm", "1"): (0.020, 0.010, 0.80, -0.010), ("lstm", "2"): (0.030, 0.012, 0.78, 0.012),
         ("lstm", "3"): (0.010, 0.009, 0.82, 0.004), ("gru", "1"): (0.025, 0.011, 0.79, -0.006),
         ("gru", "2"): (0.015, 0.008, 0.81, 0.009), ("gru", "3"): (0.035, 0.010, 0.77, -0.008)}


def _depth_rows(budget=None):
    rows = []
    for (cell, seed), (gap, more, test, change) in DEPTH.items():
        rows += [_depth_row(cell, 1, seed, gap, test, budget),
                 _depth_row(cell, 2, seed, gap + 0.05 + more - 0.01, test + change, budget)]
    return rows


def _expected(differences):
    """(mean, half-width of its 95% t interval, p) of paired differences, from scipy alone."""
    mean = statistics.fmean(differences)
    low, high = stats.t.interval(0.95, len(differences) - 1, loc=mean, scale=stats.sem(differences))
    return mean, (high - low) / 2, stats.ttest_1samp(differences, 0).pvalue


def test_depth_sentences_give_the_change_in_the_gap_and_the_score_from_one_layer_to_two():
    from rnnlab.reporting.markdown import report_markdown, summary_lines
    from rnnlab.reporting.statistics import GAP, config_groups

    rows = _depth_rows()
    groups = config_groups(rows)
    gap_diffs = [0.05 + more - 0.01 for _, more, _, _ in DEPTH.values()]  # per (cell, seed): 2 layers - 1
    score_diffs = [change for _, _, _, change in DEPTH.values()]
    for run in (run for group in groups for run in group["runs"]):  # train acc at the selected epoch - val acc
        val, train = ([value for _, value in run["history"][name]] for name in ("val_acc", "train_acc"))
        assert run[GAP] == pytest.approx(train[val.index(max(val))] - run["best_val_acc"])
    lines = summary_lines(rows, groups)
    gap_line = next(line for line in lines if "gap at the selected checkpoint" in line)
    mean, half, p = _expected(gap_diffs)
    assert _excludes_zero(mean, half) and p < 0.0005  # shown as a bound
    assert gap_line == (f"- From 1 layer to 2 layers, the train − val acc gap at the selected checkpoint changes by "
                        f"{mean:+.4f} (95% CI ± {half:.4f}), paired t-test over 6 pairs, p < 0.001: higher with "
                        "2 layers.")
    score_line = next(line for line in lines if "test accuracy changes by" in line)
    mean, half, p = _expected(score_diffs)
    assert not _excludes_zero(mean, half) and p > 0.05
    assert score_line.startswith(f"- From 1 layer to 2 layers, test accuracy changes by {mean:+.4f} (95% CI ± "
                                 f"{half:.4f}), paired t-test over 6 pairs, p = {p:.3f}: they **cannot be told "
                                 "apart**")
    # wall times: in report.html's sentences (links=True) only
    assert not any("time per epoch" in line for line in lines)
    assert any(line.startswith("- From 1 layer to 2 layers, the time per epoch changes by +10.0 s")
               for line in summary_lines(rows, groups, links=True))
    # a study sized two ways: the depth sentences once per sizing
    markdown = report_markdown("sized", _depth_rows() + _depth_rows(budget="50000"))
    assert markdown.count("Depth and overfitting") == 2
    for view in markdown.split("## At equal parameters"):
        assert "higher with 2 layers" in view and "test accuracy changes by" in view


def _excludes_zero(mean: float, half: float) -> bool:
    return mean - half > 0 or mean + half < 0
