"""Proxy labelers: pure functions from a response's text to a score (higher is preferred).

The same function without noise is the gold standard in evaluation, so every run can tell
a policy that really improved from one that only pleased its learned reward model.
"""

import math
import re
from collections.abc import Callable
from functools import cache

from ..config.labelers import (
    ClassifierLabeler,
    CompositeLabeler,
    JudgeLabeler,
    KeywordsLabeler,
    Labeler,
    LengthLabeler,
    PythonLabeler,
    RegexLabeler,
    RewardModelLabeler,
    SentimentLabeler,
    keywords_pattern,
)
from ..errors import RecipeError
from .model_labelers import ClassifierScorer, RewardModelScorer
from .user_functions import import_function


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(text: str) -> float:
    """VADER's compound score of `text`, in [-1, 1]; 0 for text with no sentiment words."""
    return _vader().polarity_scores(text)["compound"]


def length_score(text: str, target_words: int) -> float:
    """-|number of whitespace-separated words - target_words|: 0 at the target, -1 a word away."""
    return -float(abs(len(text.split()) - target_words))


def keywords_score(text: str, keywords: list[str]) -> float:
    """How many times any of `keywords` occurs in `text` as a whole word, ignoring case."""
    return float(len(keywords_pattern(keywords).findall(text)))


def regex_score(text: str, pattern: str, ignore_case: bool) -> float:
    """How many non-overlapping matches of `pattern` the text holds."""
    return float(len(re.findall(pattern, text, flags=re.IGNORECASE if ignore_case else 0)))


def make_labeler(config: Labeler, device: str = "cpu") -> Callable[[str], float]:
    """The scoring function a recipe's `labeler:` (or `gold_labeler:`) section describes. Model labelers
    (and composites that hold one) are objects that also score a batch at once (`score_batch(prompts,
    responses)`) on `device`; score_all uses that."""
    if isinstance(config, SentimentLabeler):
        return sentiment_score
    if isinstance(config, LengthLabeler):
        return lambda text: length_score(text, config.target_words)
    if isinstance(config, KeywordsLabeler):
        return lambda text: keywords_score(text, config.keywords)
    if isinstance(config, RegexLabeler):
        return lambda text: regex_score(text, config.pattern, config.ignore_case)
    if isinstance(config, PythonLabeler):
        return import_function(config.function)
    if isinstance(config, (ClassifierLabeler, RewardModelLabeler)):
        scorer = ClassifierScorer if isinstance(config, ClassifierLabeler) else RewardModelScorer
        return BatchLabeler(scorer(config, device).score_batch)
    if isinstance(config, JudgeLabeler):
        raise RecipeError("labeler: a judge labels pairs (labeling/judge.py), not single responses")
    parts = [(part.weight, make_labeler(part.labeler, device)) for part in config.parts]
    if any(isinstance(labeler, BatchLabeler) for _, labeler in parts):

        def weighted_sum(prompts: list[str], texts: list[str]) -> list[float]:
            columns = [[weight * score for score in score_all(labeler, texts, prompts)] for weight, labeler in parts]
            return [sum(row) for row in zip(*columns, strict=True)]

        return BatchLabeler(weighted_sum)
    return lambda text: sum(weight * float(labeler(text)) for weight, labeler in parts)


class BatchLabeler:
    """A labeler that scores many responses at once (a model), given their prompts; called with one text,
    it scores that text alone, with no prompt."""

    def __init__(self, score_batch: Callable[[list[str], list[str]], list[float]]):
        self.score_batch = score_batch

    def __call__(self, text: str) -> float:
        return self.score_batch([""], [text])[0]


def describe(config: Labeler) -> str:
    """A short human name: 'sentiment', 'length(20)', '1*sentiment + 0.1*length(20)'."""
    if isinstance(config, LengthLabeler):
        return f"length({config.target_words})"
    if isinstance(config, KeywordsLabeler):
        return f"keywords({', '.join(config.keywords)})"
    if isinstance(config, RegexLabeler):
        return f"regex({config.pattern})"
    if isinstance(config, PythonLabeler):
        return config.function
    if isinstance(config, ClassifierLabeler):
        target = config.label or " + ".join(f"{weight:g}*{label}" for label, weight in config.weights.items())
        return f"classifier({config.model}: {config.output} of {target})"
    if isinstance(config, RewardModelLabeler):
        return f"reward_model({'/'.join(config.path.parts[-2:])})"
    if isinstance(config, JudgeLabeler):
        return f"judge({config.model}: which is {config.criterion}?)"
    if isinstance(config, CompositeLabeler):
        return " + ".join(f"{part.weight:g}*{describe(part.labeler)}" for part in config.parts)
    return config.kind


def score_all(labeler: Callable[[str], float], texts: list[str], prompts: list[str] | None = None) -> list[float]:
    """Score every text (prompts: each text's prompt, read by labelers that need it, such as a reward model);
    a labeler that raises or returns a non-finite number stops the run by name."""
    if isinstance(labeler, BatchLabeler):
        try:
            scores = [float(score) for score in labeler.score_batch(prompts or [""] * len(texts), texts)]
        except RecipeError:
            raise
        except Exception as error:
            raise RecipeError(f"labeler: raised {type(error).__name__}: {error} on a batch of responses") from error
        return [_finite(score, text) for score, text in zip(scores, texts, strict=True)]
    scores = []
    for text in texts:
        try:
            score = float(labeler(text))
        except Exception as error:
            raise RecipeError(
                f"labeler: raised {type(error).__name__}: {error} on the response {text[:80]!r}"
            ) from error
        scores.append(_finite(score, text))
    return scores


def gold_scores(gold, texts: list[str], prompts: list[str]) -> list[float | None]:
    """score_all with the gold labeler `gold` (made by make_labeler), or None for each text when the run has
    no gold judge (your own pairs, or a judge, and no gold_labeler)."""
    return score_all(gold, texts, prompts) if gold is not None else [None] * len(texts)


def _finite(score: float, text: str) -> float:
    if not math.isfinite(score):
        raise RecipeError(f"labeler: returned {score} for the response {text[:80]!r}; scores must be finite.")
    return score
