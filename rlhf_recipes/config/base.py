"""What every recipe section shares: the strict base class and the few checked types of values."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} not found (relative paths start at {Path.cwd()}). Fix: correct the path")
    return path.resolve()


def _existing_path(path: Path) -> Path:
    if not path.exists():
        raise ValueError(f"{str(path)!r} not found (relative paths start at {Path.cwd()}). Fix: correct the path")
    return path.resolve()


# YAML gives strings; paths are the one place a string is converted, and then checked.
ExistingFile = Annotated[Path, Field(strict=False), AfterValidator(_existing_file)]


ExistingPath = Annotated[Path, Field(strict=False), AfterValidator(_existing_path)]
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Lora(Section):
    """LoRA adapters: train low-rank updates of chosen weight matrices instead of all weights."""

    rank: PositiveInt = Field(16, description="r, the rank of each update.")
    alpha: PositiveFloat = Field(32.0, description="lora_alpha; updates are scaled by alpha / rank.")
    dropout: Annotated[float, Field(ge=0, lt=1)] = Field(0.05, description="Dropout on the adapter's input.")
    target_modules: Literal["all-linear"] | Annotated[list[str], Field(min_length=1)] = Field(
        "all-linear", description="Names of the modules to adapt (e.g. [q_proj, v_proj]), or all-linear."
    )
