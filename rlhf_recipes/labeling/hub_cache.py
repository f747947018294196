"""Is a model named by a hub id already on this machine? Answered from the Hugging Face cache's directory
layout alone, without importing huggingface_hub or transformers: the CLI asks before it decides whether a
run is offline, and huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported."""

import os
import re
from pathlib import Path

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def hub_cache() -> Path:
    """Where huggingface_hub caches models: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def uncached_hub_id(model: str) -> bool:
    """Is `model` shaped like a hub id (org/name), not a local directory, and without a cached config.json?
    Validation cannot read such a model's labels offline; a run checks them before its first stage."""
    if Path(model).exists() or model.startswith((".", "/", "~")) or not HUB_ID.fullmatch(model):
        return False
    snapshots = hub_cache() / f"models--{model.replace('/', '--')}" / "snapshots"
    return not any((snapshot / "config.json").is_file() for snapshot in snapshots.glob("*"))
