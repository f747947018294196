"""The statistics of a verdict: intervals over replicates, paired differences and their tests, Holm's
correction within a table, frontiers read at a budget, and power. Pure functions, checked against known
answers in tests/test_statistics.py and, through a study's whole code path, on simulated null studies in
tests/test_calibration.py. Over-optimization (flags and Gao et al.'s fits) is in reporting/overoptimization.py.

Replicates are the unit: every number a study compares is first computed per replicate (a seed: its own
samples, labels, reward model and policies; or a training seed: the same data, another training run),
then summarised over replicates with Student's t, since a handful is all a study has. Two methods are
compared replicate by replicate (a replicate shares data and reward model), so their difference is paired.
"""

import functools
import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95  # of every interval
ALPHA = 1 - LEVEL  # the family-wise error rate each table's verdicts control (Holm)
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

    def p_value(self) -> float | None:
        """Two-sided p of the one-sample t test of mean = 0 (None without an interval)."""
        if self.sd is None:
            return None
        if self.sd == 0:
            return 1.0 if self.mean == 0 else 0.0
        return 2 * t_tail(abs(self.mean) / (self.sd / math.sqrt(self.n)), self.n - 1)

    def bound(self, alpha: float, side: str) -> float | None:
        """The one-sided (1 − alpha) bound: "upper" (mean + t·s/√n) or "lower"; None without an interval."""
        if self.sd is None:
            return None
        half = t_quantile(1 - alpha, self.n - 1) * self.sd / math.sqrt(self.n)
        return self.mean + half if side == "upper" else self.mean - half

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "sd": self.sd}


@functools.lru_cache(maxsize=4096)
def t_quantile(probability: float, degrees: int) -> float:
    from scipy.stats import t

    return float(t.ppf(probability, degrees))


def t_tail(statistic: float, degrees: int) -> float:
    """P(T > statistic) for Student's t with `degrees` degrees of freedom."""
    from scipy.stats import t

    return float(t.sf(statistic, degrees))


def t_interval(values: list[float], level: float = LEVEL) -> Interval:
    """mean ± t_{(1+level)/2, n-1} · s/√n."""
    n, centre = len(values), statistics.fmean(values)
    if n < 2:
        return Interval(centre, None, None, n)
    sd = math.sqrt(math.fsum((value - centre) ** 2 for value in values) / (n - 1))
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    return Interval(centre, centre - half, centre + half, n, sd)


def paired_difference(a: list[float], b: list[float], level: float = LEVEL) -> Interval:
    """The t interval of mean(a_i − b_i): a and b measured on the same units (seeds, or prompt and sample)."""
    return t_interval([x - y for x, y in zip(a, b, strict=True)], level)


def holm(p_values: list[float | None], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down rejections at family-wise error rate `alpha`: sort the m p-values, reject the k-th
    smallest (k = 0, 1, ...) while p_(k) ≤ alpha / (m − k), and stop at the first that is not. None (no
    test, or NaN) never rejects and does not count in m."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None and not math.isnan(p))
    rejected = [False] * len(p_values)
    for k, (p, index) in enumerate(tested):
        if not p <= alpha / (len(tested) - k):
            break
        rejected[index] = True
    return rejected


def verdict(first: str, second: str, difference: Interval, decided: bool, unit: str = "seeds") -> str:
    """In words, only as strong as the test allows: "A beats B" where the (Holm-adjusted) test of A − B = 0
    rejects, in the direction of the mean difference; else "not distinguishable with n <unit>"."""
    if difference.low is None:
        return f"not distinguishable with {difference.n} {unit[:-1] if difference.n == 1 else unit} (no interval)"
    if decided:
        return f"{first} beats {second}" if difference.mean > 0 else f"{second} beats {first}"
    return f"not distinguishable with {difference.n} {unit}" + (" (a verdict needs 3)" if difference.n == 2 else "")


def at_budget(points: list[tuple[float, float]], budget: float, form: str = "rl") -> float | None:
    """A frontier's value at a KL `budget`, or None when no point reaches it (nothing is extrapolated).

    points: (KL, value), among them the reference's (0, value). The value is read between the two points
    that bracket the budget, along Gao et al.'s curve through them, in d = √KL: gain over the point at
    d = 0 is d(α − β·h(d)), h(d) = ln d for RL ("rl") and d for best-of-N ("best_of_n"), with α and β
    set so that the curve passes through both bracketing points (when the lower one is the reference,
    through the next point beyond the upper one; with no such point, β = 0: linear in √KL). So a method
    whose points lie far apart is read on the same curve as one whose points lie close, and a curve of
    that form is read without bias whatever the grid. A read that leaves the range of its two bracketing
    points is not trusted and is read linearly in √KL between them instead: two settings that land at
    nearly the same KL with different gold give a curve of any curvature (one SmolLM2 study read 1.2 at 0.5
    nats, from points of 0.11, 0.30 and 0.24 gold, on a scale that ends at 1). The cost: a frontier whose
    peak lies inside a bracket is read low there."""
    by_d: dict[float, list[float]] = {}
    for kl, value in points:  # points at one KL (two settings that moved alike) count as their mean
        by_d.setdefault(math.sqrt(max(kl, 0.0)), []).append(value)
    ordered = sorted((d, statistics.fmean(values)) for d, values in by_d.items())
    target = math.sqrt(budget)
    if not ordered or target > ordered[-1][0] or target < ordered[0][0]:
        return None
    for index, ((x0, y0), (x1, y1)) in enumerate(zip(ordered, ordered[1:], strict=False)):
        if x0 <= target <= x1:
            if target in (x0, x1) or x1 == x0:
                return y0 if target == x0 else y1
            origin_d, origin = ordered[0]
            anchors = [(x0, y0), (x1, y1)] if x0 > origin_d else [(x1, y1)] + ordered[index + 2 : index + 3]
            read = origin + gao_through(anchors, target - origin_d, origin, origin_d, form)
            if min(y0, y1) <= read <= max(y0, y1):
                return read
            return y0 + (y1 - y0) * (target - x0) / (x1 - x0)  # the curve left its bracket: linear in √KL
    return ordered[-1][1]  # the budget equals the single point's KL


def gao_through(anchors: list[tuple[float, float]], d: float, origin: float, origin_d: float, form: str) -> float:
    """The gain at d of d(α − β·h(d)) through the anchors' gains over `origin` (two anchors: both
    coefficients; one: β = 0)."""
    shape = (lambda x: x * math.log(x)) if form == "rl" else (lambda x: x * x)
    (d1, y1), *rest = [(x - origin_d, y - origin) for x, y in anchors]
    if not rest or d1 <= 0:
        return y1 * d / d1
    d2, y2 = rest[0]
    determinant = -d1 * shape(d2) + d2 * shape(d1)  # of [[d1, −h1], [d2, −h2]]
    if abs(determinant) < 1e-9 * d1 * d2 * max(abs(shape(d1)), abs(shape(d2)), 1.0):
        return y1 * d / d1  # anchors too close to tell a curvature: linear in √KL
    alpha = (-y1 * shape(d2) + y2 * shape(d1)) / determinant
    beta = (d1 * y2 - d2 * y1) / determinant
    return alpha * d - beta * shape(d)


def t_test_power(shift: float, degrees: int, critical: float) -> float:
    """P(|T'| > critical) for T' = (Z + shift) / √(V/degrees), Z standard normal, V χ² on `degrees`: the
    power of a two-sided t test at noncentrality `shift` (scipy's noncentral t; integrated over V where
    that returns NaN, as at one degree of freedom or a large shift)."""
    from scipy.integrate import quad
    from scipy.stats import chi2, nct, norm

    if degrees > 1:
        power = float(nct.sf(critical, degrees, shift) + nct.cdf(-critical, degrees, shift))
        if math.isfinite(power):
            return power

    def rejects(v: float) -> float:
        edge = critical * math.sqrt(v / degrees)
        return (norm.sf(edge - shift) + norm.cdf(-edge - shift)) * chi2.pdf(v, degrees)

    low, high = chi2.ppf(1e-12, degrees), chi2.isf(1e-12, degrees)  # where all but 2e-12 of V lies
    return float(quad(rejects, low, high, limit=200, points=[degrees])[0])


@functools.lru_cache(maxsize=1024)
def detectable_in_sds(n: int, level: float, power: float) -> float:
    """The true mean difference, in SDs of the paired differences, that a two-sided paired t test at `level`
    on n units rejects with probability `power`, exactly: the δ with P(|T'| > t_{(1+level)/2, n−1}) = power,
    T' noncentral t with n − 1 degrees of freedom and noncentrality δ√n."""
    from scipy.optimize import brentq

    critical = t_quantile((1 + level) / 2, n - 1)

    def shortfall(delta: float) -> float:
        return t_test_power(delta * math.sqrt(n), n - 1, critical) - power

    high = (critical + 1) / math.sqrt(n)  # power is above one half here; doubled until above `power`
    while shortfall(high) < 0:
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=1e-9))


def detectable_difference(sd: float, n: int, level: float = LEVEL, power: float = POWER) -> float | None:
    """The smallest true mean difference a paired t test on n units with difference SD `sd` detects with
    `power` at two-sided `level` (exact, noncentral t). None for n < 2."""
    if n < 2:
        return None
    return detectable_in_sds(n, level, power) * sd  # positional, so the cache sees one key per n


def sd_interval(sd: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The χ² interval of a normal SD from a sample SD on n − 1 degrees of freedom:
    s·√((n−1)/χ²_{(1+level)/2}) to s·√((n−1)/χ²_{(1−level)/2})."""
    low, high = sd_interval_factors(n - 1, level)
    return sd * low, sd * high


@functools.lru_cache(maxsize=1024)
def sd_interval_factors(degrees: int, level: float) -> tuple[float, float]:
    from scipy.stats import chi2

    return (
        math.sqrt(degrees / chi2.ppf((1 + level) / 2, degrees)),
        math.sqrt(degrees / chi2.ppf((1 - level) / 2, degrees)),
    )


def detectable_with_interval(sd: float | None, n: int, level: float = LEVEL) -> dict | None:
    """The detectable difference at the estimated SD (a two-sided test at `level`: 1 − ALPHA/m for the
    first of m Holm-adjusted comparisons), and the interval it has because that SD is estimated (the SD's
    95% χ² interval carried through): {"value", "low", "high", "n", "level"}; None for n < 2 or no SD."""
    if sd is None or n < 2:
        return None
    low, high = sd_interval(sd, n)
    return {
        "value": detectable_difference(sd, n, level),
        "low": detectable_difference(low, n, level),
        "high": detectable_difference(high, n, level),
        "n": n,
        "level": level,
    }


def units_needed(difference: float, sd: float, level: float = LEVEL, power: float = POWER, most: int = 100_000) -> int:
    """How many paired units (seeds, or held-out prompts) detect `difference` with `power`: the least n with
    detectable_difference(sd, n) ≤ difference (`most` when none up to it does)."""
    if difference <= 0:
        return most
    if sd == 0:
        return 2
    low, high = 2, 2
    while detectable_difference(sd, high, level, power) > difference:
        if high >= most:
            return most
        low, high = high, min(high * 2, most)
    while low < high:  # the least n in [low, high] that detects it (detectable falls as n grows)
        middle = (low + high) // 2
        if detectable_difference(sd, middle, level, power) > difference:
            low = middle + 1
        else:
            high = middle
    return high


def units_needed_with_interval(
    difference: float, sd: float | None, n: int, level: float = LEVEL, most: int = 100_000
) -> dict | None:
    """Units that detect `difference` at `level`, at the estimated SD and at either end of its χ² interval:
    {"difference", "value", "low", "high"}; None without an SD."""
    if sd is None or n < 2:
        return None
    low, high = sd_interval(sd, n)
    return {
        "difference": difference,
        "value": units_needed(difference, sd, level, most=most),
        "low": units_needed(difference, low, level, most=most),
        "high": units_needed(difference, high, level, most=most),
    }
