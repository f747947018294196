"""Labelers: the proxy that labels training pairs and the gold judge of evaluation. A tagged union on `kind`."""

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import Needs, PositiveInt, Section


class SentimentLabeler(Section):
    """Prefers the more positive response: VADER compound score in [-1, 1]."""

    kind: Literal["sentiment"]


class LengthLabeler(Section):
    """Prefers responses near a target length: score = -|words - target_words|."""

    kind: Literal["length"]
    target_words: PositiveInt = Field(description="The preferred response length in words.")


def keywords_pattern(keywords: list[str]) -> re.Pattern:
    """Any of `keywords` as a whole word (`\\b` at each end), ignoring case."""
    return re.compile(r"\b(?:" + "|".join(re.escape(word) for word in keywords) + r")\b", re.IGNORECASE)


def unfindable_keywords(keywords: list[str]) -> list[str]:
    """The keywords that whole-word matching cannot find standing on their own: `\\b` needs a letter, digit or
    underscore at each end, so a keyword that begins or ends with anything else (an emoji, ':)', a space)
    is found only when glued to a word, and an empty one matches between words."""
    return [word for word in keywords if not keywords_pattern([word]).fullmatch(word)]


def _findable(keywords: list[str]) -> list[str]:
    unfindable = unfindable_keywords(keywords)
    if unfindable:
        pattern = "|".join(re.escape(word) for word in unfindable).replace("'", "''")  # in YAML's single quotes
        raise ValueError(
            f"{', '.join(map(repr, unfindable))}: a keyword counts only as a whole word (it must begin and end "
            "with a letter, digit or underscore), so these are never found on their own. Fix: count them with a "
            f"regex labeler instead, e.g. {{kind: regex, pattern: '{pattern}'}}"
        )
    return keywords


class KeywordsLabeler(Section):
    """Prefers responses that use given words: score = number of occurrences (whole words, any case)."""

    kind: Literal["keywords"]
    keywords: Annotated[list[str], Field(min_length=1), AfterValidator(_findable)] = Field(
        description="Words that earn one point each time."
    )


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


class PythonLabeler(Section):
    """Your own function `module:function`, text -> float. It is imported only because the recipe names it;
    the current directory is searched after installed packages."""

    kind: Literal["python"]
    FINGERPRINT_EXTRA: ClassVar[bool] = True  # what its labels depend on beyond settings: labeling/fingerprints.py
    function: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"), Needs("importable_function")] = Field(
        description="module:function, e.g. my_labelers:politeness."
    )


def _some_weight(weights: dict[str, float]) -> dict[str, float]:
    if not any(weights.values()):
        raise ValueError(
            f"{weights} gives no label a weight, so every response would score 0. Fix: weigh the labels, e.g. "
            "{POSITIVE: 1, NEGATIVE: -1}, or name one with `label`"
        )
    return weights


class ClassifierLabeler(Section):
    """A Hugging Face sequence-classification model (a local directory, or a hub id already in the local
    cache) scores each response: the logit (or probability) of one named label, or a weighted sum of
    labels, e.g. siebert/sentiment-roberta-large-english's POSITIVE."""

    kind: Literal["classifier"]
    FINGERPRINT_EXTRA: ClassVar[bool] = True  # what its labels depend on beyond settings: labeling/fingerprints.py
    model: Annotated[str, Field(min_length=1), Needs("classifier_model")] = Field(
        description="A local model directory, or a hub id: one in the local Hugging Face cache runs offline; "
        "otherwise a run downloads it before its first stage."
    )
    label: str | None = Field(None, description="The label whose logit or probability is the score.")
    weights: Annotated[dict[str, float], AfterValidator(_some_weight)] | None = Field(
        None, description="Instead of `label`: score = sum of weight * the label's logit or probability."
    )
    output: Literal["logit", "probability"] = Field(
        "logit",
        description="logit: unbounded, keeps telling apart strongly positive texts; probability: softmax over the "
        "labels (sigmoid for a single-output or multi-label classifier).",
    )
    input: Literal["response", "prompt_and_response"] = Field(
        "response",
        description="What the classifier reads: the response, or prompt and response as a text pair (for "
        "cross-encoders trained on pairs, such as BERT-style NLI or relevance models).",
    )
    max_length_tokens: PositiveInt = Field(512, description="Longer inputs are truncated to this many tokens.")
    batch_size: PositiveInt = Field(32, description="Responses scored per forward pass.")

    @model_validator(mode="after")
    def _label_or_weights(self) -> "ClassifierLabeler":
        if (self.label is None) == (self.weights is None):
            raise ValueError("give exactly one of `label` (one label's score) or `weights` (a weighted sum of labels)")
        return self


class RewardModelLabeler(Section):
    """A trained reward model (one scalar output; for example an earlier run's `reward_model/` directory)
    scores each prompt and response, read at the EOS exactly as this tool trains reward models."""

    kind: Literal["reward_model"]
    path: Annotated[Path, Field(strict=False), Needs("reward_model_directory")] = Field(
        description="A reward-model directory: config.json with one label, its weights and tokenizer."
    )
    batch_size: PositiveInt = Field(32, description="Responses scored per forward pass.")


class JudgeLabeler(Section):
    """A local instruction model asked which of two responses to a prompt is better (simulated annotation, as
    in AlpacaFarm and RLAIF). It is asked twice, with the responses in both orders, so that a preference for
    a position cancels; the two answers' probabilities are averaged, and a pair on which the two orders
    disagree is a tie (dropped). It labels pairs and gives no score per response, so it labels training
    pairs only: a gold judge is a scoring gold_labeler, and the judge's agreement with it is reported;
    without one, the run has no gold judge."""

    kind: Literal["judge"]
    FINGERPRINT_EXTRA: ClassVar[bool] = True  # what its labels depend on beyond settings: labeling/fingerprints.py
    model: Annotated[str, Field(min_length=1), Needs("judge_model")] = Field(
        "builtin:smollm2-135m-instruct",
        description="An instruction model with a chat template: builtin:<name> (offline), a local directory, or a "
        "hub id in the local Hugging Face cache.",
        validate_default=True,  # the default built-in judge needs its package too
    )
    criterion: Annotated[str, Field(min_length=1)] = Field(
        "more positive",
        description="What makes a response better, as it completes the question 'Which response is ...?'.",
    )
    max_response_tokens: PositiveInt = Field(256, description="Each response is cut to this many tokens when shown.")
    batch_size: PositiveInt = Field(16, description="Questions put to the judge per forward pass.")


class WeightedLabeler(Section):
    """One part of a composite labeler."""

    weight: float = Field(description="Multiplies this part's score (may be negative).")
    labeler: "Labeler" = Field(description="Any labeler, composite included.")


class CompositeLabeler(Section):
    """A weighted sum of labelers: score = sum over parts of weight * score."""

    kind: Literal["composite"]
    parts: Annotated[list[WeightedLabeler], Field(min_length=1)] = Field(description="The weighted labelers.")

    @model_validator(mode="after")
    def _parts_score(self) -> "CompositeLabeler":
        if any(is_pairwise(part.labeler) for part in self.parts):
            raise ValueError(
                "a judge labels pairs and gives no score to weigh, so it cannot be part of a composite. "
                "Fix: use the judge alone as `labeler:`, or a scoring labeler in the composite"
            )
        return self


Labeler = Annotated[
    SentimentLabeler
    | LengthLabeler
    | KeywordsLabeler
    | RegexLabeler
    | PythonLabeler
    | ClassifierLabeler
    | RewardModelLabeler
    | JudgeLabeler
    | CompositeLabeler,
    Field(discriminator="kind"),
]
WeightedLabeler.model_rebuild()


def classifier_labelers(labelers) -> list[ClassifierLabeler]:
    """The classifier labelers among `labelers` (None allowed) and inside their composites."""
    found, pending = [], list(labelers)
    while pending:
        config = pending.pop()
        if isinstance(config, CompositeLabeler):
            pending += [part.labeler for part in config.parts]
        elif isinstance(config, ClassifierLabeler):
            found.append(config)
    return found


def is_pairwise(labeler) -> bool:
    """Whether a labeler judges pairs (a judge) rather than scoring each response."""
    return isinstance(labeler, JudgeLabeler)
