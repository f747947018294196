"""Every way the pipeline gets a model or tokenizer: one loading path for hub ids and local directories."""

from pathlib import Path

from .errors import RecipeError
from .recipe import Compute, Model
from .tiny_model import build_tiny_model


def prepare_base_model(config: Model, out_dir: Path, seed: int) -> str:
    """Where the initial policy loads from: a hub id or directory as given, or a tiny model built into out_dir."""
    if config.tiny is not None:
        build_tiny_model(config.tiny, out_dir, seed)
        return str(out_dir)
    return config.name_or_path


def device_for(compute: Compute) -> str:
    import torch

    if compute.device == "cuda" and not torch.cuda.is_available():
        raise RecipeError("compute.device: 'cuda' but no GPU is visible. Fix: set compute.device: auto or cpu.")
    if compute.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return compute.device


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    """The policy's tokenizer, left-padded for generation, with a pad token distinct from EOS.

    PPO finds where a response ends by its first pad token, so pad == eos would cut the EOS
    token off every response the reward model scores.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise RecipeError(f"model: cannot load a tokenizer from {name_or_path!r}: {error}")
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise RecipeError(
            f"model: the tokenizer of {name_or_path!r} has no pad token distinct from its EOS token. "
            "Fix: use a tokenizer that defines one."
        )
    tokenizer.padding_side = "left"
    return tokenizer


def load_policy(name_or_path: str, trust_remote_code: bool = False):
    """A causal LM in float32, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=torch.float32, trust_remote_code=trust_remote_code
        )
    except OSError as error:
        raise RecipeError(f"model: cannot load a causal LM from {name_or_path!r}: {error}")
    return model.eval()


def load_reward_model(name_or_path: str, pad_token_id: int, trust_remote_code: bool = False):
    """A sequence-classification model with one output (num_labels=1): a reward model or value model.

    Loaded from a causal LM, the score head is new and initialised randomly (seeded by the caller).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, num_labels=1, dtype=torch.float32, trust_remote_code=trust_remote_code
    )
    model.config.pad_token_id = pad_token_id
    return model.eval()
