"""A study: the recipe run once per seed, or once per training seed on the data of one seed (and per value of
an optional condition), each run training one policy per point of a grid of method knobs. The grid generates
named variants (config/schema.py's `variants:`), so a study is an ordinary recipe per seed and everything a
run shares (samples, reward model) is built once per seed. How the runs are laid out and compared:
run/study.py, reporting/study.py.
"""

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from .base import PositiveFloat, Section

Scalar = float | int | str | bool
Values = Annotated[list[Scalar], Field(min_length=1)]
Seeds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
TrainingSeeds = Annotated[list[Annotated[int, Field(ge=0, lt=2**32)]], Field(min_length=1)]


class Condition(Section):
    """A recipe key outside every method (label noise, pairs per prompt, ...) set to each of several values;
    each value is its own set of seed runs, and the report compares methods within each."""

    key: str = Field(description="Dotted recipe key, e.g. preferences.label_flip_prob.")
    values: Values = Field(description="The key's values, one set of seed runs each.")

    @model_validator(mode="after")
    def _distinct(self):
        if len(self.values) != len({str(v) for v in self.values}):
            raise ValueError("values repeat. Fix: list each value once")
        if self.key.split(".")[0] in ("seed", "training_seed", "name", "study", "variants"):
            raise ValueError(
                f"{self.key} cannot be a condition. Fix: seeds go in study.seeds or study.training_seeds, a "
                "policy's knob in study.grid"
            )
        return self


class Study(Section):
    """Each method's strength knob over a list of values, times seeds or training seeds, compared on frontiers."""

    seeds: Seeds | None = Field(
        None, description="A run per seed: its own samples, labels, reward model and policies; default: [seed]."
    )
    training_seeds: TrainingSeeds | None = Field(
        None,
        description="A run per training seed, all on the data and reward model of `seed` (study.seeds must then "
        "be unset): the spread of the methods given the data.",
    )
    grid: dict[str, dict[str, Values]] = Field(
        {},
        description="Policy name (a method section or a variant) -> {knob: values}: one policy per value, named "
        "<policy>_<knob>_<value>, e.g. {dpo: {beta: [0.01, 0.1, 1.0]}, ppo: {kl_coef: [0.02, 0.1, 0.5]}}. "
        "One knob per policy (a frontier is drawn along it); policies not named train once, as set.",
    )
    condition: Condition | None = Field(
        None, description="A non-method key to vary as well; methods are compared within each of its values."
    )
    kl_budgets: Annotated[list[PositiveFloat], Field(min_length=1)] = Field(
        [1.0, 2.0, 4.0, 8.0],
        description="KL (nats) at which the verdict table reads every method's gold-vs-KL frontier.",
        json_schema_extra={"output_neutral": True},
    )

    detect_gold_difference: PositiveFloat = Field(
        0.1,
        description="The gold difference the report's power statement sizes replicates for: how many seeds (or "
        "training seeds) detect it with 80% power at the 5% level, in gold units (VADER sentiment: [-1, 1]).",
        json_schema_extra={"output_neutral": True},
    )

    @field_validator("seeds", "training_seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        repeated = sorted({seed for seed in seeds or [] if seeds.count(seed) > 1})
        if repeated:
            shown = ", ".join(map(str, repeated))
            raise ValueError(f"{shown} listed more than once; each seed is one run. Fix: list each seed once")
        return seeds

    @model_validator(mode="after")
    def _one_kind_of_replicate(self):
        if self.seeds is not None and self.training_seeds is not None:
            raise ValueError(
                f"seeds {self.seeds} and training_seeds {self.training_seeds}: a study replicates either whole runs "
                "(seeds) or training (training_seeds). Fix: keep seeds (each its own data and reward model) or "
                "training_seeds (all on the data of the recipe's seed), not both"
            )
        return self

    @model_validator(mode="after")
    def _one_knob_per_policy(self):
        for name, knobs in self.grid.items():
            if len(knobs) != 1:
                raise ValueError(
                    f"grid.{name} varies {len(knobs)} knobs ({', '.join(knobs) or 'none'}); a frontier follows one. "
                    f"Fix: name one knob, and make a variant for each setting of the others"
                )
            (values,) = knobs.values()
            if len(values) != len({str(v) for v in values}):
                raise ValueError(f"grid.{name}: values repeat. Fix: list each value once")
        if not self.grid and self.seeds is None and self.training_seeds is None and self.condition is None:
            raise ValueError(
                "the study varies nothing. Fix: add seeds, training_seeds, a grid or a condition, or remove study:"
            )
        return self


def point_name(policy: str, knob: str, value: Scalar) -> str:
    """The policy a grid point trains: dpo_beta_0.1, ppo_kl_coef_0.05, rsft_rounds_2."""
    shown = format(value, "g") if isinstance(value, float) else str(value).lower()
    return f"{policy}_{knob}_{shown}"
