"""Labelers that are models: a sequence classifier's label score, or a trained reward model's scalar.

They score a batch at a time on the run's device. The model is loaded on first use, so building a
labeler (and validating a recipe) costs no more than reading the model's config.json.
"""

from pathlib import Path

from ..config.labelers import ClassifierLabeler, RewardModelLabeler, classifier_labelers
from ..errors import RecipeError
from ..generation.scoring import reward_scores
from ..models.ensemble import is_ensemble, load_reward, member_paths
from ..models.loading import Loading, load_tokenizer
from ..models.run_outputs import unbuilt_run
from ..runtime import progress
from ..runtime.stage import path_digest
from .hub_cache import uncached_hub_id

# The files that hold a model's weights: safetensors (sharded or not, or a LoRA adapter's) or PyTorch pickles
# (training_args.bin, which a trainer leaves beside them, is no weights).
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin")


def model_config(model: str):
    """The transformers config of a local directory, or of a hub id in the local cache; ValueError otherwise."""
    from transformers import AutoConfig

    path = Path(model)
    if not path.is_dir() and (unbuilt := unbuilt_run(path)):
        raise ValueError(unbuilt)
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

    for config in classifier_labelers(labelers):
        if not uncached_hub_id(config.model):
            continue
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise RecipeError(
                f"labeler: {config.model!r} is neither a local directory nor in the local cache, and this run is "
                f"offline. Fix: download it once with `hf download {config.model}` while online"
            )
        labels = set(download_classifier(config.model).id2label.values())
        for name in [config.label] if config.label is not None else list(config.weights):
            if name not in labels:
                raise RecipeError(
                    f"labeler: label {name!r} is not one of {config.model}'s labels {sorted(labels)}. Fix: use one"
                )


def download_classifier(model: str):
    """Download a hub classifier into the local cache (network), its config first: a model that is no classifier
    is refused before its weights are fetched. Its config; a RecipeError naming what failed otherwise."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    def cannot_download(error: Exception) -> RecipeError:
        return RecipeError(
            f"labeler: cannot download {model!r}: {str(error).splitlines()[0]}. "
            "Fix: check the id on huggingface.co, or give a local model directory"
        )

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise cannot_download(error) from None
    try:
        check_classification_head(model, config)
    except ValueError as error:
        raise RecipeError(f"labeler: {error}") from None
    try:
        AutoTokenizer.from_pretrained(model)  # into the cache: the stages load with local_files_only
        AutoModelForSequenceClassification.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise cannot_download(error) from None
    return config


def classifier_labels(model: str) -> set[str]:
    """The label names (config.id2label) of a sequence-classification model."""
    return set(model_config(model).id2label.values())


def check_classifier(model: str) -> None:
    """ValueError naming a classifier's model that is missing, is another kind of model, or (a local directory)
    has no weights."""
    check_classification_head(model, model_config(model))
    if Path(model).is_dir():
        check_weights(Path(model))


def check_classification_head(model: str, config) -> None:
    """ValueError unless `config` is a sequence classifier's: loaded as one, any other model (a causal language
    model, say) gets a new, randomly initialised head and scores noise. A config that names no architecture
    is taken for a classifier when its labels are named (trained), not transformers' LABEL_0, LABEL_1, ..."""
    architectures = config.architectures or []
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        return
    default_labels = {f"LABEL_{index}" for index in range(config.num_labels)}
    if not architectures and set(config.id2label.values()) != default_labels:
        return
    kind = ", ".join(architectures) or "model with neither a classifier architecture nor named labels"
    raise ValueError(
        f"{model!r} is a {kind}, not a sequence classifier: loaded as one it would get a new, randomly "
        "initialised head. Fix: give a model trained for sequence classification (its config.json lists a "
        "...ForSequenceClassification architecture)"
    )


def check_weights(path: Path) -> None:
    """ValueError unless the model directory `path` holds weights, as the stages will load them."""
    if not any(next(path.glob(pattern), None) for pattern in WEIGHT_FILES):
        raise ValueError(
            f"{str(path)!r} has a config.json but no weights (no *.safetensors or pytorch_model*.bin file), so "
            "the model cannot be loaded. Fix: save the model there with save_pretrained, or name the directory "
            "that holds its weights"
        )


def model_digest(model: str) -> str | None:
    """What identifies a model's weights: its directory's files, or a cached hub id's commit."""

    path = Path(model)
    return path_digest(path) if path.is_dir() else getattr(model_config(model), "_commit_hash", None)


def check_reward_model_directory(path: Path) -> Path:
    """`path` if it holds a reward model (config.json with one output, and a tokenizer); ValueError otherwise."""
    if not path.is_dir():
        raise ValueError(
            unbuilt_run(path)
            or f"reward-model directory {str(path)!r} not found (relative paths start at {Path.cwd()}). "
            "Fix: give a run's reward_model/ directory"
        )
    if is_ensemble(path):  # a run's ensemble: check each member, and the tokenizer beside them
        for member in member_paths(path):
            check_reward_model_directory(member)
        if not (path / "tokenizer_config.json").is_file():
            raise ValueError(f"{str(path)!r} has no tokenizer. Fix: give a run's reward_model/ directory whole")
        return path.resolve()
    if not (path / "config.json").is_file():
        raise ValueError(f"{str(path)!r} has no config.json, so it is not a saved model. Fix: give a model directory")
    config = model_config(str(path))
    check_classification_head(str(path), config)
    labels = config.num_labels
    if labels != 1:
        raise ValueError(
            f"{str(path)!r} has {labels} outputs, not the one scalar of a reward model. "
            "Fix: for a classifier use `kind: classifier` with a `label`"
        )
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise ValueError(f"{str(path)!r} has no tokenizer. Fix: save the tokenizer beside the reward model")
    check_weights(path)
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

        if self.model is None:
            self.tokenizer = load_tokenizer(str(self.config.path))
            loading = Loading.auto(self.device)
            self.model = load_reward(self.config.path, self.tokenizer.pad_token_id, loading, self.device)
        return reward_scores(self.model, self.tokenizer, prompts, responses, self.config.batch_size, shared=False)
