"""The arithmetic of evaluation, kept apart from models so that tests can check it by hand."""

import math


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def std(values: list[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(sum((value - centre) ** 2 for value in values) / (len(values) - 1))


def win_tie_loss(policy: list[float], reference: list[float], tie_margin: float = 0.0) -> tuple[int, int, int]:
    """Paired comparison by gold score: response i of the policy against response i of the reference.

    A difference of at most tie_margin is a tie.
    """
    wins = sum(p - r > tie_margin for p, r in zip(policy, reference, strict=True))
    losses = sum(r - p > tie_margin for p, r in zip(policy, reference, strict=True))
    return wins, len(policy) - wins - losses, losses


def win_rate(wins: int, ties: int, losses: int) -> float:
    """(wins + ties / 2) / comparisons: a tie counts half, as in AlpacaEval; 0.5 means no better, no worse."""
    return (wins + 0.5 * ties) / (wins + ties + losses)


def kl_estimates(policy_logprobs: list[float], reference_logprobs: list[float]) -> list[float]:
    """Per-response k1 estimate of KL(policy || reference) for responses sampled from the policy:

    log pi(y|x) - log pi_ref(y|x), summed over the response's tokens. Its mean over samples is an
    unbiased estimate of the sequence-level KL; single values can be negative.
    """
    return [p - r for p, r in zip(policy_logprobs, reference_logprobs, strict=True)]
