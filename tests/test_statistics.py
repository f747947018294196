"""The statistics of a verdict, checked against known answers: intervals cover the truth about 95% of the
time, a paired test between equal methods is wrong about 5% of the time, fits recover known coefficients,
and the over-optimization flag needs evidence. Simulations use a fixed generator, so they are exact
repeatable checks; their tolerances are four binomial standard deviations, so a correct implementation
passes them for any generator state, and an interval built with z instead of t (or unpaired instead of
paired) fails them."""

import math
import random

import pytest

from rlhf_recipes.reporting.statistics import (
    DID_NOT_MOVE,
    FINE,
    INCONCLUSIVE,
    OVEROPTIMIZED,
    Interval,
    at_budget,
    detectable_difference,
    fit_overoptimization,
    overoptimization_state,
    paired_difference,
    t_interval,
    units_needed,
    unpaired_difference,
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


def test_pairing_detects_what_an_unpaired_comparison_cannot():
    rng = random.Random(2)
    seeds = [rng.gauss(0.0, 1.0) for _ in range(5)]
    first = [s + 0.2 + rng.gauss(0, 0.02) for s in seeds]
    second = [s + rng.gauss(0, 0.02) for s in seeds]
    assert paired_difference(first, second).low > 0
    unpaired = unpaired_difference(
        (t_interval(first).mean, t_interval(first).sd, 5), (t_interval(second).mean, t_interval(second).sd, 5)
    )
    assert unpaired.low < 0 < unpaired.high


def test_welch_intervals_cover_95_percent_with_unequal_variances():
    rng = random.Random(3)
    covered = 0
    for _ in range(REPETITIONS):
        a = [rng.gauss(1.0, 0.5) for _ in range(8)]
        b = [rng.gauss(0.0, 2.0) for _ in range(20)]
        ia, ib = t_interval(a), t_interval(b)
        difference = unpaired_difference((ia.mean, ia.sd, 8), (ib.mean, ib.sd, 20))
        covered += difference.low <= 1.0 <= difference.high
    assert abs(covered / REPETITIONS - 0.95) < TOLERANCE, covered / REPETITIONS


def test_verdicts_name_a_winner_only_when_the_interval_excludes_zero():
    assert verdict("ppo", "dpo", Interval(0.1, 0.02, 0.18, 3)) == "ppo beats dpo"
    assert verdict("ppo", "dpo", Interval(-0.1, -0.18, -0.02, 3)) == "dpo beats ppo"
    assert verdict("ppo", "dpo", Interval(0.1, -0.01, 0.21, 3)) == "not distinguishable with 3 seeds"
    assert verdict("ppo", "dpo", Interval(0.1, None, None, 1)) == "not distinguishable with 1 seed (no interval)"


def test_frontiers_are_read_by_linear_interpolation_and_never_extrapolated():
    points = [(0.0, 0.1), (2.0, 0.5), (6.0, 0.3)]
    assert at_budget(points, 1.0) == pytest.approx(0.3)
    assert at_budget(points, 4.0) == pytest.approx(0.4)
    assert at_budget(points, 6.0) == pytest.approx(0.3)
    assert at_budget(points, 8.0) is None
    assert at_budget([(2.0, 0.5), (0.0, 0.1)], 2.0) == pytest.approx(0.5), "order of points does not matter"


@pytest.mark.parametrize(("form", "alpha", "beta"), [("rl", 0.5, 0.2), ("best_of_n", 0.4, 0.1)])
def test_gao_forms_recover_known_coefficients_and_peak(form, alpha, beta):
    rng = random.Random(4)
    kls = [0.25 * i for i in range(1, 40)]

    def gain(d):
        return d * (alpha - beta * (d if form == "best_of_n" else math.log(d)))

    gains = [gain(math.sqrt(k)) + rng.gauss(0, 0.005) for k in kls]
    fit = fit_overoptimization(kls, gains, form)
    assert fit.alpha == pytest.approx(alpha, abs=0.02) and fit.beta == pytest.approx(beta, abs=0.02)
    peak_d = alpha / (2 * beta) if form == "best_of_n" else math.exp(alpha / beta - 1)
    assert fit.peak_kl == pytest.approx(peak_d**2, rel=0.15)
    assert fit.r_squared > 0.95


def test_a_fit_needs_three_distinct_kls_and_reports_no_peak_while_gold_still_rises():
    assert fit_overoptimization([1.0, 1.0, 4.0], [0.1, 0.1, 0.3], "rl") is None
    rising = fit_overoptimization([1.0, 4.0, 9.0, 16.0], [0.1, 0.2, 0.3, 0.4], "best_of_n")
    assert rising.beta <= 0 and rising.peak_kl is None


def test_detectable_difference_and_units_needed_agree_with_a_paired_power_simulation():
    sd, n = 1.0, 12
    difference = detectable_difference(sd, n)
    rng = random.Random(5)
    found = sum(
        paired_difference([rng.gauss(difference, sd) for _ in range(n)], [0.0] * n).low > 0 for _ in range(REPETITIONS)
    )
    assert abs(found / REPETITIONS - 0.8) < 4 * math.sqrt(0.8 * 0.2 / REPETITIONS), found / REPETITIONS
    assert units_needed(difference, sd) == n
    assert units_needed(difference / 2, sd) > 3 * n
    assert detectable_difference(sd, 1) is None


def interval(mean, half, n=5):
    return Interval(mean, mean - half, mean + half, n)


def test_moved_and_over_optimized_needs_gold_below_its_peak_while_the_learned_reward_rose_past_it():
    state, evidence = overoptimization_state(
        kl=interval(4.0, 0.5),
        learned_gain=interval(1.2, 0.2),
        gold_gain=interval(0.05, 0.1),
        peak=(interval(-0.2, 0.1), interval(0.6, 0.2)),
    )
    assert state == OVEROPTIMIZED and "below its peak" in evidence


def test_moved_and_fine_when_gold_rose_significantly():
    state, _ = overoptimization_state(interval(2.0, 0.5), interval(0.8, 0.2), interval(0.3, 0.1), None)
    assert state == FINE
    state, _ = overoptimization_state(  # below its peak, but not significantly: not flagged
        interval(4.0, 0.5), interval(1.0, 0.2), interval(0.25, 0.1), (interval(-0.05, 0.1), interval(0.3, 0.1))
    )
    assert state == FINE


def test_did_not_move_is_never_flagged():
    """The case users met: a policy that moved 0.05 nats, learned reward up a little, gold flat."""
    state, _ = overoptimization_state(
        kl=interval(0.05, 0.08), learned_gain=interval(0.04, 0.06), gold_gain=interval(-0.01, 0.05), peak=None
    )
    assert state == DID_NOT_MOVE
    state, _ = overoptimization_state(  # gold even fell significantly, but nothing moved the policy
        interval(0.02, 0.05), interval(-0.01, 0.05), interval(-0.2, 0.1), (interval(-0.2, 0.1), interval(-0.01, 0.05))
    )
    assert state == DID_NOT_MOVE


def test_too_little_data_is_inconclusive():
    one = Interval(0.3, None, None, 1)
    state, evidence = overoptimization_state(one, one, one, (one, one))
    assert state == INCONCLUSIVE and "too little data" in evidence
    state, evidence = overoptimization_state(  # moved, gold neither rose nor fell significantly
        interval(3.0, 0.5), interval(0.9, 0.2), interval(0.05, 0.1), None
    )
    assert state == INCONCLUSIVE and "cannot tell" in evidence
