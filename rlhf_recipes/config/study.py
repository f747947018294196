"""A study: the recipe run once per seed, or once per training seed on the data of one seed (and per value of
an optional condition), each run training one policy per point of a grid of method knobs. The grid generates
named variants (config/schema.py's `variants:`), so a study is an ordinary recipe per seed and everything a
run shares (samples, reward model) is built once per seed. How the runs are laid out and compared:
run/study.py, reporting/study.py.
"""

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from .base import PositiveFloat, Section, Seed
from .methods import registered_methods

Scalar = float | int | str | bool
Values = Annotated[list[Scalar], Field(min_length=1)]
Seeds = Annotated[list[Seed], Field(min_length=1)]


def method_sections() -> set[str]:
    """The names of the registered methods' sections (ppo, dpo, ...)."""
    return {method.stage for method in registered_methods()}


class Condition(Section):
    """A recipe key outside every method (label noise, pairs per prompt, ...) set to each of several values;
    each value is its own set of seed runs, and the report compares methods within each."""

    key: str = Field(description="Dotted recipe key outside the methods, e.g. preferences.label_flip_prob.")
    values: Values = Field(description="The key's values, one set of seed runs each.")

    @model_validator(mode="after")
    def _distinct(self):
        problem = repeated_condition_value(self.key, self.values)
        if problem:
            raise ValueError(f"values: {problem}")
        return self

    @model_validator(mode="after")
    def _outside_the_methods(self):
        section, _, setting = self.key.partition(".")
        if section in ("seed", "training_seed", "name", "study"):
            raise ValueError(
                f"key: {self.key} cannot be a condition. Fix: seeds go in study.seeds or study.training_seeds"
            )
        if section in method_sections() or section == "variants":
            policy, _, knob = setting.partition(".") if section == "variants" else (section, "", setting)
            raise ValueError(
                f"key: {self.key} is a setting of the policy {policy}; a condition varies a key outside the methods "
                f"(the data, the labels, the reward model). Fix: vary a policy's setting in study.grid, "
                f"e.g. study: {{grid: {{{policy}: {{{knob or '<setting>'}: {self.values}}}}}}}"
            )
        return self


def condition_folder(key: str, value: Scalar) -> str:
    """The folder of a condition's value in a study: label_flip_prob-0.2."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{key.split('.')[-1]}-{value}")


def repeated_condition_value(key: str, values: list[Scalar]) -> str | None:
    """The problem when two values of a condition make the same runs: equal once typed (1 and 1.0), or written
    to one folder ('a b' and 'a_b'); None when each value is its own."""
    for index, value in enumerate(values):
        folder = condition_folder(key, value)
        twin = next((v for v in values[:index] if v == value or condition_folder(key, v) == folder), None)
        if twin is not None:
            return f"{twin!r} and {value!r} are one value here (one run folder, {folder}). Fix: list each value once"
    return None


def repeated_point(policy: str, knob: str, values: list[Scalar]) -> str | None:
    """The problem when two values of a grid knob make one policy (YAML types 1 and 1.0 apart, but both make
    dpo_beta_1); None when each value is its own policy."""
    for index, value in enumerate(values):
        point = point_name(policy, knob, value)
        twin = next((v for v in values[:index] if point_name(policy, knob, v) == point), None)
        if twin is not None:
            return (
                f"{twin!r} and {value!r} are one grid point, the policy {point} (a point's policy is named by its "
                "value). Fix: list each value once"
            )
    return None


class Study(Section):
    """Each method's strength knob over a list of values, times seeds or training seeds, compared on frontiers."""

    seeds: Seeds | None = Field(
        None, description="A run per seed: its own samples, labels, reward model and policies; default: [seed]."
    )
    training_seeds: Seeds | None = Field(
        None,
        description="A run per training seed, all on the data and reward model of `seed` (study.seeds must then "
        "be unset): the spread of the methods given the data.",
    )
    grid: dict[str, dict[str, Values]] = Field(
        {},
        description="Policy name (a method section or a variant) -> {knob: values}: one policy per value, named "
        "<policy>_<knob>_<value>, e.g. {dpo: {beta: [0.01, 0.1, 1.0]}, ppo: {kl_coef: [0.02, 0.1, 0.5]}}. "
        "One knob per policy (a frontier is drawn along it); policies not named train once, as set. Each value "
        "names its own policy (1 and 1.0 would both make dpo_beta_1), a name no variant may have already.",
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
            ((knob, values),) = knobs.items()
            problem = repeated_point(name, knob, values)
            if problem:
                raise ValueError(f"grid.{name}.{knob}: {problem}")
        if not self.grid and self.seeds is None and self.training_seeds is None and self.condition is None:
            raise ValueError(
                "the study varies nothing. Fix: add seeds, training_seeds, a grid or a condition, or remove study:"
            )
        return self


def point_name(policy: str, knob: str, value: Scalar) -> str:
    """The policy a grid point trains: dpo_beta_0.1, ppo_kl_coef_0.05, rsft_rounds_2. Values that YAML types
    differently can name one policy: 1 and 1.0 both make dpo_beta_1."""
    shown = format(value, "g") if isinstance(value, float) else str(value).lower()
    return f"{policy}_{knob}_{shown}"
