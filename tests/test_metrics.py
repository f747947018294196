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


def test_best_of_n_kl_bound_by_hand():
    """log N - (N - 1)/N: N=1 gives 0; N=2: 0.6931 - 0.5 = 0.1931; N=4: 1.3863 - 0.75 = 0.6363."""
    from rlhf_recipes.metrics import best_of_n_kl_bound

    assert best_of_n_kl_bound(1) == 0.0
    assert best_of_n_kl_bound(2) == pytest.approx(0.1931, abs=1e-4)
    assert best_of_n_kl_bound(4) == pytest.approx(0.6363, abs=1e-4)


def test_bayes_accuracy_of_flip_noise_is_one_minus_the_flip_probability():
    """Flip noise alone: the label keeps the gold order with probability 1 - eps whatever the gap."""
    from rlhf_recipes.metrics import bayes_accuracy

    assert bayes_accuracy([0.01, 0.5, 3.0], flip_prob=0.2, bradley_terry_temperature=None) == pytest.approx(0.8)
    assert bayes_accuracy([0.7], flip_prob=0.0, bradley_terry_temperature=None) == 1.0


def test_bayes_accuracy_of_bradley_terry_noise_by_hand():
    """T = 0.5, gaps 1 and 0.5: sigma(2) = 0.8808 and sigma(1) = 0.7311, mean 0.8059.
    With a flip of 0.1 on gap 1: 0.8808 * 0.9 + 0.1192 * 0.1 = 0.8046."""
    from rlhf_recipes.metrics import bayes_accuracy

    assert bayes_accuracy([1.0, 0.5], 0.0, 0.5) == pytest.approx((0.880797 + 0.731059) / 2, abs=1e-5)
    assert bayes_accuracy([1.0], 0.1, 0.5) == pytest.approx(0.880797 * 0.9 + 0.119203 * 0.1, abs=1e-5)


def test_distinct_n_by_hand():
    """'a b a' and 'a c': unigrams a b a a c, 3 distinct of 5; bigrams (a b) (b a) (a c), 3 of 3."""
    from rlhf_recipes.metrics import distinct_n

    assert distinct_n(["a b a", "a c"], 1) == pytest.approx(0.6)
    assert distinct_n(["a b a", "a c"], 2) == 1.0
    assert distinct_n(["", "x"], 2) == 0.0


def test_rank_correlations_and_r_squared():
    """Ranks of (10, 20, 20, 40) are (1, 2.5, 2.5, 4). A monotone map has Spearman 1; y = 2x + 1 has R^2 = 1."""
    from rlhf_recipes.metrics import r_squared, ranks, spearman

    assert ranks([10, 20, 20, 40]) == [1, 2.5, 2.5, 4]
    assert spearman([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert r_squared([1, 2, 3, 4], [3, 5, 7, 9]) == pytest.approx(1.0)


def test_standardized_gain_by_hand():
    """Reference (0, 2): mean 1, s = 1.4142; a policy with mean 2 gains (2 - 1)/1.4142 = 0.7071 SD."""
    from rlhf_recipes.metrics import standardized_gain

    assert standardized_gain([2, 2], [0, 2]) == pytest.approx(0.7071, abs=1e-4)


def test_pair_accuracies_against_each_judge():
    """Margins (+1, -1, +1): the scorer prefers chosen, rejected, chosen. Labels: 2/3 agree. Pair 2's label
    was flipped by noise, so before noise the scorer is right on all 3. Gold ties on pair 3 and is left out:
    gold prefers chosen on pair 1 (right) and rejected on pair 2 (right): 2/2."""
    from rlhf_recipes.metrics import pair_accuracies

    result = pair_accuracies(
        [1.0, -1.0, 1.0], chosen_gold=[0.9, 0.1, 0.5], rejected_gold=[0.2, 0.3, 0.5], noise_free=[True, False, True]
    )
    assert result == {"vs_gold": 1.0, "vs_proxy": 1.0, "vs_labels": pytest.approx(2 / 3), "pairs": 3, "gold_pairs": 2}
