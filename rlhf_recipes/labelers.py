"""Proxy labelers: pure functions from a response's text to a score (higher is preferred).

The same function without noise is the gold standard in evaluation, so every run can tell
a policy that really improved from one that only pleased its learned reward model.
"""

import math
import re
from collections.abc import Callable
from functools import cache

from .errors import RecipeError
from .recipe import KeywordsLabeler, LengthLabeler, SentimentLabeler

Labeler = Callable[[str], float]


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


def make_labeler(config: SentimentLabeler | LengthLabeler | KeywordsLabeler) -> Labeler:
    """The scoring function a recipe's `labeler:` section describes."""
    if isinstance(config, SentimentLabeler):
        return sentiment_score
    if isinstance(config, LengthLabeler):
        return lambda text: length_score(text, config.target_words)
    return lambda text: keywords_score(text, config.keywords)


def score_all(labeler: Labeler, texts: list[str]) -> list[float]:
    """Score every text; a labeler that raises or returns a non-finite number stops the run by name."""
    scores = []
    for text in texts:
        try:
            score = float(labeler(text))
        except Exception as error:
            raise RecipeError(f"labeler: raised {type(error).__name__}: {error} on the response {text[:80]!r}")
        if not math.isfinite(score):
            raise RecipeError(f"labeler: returned {score} for the response {text[:80]!r}; scores must be finite.")
        scores.append(score)
    return scores
