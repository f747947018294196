"""Labelers: the proxy that labels training pairs and the gold judge of evaluation. A tagged union on `kind`."""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import PositiveInt, Section


class SentimentLabeler(Section):
    """Prefers the more positive response: VADER compound score in [-1, 1]."""

    kind: Literal["sentiment"]


class LengthLabeler(Section):
    """Prefers responses near a target length: score = -|words - target_words|."""

    kind: Literal["length"]
    target_words: PositiveInt = Field(description="The preferred response length in words.")


def _findable(keywords: list[str]) -> list[str]:
    from ..labeling.labelers import unfindable_keywords

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


def _some_weight(weights: dict[str, float]) -> dict[str, float]:
    if not any(weights.values()):
        raise ValueError(
            f"{weights} gives no label a weight, so every response would score 0. Fix: weigh the labels, e.g. "
            "{POSITIVE: 1, NEGATIVE: -1}, or name one with `label`"
        )
    return weights


def _classifier_model(model: str) -> str:
    from ..labeling.hub_cache import uncached_hub_id
    from ..labeling.model_labelers import check_classifier

    if not uncached_hub_id(model):  # not downloaded yet: a run checks it before its first stage
        check_classifier(model)  # raises ValueError naming a model that is missing or no classifier
    return model


class ClassifierLabeler(Section):
    """A Hugging Face sequence-classification model (a local directory, or a hub id already in the local
    cache) scores each response: the logit (or probability) of one named label, or a weighted sum of
    labels, e.g. siebert/sentiment-roberta-large-english's POSITIVE."""

    kind: Literal["classifier"]
    model: Annotated[str, Field(min_length=1), AfterValidator(_classifier_model)] = Field(
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
    def _labels_exist(self) -> "ClassifierLabeler":
        if (self.label is None) == (self.weights is None):
            raise ValueError("give exactly one of `label` (one label's score) or `weights` (a weighted sum of labels)")
        from ..labeling.hub_cache import uncached_hub_id
        from ..labeling.model_labelers import classifier_labels

        if uncached_hub_id(self.model):  # not downloaded yet: a run checks its labels before its first stage
            return self
        known = classifier_labels(self.model)
        for name in [self.label] if self.label is not None else list(self.weights):
            if name not in known:
                raise ValueError(
                    f"label {name!r} is not one of {self.model}'s labels {sorted(known)}. Fix: use one of those"
                )
        return self

    def fingerprint_extra(self) -> dict:
        """The model's files: a retrained classifier in the same directory relabels."""
        from ..labeling.model_labelers import model_digest

        return {"model_files": model_digest(self.model)}


def _reward_model_directory(path: Path) -> Path:
    from ..labeling.model_labelers import check_reward_model_directory

    return check_reward_model_directory(path)  # raises ValueError naming what is missing


class RewardModelLabeler(Section):
    """A trained reward model (one scalar output; for example an earlier run's `reward_model/` directory)
    scores each prompt and response, read at the EOS exactly as this tool trains reward models."""

    kind: Literal["reward_model"]
    path: Annotated[Path, Field(strict=False), AfterValidator(_reward_model_directory)] = Field(
        description="A reward-model directory: config.json with one label, its weights and tokenizer."
    )
    batch_size: PositiveInt = Field(32, description="Responses scored per forward pass.")


def _judge_model(model: str) -> str:
    from ..labeling.judge import check_judge_model

    return check_judge_model(model)  # raises ValueError naming what is missing


class JudgeLabeler(Section):
    """A local instruction model asked which of two responses to a prompt is better (simulated annotation, as
    in AlpacaFarm and RLAIF). It is asked twice, with the responses in both orders, so that a preference for
    a position cancels; the two answers' probabilities are averaged, and a pair on which the two orders
    disagree is a tie (dropped). It labels pairs and gives no score per response, so it labels training
    pairs only: a gold judge is a scoring gold_labeler, and the judge's agreement with it is reported;
    without one, the run has no gold judge."""

    kind: Literal["judge"]
    model: Annotated[str, Field(min_length=1), AfterValidator(_judge_model)] = Field(
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

    def fingerprint_extra(self) -> dict:
        """The judge's files: a different model in the same directory relabels."""
        from ..labeling.judge import judge_digest

        return {"model_files": judge_digest(self.model)}


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
