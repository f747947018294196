"""Labelers: the proxy that labels training pairs and the gold judge of evaluation. A tagged union on `kind`."""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from .base import PositiveInt, Section


class SentimentLabeler(Section):
    """Prefers the more positive response: VADER compound score in [-1, 1]."""

    kind: Literal["sentiment"]


class LengthLabeler(Section):
    """Prefers responses near a target length: score = -|words - target_words|."""

    kind: Literal["length"]
    target_words: PositiveInt = Field(description="The preferred response length in words.")


class KeywordsLabeler(Section):
    """Prefers responses that use given words: score = number of occurrences (whole words, any case)."""

    kind: Literal["keywords"]
    keywords: Annotated[list[str], Field(min_length=1)] = Field(description="Words that earn one point each time.")


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{pattern!r} is not a regular expression: {error}. Fix: correct the pattern") from None
    return pattern


class RegexLabeler(Section):
    """Prefers responses that match a regular expression more often: score = number of matches."""

    kind: Literal["regex"]
    pattern: Annotated[str, AfterValidator(_compiles)] = Field(description="A Python regular expression.")
    ignore_case: bool = Field(True, description="Match without regard to case.")


def _importable(target: str) -> str:
    from ..labeling.user_functions import import_function

    import_function(target)  # raises ValueError naming what is missing
    return target


class PythonLabeler(Section):
    """Your own function `module:function`, text -> float. It is imported only because the recipe names it;
    the current directory is searched after installed packages."""

    kind: Literal["python"]
    function: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"), AfterValidator(_importable)] = Field(
        description="module:function, e.g. my_labelers:politeness."
    )

    def fingerprint_extra(self) -> dict:
        """The source of the function's module: editing the function rebuilds the labels made with it."""
        from ..labeling.user_functions import source_digest

        return {"module_source": source_digest(self.function)}


class WeightedLabeler(Section):
    """One part of a composite labeler."""

    weight: float = Field(description="Multiplies this part's score (may be negative).")
    labeler: "Labeler" = Field(description="Any labeler, composite included.")


class CompositeLabeler(Section):
    """A weighted sum of labelers: score = sum over parts of weight * score."""

    kind: Literal["composite"]
    parts: Annotated[list[WeightedLabeler], Field(min_length=1)] = Field(description="The weighted labelers.")


Labeler = Annotated[
    SentimentLabeler | LengthLabeler | KeywordsLabeler | RegexLabeler | PythonLabeler | CompositeLabeler,
    Field(discriminator="kind"),
]
WeightedLabeler.model_rebuild()
