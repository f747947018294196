"""The statistics of a verdict: intervals over seeds, paired differences, frontiers read at a budget,
Gao et al.'s over-optimization forms, and power. Pure functions, checked against known answers in
tests/test_statistics.py.

Seeds are the unit of replication: every number a study compares is first computed per seed (a seed
runs the whole pipeline: its own samples, labels, reward model and policies), then summarised over
seeds with Student's t, since a handful of seeds is all a study has. Two methods are compared seed by
seed (the same seed shares data and reward model), so their difference is a paired one.
"""

import functools
import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95  # of every interval
POWER = 0.8  # of every detectable-difference statement


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided t interval over n values, and their standard deviation; low, high and sd
    are None for fewer than two."""

    mean: float
    low: float | None
    high: float | None
    n: int
    sd: float | None = None

    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "sd": self.sd}


@functools.lru_cache(maxsize=4096)
def t_quantile(probability: float, degrees: int) -> float:
    from scipy.stats import t

    return float(t.ppf(probability, degrees))


def t_interval(values: list[float], level: float = LEVEL) -> Interval:
    """mean ± t_{(1+level)/2, n-1} · s/√n."""
    n, centre = len(values), statistics.fmean(values)
    if n < 2:
        return Interval(centre, None, None, n)
    sd = statistics.stdev(values)
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    return Interval(centre, centre - half, centre + half, n, sd)


def paired_difference(a: list[float], b: list[float], level: float = LEVEL) -> Interval:
    """The t interval of mean(a_i − b_i): a and b measured on the same units (seeds, or prompt and sample)."""
    return t_interval([x - y for x, y in zip(a, b, strict=True)], level)


def unpaired_difference(a: tuple[float, float, int], b: tuple[float, float, int], level: float = LEVEL) -> Interval:
    """Welch's t interval of mean(a) − mean(b) from each side's (mean, standard deviation, n)."""
    (mean_a, sd_a, n_a), (mean_b, sd_b, n_b) = a, b
    centre = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        return Interval(centre, None, None, min(n_a, n_b))
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    if va + vb == 0:
        return Interval(centre, centre, centre, min(n_a, n_b))
    degrees = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1)) if va and vb else (n_a if va else n_b) - 1
    half = t_quantile((1 + level) / 2, max(1, round(degrees))) * math.sqrt(va + vb)
    return Interval(centre, centre - half, centre + half, min(n_a, n_b))


def verdict(first: str, second: str, difference: Interval, unit: str = "seeds") -> str:
    """In words, only as strong as the interval allows: "A beats B" where the interval of A − B excludes 0."""
    if difference.low is None:
        return f"not distinguishable with {difference.n} {unit[:-1] if difference.n == 1 else unit} (no interval)"
    if difference.low > 0:
        return f"{first} beats {second}"
    if difference.high < 0:
        return f"{second} beats {first}"
    return f"not distinguishable with {difference.n} {unit}"


def at_budget(points: list[tuple[float, float]], budget: float) -> float | None:
    """A frontier's value at `budget`: points are (cost, value), among them (0, the reference's value); the
    value is interpolated linearly between the two points around the budget, along cost. None when no point
    reaches the budget: the frontier says nothing there, and nothing is extrapolated."""
    ordered = sorted(points)
    if not ordered or budget > ordered[-1][0] or budget < ordered[0][0]:
        return None
    for (x0, y0), (x1, y1) in zip(ordered, ordered[1:], strict=False):
        if x0 <= budget <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (budget - x0) / (x1 - x0)
    return ordered[-1][1]  # budget equals the single point's cost


@dataclass(frozen=True)
class OveroptimizationFit:
    """Gao et al. 2022's form fitted to gold gains: best-of-N  gain = d(α − βd);  RL  gain = d(α − β·ln d);
    d = √KL. `peak_kl`: the KL where the fitted gain is highest (None when β ≤ 0: no peak, gain still rising)."""

    form: str
    alpha: float
    beta: float
    peak_kl: float | None
    points: int
    r_squared: float

    def as_dict(self) -> dict:
        return {"form": self.form, "alpha": self.alpha, "beta": self.beta, "peak_kl": self.peak_kl,
                "points": self.points, "r_squared": self.r_squared}  # fmt: skip


def fit_overoptimization(kls: list[float], gains: list[float], form: str) -> OveroptimizationFit | None:
    """Least squares of gain on (d, d²) for "best_of_n" or (d, d·ln d) for "rl"; linear in α and β. None with
    fewer than three points at distinct positive KL: too little data for two coefficients and a check."""
    import numpy as np

    pairs = [(math.sqrt(k), g) for k, g in zip(kls, gains, strict=True) if k > 0]
    if len({round(d, 9) for d, _ in pairs}) < 3:
        return None
    d = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    second = d * d if form == "best_of_n" else d * np.log(d)
    design = np.stack([d, -second], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ np.array([alpha, beta])
    total = float(((y - y.mean()) ** 2).sum())
    r_squared = 1 - float((residual**2).sum()) / total if total > 0 else 0.0
    peak = None
    if beta > 0:
        peak_d = alpha / (2 * beta) if form == "best_of_n" else math.exp(alpha / beta - 1)
        peak = float(peak_d**2) if peak_d > 0 else None
    return OveroptimizationFit(form, float(alpha), float(beta), peak, len(pairs), r_squared)


def detectable_difference(sd: float, n: int, level: float = LEVEL, power: float = POWER) -> float | None:
    """The smallest true mean difference a paired t test on n units with difference SD `sd` detects with
    `power` at two-sided `level`: (t_{(1+level)/2, n−1} + t_{power, n−1}) · sd/√n. None for n < 2."""
    if n < 2:
        return None
    return (t_quantile((1 + level) / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def units_needed(difference: float, sd: float, level: float = LEVEL, power: float = POWER, most: int = 100_000) -> int:
    """How many paired units (seeds, or held-out responses) detect `difference` with `power`: the least n with
    detectable_difference(sd, n) ≤ difference (`most` when none up to it does)."""
    if difference <= 0:
        return most
    n = 2
    while n < most and detectable_difference(sd, n, level, power) > difference:
        n = n * 2 if detectable_difference(sd, n * 2, level, power) > difference else n + 1
    return n


# The states of the over-optimization flag, each with the evidence it needs.
OVEROPTIMIZED, FINE, INCONCLUSIVE, DID_NOT_MOVE = "over-optimized", "fine", "inconclusive", "did not move"


def overoptimization_state(
    kl: Interval, learned_gain: Interval, gold_gain: Interval, peak: tuple[Interval, Interval] | None
) -> tuple[str, str]:
    """(state, evidence) of one policy against its reference and its own peak.

    kl, learned_gain, gold_gain: the policy's KL and its learned-reward and gold gains over the reference;
    peak: (gold − peak's gold, learned − peak's learned) against the best-gold point on its way (the
    reference, an earlier checkpoint, a weaker setting of its knob), or None when the policy is its own peak.
    Over-optimized needs evidence: gold significantly below the peak while the learned reward is
    significantly above it. A policy whose KL and learned reward did not significantly rise is never flagged."""
    if learned_gain.low is None or kl.low is None:
        return INCONCLUSIVE, f"too little data ({learned_gain.n} units): no interval"
    if kl.low <= 0 and learned_gain.low <= 0:
        return DID_NOT_MOVE, "neither KL nor the learned reward rose significantly"
    if peak is not None:
        gold_vs_peak, learned_vs_peak = peak
        if (
            gold_vs_peak.excludes_zero()
            and gold_vs_peak.high < 0
            and learned_vs_peak.excludes_zero()
            and learned_vs_peak.low > 0
        ):
            return OVEROPTIMIZED, (
                f"gold {gold_vs_peak.mean:+.3f} [{gold_vs_peak.low:+.3f}, {gold_vs_peak.high:+.3f}] below its peak "
                f"while the learned reward rose {learned_vs_peak.mean:+.3f} [{learned_vs_peak.low:+.3f}, "
                f"{learned_vs_peak.high:+.3f}] past it"
            )
    if gold_gain.low > 0:
        return (
            FINE,
            f"gold rose {gold_gain.mean:+.3f} [{gold_gain.low:+.3f}, {gold_gain.high:+.3f}], "
            + ("its own peak" if peak is None else "not significantly below its peak with a learned reward past it"),
        )
    return INCONCLUSIVE, (
        f"it moved, but gold ({gold_gain.mean:+.3f} [{gold_gain.low:+.3f}, {gold_gain.high:+.3f}] over the reference) "
        "neither rose nor fell significantly below its peak: these data cannot tell"
    )
