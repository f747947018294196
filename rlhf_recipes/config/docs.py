"""Render the recipe reference (docs/recipe.md) from the schema, so each field is documented once, with the
sections of the registered methods: `rlhf reference > docs/recipe.md`."""

import inspect
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .base import Lora
from .labelers import Labeler, WeightedLabeler
from .methods import registered_methods
from .schema import (
    Compute,
    Ensemble,
    Evaluation,
    Model,
    PairsDataset,
    Preferences,
    Prompts,
    RewardModel,
    Samples,
    Sft,
    TinyModel,
    recipe_class,
)
from .study import Condition, Study


def _type_name(annotation) -> str:
    """A short, table-safe name: 'number', 'path or null', "one of 'k1', 'k3'", 'section'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = list(dict.fromkeys(_type_name(arg) for arg in args))
        return " or ".join(names)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of name to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if isinstance(annotation, typing.TypeAliasType if hasattr(typing, "TypeAliasType") else ()):
        return _type_name(annotation.__value__)
    names = {type(None): "null", float: "number", int: "integer", str: "text", bool: "true/false", Path: "path"}
    return names.get(annotation, str(annotation))


def _section(title: str, model: type[BaseModel]) -> list[str]:
    lines = [
        f"## `{title}`",
        "",
        inspect.cleandoc(model.__doc__ or ""),
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        default = "required" if field.default is PydanticUndefined else f"`{field.default!r}`"
        if isinstance(field.default, BaseModel):
            default = "see below"
        lines.append(f"| `{name}` | {_type_name(field.annotation)} | {default} | {field.description or ''} |")
    return lines + [""]


def render() -> str:

    lines = [
        "# Recipe reference",
        "",
        "Generated from the schema (`rlhf_recipes/config/`, each method's section in its module in "
        "`rlhf_recipes/stages/`) by `rlhf reference`; a test keeps it current.",
        "Unknown keys are errors everywhere. Relative paths start at the current working directory.",
        "",
    ]
    lines += _section("(top level)", recipe_class())
    for title, model in (
        ("model", Model),
        ("model.tiny", TinyModel),
        ("model.lora` and `reward_model.lora", Lora),
        ("prompts", Prompts),
        ("sft", Sft),
        ("samples", Samples),
    ):
        lines += _section(title, model)
    for member in typing.get_args(typing.get_args(Labeler)[0]):
        kind = typing.get_args(member.model_fields["kind"].annotation)[0]
        lines += _section(f"labeler` with `kind: {kind}", member)
    lines += _section("parts[]", WeightedLabeler)
    for title, model in (
        ("preferences", Preferences),
        ("preferences.dataset", PairsDataset),
        ("reward_model", RewardModel),
        ("reward_model.ensemble", Ensemble),
    ):
        lines += _section(title, model)
    lines += [
        "## Training methods",
        "",
        "Each method section trains one policy of the method's name. Under `variants:`, each key names a",
        "further policy and its `method:` says which method trains it, with that method's keys beside it.",
        "What each method optimises, what it reads and what it costs: [method.md](method.md).",
        "",
    ]
    for model in registered_methods():
        lines += _section(f"{model.stage}` — also `variants.<name>` with `method: {model.stage}", model)
    for title, model in (("evaluation", Evaluation), ("compute", Compute)):
        lines += _section(title, model)
    lines += [
        "## Studies",
        "",
        "A `study:` runs the recipe once per seed, or once per training seed on the data of one seed (and per",
        "value of `condition`), each run training one policy per value of each `grid` knob; its report compares",
        "the methods over those replicates. The old one-key `sweep: {key, values, seeds}` is still read: a key",
        "of a policy's own section becomes its grid knob, any other key a condition. How the comparison is",
        "computed: [method.md](method.md#studies).",
        "",
    ]
    lines += _section("study", Study) + _section("study.condition", Condition)
    return "\n".join(lines).rstrip() + "\n"
