"""Proxy labelers: pure functions from a response's text to a score (higher is preferred).

The same function without noise is the gold standard in evaluation, so every run can tell
a policy that really improved from one that only pleased its learned reward model.
"""

import math
import re
from collections.abc import Callable
from functools import cache

from ..config.labelers import (
    CompositeLabeler,
    KeywordsLabeler,
    Labeler,
    LengthLabeler,
    PythonLabeler,
    RegexLabeler,
    SentimentLabeler,
)
from ..errors import RecipeError
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
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(word) for word in keywords) + r")\b", re.IGNORECASE)
    return float(len(pattern.findall(text)))


def regex_score(text: str, pattern: str, ignore_case: bool) -> float:
    """How many non-overlapping matches of `pattern` the text holds."""
    return float(len(re.findall(pattern, text, flags=re.IGNORECASE if ignore_case else 0)))


def make_labeler(config: Labeler) -> Callable[[str], float]:
    """The scoring function a recipe's `labeler:` (or `gold_labeler:`) section describes."""
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
    parts = [(part.weight, make_labeler(part.labeler)) for part in config.parts]
    return lambda text: sum(weight * float(labeler(text)) for weight, labeler in parts)


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
    if isinstance(config, CompositeLabeler):
        return " + ".join(f"{part.weight:g}*{describe(part.labeler)}" for part in config.parts)
    return config.kind


def score_all(labeler: Callable[[str], float], texts: list[str]) -> list[float]:
    """Score every text; a labeler that raises or returns a non-finite number stops the run by name."""
    scores = []
    for text in texts:
        try:
            score = float(labeler(text))
        except Exception as error:
            raise RecipeError(
                f"labeler: raised {type(error).__name__}: {error} on the response {text[:80]!r}"
            ) from error
        if not math.isfinite(score):
            raise RecipeError(f"labeler: returned {score} for the response {text[:80]!r}; scores must be finite.")
        scores.append(score)
    return scores
