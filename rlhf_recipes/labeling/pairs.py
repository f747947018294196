"""From scored responses to preference pairs: pairing, ties, and the simulated labeler's noise."""

import random
from itertools import combinations

from ..config.schema import Preferences
from ..metrics import sigmoid
from .judge import log_odds


def candidate_pairs(
    scores: list[float], pairing: str, tie_margin: float, rng: random.Random, per_prompt: int = 1
) -> list[tuple[int, int]]:
    """Index pairs (i, j) of one prompt's responses to show the labeler; i has the higher gold score.

    scores: gold score per response of one prompt, shape (K,).
    best_vs_worst gives at most `per_prompt` pairs, the i-th best against the i-th worst (ties in score
    broken by position); random gives K // 2 disjoint pairs, all gives every pair.
    Pairs whose scores differ by tie_margin or less are ties and dropped.
    """
    order = list(range(len(scores)))
    if pairing == "best_vs_worst":
        ranked = sorted(order, key=lambda i: (-scores[i], i))  # best first; among equals, the first sampled
        worst_first = sorted(order, key=lambda i: (scores[i], i))
        pairs = [(ranked[k], worst_first[k]) for k in range(per_prompt)]
    elif pairing == "random":
        rng.shuffle(order)
        pairs = [(order[k], order[k + 1]) for k in range(0, len(order) - 1, 2)]
    else:
        pairs = list(combinations(order, 2))
    ordered = [(i, j) if scores[i] >= scores[j] else (j, i) for i, j in pairs]
    return [(i, j) for i, j in ordered if scores[i] - scores[j] > tie_margin]


def prefers_first(score_a: float, score_b: float, config: Preferences, rng: random.Random) -> bool:
    """One simulated human judgement: is response a preferred to response b?

    Without noise the higher score wins. With bradley_terry_temperature T, a wins with
    probability sigmoid((score_a - score_b) / T). Then the label is flipped with
    probability label_flip_prob. Draws from rng in a fixed order, so labels are reproducible.
    """
    if config.bradley_terry_temperature is None:
        first = score_a > score_b
    else:
        first = rng.random() < sigmoid((score_a - score_b) / config.bradley_terry_temperature)
    if config.label_flip_prob > 0 and rng.random() < config.label_flip_prob:
        first = not first
    return first


def label_pairs(groups: list[dict], config: Preferences, seed: int) -> tuple[list[dict], int]:
    """Turn each prompt's scored responses into labeled pairs in TRL's preference format.

    groups: one dict per prompt with `prompt`, `responses` (K texts), `scores` (K labeler scores,
    before noise) and `gold` (K gold scores; the same as scores unless a separate gold labeler is set).
    Returns the rows (prompt, chosen, rejected, chosen_score, rejected_score, chosen_gold,
    rejected_gold, noise_free) and the number of tied pairs dropped. noise_free is False where
    noise made the labeler prefer the response with the lower labeler score.
    """
    rng = random.Random(seed)
    rows, ties = [], 0
    for group in groups:
        scores, gold = group["scores"], group.get("gold", group["scores"])
        pairs = candidate_pairs(scores, config.pairing, config.tie_margin, rng, config.pairs_per_prompt)
        shown = {
            "best_vs_worst": config.pairs_per_prompt,
            "random": len(scores) // 2,
            "all": len(scores) * (len(scores) - 1) // 2,
        }
        ties += shown[config.pairing] - len(pairs)
        for better, worse in pairs:
            first = prefers_first(scores[better], scores[worse], config, rng)
            chosen, rejected = (better, worse) if first else (worse, better)
            rows.append(
                {
                    "prompt": group["prompt"],
                    "chosen": group["responses"][chosen],
                    "rejected": group["responses"][rejected],
                    "chosen_score": scores[chosen],
                    "rejected_score": scores[rejected],
                    "chosen_gold": gold[chosen],
                    "rejected_gold": gold[rejected],
                    "noise_free": first,
                }
            )
    return rows, ties


def judge_pairs(groups: list[dict], config: Preferences, seed: int, judge) -> tuple[list[dict], int, dict]:
    """label_pairs for a pairwise judge (labeling/judge.py): the pairs are chosen without scores (all, or
    random disjoint pairs), the judge is asked about each in both orders, and a pair is a tie when the two
    orders disagree or the judge's log-odds are within tie_margin. Noise then acts on the judge's log-odds
    as it acts on a score difference. chosen_score and rejected_score hold plus and minus half the judge's
    log-odds that the chosen response is better.

    Returns the rows, the ties and the judge's agreement with gold: over the pairs it decided whose gold
    scores differ, the fraction where it preferred the response gold scores higher.
    """

    rng = random.Random(seed)
    asked = []
    for group_index, group in enumerate(groups):
        for i, j in candidate_pairs([0.0] * len(group["responses"]), config.pairing, -1.0, rng):
            asked.append((group_index, i, j))
    questions = [(groups[g]["prompt"], groups[g]["responses"][i], groups[g]["responses"][j]) for g, i, j in asked]
    verdicts = judge.judge(questions)
    rows, ties, agreements, inconsistent = [], 0, [], 0
    for (group_index, i, j), (probability, consistent) in zip(asked, verdicts, strict=True):
        group, margin = groups[group_index], log_odds(probability)
        inconsistent += not consistent
        if not consistent or abs(margin) <= config.tie_margin:
            ties += 1
            continue
        better, worse = (i, j) if margin > 0 else (j, i)
        if group["gold"][better] != group["gold"][worse]:
            agreements.append(group["gold"][better] > group["gold"][worse])
        first = prefers_first(abs(margin), 0.0, config, rng)
        chosen, rejected = (better, worse) if first else (worse, better)
        half = abs(margin) / 2 if first else -abs(margin) / 2
        rows.append(
            {
                "prompt": group["prompt"],
                "chosen": group["responses"][chosen],
                "rejected": group["responses"][rejected],
                "chosen_score": half,
                "rejected_score": -half,
                "chosen_gold": group["gold"][chosen],
                "rejected_gold": group["gold"][rejected],
                "noise_free": first,
            }
        )
    judged = {
        "judge_questions": 2 * len(asked),
        "judge_inconsistent_fraction": round(inconsistent / len(asked), 4) if asked else 0.0,
        "judge_agreement_with_gold": round(sum(agreements) / len(agreements), 4) if agreements else None,
        "judge_agreement_pairs": len(agreements),
    }
    return rows, ties, judged
