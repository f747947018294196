"""A local instruction model as a pairwise judge: which of two responses to a prompt is better?

The judge reads one user turn holding the prompt, response A, response B and the question, and its
next-token probabilities of "A" and "B" are its answer (no text is generated, so no answer goes
unparsed). Each pair is asked in both orders: P(a better) is the mean of P(A | a shown first) and
P(B | a shown second), which cancels a constant preference for either position. When the two orders
pick different responses, the judge is inconsistent on that pair: a tie.
"""

import math

from ..config.labelers import JudgeLabeler
from ..errors import RecipeError
from ..generation.sampling import padded, position_ids
from ..models.builtin import BUILTIN, builtin_gguf_path
from ..models.gguf_cache import converted_gguf
from ..runtime import progress
from .model_labelers import check_weights, model_config, model_digest

BUILTIN_PREFIX = "builtin:"

QUESTION = (
    "Here is a request and two responses to it.\n\nRequest: {prompt}\n\nResponse A: {first}\n\n"
    "Response B: {second}\n\nWhich response is {criterion}? Answer with the letter A or B only."
)


def judge_location(model: str) -> str:
    """The directory (or cached hub id) a judge's `model` names; builtin:<name> is converted once and cached."""
    if not model.startswith(BUILTIN_PREFIX):
        return model

    return str(converted_gguf(builtin_gguf_path(model.removeprefix(BUILTIN_PREFIX))))


def check_judge_model(model: str) -> str:
    """`model` if it names a causal language model that can be found offline; ValueError saying the fix otherwise."""
    if model.startswith(BUILTIN_PREFIX):
        name = model.removeprefix(BUILTIN_PREFIX)
        if name not in BUILTIN:
            raise ValueError(f"{model!r}: no built-in model {name!r}. Fix: one of builtin:{', builtin:'.join(BUILTIN)}")
        try:
            builtin_gguf_path(name)
        except RecipeError as error:  # "model.builtin: ..." names the policy's key; this is the judge's
            raise ValueError(str(error).removeprefix("model.builtin: ")) from None
        return model
    from pathlib import Path

    architectures = model_config(model).architectures or []
    if not any(name.endswith("ForCausalLM") for name in architectures):
        raise ValueError(
            f"{model!r} is a {', '.join(architectures) or 'model of unknown architecture'}, not a causal language "
            "model that can answer a question. Fix: give an instruction (chat) model"
        )
    if Path(model).is_dir():
        check_weights(Path(model))
    judge_tokenizer(model, model)
    return model


def judge_tokenizer(location: str, model: str):
    """The tokenizer of the judge `model` (found at `location`); ValueError unless it has a chat template to
    put the question in and the answers "A" and "B" are single tokens."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot load the tokenizer of {model!r} ({str(error).splitlines()[0]}). Fix: save the tokenizer "
            "beside the model"
        ) from None
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{model!r} has no chat template, so it cannot be asked a question. Fix: give an instruction (chat) "
            "model, or save a chat template with its tokenizer"
        )
    if any(len(tokenizer.encode(letter, add_special_tokens=False)) != 1 for letter in ("A", "B")):
        raise ValueError(
            f"{model!r}'s tokenizer splits the answers 'A' and 'B' into several tokens. Fix: give a judge whose "
            "tokenizer has them as single tokens (most do)"
        )
    return tokenizer


def judge_digest(model: str) -> str | None:
    """What identifies the judge's weights (the built-in package's file is fixed by its name)."""
    if model.startswith(BUILTIN_PREFIX):
        return None

    return model_digest(model)


def preference_from_orders(first_order: float, second_order: float) -> tuple[float, bool]:
    """(P(a better), consistent) from P("A") with a shown first and P("A") with a shown second."""
    forward, backward = first_order, 1.0 - second_order
    return (forward + backward) / 2, (forward > 0.5) == (backward > 0.5)


def log_odds(probability: float, bound: float = 1e-6) -> float:
    probability = min(max(probability, bound), 1 - bound)
    return math.log(probability / (1 - probability))


class PairJudge:
    """Asks the judge model about pairs of responses, on the run's device, a batch at a time."""

    def __init__(self, config: JudgeLabeler, device: str):
        self.config, self.device = config, device
        self.model = self.tokenizer = None

    def _load(self):
        from transformers import AutoModelForCausalLM

        location = judge_location(self.config.model)
        try:  # checked at validation too, but a built-in judge is first converted here
            self.tokenizer = judge_tokenizer(location, self.config.model)
        except ValueError as error:
            raise RecipeError(f"labeler.model: {error}") from None
        self.letters = [self.tokenizer.encode(letter, add_special_tokens=False)[0] for letter in ("A", "B")]
        import torch

        dtype = "auto" if self.device != "cpu" else torch.float32  # transformers reads None as "auto"
        self.model = AutoModelForCausalLM.from_pretrained(location, local_files_only=True, dtype=dtype)
        self.model.to(self.device).eval()
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _shown(self, text: str) -> str:
        ids, longest = self.tokenizer.encode(text, add_special_tokens=False), self.config.max_response_tokens
        return text if len(ids) <= longest else self.tokenizer.decode(ids[:longest])

    def _question_ids(self, prompt: str, first: str, second: str) -> list[int]:
        text = QUESTION.format(
            prompt=prompt, first=self._shown(first), second=self._shown(second), criterion=self.config.criterion
        )
        encoded = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])

    def first_probabilities(self, questions: list[tuple[str, str, str]]) -> list[float]:
        """P("A" | prompt, A = first, B = second) of each (prompt, first, second), renormalised over A and B."""
        import torch

        size, probabilities = self.config.batch_size, []
        for start in progress.batches("judge questions", len(questions), size, shared=False):
            ids = [self._question_ids(*question) for question in questions[start : start + size]]
            input_ids, mask = padded(ids, self.pad, "left")
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            with torch.no_grad():
                logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask)).logits
            answer = logits[:, -1, self.letters].float().softmax(-1)
            probabilities += answer[:, 0].tolist()
        return probabilities

    def judge(self, pairs: list[tuple[str, str, str]]) -> list[tuple[float, bool]]:
        """(P(a better than b), consistent across orders) for each (prompt, a, b)."""
        if self.model is None:
            self._load()
        swapped = [(prompt, b, a) for prompt, a, b in pairs]
        answers = self.first_probabilities(list(pairs) + swapped)
        return [
            preference_from_orders(forward, backward)
            for forward, backward in zip(answers[: len(pairs)], answers[len(pairs) :], strict=True)
        ]
