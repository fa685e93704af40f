"""The statistics behind the report's sentences: 95% confidence intervals of means over seeds; tests paired by
seed where two configurations ran the same seeds (Welch's t-test where they did not); Holm's correction over each
family of comparisons; and the smallest difference a comparison could detect (power 0.8 at the 5% level).
scipy and statsmodels do the arithmetic.

Two families are tested: the best configuration against each other one (which cannot be told apart from it?),
and the sweep's factors (each pair of cells, depth, direction), each factor paired over the configurations that
differ only in it and over their seeds."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from rnnlab.reporting.configurations import ORDER

ALPHA, POWER, CONFIDENCE = 0.05, 0.8, 0.95
FACTORS = {"cell": "cell", "layers": "depth", "direction": "direction"}  # config label -> what a sentence calls it


def half_width(values: list[float]) -> float | None:
    """Half the width of the 95% t confidence interval of the mean of `values` (None below two values)."""
    if len(values) < 2:
        return None
    from scipy import stats

    return float(stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1) * statistics.stdev(values)
                 / math.sqrt(len(values)))


@dataclass
class Comparison:
    """`first` against `second`: the mean difference (first - second), its 95% interval, the test and its p."""
    first: str
    second: str
    difference: float
    interval: float | None
    p: float
    test: str
    pairs: int
    detectable: float | None  # the smallest true difference found with probability POWER at level ALPHA
    p_holm: float = math.nan
    family: int = 1

    @property
    def told_apart(self) -> bool:
        return self.p_holm < ALPHA


def compare(first: dict, second: dict, first_name: str = "first", second_name: str = "second") -> Comparison | None:
    """Compare the scores `first` and `second` ({pairing key: score}; the key is the seed, or (configuration,
    seed) for a factor): a paired t-test over the keys both have when there are two or more, else Welch's
    t-test over all the scores. None when there are too few scores for either."""
    from scipy import stats
    from statsmodels.stats.power import TTestIndPower, TTestPower

    shared = [key for key in first if key in second]
    if len(shared) >= 2:
        a, b = [first[k] for k in shared], [second[k] for k in shared]
        differences = [x - y for x, y in zip(a, b, strict=True)]
        spread = statistics.stdev(differences)
        if _constant(spread, differences):  # every pair differs by the same amount: no variance to divide by
            p, interval = (0.0 if differences[0] != 0 else 1.0), 0.0
        else:
            result = stats.ttest_rel(a, b)
            p, interval = float(result.pvalue), _half(result.confidence_interval(CONFIDENCE))
        effect = TTestPower().solve_power(nobs=len(shared), alpha=ALPHA, power=POWER)
        return Comparison(first_name, second_name, statistics.fmean(differences), interval, p,
                          f"paired t-test over {len(shared)} pairs", len(shared), float(effect) * spread)
    a, b = list(first.values()), list(second.values())
    if len(a) < 2 or len(b) < 2:
        return None
    spread = math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2)
    if _constant(spread, a + b):
        p, interval = (0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0), 0.0
    else:
        result = stats.ttest_ind(a, b, equal_var=False)
        p, interval = float(result.pvalue), _half(result.confidence_interval(CONFIDENCE))
    effect = TTestIndPower().solve_power(nobs1=len(a), ratio=len(b) / len(a), alpha=ALPHA, power=POWER)
    return Comparison(first_name, second_name, statistics.fmean(a) - statistics.fmean(b), interval, p,
                      f"Welch's t-test over {len(a)} and {len(b)} seeds", min(len(a), len(b)), float(effect) * spread)


def _constant(spread: float, values: list[float]) -> bool:
    """No spread beyond float rounding (scores are fractions of one test set, or sums of them)."""
    return spread <= 1e-9 * max(1.0, *(abs(v) for v in values))


def _half(interval) -> float:
    return float(interval.high - interval.low) / 2


def holm(comparisons: list[Comparison]) -> list[Comparison]:
    """Set each comparison's Holm-adjusted p over the family `comparisons` (statsmodels' multipletests)."""
    if not comparisons:
        return comparisons
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests([c.p for c in comparisons], alpha=ALPHA, method="holm")[1]
    for comparison, p in zip(comparisons, adjusted, strict=True):
        comparison.p_holm, comparison.family = float(p), len(comparisons)
    return comparisons


def scores_by_seed(group: dict, key: str) -> dict:
    return {str(run.get("seed")): run[key] for run in group["runs"]
            if run["status"] == "FINISHED" and _number(run.get(key))}


def against_the_best(order: list[dict], key: str, describe) -> list[Comparison]:
    """The best configuration (order[0]) against each other one, Holm-adjusted over them all."""
    best = scores_by_seed(order[0], key)
    found = [compare(best, scores_by_seed(group, key), describe(order[0]["config"]), describe(group["config"]))
             for group in order[1:]]
    return holm([c for c in found if c is not None])


def factor_comparisons(groups: list[dict], key: str, factors=tuple(FACTORS)) -> list[Comparison]:
    """Each pair of values of each of `factors` that varies in the sweep (cells, depth, direction), paired over
    the configurations that differ only in that factor and over their seeds; Holm-adjusted over all of them."""
    found = []
    for factor in factors:
        values = sorted({str(g["config"].get(factor)) for g in groups if factor in g["config"]},
                        key=lambda v: (ORDER.get(v, 9), v))
        for i, first in enumerate(values):
            for second in values[i + 1:]:
                a, b = _factor_scores(groups, key, factor, first), _factor_scores(groups, key, factor, second)
                comparison = compare(a, b, _factor_name(factor, first), _factor_name(factor, second))
                if comparison is not None:
                    found.append(comparison)
    return holm(found)


def _factor_scores(groups: list[dict], key: str, factor: str, value: str) -> dict:
    scores = {}
    for group in groups:
        if str(group["config"].get(factor)) != value:
            continue
        others = tuple((k, str(v)) for k, v in group["config"].items() if k != factor)
        for seed, score in scores_by_seed(group, key).items():
            scores[others, seed] = score
    return scores


def _factor_name(factor: str, value: str) -> str:
    if factor == "cell":
        return {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}.get(value, value)
    if factor == "layers":
        return f"{value} layer{'s' if value != '1' else ''}"
    return {"uni": "one direction", "bi": "both directions"}.get(value, value)


def _number(value) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def sentence(comparison: Comparison, name: str, higher: bool, digits: int = 4) -> str:
    """One comparison as the report says it: the difference, its interval, the test, and what follows."""
    c, fmt = comparison, f"{{:+.{digits}f}}"
    if c.told_apart:
        better = c.first if (c.difference > 0) == higher else c.second
        verdict = f"{better} is better"
    else:
        verdict = _not_told_apart(c, digits)
    return (f"{c.first} against {c.second}: {name} difference {fmt.format(c.difference)}{_evidence(c, digits)}: "
            f"{verdict}.")


def change_sentence(comparison: Comparison, name: str, digits: int = 4, unit: str = "") -> str:
    """The change of `name` going from `first` to `second` (second - first): "from 1 layer to 2 layers, ...
    changes by +0.0300 (95% CI ...), ...: higher with 2 layers" or "they cannot be told apart"."""
    c, change = comparison, -comparison.difference
    verdict = (f"{'higher' if change > 0 else 'lower'} with {c.second}" if c.told_apart
               else _not_told_apart(c, digits))
    return (f"from {c.first} to {c.second}, {name} changes by {change:+.{digits}f}{unit}"
            f"{_evidence(c, digits, unit)}: {verdict}.")


def _evidence(c: Comparison, digits: int, unit: str = "") -> str:
    """", 95% interval, test, p" of a sentence; with one comparison in the family, p (not Holm-adjusted) is
    below 0.05 exactly when the interval leaves out 0."""
    interval = f" (95% CI ± {c.interval:.{digits}f}{unit})" if c.interval is not None else ""
    adjusted = f"Holm-adjusted {p_text(c.p_holm)} over {c.family}" if c.family > 1 else p_text(c.p_holm)
    return f"{interval}, {c.test}, {adjusted}"


def p_text(p: float) -> str:
    """"p = 0.025", or "p < 0.001" where three decimals would round a real p-value to 0.000."""
    return "p < 0.001" if p < 0.0005 else f"p = {p:.3f}"


def _not_told_apart(c: Comparison, digits: int) -> str:
    detect = (f"; the test could detect a difference of {c.detectable:.{digits}f} or more"
              if c.detectable is not None and c.detectable > 0 else "")
    return f"they **cannot be told apart**{detect}"
