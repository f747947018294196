"""The arithmetic of evaluation, kept apart from models so that tests can check it by hand."""

import math
import statistics
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); 0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def win_tie_loss(policy: Sequence[float], reference: Sequence[float], tie_margin: float = 0.0) -> tuple[int, int, int]:
    """Paired comparison by gold score: response i of the policy against response i of the reference.

    A difference of at most tie_margin is a tie.
    """
    wins = sum(p - r > tie_margin for p, r in zip(policy, reference, strict=True))
    losses = sum(r - p > tie_margin for p, r in zip(policy, reference, strict=True))
    return wins, len(policy) - wins - losses, losses


def win_rate(wins: int, ties: int, losses: int) -> float:
    """(wins + ties / 2) / comparisons: a tie counts half, as in AlpacaEval; 0.5 means no better, no worse."""
    return (wins + 0.5 * ties) / (wins + ties + losses)


def kl_estimates(policy_logprobs: Sequence[float], reference_logprobs: Sequence[float]) -> list[float]:
    """Per-response k1 estimate of KL(policy || reference) for responses sampled from the policy:

    log pi(y|x) - log pi_ref(y|x), summed over the response's tokens. Its mean over samples is an
    unbiased estimate of the sequence-level KL; single values can be negative.
    """
    return [p - r for p, r in zip(policy_logprobs, reference_logprobs, strict=True)]


def best_of_n_kl_bound(n: int) -> float:
    """KL(best-of-n || reference) <= log n - (n - 1) / n (Stiennon et al. 2020; exact for distinct samples)."""
    return math.log(n) - (n - 1) / n


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams, pooled across `texts` (whitespace tokens); 0 if there are none."""
    grams = [tuple(words[i : i + n]) for words in (text.split() for text in texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def label_agreement_probability(gap: float, flip_prob: float, bradley_terry_temperature: float | None) -> float:
    """P(the simulated label prefers the response with the higher gold score), for a gold gap > 0.

    Bradley-Terry draws it with p = sigmoid(gap / T) (p = 1 without BT); a flip with probability f
    then gives p (1 - f) + (1 - p) f.
    """
    p = 1.0 if bradley_terry_temperature is None else sigmoid(abs(gap) / bradley_terry_temperature)
    return p * (1 - flip_prob) + (1 - p) * flip_prob


def bayes_accuracy(gaps: Sequence[float], flip_prob: float, bradley_terry_temperature: float | None) -> float:
    """The best accuracy any predictor can reach against the noisy labels of pairs with these gold gaps.

    The Bayes-optimal predictor picks the more likely label, the gold-preferred one (its probability
    is >= 1/2 since flip_prob < 1/2), so the ceiling is the mean of label_agreement_probability.
    """
    return mean([label_agreement_probability(g, flip_prob, bradley_terry_temperature) for g in gaps])


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks starting at 1; tied values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            result[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return result


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    return statistics.correlation(x, y)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson correlation of the ranks."""
    return pearson(ranks(x), ranks(y))


def r_squared(x: Sequence[float], y: Sequence[float]) -> float:
    """Fraction of the variance of y a least-squares line in x explains (the squared Pearson correlation)."""
    return pearson(x, y) ** 2


def standardized_gain(values: Sequence[float], reference: Sequence[float]) -> float:
    """(mean(values) - mean(reference)) / std(reference): an improvement in reference standard deviations."""
    spread = std(reference)
    return (mean(values) - mean(reference)) / spread if spread > 0 else 0.0


def pair_accuracies(
    margins: Sequence[float], chosen_gold: Sequence[float], rejected_gold: Sequence[float], noise_free: Sequence[bool]
) -> dict:
    """How often a scorer ranks preference pairs as each judge does.

    margins: score(chosen) - score(rejected) per pair (> 0: the scorer prefers the chosen response).
    vs_labels: against the (noisy) labels trained on; vs_proxy: against the labeler before noise
    (the label, unless noise flipped it); vs_gold: against the gold labeler, over the pairs whose gold
    scores differ.
    """
    prefers = [m > 0 for m in margins]
    gold_pairs = [(p, c > r) for p, c, r in zip(prefers, chosen_gold, rejected_gold, strict=True) if c != r]
    return {
        "vs_gold": mean([p == g for p, g in gold_pairs]) if gold_pairs else float("nan"),
        "vs_proxy": mean([p == f for p, f in zip(prefers, noise_free, strict=True)]),
        "vs_labels": mean(prefers),
        "pairs": len(prefers),
        "gold_pairs": len(gold_pairs),
    }
