"""Read a recipe: strict YAML, dotted overrides, validation, and error messages a person can act on."""

import copy
import difflib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import RecipeError
from .labelers import Labeler
from .methods import registered_methods
from .schema import Recipe, recipe_class
from .study import condition_folder, method_sections, point_name, repeated_condition_value, repeated_point


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects a key given twice in one mapping (SafeLoader keeps the last silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
# YAML 1.1 reads 1e-3 as a string; accept exponent floats without a dot, as YAML 1.2 and people do.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def read_yaml(path: Path) -> dict:
    """The recipe file as a dict; every way it can be unreadable becomes a RecipeError."""
    if not path.exists():
        raise RecipeError(f"{path}: recipe file not found. Fix: check the path (relative to {Path.cwd()}).")
    if not path.is_file():
        raise RecipeError(f"{path}: is a directory, not a recipe file. Fix: name a .yaml file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start}). Fix: save it as UTF-8."
        ) from error
    except OSError as error:
        raise RecipeError(f"{path}: cannot be read ({error.strerror}).") from error
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise RecipeError(f"{where}: malformed YAML: {problem}. Fix: correct the YAML syntax there.") from error
    if data is None:
        raise RecipeError(f"{path}: the recipe is empty. Fix: start from recipes/smoke.yaml.")
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: the recipe must be a mapping of sections (name:, model:, ...), got a {type(data).__name__}."
        )
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides to a copy of the raw recipe; each value is parsed as YAML.

    `ppo.kl_coef=0.1` sets a float, `dpo=null` removes the DPO section, `ppo={}` adds PPO with defaults.
    """
    data = copy.deepcopy(data)
    problems = []
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or not all(key.strip().split(".")):
            problems.append(f"override {override!r}: not of the form key.path=value. Fix: e.g. ppo.kl_coef=0.1")
            continue
        try:
            value = yaml.load(raw_value, Loader=_StrictLoader)
        except yaml.YAMLError:
            value = raw_value
        problem = set_key(data, current_key(key.strip()), value)
        if problem:
            problems.append(f"override {override!r}: {problem}")
    if problems:
        raise RecipeError(problems)
    return data


def set_key(data: dict, dotted_key: str, value) -> str | None:
    """Set data[a][b][c] = value for "a.b.c", creating sections on the way; a problem to report, or None."""
    parts = dotted_key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            return f"{'.'.join(parts[: depth + 1])} is a value, not a section, so it has no keys to set."
        node = node[part]
    node[parts[-1]] = value
    return None


# Sections renamed so that each stage has one name; recipes written with the old names stay valid.
RENAMED_SECTIONS = {"sampling": "samples", "reward": "reward_model"}


def current_key(dotted_key: str) -> str:
    """A dotted key with an old section name replaced by the current one: reward.epochs -> reward_model.epochs."""
    section, dot, rest = dotted_key.partition(".")
    return RENAMED_SECTIONS.get(section, section) + dot + rest


def rename_old_sections(data: dict) -> dict:
    """The raw recipe with old section names (and a sweep key that uses one) replaced by the current ones."""
    data = dict(data)
    for old, new in RENAMED_SECTIONS.items():
        if old in data:
            if new in data:
                raise RecipeError(
                    f"{old}: is the old name of {new}:, and the recipe has both. Fix: merge them into {new}:."
                )
            data[new] = data.pop(old)
    sweep = data.get("sweep")
    if isinstance(sweep, dict) and isinstance(sweep.get("key"), str):
        data["sweep"] = sweep | {"key": current_key(sweep["key"])}
    return data


def sweep_as_study(data: dict) -> dict:
    """The raw recipe with an old `sweep: {key, values, seeds}` replaced by the study it means: a key of a
    policy's own section (ppo.kl_coef, variants.dpo_ipo.beta) becomes that policy's grid knob, any other key
    (preferences.label_flip_prob) a condition; seeds stay seeds."""
    sweep = data.get("sweep")
    if not isinstance(sweep, dict):
        return data
    if "study" in data:
        raise RecipeError("sweep: is the old form of study:, and the recipe has both. Fix: move the sweep into study:")
    data = {key: value for key, value in data.items() if key != "sweep"}
    unknown = sorted(set(sweep) - {"key", "values", "seeds"})
    if unknown:
        raise RecipeError(f"sweep: unknown key(s) {', '.join(unknown)}. Fix: use key, values and seeds, or study:")
    study = {"seeds": sweep["seeds"]} if "seeds" in sweep else {}
    key, values = sweep.get("key"), sweep.get("values")
    if (key is None) != (values is None):
        raise RecipeError("sweep: key and values go together. Fix: give both, or neither (a sweep over seeds only)")
    if key is not None:
        study |= _swept_key(data, str(key), values)
    return data | {"study": study}


def _swept_key(data: dict, key: str, values) -> dict:
    """The grid or condition a sweep's key and values mean, checked as the user wrote them (sweep.key, sweep.values)."""
    parts = key.split(".")
    methods = {cls.stage for cls in registered_methods() if data.get(cls.stage) is not None}
    variants = data.get("variants") or {}
    if len(parts) == 2 and parts[0] in methods:
        (policy, knob), meant = parts, "grid"
    elif len(parts) == 3 and parts[0] == "variants" and parts[1] in variants:
        (_, policy, knob), meant = parts, "grid"
    elif parts[0] in method_sections() or parts[0] == "variants":
        raise RecipeError(
            f"sweep.key: {key} is a setting of a policy the recipe does not train (it trains "
            f"{', '.join([*methods, *variants]) or 'none'}). Fix: add that policy, or sweep a setting of one it trains"
        )
    else:
        meant = "condition"
    if isinstance(values, list):
        repeat = repeated_point(policy, knob, values) if meant == "grid" else repeated_condition_value(key, values)
        if repeat:
            raise RecipeError(f"sweep.values: {repeat}")
    if meant == "grid":
        return {"grid": {policy: {knob: values}}}
    return {"condition": {"key": key, "values": values}}


def load_recipe(path: Path, overrides: list[str] = ()) -> Recipe:
    """Read, override and validate a recipe (and every run of its study); raise one RecipeError listing every
    problem. What the recipe needs of the world (its files, models, installed packages, enough train prompts)
    is the preflight step's to check (run/preflight.py)."""
    raw = apply_overrides(rename_old_sections(read_yaml(path)), list(overrides))
    data = sweep_as_study(raw)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as error:
        problems = merged(describe_errors(error))
        raise RecipeError([f"{path}: {len(problems)} problem(s)"] + problems) from None
    problems = study_problems(study_runs(recipe, data), lambda run: [])  # each run of a study validates too
    if problems:
        raise RecipeError([f"{path}: {len(problems)} problem(s)"] + problems)
    return recipe


def study_problems(runs: list["StudyRun"], check: Callable[[Recipe], list[str]]) -> list[str]:
    """Every problem of a study's runs, each once with the runs that have it: the run's validation errors, or
    what `check` finds in the validated run."""
    by_problem: dict[str, list[str]] = {}  # a problem -> the study runs that have it
    for run in runs:
        try:
            lines = check(Recipe.model_validate(run.data))
        except ValidationError as error:
            lines = describe_errors(error)
        for line in lines:
            by_problem.setdefault(line, []).append(run.label)
    return [
        f"study (every run): {line}" if len(labels) == len(runs) else f"study runs {', '.join(labels)}: {line}"
        for line, labels in by_problem.items()
    ]


def setting_keys(recipe: Recipe, swept: bool) -> Callable[[str, str], str]:
    """key(policy, setting): where the user wrote a setting of a policy of the recipe or of one of its study runs:
    ppo.kl_coef, variants.dpo_ipo.beta, or for a grid point's knob study.grid.dpo.beta (sweep.values in an old
    sweep:)."""
    grid = recipe.study.grid if recipe.study else {}
    points = {point_name(p, k, v): (p, k) for p, knobs in grid.items() for k, values in knobs.items() for v in values}

    def key(name: str, setting: str) -> str:
        policy, knob = points.get(name, (name, None))
        if setting == knob:
            return "sweep.values" if swept else f"study.grid.{policy}.{knob}"
        return f"{policy}.{setting}" if policy in method_sections() else f"variants.{policy}.{setting}"

    return key


@dataclass(frozen=True)
class StudyRun:
    """One run of a study: its directory under the study's (`seed-0`, `label_flip_prob-0.2/seed-0`,
    `training-seed-3`), the condition's value (None without a condition), the seed, the training seed (the
    seed itself unless training_seed is set), and the raw recipe it runs (without study:)."""

    label: str
    condition: Any
    seed: int
    training_seed: int
    data: dict


def study_runs(recipe: Recipe, data: dict) -> list[StudyRun]:
    """Every run of the recipe's study, conditions outermost; [] for a recipe without one."""
    study = recipe.study
    if study is None:
        return []
    base = grid_as_variants({key: value for key, value in data.items() if key != "study"}, study.grid)
    values = study.condition.values if study.condition else [None]
    runs = []
    for value in values:
        for folder, sets in replicates(recipe):
            run = copy.deepcopy(base) | sets
            seed, trained = sets.get("seed", recipe.seed), sets.get("training_seed", recipe.training_seed)
            if study.condition:
                problem = set_key(run, study.condition.key, value)
                if problem:
                    raise RecipeError(f"study.condition.key: {problem}")
                folder = f"{condition_folder(study.condition.key, value)}/{folder}"
            runs.append(StudyRun(folder, value, seed, seed if trained is None else trained, run))
    return runs


def replicates(recipe: Recipe) -> list[tuple[str, dict]]:
    """Each replicate of a study's runs: its folder and the key it sets, a seed (whole runs) or a training
    seed (training on the data of the recipe's seed)."""
    study = recipe.study
    if study.training_seeds:
        return [(f"training-seed-{seed}", {"training_seed": seed}) for seed in study.training_seeds]
    return [(f"seed-{seed}", {"seed": seed}) for seed in study.seeds or [recipe.seed]]


def grid_as_variants(data: dict, grid: dict[str, dict[str, list]]) -> dict:
    """The raw recipe with each gridded policy replaced by one variant per value of its knob."""
    data = copy.deepcopy(data)
    variants = dict(data.get("variants") or {})
    for name, knobs in grid.items():
        ((knob, values),) = knobs.items()
        section = variants.pop(name) if name in variants else {"method": name} | (data.pop(name) or {})
        for value in values:
            variants[point_name(name, knob, value)] = section | {knob: value}
    return data | {"variants": variants}


def merged(problems: list[str]) -> list[str]:
    """Problems that say the same thing of several keys, as one line naming them all ("a, b: message"), so
    that two settings reading one missing run give one error."""
    by_message: dict[str, list[str]] = {}
    for line in problems:
        key, _, message = line.partition(": ")
        by_message.setdefault(message or key, []).append(key if message else "")
    return [f"{', '.join(keys)}: {message}" if all(keys) else message for message, keys in by_message.items()]


def describe_errors(error: ValidationError) -> list[str]:
    """One line per pydantic error: YAML path, the value received, the rule, and the fix."""
    return [_describe(item) for item in error.errors(include_url=False)]


def _describe(item: dict) -> str:
    path, parent, node = _walk(item["loc"])
    where = ".".join(path) or "(top level)"
    kind, message = item["type"], item["msg"]
    value = item.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(path, parent, value)
    if kind == "missing":
        hint = _field_description(parent, path[-1])
        return f"{where}: required key is missing. Fix: add {path[-1]}:" + (f" ({hint})" if hint else "")
    if kind == "union_tag_not_found":
        return _missing_tag(where, item["ctx"]["discriminator"].strip("'"))
    if kind.startswith("union_tag"):
        ctx = item.get("ctx", {})
        tags = [tag.strip(" '") for tag in ctx.get("expected_tags", "").split(",")]
        guess = _closest(str(ctx.get("tag", "")), tags)
        tag = "method" if where.startswith("variants") else "kind"
        return f"{where}.{tag}: {message}." + (f" Did you mean {guess!r}?" if guess else "")
    if message.startswith("Value error, "):
        return f"{validator_problem(path, node, message.removeprefix('Value error, '))}."
    received = f"got {value!r}" + (f" ({type(value).__name__})" if not isinstance(value, dict) else "")
    fix = ""
    if kind == "literal_error":
        expected = [option.strip(" '") for option in item["ctx"]["expected"].replace(" or ", ",").split(",")]
        guess = _closest(str(value), expected)
        fix = f" Did you mean {guess!r}?" if guess else ""
    hint = _field_description(parent, path[-1]) if path else None
    return f"{where}: {received}; {message[0].lower() + message[1:]}.{fix}" + (f" ({hint})" if hint else "")


def validator_problem(path: list[str], node: Any, text: str) -> str:
    """A validator's message at the path of its section; one that starts with a key of that section
    ("grid.dpo.beta: ...", or with names, "variants dpo, plots: ...") names that key in full instead."""
    head, colon, rest = text.partition(": ")
    if colon and re.fullmatch(KEY_AT_START, head) and re.split(r"[. ]", head)[0] in getattr(node, "model_fields", {}):
        return f"{'.'.join([*path, head])}: {rest}"
    return f"{'.'.join(path) or '(top level)'}: {text}"


KEY_AT_START = r"[a-z_][\w.+-]*( [\w.+-]+(, [\w.+-]+)*)?"  # grid.dpo.beta, or variants dpo, plots


def _missing_tag(where: str, tag: str) -> str:
    """A variant without `method:`, a labeler without `kind:`: name the key and what it may be."""
    if tag == "method":
        options = [method.stage for method in registered_methods()]
        what = "a variant needs method: naming one of the methods"
    else:
        options, what = list(_Tagged(list(_flatten(Labeler))).members), "a labeler needs kind: naming one of the kinds"
    return f"{where}.{tag}: missing; {what}: {', '.join(options)}. Fix: add {tag}: with one of them."


def _unknown_key(path: list[str], parent: type[BaseModel] | None, value: Any) -> str:
    key, section = path[-1], ".".join(path[:-1]) or "the top level"
    allowed = sorted(parent.model_fields) if parent else []
    own = _own_key(parent, key)
    if own:
        return (
            f"{'.'.join(path)}: {key!r} is not a {parent.TITLE} setting; {parent.TITLE} names it {own!r} "
            f"({_field_description(parent, own).rstrip('.')}). Fix: write {section}.{own}: {value!r}"
        )
    owners = [method for method in registered_methods() if method is not parent and key in method.model_fields]
    if parent in registered_methods() and owners:
        if len(owners) == 1:
            return (
                f"{'.'.join(path)}: {key!r} is a {owners[0].TITLE} setting, not valid under {section}. "
                f"Fix: move it under {owners[0].stage}:."
            )
        return (
            f"{'.'.join(path)}: {key!r} is a setting of {', '.join(m.TITLE for m in owners)}, not of "
            f"{parent.TITLE}. Fix: move it under one of {', '.join(m.stage + ':' for m in owners)} or remove it."
        )
    for tag, member in _Tagged(list(_flatten(Labeler))).members.items():
        if parent is not member and parent in _flatten(Labeler) and key in member.model_fields:
            this_kind = typing.get_args(parent.model_fields["kind"].annotation)[0]
            return (
                f"{'.'.join(path)}: {key!r} is a setting of labeler kind {tag!r}, but this labeler is kind "
                f"{this_kind!r}. Fix: remove it, or set {section}.kind: {tag}."
            )
    guess = _closest(key, allowed)
    suggestion = f"Did you mean {guess!r}? " if guess else ""
    return (
        f"{'.'.join(path)}: unknown key (value {value!r}). {suggestion}Allowed under {section}: {', '.join(allowed)}."
    )


def _own_key(parent: Any, key: str) -> str | None:
    """The key of method `parent` for what another method calls `key`: PPO's held-out curve is
    eval_every_updates where the others have eval_every_steps; None when there is none."""
    methods = registered_methods()
    if parent in methods and key not in parent.model_fields and key in {m.CURVE_KEY for m in methods}:
        return parent.CURVE_KEY
    return None


def _walk(loc: tuple) -> tuple[list[str], Any, Any]:
    """Turn a pydantic error location into a YAML path, and find the model class that holds its last key
    and the model (or union, or mapping) at the path itself.

    Discriminated unions add their tag to the location (labeler.length.target_words); it is dropped here.
    """
    path: list[str] = []
    node: Any = recipe_class()
    parent = node
    for part in loc:
        if isinstance(node, _Tagged) and part in node.members:
            node = node.members[part]  # a discriminator tag: not part of the YAML path
            continue
        if isinstance(node, _Keyed):  # a key of a mapping of sections (variants: name -> section)
            path.append(str(part))
            node = node.value
            continue
        parent = node
        path.append(str(part))
        field = getattr(node, "model_fields", {}).get(part) if isinstance(part, str) else None
        node = _model_in(field.annotation) if field is not None else None
    return path, parent, node


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation like `Ppo | None`; a _Tagged for a discriminated union; a
    _Keyed for a mapping of sections."""
    if typing.get_origin(annotation) is dict:
        return _Keyed(_model_in(typing.get_args(annotation)[1]))
    candidates = [arg for arg in _flatten(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
    if len(candidates) == 1:
        return candidates[0]
    return _Tagged(candidates) if candidates else None


def _flatten(annotation: Any) -> list:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(annotation) for leaf in _flatten(arg)]
    return [annotation]


class _Tagged:
    """Stands for a discriminated union (a labeler on `kind`, a variant on `method`) while walking an error
    location."""

    def __init__(self, members: list[type[BaseModel]]):
        tag = "kind" if "kind" in members[0].model_fields else "method"
        self.members = {typing.get_args(m.model_fields[tag].annotation)[0]: m for m in members}


class _Keyed:
    """Stands for a mapping of names to sections (`variants:`) while walking an error location."""

    def __init__(self, value: Any):
        self.value = value


def _field_description(parent: Any, key: str) -> str | None:
    field = getattr(parent, "model_fields", {}).get(key)
    return field.description if field is not None else None


def _closest(word: str, options: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None
