"""GGUF models, converted once to a safetensors directory in a cache so that later loads take seconds.

The cache lives in $RLHF_RECIPES_CACHE, else $XDG_CACHE_HOME/rlhf-recipes, else ~/.cache/rlhf-recipes;
an entry is named by the GGUF file's SHA-256 and the converter's version, so a changed file (or a
changed converter) is converted again.
"""

import hashlib
import os
import shutil
from pathlib import Path

CONVERTER_VERSION = 2  # bump when convert_gguf changes what it writes


def cache_root() -> Path:
    if os.environ.get("RLHF_RECIPES_CACHE"):
        return Path(os.environ["RLHF_RECIPES_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlhf-recipes"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_gguf(gguf: Path) -> Path:
    """The cached safetensors directory of `gguf`, converting it first if it is not cached yet."""
    target = cache_root() / "gguf" / f"{gguf.stem}-{file_digest(gguf)[:16]}-v{CONVERTER_VERSION}"
    if (target / "config.json").is_file():
        return target
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        convert_gguf(gguf, temporary)
        try:
            os.replace(temporary, target)
        except OSError:  # another process published the same conversion first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantize a GGUF model to float32 and save model and tokenizer as a Hugging Face directory.

    A GGUF-loaded model refuses save_pretrained and, through the quantization_config it carries,
    training; so its weights move into a plain model built from its config without that entry.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
