"""The statistics of a verdict, checked against known answers: intervals cover the truth about 95% of the
time, a paired test between equal methods is wrong about 5% of the time, fits recover known coefficients,
and the over-optimization flag needs evidence. Simulations use a fixed generator, so they are exact
repeatable checks; their tolerances are four binomial standard deviations, so a correct implementation
passes them for any generator state, and an interval built with z instead of t (or unpaired instead of
paired) fails them."""

import math
import random

import pytest

from rlhf_recipes.reporting.overoptimization import (
    DID_NOT_MOVE,
    FINE,
    INCONCLUSIVE,
    OVEROPTIMIZED,
    Comparison,
    fit_overoptimization,
    overoptimization_state,
)
from rlhf_recipes.reporting.statistics import (
    Interval,
    at_budget,
    detectable_difference,
    detectable_with_interval,
    holm,
    paired_difference,
    t_interval,
    units_needed,
    verdict,
)

REPETITIONS = 4000
TOLERANCE = 4 * math.sqrt(0.05 * 0.95 / REPETITIONS)  # 0.0138


@pytest.mark.parametrize("n", [3, 5, 30])
def test_t_intervals_cover_a_known_mean_95_percent_of_the_time(n):
    rng = random.Random(n)
    truth = 0.7
    covered = 0
    for _ in range(REPETITIONS):
        interval = t_interval([rng.gauss(truth, 2.0) for _ in range(n)])
        covered += interval.low <= truth <= interval.high
    assert abs(covered / REPETITIONS - 0.95) < TOLERANCE, covered / REPETITIONS


def test_a_normal_quantile_would_undercover_with_three_seeds():
    """The test above can fail: with n = 3, mean ± 1.96·s/√n covers only about 81%."""
    rng = random.Random(0)
    covered = 0
    for _ in range(REPETITIONS):
        values = [rng.gauss(0.0, 1.0) for _ in range(3)]
        interval = t_interval(values)
        half = 1.96 * (interval.high - interval.mean) / 4.303  # the t quantile for 2 degrees of freedom is 4.303
        covered += abs(interval.mean) <= half
    assert covered / REPETITIONS < 0.95 - TOLERANCE


def test_paired_differences_of_equal_methods_are_called_different_5_percent_of_the_time():
    """Two methods with the same mean, each seed shifting both by a large shared amount (its data and reward
    model): the paired interval excludes zero in about 5% of experiments."""
    rng = random.Random(1)
    false_positives = 0
    for _ in range(REPETITIONS):
        seeds = [rng.gauss(0.0, 1.0) for _ in range(5)]  # shared by both methods on a seed
        first = [s + rng.gauss(0.3, 0.1) for s in seeds]
        second = [s + rng.gauss(0.3, 0.1) for s in seeds]
        false_positives += paired_difference(first, second).excludes_zero()
    assert abs(false_positives / REPETITIONS - 0.05) < TOLERANCE, false_positives / REPETITIONS


def test_verdicts_name_a_winner_only_when_the_adjusted_test_decides():
    decided = Interval(0.1, 0.02, 0.18, 3, 0.03)
    assert verdict("ppo", "dpo", decided, True) == "ppo beats dpo"
    assert verdict("ppo", "dpo", Interval(-0.1, -0.18, -0.02, 3, 0.03), True) == "dpo beats ppo"
    assert verdict("ppo", "dpo", decided, False) == "not distinguishable with 3 seeds", (
        "raw interval excludes 0, Holm not"
    )
    assert verdict("ppo", "dpo", Interval(0.1, None, None, 1), False) == "not distinguishable with 1 seed (no interval)"


def test_holm_steps_down_from_the_smallest_p():
    """m = 4 at 5%: thresholds 0.0125, 0.0167, 0.025, 0.05 for the sorted p. 0.01 ≤ 0.0125 and 0.015 ≤ 0.0167
    reject; 0.03 > 0.025 stops, so 0.04 (below 0.05 on its own) is not rejected either."""
    assert holm([0.04, 0.01, 0.03, 0.015]) == [False, True, False, True]
    assert holm([0.04, None]) == [True, False], "no test: not counted in m"
    assert holm([]) == []


def test_p_values_agree_with_the_interval():
    """A 95% interval excludes 0 exactly when the two-sided p is below 0.05."""
    rng = random.Random(5)
    for _ in range(200):
        interval = t_interval([rng.gauss(0.5, 1.0) for _ in range(4)])
        assert (interval.p_value() < 0.05) == interval.excludes_zero()


def test_frontiers_are_read_along_gaos_curve_between_bracketing_points_and_never_extrapolated():
    """One point and the reference: linear in √KL, (0, 0.1) to (4, 0.5) read at KL 1 (√ = 1, half way to 2)
    is 0.3 (linearly in KL, a quarter of the way: 0.2). More points: the curve d(α − β ln d) through the
    bracketing pair (or, from the reference, the next two), so gold of that form reads exactly on a grid
    of 3 and 9 as on 0.5, 1, 2, 4, 8 (the grid bias the review measured was 0.159 linear in KL)."""
    assert at_budget([(0.0, 0.1), (4.0, 0.5)], 1.0) == pytest.approx(0.3)
    assert at_budget([(0.0, 0.1), (4.0, 0.5)], 4.0) == pytest.approx(0.5)
    assert at_budget([(0.0, 0.1), (4.0, 0.5)], 4.5) is None
    assert at_budget([(4.0, 0.5), (0.0, 0.1)], 1.0) == pytest.approx(0.3), "order of points does not matter"

    def gold(kl):
        d = math.sqrt(kl)
        return 0.1 + (d * (0.3 - 0.1 * math.log(d)) if d else 0.0)

    sparse, dense = ([(kl, gold(kl)) for kl in (0, *grid)] for grid in ((3, 9), (0.5, 1, 2, 4, 8)))
    for budget in (1, 2, 4, 8):
        assert at_budget(sparse, budget) == pytest.approx(gold(budget)) == at_budget(dense, budget)
    assert at_budget(sparse, 1, "best_of_n") != pytest.approx(gold(1)), "the form is the family's"


def test_a_read_never_leaves_the_range_of_the_points_it_lies_between():
    """Two PPO settings of a SmolLM2 study's seed landed at 0.957 and 0.986 nats with gold 0.295 and 0.235:
    the curve through them and the reference read 1.2 at 0.5 nats, beyond gold's scale (it ends at 1). A
    read outside its bracket is read linearly in √KL between the bracketing points instead."""
    points = [(0.0, 0.111), (0.986, 0.235), (0.957, 0.295)]
    read = at_budget(points, 0.5)
    assert 0.111 <= read <= 0.295
    assert read == pytest.approx(0.111 + (0.295 - 0.111) * math.sqrt(0.5) / math.sqrt(0.957))
    between = [(0.0, 0.1), (1.0, 0.2), (1.1, 0.6), (1.2, 0.1)]  # between two settings, not from the reference
    assert 0.2 <= at_budget(between, 1.05) <= 0.6


@pytest.mark.parametrize(("form", "alpha", "beta"), [("rl", 0.5, 0.2), ("best_of_n", 0.4, 0.1)])
def test_gao_forms_recover_known_coefficients_and_peak_with_intervals(form, alpha, beta):
    rng = random.Random(4)
    kls = [0.6 * i for i in range(1, 45)]  # to KL 26, past both peaks (KL 20 and 4)

    def gain(d):
        return d * (alpha - beta * (d if form == "best_of_n" else math.log(d)))

    replicates = [[(k, gain(math.sqrt(k)) + rng.gauss(0, 0.02)) for k in kls] for _ in range(4)]
    fit = fit_overoptimization(replicates, form)
    assert fit["alpha"] == pytest.approx(alpha, abs=0.02) and fit["beta"] == pytest.approx(beta, abs=0.02)
    peak_d = alpha / (2 * beta) if form == "best_of_n" else math.exp(alpha / beta - 1)
    assert fit["peak"] == "within" and fit["peak_kl"] == pytest.approx(peak_d**2, rel=0.15)
    assert fit["r_squared"] > 0.9
    low, high = fit["intervals"]["alpha"]
    assert low < fit["alpha"] < high
    assert fit["intervals"]["peak_kl"][0] < peak_d**2 < fit["intervals"]["peak_kl"][1]


def test_a_fit_needs_three_distinct_kls_and_reports_no_peak_while_gold_still_rises():
    assert fit_overoptimization([[(1.0, 0.1), (1.0, 0.1), (4.0, 0.3)]], "rl") is None
    rising = fit_overoptimization([[(1.0, 0.1), (4.0, 0.2), (9.0, 0.3), (16.0, 0.4)]], "best_of_n")
    assert rising["beta"] <= 0 and rising["peak_kl"] is None and rising["peak"] == "none"
    assert rising["intervals"] is None, "one replicate: nothing to resample"


def test_a_tiny_beta_never_overflows_and_reads_beyond_the_data():
    """Regression: gains 0.3d − 0.0003·d·ln d at KL 1, 4, 9 over 3 replicates fit β ≈ 0.0003 < α/709, whose
    peak d* = exp(α/β − 1) = exp(999) overflows a float; a slightly larger β gave a peak KL of 1e85."""
    replicates = [
        [(kl, 0.3 * math.sqrt(kl) - 0.0003 * math.sqrt(kl) * math.log(math.sqrt(kl))) for kl in (1, 4, 9)]
    ] * 3
    fit = fit_overoptimization(replicates, "rl")
    assert fit["beta"] == pytest.approx(0.0003, rel=1e-3)
    assert fit["peak_kl"] is None and fit["peak"] == "beyond the largest KL measured"
    assert fit["intervals"]["peak_kl"] == [None, None]
    larger = [[(kl, 0.3 * math.sqrt(kl) - 0.0015 * math.sqrt(kl) * math.log(math.sqrt(kl))) for kl in (1, 4, 9)]] * 3
    assert fit_overoptimization(larger, "rl")["peak"] == "beyond the largest KL measured", "peak 1e85 is not a number"


def test_detectable_difference_is_exact_and_units_needed_inverts_it():
    """At the detectable difference a paired t test rejects with probability 0.80 (noncentral t, checked by
    simulation); the old approximation (t_{.975} + t_{.8})·sd/√n is smaller, so its power was below 0.80."""
    sd, n = 1.0, 5
    difference = detectable_difference(sd, n)
    rng = random.Random(6)
    rejections = sum(
        t_interval([rng.gauss(difference, sd) for _ in range(n)]).excludes_zero() for _ in range(REPETITIONS)
    )
    assert abs(rejections / REPETITIONS - 0.80) < 4 * math.sqrt(0.8 * 0.2 / REPETITIONS), rejections / REPETITIONS
    from rlhf_recipes.reporting.statistics import t_quantile

    assert difference > (t_quantile(0.975, n - 1) + t_quantile(0.8, n - 1)) * sd / math.sqrt(n)
    assert units_needed(difference, sd) == n
    assert units_needed(difference * 0.999, sd) == n + 1
    assert detectable_difference(sd, 1) is None
    assert detectable_difference(1.0, 2) == pytest.approx(11.55, abs=0.01), "one degree of freedom works too"


def test_the_detectable_difference_carries_the_uncertainty_of_its_sd():
    """With 3 replicates the SD has 2 degrees of freedom: its 95% χ² interval is 0.52 to 6.28 times the
    estimate (√(2/7.378), √(2/0.0506)), and so is the detectable difference's."""
    entry = detectable_with_interval(1.0, 3)
    assert entry["low"] / entry["value"] == pytest.approx(0.521, abs=0.002)
    assert entry["high"] / entry["value"] == pytest.approx(6.285, abs=0.01)


def interval(mean, half, n=5):
    """An interval of n values with the given 95% half width (and the SD that gives it)."""
    from rlhf_recipes.reporting.statistics import t_quantile

    sd = half * math.sqrt(n) / t_quantile(0.975, n - 1)
    return Interval(mean, mean - half, mean + half, n, sd)


def test_over_optimized_needs_gold_below_a_named_point_while_the_learned_reward_rose_past_it():
    state, evidence = overoptimization_state(
        kl=interval(4.0, 0.5),
        learned_gain=interval(1.2, 0.2),
        gold_gain=interval(0.05, 0.1),
        comparisons=[Comparison("dpo_beta_0.1", interval(2.0, 0.3), interval(0.6, 0.2), interval(-0.2, 0.05))],
    )
    assert state == OVEROPTIMIZED and "against dpo_beta_0.1" in evidence
    state, _ = overoptimization_state(  # the same, but the family made 20 comparisons: not enough evidence
        interval(4.0, 0.5),
        interval(1.2, 0.2),
        interval(0.05, 0.1),
        [Comparison("dpo_beta_0.1", interval(2.0, 0.3), interval(0.6, 0.2), interval(-0.2, 0.12))],
        tests=20,
    )
    assert state != OVEROPTIMIZED


def test_fine_when_gold_rose_significantly_and_not_below_its_point():
    state, _ = overoptimization_state(interval(2.0, 0.5), interval(0.8, 0.2), interval(0.3, 0.1), [])
    assert state == FINE
    state, _ = overoptimization_state(  # below its point, but not significantly: not flagged
        interval(4.0, 0.5),
        interval(1.0, 0.2),
        interval(0.25, 0.1),
        [Comparison("x", interval(1.0, 0.2), interval(0.3, 0.1), interval(-0.05, 0.1))],
    )
    assert state == FINE


def test_did_not_move_is_never_flagged():
    """The case users met: a policy that moved 0.05 nats, learned reward up a little, gold down."""
    c = Comparison("the reference", interval(0.05, 0.02), interval(0.04, 0.05), interval(-0.2, 0.05))
    state, _ = overoptimization_state(interval(0.05, 0.02), interval(0.04, 0.05), interval(-0.2, 0.05), [c])
    assert state == DID_NOT_MOVE
    c = Comparison("the reference", interval(0.05, 0.02), interval(0.5, 0.1), interval(-0.2, 0.05))
    state, _ = overoptimization_state(interval(0.05, 0.02), interval(0.5, 0.1), interval(-0.2, 0.05), [c])
    assert state == INCONCLUSIVE, "the learned reward rose, so it moved; but not 0.1 nats past the reference: no flag"
    far = Comparison("x", interval(0.05, 0.02), interval(0.5, 0.01), interval(-0.2, 0.05))  # moved, but not past x
    assert overoptimization_state(interval(3.0, 0.5), interval(1.0, 0.1), interval(0.1, 0.05), [far])[0] == FINE
    wide = interval(8.5, 17.0, n=3)  # one seed went far: KL not significant, but the learned reward rose
    assert overoptimization_state(wide, interval(3.7, 1.9, n=3), interval(0.65, 0.12, n=3), [])[0] == FINE


def test_too_little_data_is_inconclusive():
    one = Interval(0.3, None, None, 1)
    state, evidence = overoptimization_state(one, one, one, [Comparison("x", one, one, one)])
    assert state == INCONCLUSIVE and "too little data" in evidence
    state, evidence = overoptimization_state(interval(3.0, 0.5), interval(1.0, 0.1), interval(0.05, 0.1), [])
    assert state == INCONCLUSIVE and "cannot tell" in evidence
