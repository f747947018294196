"""Labelers that are models: a sequence classifier's label score, or a trained reward model's scalar.

They score a batch at a time on the run's device. The model is loaded on first use, so building a
labeler (and validating a recipe) costs no more than reading the model's config.json.
"""

from pathlib import Path

from ..config.labelers import ClassifierLabeler, RewardModelLabeler
from ..run import progress
from .hub_cache import uncached_hub_id


def model_config(model: str):
    """The transformers config of a local directory, or of a hub id in the local cache; ValueError otherwise."""
    from transformers import AutoConfig

    path = Path(model)
    if not path.is_dir() and (path.is_absolute() or model.startswith(".")):
        raise ValueError(f"model directory {model!r} not found. Fix: correct the path")
    try:
        return AutoConfig.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError) as error:
        where = "is not a model directory" if path.is_dir() else "is neither a local directory nor in the local cache"
        raise ValueError(
            f"{model!r} {where} ({str(error).splitlines()[0]}). Fix: give a directory with config.json, or "
            f"download it once with `hf download {model}` while online"
        ) from None


def check_hub_labelers(labelers) -> None:
    """Before a run's first stage: every classifier labeler named by an uncached hub id is downloaded
    (network) and its labels checked; offline, a RecipeError says how to download it."""
    import os

    from ..config.labelers import classifier_labelers
    from ..errors import RecipeError

    for config in classifier_labelers(labelers):
        if not uncached_hub_id(config.model):
            continue
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise RecipeError(
                f"labeler: {config.model!r} is neither a local directory nor in the local cache, and this run is "
                f"offline. Fix: download it once with `hf download {config.model}` while online"
            )
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        try:
            labels = set(AutoConfig.from_pretrained(config.model).id2label.values())
            AutoTokenizer.from_pretrained(config.model)  # into the cache: the stages load with local_files_only
            AutoModelForSequenceClassification.from_pretrained(config.model)
        except (OSError, ValueError) as error:
            raise RecipeError(
                f"labeler: cannot download {config.model!r}: {str(error).splitlines()[0]}. "
                "Fix: check the id on huggingface.co, or give a local model directory"
            ) from None
        for name in [config.label] if config.label is not None else list(config.weights):
            if name not in labels:
                raise RecipeError(
                    f"labeler: label {name!r} is not one of {config.model}'s labels {sorted(labels)}. Fix: use one"
                )


def classifier_labels(model: str) -> set[str]:
    """The label names (config.id2label) of a sequence-classification model."""
    return set(model_config(model).id2label.values())


def model_digest(model: str) -> str | None:
    """What identifies a model's weights: its directory's files, or a cached hub id's commit."""
    from ..run.stage import path_digest

    path = Path(model)
    return path_digest(path) if path.is_dir() else getattr(model_config(model), "_commit_hash", None)


def check_reward_model_directory(path: Path) -> Path:
    """`path` if it holds a reward model (config.json with one output, and a tokenizer); ValueError otherwise."""
    if not path.is_dir():
        raise ValueError(
            f"reward-model directory {str(path)!r} not found (relative paths start at {Path.cwd()}). "
            "Fix: give a run's reward_model/ directory"
        )
    if not (path / "config.json").is_file():
        raise ValueError(f"{str(path)!r} has no config.json, so it is not a saved model. Fix: give a model directory")
    labels = model_config(str(path)).num_labels
    if labels != 1:
        raise ValueError(
            f"{str(path)!r} has {labels} outputs, not the one scalar of a reward model. "
            "Fix: for a classifier use `kind: classifier` with a `label`"
        )
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise ValueError(f"{str(path)!r} has no tokenizer. Fix: save the tokenizer beside the reward model")
    return path.resolve()


def _device_dtype(device: str):
    import torch

    return torch.float32 if device == "cpu" else "auto"


class ClassifierScorer:
    """config's label score (or weighted sum of label scores) of each response, from its classifier."""

    def __init__(self, config: ClassifierLabeler, device: str):
        self.config, self.device = config, device
        self.model = self.tokenizer = None

    def _load(self):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.config.model, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            self.config.model, local_files_only=True, dtype=_device_dtype(self.device)
        )
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token is None:  # GPT-2 style classifiers: batches need a pad token
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Right padding: encoders pool position 0 and GPT-2 numbers positions without the mask; a decoder
        # classifier reads the last token that is not config.pad_token_id, so that must be the tokenizer's.
        self.tokenizer.padding_side = "right"
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.max_length = min(self.config.max_length_tokens, self.tokenizer.model_max_length)
        label_ids = {name: index for index, name in self.model.config.id2label.items()}
        weights = self.config.weights or {self.config.label: 1.0}
        self.weights = {label_ids[name]: weight for name, weight in weights.items()}
        # independent labels (one output, or multi-label) have sigmoid probabilities; exclusive ones softmax
        config = self.model.config
        self.independent = config.num_labels == 1 or config.problem_type == "multi_label_classification"

    def score_batch(self, prompts: list[str], responses: list[str]) -> list[float]:
        import torch

        if self.model is None:
            self._load()
        size, scores = self.config.batch_size, []
        for start in progress.batches("classifier scores", len(responses), size, shared=False):
            texts = responses[start : start + size]
            pairs = (prompts[start : start + size],) if self.config.input == "prompt_and_response" else ()
            encoded = self.tokenizer(
                *pairs,
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                logits = self.model(**encoded).logits.float()
            if self.config.output == "logit":
                values = logits
            else:
                values = logits.sigmoid() if self.independent else logits.softmax(-1)
            scores += sum(weight * values[:, index] for index, weight in self.weights.items()).tolist()
        return scores


class RewardModelScorer:
    """A trained reward model's scalar for each prompt and response, as the reward stage trains and reads it."""

    def __init__(self, config: RewardModelLabeler, device: str):
        self.config, self.device = config, device
        self.model = self.tokenizer = None

    def score_batch(self, prompts: list[str], responses: list[str]) -> list[float]:
        from ..generation.scoring import reward_scores
        from ..models.loading import Loading, load_reward_model, load_tokenizer

        if self.model is None:
            self.tokenizer = load_tokenizer(str(self.config.path))
            loading = Loading.auto(self.device)
            self.model = load_reward_model(str(self.config.path), self.tokenizer.pad_token_id, loading, self.device)
        return reward_scores(self.model, self.tokenizer, prompts, responses, self.config.batch_size, shared=False)
