import pytest

from rlhf_recipes.metrics import kl_estimates, mean, std, win_rate, win_tie_loss


def test_win_tie_loss_pairs_responses_by_position():
    """policy (0.5, 0.1, 0.3, 0.0) vs reference (0.2, 0.1, 0.4, 0.0): win, tie, loss, tie."""
    assert win_tie_loss([0.5, 0.1, 0.3, 0.0], [0.2, 0.1, 0.4, 0.0]) == (1, 2, 1)


def test_win_tie_loss_with_a_tie_margin():
    assert win_tie_loss([0.5, 0.15], [0.2, 0.1], tie_margin=0.1) == (1, 1, 0)


def test_win_rate_counts_ties_half():
    """3 wins, 2 ties, 5 losses: (3 + 1) / 10 = 0.4."""
    assert win_rate(3, 2, 5) == pytest.approx(0.4)
    assert win_rate(0, 7, 0) == 0.5


def test_kl_estimate_is_the_log_ratio_of_the_sample():
    """k1: log pi(y) - log pi_ref(y); pi(y) = 0.5, pi_ref(y) = 0.25 gives log 2."""
    import math

    assert kl_estimates([math.log(0.5)], [math.log(0.25)]) == [pytest.approx(math.log(2))]


def test_mean_and_sample_std():
    """(1, 2, 3, 4): mean 2.5; squared deviations sum to 5; 5 / 3 = 1.667; sqrt = 1.291."""
    assert mean([1, 2, 3, 4]) == 2.5
    assert std([1, 2, 3, 4]) == pytest.approx(1.2910, abs=1e-4)
    assert std([3.0]) == 0.0
