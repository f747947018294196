import math
import random

import pytest

from rlhf_recipes.config.schema import Preferences
from rlhf_recipes.labeling.pairs import candidate_pairs, label_pairs, prefers_first
from rlhf_recipes.metrics import sigmoid


def test_best_vs_worst_pairs_the_extremes():
    assert candidate_pairs([0.1, 0.9, 0.5], "best_vs_worst", 0.0, random.Random(0)) == [(1, 0)]


def test_best_vs_worst_with_k_pairs_nests_the_ranks():
    """Scores by rank 1st (index 3), 2nd (0), 3rd (4), ..., last (1): the k best against the k worst."""
    scores = [0.8, -0.9, 0.0, 0.95, 0.5, -0.5]
    pairs = [(3, 1), (0, 5), (4, 2)]
    for k in (1, 2, 3):
        assert candidate_pairs(scores, "best_vs_worst", 0.0, random.Random(0), per_prompt=k) == pairs[:k]


def test_ranked_pairs_drop_a_response_paired_with_itself_or_an_equal():
    assert candidate_pairs([2.0, 1.0, 1.0, 0.0], "best_vs_worst", 0.0, random.Random(0), per_prompt=2) == [(0, 3)]


def test_label_pairs_counts_the_ranked_pairs_it_could_not_make_as_ties():
    groups = [{"prompt": "p", "responses": ["a", "b", "c", "d"], "scores": [2.0, 1.0, 1.0, 0.0]}]
    rows, ties = label_pairs(groups, Preferences(pairs_per_prompt=2), seed=0)
    assert [(row["chosen"], row["rejected"]) for row in rows] == [("a", "d")] and ties == 1


def test_all_pairs_put_the_better_response_first_and_drop_ties():
    """Scores (0.2, 0.5, 0.5): pairs (0,1), (0,2), (1,2); (1,2) is a tie."""
    assert candidate_pairs([0.2, 0.5, 0.5], "all", 0.0, random.Random(0)) == [(1, 0), (2, 0)]


def test_tie_margin_drops_close_pairs():
    assert candidate_pairs([0.0, 0.05, 1.0], "all", 0.1, random.Random(0)) == [(2, 0), (2, 1)]


def test_all_equal_scores_give_no_pairs():
    for pairing in ("best_vs_worst", "random", "all"):
        assert candidate_pairs([0.3, 0.3, 0.3, 0.3], pairing, 0.0, random.Random(0)) == []


def test_random_pairs_are_disjoint_and_cover_k_over_2():
    pairs = candidate_pairs([0.0, 1.0, 2.0, 3.0, 4.0], "random", 0.0, random.Random(3))
    used = [index for pair in pairs for index in pair]
    assert len(pairs) == 2 and len(set(used)) == 4


def test_noise_free_labels_follow_the_higher_score():
    config = Preferences()
    rng = random.Random(0)
    assert prefers_first(1.0, 0.0, config, rng) and not prefers_first(0.0, 1.0, config, rng)


def test_flip_probability_matches_its_rate():
    """With label_flip_prob 0.2, 20000 labels flip 0.2 of the time; 4 standard errors is 0.0113."""
    config = Preferences(label_flip_prob=0.2)
    rng = random.Random(0)
    flipped = sum(not prefers_first(1.0, 0.0, config, rng) for _ in range(20000)) / 20000
    assert flipped == pytest.approx(0.2, abs=4 * math.sqrt(0.2 * 0.8 / 20000))


def test_bradley_terry_labels_win_with_sigmoid_of_the_scaled_gap():
    """Gap 1.0 at temperature 0.5: P(a > b) = sigmoid(2) = 1 / (1 + e^-2) = 0.8808."""
    config = Preferences(bradley_terry_temperature=0.5)
    rng = random.Random(0)
    wins = sum(prefers_first(1.0, 0.0, config, rng) for _ in range(20000)) / 20000
    assert sigmoid(2.0) == pytest.approx(0.8808, abs=1e-4)
    assert wins == pytest.approx(0.8808, abs=4 * math.sqrt(0.8808 * 0.1192 / 20000))


def test_label_pairs_rows_are_trl_preference_format():
    groups = [{"prompt": "p", "responses": ["bad", "ok", "good"], "scores": [-1.0, 0.0, 1.0], "gold": [0.0, 0.5, 0.3]}]
    rows, ties = label_pairs(groups, Preferences(pairing="best_vs_worst"), seed=0)
    assert ties == 0
    assert rows == [
        {
            "prompt": "p",
            "chosen": "good",
            "rejected": "bad",
            "chosen_score": 1.0,
            "rejected_score": -1.0,
            "chosen_gold": 0.3,
            "rejected_gold": 0.0,
            "noise_free": True,
        }
    ]


def test_label_pairs_counts_ties_and_marks_flipped_labels():
    groups = [{"prompt": "p", "responses": ["a", "b", "c"], "scores": [0.0, 0.0, 1.0]}] * 200
    rows, ties = label_pairs(groups, Preferences(pairing="all", label_flip_prob=0.3), seed=0)
    assert ties == 200  # the (a, b) tie of every prompt
    flipped = [row for row in rows if not row["noise_free"]]
    assert all(row["chosen_score"] < row["rejected_score"] for row in flipped)
    assert len(flipped) / len(rows) == pytest.approx(0.3, abs=0.05)


def test_label_pairs_is_reproducible():
    groups = [
        {"prompt": str(i), "responses": list("abcd"), "scores": [random.random() for _ in range(4)]} for i in range(50)
    ]
    config = Preferences(pairing="random", bradley_terry_temperature=0.3, label_flip_prob=0.1)
    assert label_pairs(groups, config, seed=7) == label_pairs(groups, config, seed=7)
