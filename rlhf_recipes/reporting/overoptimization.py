"""Over-optimization: the flag (is gold significantly below a point named in advance while the learned
reward rose past it?) and Gao et al. (2022)'s fitted forms, with intervals from resampling replicates.

The flag's null hypothesis is "not over-optimized": gold did not fall from the comparison point, or the
learned reward did not rise past it. It is rejected only when both one-sided tests reject (an
intersection-union test, whose size is that of its parts), each at ALPHA / m for the m comparisons made
(Bonferroni), so the chance of any false flag per method family or training curve is at most ALPHA.
The comparison points are fixed before gold is looked at: the next lower setting of a family's knob (by
KL), the reference, or a training curve's first and middle checkpoints.
"""

import math
from dataclasses import dataclass

from .statistics import ALPHA, LEVEL, Interval

# The states of the flag, each with the evidence it needs.
OVEROPTIMIZED, FINE, INCONCLUSIVE, DID_NOT_MOVE = "over-optimized", "fine", "inconclusive", "did not move"
MIN_KL_MOVEMENT = 0.1  # nats: a policy, or a step between comparison points, that moves less is never flagged
RESAMPLES = 1000  # bootstrap resamples of replicates behind a fit's intervals
MIN_REPLICATES_FOR_INTERVALS = 3  # fewer replicates resample into too few distinct sets to mean anything


@dataclass(frozen=True)
class Comparison:
    """A policy against one comparison point, each an interval of (policy − point), paired by unit."""

    point: str
    kl: Interval
    learned: Interval
    gold: Interval


def moved(kl: Interval) -> bool:
    """Did the KL rise significantly (interval above 0), and by at least MIN_KL_MOVEMENT on average?"""
    return kl.low is not None and kl.low > 0 and kl.mean >= MIN_KL_MOVEMENT


def overoptimization_state(
    kl: Interval, learned_gain: Interval, gold_gain: Interval, comparisons: list[Comparison], tests: int | None = None
) -> tuple[str, str]:
    """(state, evidence) of one policy.

    kl, learned_gain, gold_gain: its KL and its learned-reward and gold gains over the reference (the
    policy is *did not move* when its KL did not move (`moved`) and its learned reward did not rise
    significantly); comparisons: against each point
    named in advance (policy − point); tests: the comparisons that share the error budget (default: these;
    a method family's flags share one). Over-optimized: moved past some point (`moved`: significantly, and by
    MIN_KL_MOVEMENT on average),
    gold is below it and the learned reward above it, each one-sided at ALPHA / tests; so a policy that
    did not move MIN_KL_MOVEMENT past a point is never flagged against it."""
    if kl.low is None or gold_gain.low is None:
        return INCONCLUSIVE, f"too little data ({kl.n} unit{'s' if kl.n != 1 else ''}): no interval"
    if not moved(kl) and not (learned_gain.low is not None and learned_gain.low > 0):
        return DID_NOT_MOVE, (
            f"KL {kl.mean:.3f} [{kl.low:.3f}, {kl.high:.3f}] not significantly {MIN_KL_MOVEMENT} nats, and the "
            "learned reward did not rise significantly"
        )
    tests = tests or max(len(comparisons), 1)
    alpha = ALPHA / tests
    for c in comparisons:
        if c.gold.sd is None or not moved(c.kl):
            continue
        gold_high, learned_low = c.gold.bound(alpha, "upper"), c.learned.bound(alpha, "lower")
        if gold_high < 0 and learned_low > 0:
            return OVEROPTIMIZED, (
                f"gold {c.gold.mean:+.3f} (at most {gold_high:+.3f}) against {c.point} while the learned reward "
                f"rose {c.learned.mean:+.3f} (at least {learned_low:+.3f}) and KL {c.kl.mean:+.2f}; one-sided "
                f"bounds at {alpha:.3g} each ({tests} comparison{'s' if tests > 1 else ''})"
            )
    if gold_gain.low > 0:
        others = [c.point for c in comparisons if c.point not in ("reference", "the reference")]
        return (
            FINE,
            f"gold rose {gold_gain.mean:+.3f} [{gold_gain.low:+.3f}, {gold_gain.high:+.3f}] over the reference"
            + (f", not significantly below {', '.join(others)}" if others else ""),
        )
    return INCONCLUSIVE, (
        f"it moved, but gold ({gold_gain.mean:+.3f} [{gold_gain.low:+.3f}, {gold_gain.high:+.3f}] over the reference) "
        "neither rose nor fell significantly: these data cannot tell"
    )


FORMS = {"best_of_n": "d(α − βd)", "rl": "d(α − β ln d)"}


def design(kls, form: str):
    """The fit's two columns for KLs > 0, d = √KL: (d, −d²) for best-of-N, (d, −d ln d) for RL."""
    import numpy as np

    d = np.sqrt(np.asarray(kls, dtype=float))
    return np.stack([d, -(d * d if form == "best_of_n" else d * np.log(d))], axis=-1)


def log_peak_kl(alpha, beta, form: str):
    """ln of the KL where the fitted gain peaks (numpy arrays in, arrays out): best-of-N at d* = α/(2β),
    RL at d* = exp(α/β − 1); +inf where β ≤ 0 (still rising), −inf where the peak is at d ≤ 0. Computed
    in logs so that no exponential overflows."""
    import numpy as np

    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if form == "best_of_n":
            ratio = alpha / (2 * beta)
            inside = np.where(ratio > 0, 2 * np.log(np.where(ratio > 0, ratio, 1.0)), -np.inf)
        else:
            inside = 2 * (alpha / beta - 1)
    return np.where(beta > 0, inside, np.inf)


def fit_overoptimization(points_by_replicate: list[list[tuple[float, float]]], form: str) -> dict | None:
    """Gao et al.'s form fitted by least squares to every replicate's (KL, gold gain) points: best-of-N
    gain = d(α − βd), RL gain = d(α − β ln d), d = √KL; linear in α and β. With percentile intervals
    (LEVEL) for α, β and the peak KL from RESAMPLES bootstrap resamples of whole replicates (3 or more).
    A peak beyond the largest KL measured is reported as such, never as a number; None with fewer than
    three distinct positive KLs."""
    import numpy as np

    rows = [[(kl, gain) for kl, gain in points if kl > 0] for points in points_by_replicate]
    kls = [kl for points in rows for kl, _ in points]
    if len({round(math.sqrt(kl), 9) for kl in kls}) < 3:
        return None
    largest = max(kls)
    # per replicate: X'X (2×2) and X'y (2), so a resample's fit is a sum of these and one 2×2 solve
    columns = [design([kl for kl, _ in points], form).reshape(-1, 2) for points in rows]
    gram = np.stack([x.T @ x for x in columns])
    moment = np.stack([x.T @ np.array([gain for _, gain in points]) for x, points in zip(columns, rows, strict=True)])
    alpha, beta = np.linalg.lstsq(gram.sum(0), moment.sum(0), rcond=None)[0]
    x, y = design(kls, form), np.array([g for p in rows for _, g in p])
    residual, total = y - x @ np.array([alpha, beta]), float(((y - y.mean()) ** 2).sum())
    fit = {
        "form": form,
        "alpha": float(alpha),
        "beta": float(beta),
        "points": len(kls),
        "r_squared": 1 - float((residual**2).sum()) / total if total > 0 else 0.0,
        "largest_kl": largest,
        **peak_fields(float(log_peak_kl(alpha, beta, form)), largest),
        "intervals": None,
    }
    if len(rows) >= MIN_REPLICATES_FOR_INTERVALS:
        fit["intervals"] = bootstrap_intervals(gram, moment, form, largest)
    return fit


def peak_fields(log_peak: float, largest: float) -> dict:
    """The peak as reported: a KL within the data, or "beyond the largest KL measured" (None as a number)."""
    if log_peak > math.log(largest):
        return {"peak_kl": None, "peak": "beyond the largest KL measured" if math.isfinite(log_peak) else "none"}
    return {"peak_kl": math.exp(log_peak) if math.isfinite(log_peak) else 0.0, "peak": "within"}


def bootstrap_intervals(gram, moment, form: str, largest: float) -> dict:
    """Percentile intervals of α, β and the peak KL over resamples of whole replicates (a fixed generator:
    the same study gives the same intervals). A peak KL bound beyond the data is None."""
    import numpy as np

    rng = np.random.default_rng(0)
    counts = rng.multinomial(len(gram), [1 / len(gram)] * len(gram), size=RESAMPLES)  # (B, replicates)
    a, b = np.einsum("br,rij->bij", counts, gram), np.einsum("br,ri->bi", counts, moment)
    solvable = np.abs(np.linalg.det(a)) > 1e-12 * np.abs(a).max(axis=(1, 2)) ** 2
    coefficients = np.linalg.solve(a[solvable], b[solvable][..., None])[..., 0]
    tails = [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2]
    alpha_ci, beta_ci = (np.percentile(coefficients[:, i], tails, method="inverted_cdf") for i in (0, 1))
    logs = np.clip(log_peak_kl(coefficients[:, 0], coefficients[:, 1], form), -1e6, 1e6)  # ±inf sort as extremes
    peaks = np.percentile(logs, tails, method="inverted_cdf")  # a resampled value, never one between them
    bounds = [None if p > math.log(largest) else math.exp(max(p, -700.0)) for p in peaks]
    return {
        "alpha": [float(v) for v in alpha_ci],
        "beta": [float(v) for v in beta_ci],
        "peak_kl": bounds,
        "resamples": int(solvable.sum()),
    }
