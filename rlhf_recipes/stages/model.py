"""Model stage: the initial policy as a model directory inside the run, when the recipe makes one:
a tiny model built from its corpus, or a GGUF file (given, or built in) de-quantized. A hub id or a
local model directory is used where it is, with no stage."""

import os
import shutil
from pathlib import Path

from ..config.schema import TinyModel
from ..models.gguf_cache import converted_gguf
from ..models.tiny import build_tiny_model
from ..runtime.stage import stage


@stage(version=1, main_only=True)
def model(*, tiny: TinyModel | None = None, gguf: Path | None = None, seed: int | None = None, out_dir: Path) -> dict:
    """Build the tiny model (from `seed`) into out_dir, or link the GGUF file's conversion there.

    A GGUF file is converted once into the shared cache (models/gguf_cache.py); its files are
    hard-linked into out_dir (copied across file systems), so the run directory holds the model it
    started from and later runs of the same file convert nothing.
    """
    if tiny is not None:
        return build_tiny_model(tiny, out_dir, seed)

    converted = converted_gguf(gguf)
    for source in converted.iterdir():
        try:
            os.link(source, out_dir / source.name)
        except OSError:
            shutil.copy2(source, out_dir / source.name)
    return {"gguf": gguf.name, "converted": str(converted)}
