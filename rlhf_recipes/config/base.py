"""What every recipe section shares: the strict base class and the few checked types of values."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, types are not coerced, and every number is finite
    (YAML reads .inf and .nan as floats, and 1e999 overflows to inf: each would fail only in training)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Needs:
    """What a setting needs of the world beyond the recipe (a file that exists, a module that imports, a model
    that is a classifier), declared at the setting and checked by the preflight step (run/preflight.py) before
    any model loads; never by validation, so that a saved recipe reads back where its files are gone. `check`
    names the check."""

    check: str


# YAML gives strings; paths are the one place a string is converted (to an absolute path), and then checked.
ExistingFile = Annotated[Path, Field(strict=False), AfterValidator(Path.resolve), Needs("existing_file")]
ExistingPath = Annotated[Path, Field(strict=False), AfterValidator(Path.resolve), Needs("existing_path")]
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]


def _seed_below_2_32(seed: int) -> int:
    # NumPy (and so transformers' set_seed) takes no seed from 2**32 up: a millisecond timestamp would pass
    # validation and fail at the first training stage.
    if seed >= 2**32:
        raise ValueError(
            f"got {seed}; a seed must be below 2**32 = {2**32} (NumPy takes no larger one). Fix: use a smaller seed, "
            f"e.g. {seed % 2**32} (this one modulo 2**32)"
        )
    return seed


Seed = Annotated[int, Field(ge=0), AfterValidator(_seed_below_2_32)]


class Lora(Section):
    """LoRA adapters: train low-rank updates of chosen weight matrices instead of all weights."""

    rank: PositiveInt = Field(16, description="r, the rank of each update.")
    alpha: PositiveFloat = Field(32.0, description="lora_alpha; updates are scaled by alpha / rank.")
    dropout: Annotated[float, Field(ge=0, lt=1)] = Field(0.05, description="Dropout on the adapter's input.")
    target_modules: Literal["all-linear"] | Annotated[list[str], Field(min_length=1)] = Field(
        "all-linear", description="Names of the modules to adapt (e.g. [q_proj, v_proj]), or all-linear."
    )
