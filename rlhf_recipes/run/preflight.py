"""The preflight step: every check of a recipe that looks beyond the recipe itself, run by `rlhf validate` and
`rlhf run` after the recipe validates and before any model loads.

Validation (config/) checks the recipe's shape and the rules between its fields and reads nothing. What a
setting needs of the world is declared at the setting (`Needs("existing_file")`) and checked here: files and
directories exist and are what they should be, a user's function imports, a model is a classifier, a judge or
a reward model, the installed TRL has each method's trainer and loss, a tracker is installed, the accelerate
config can be read; and the prompts are read once to count the train prompts each method needs. A saved recipe
(recipe.resolved.yaml) therefore validates again where its files are gone.
"""

import contextlib
import re
import tempfile
import typing
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import yaml
from pydantic import BaseModel

import rlhf_recipes.stages.methods  # noqa: F401  (registers the methods a recipe's sections may name)

from ..config.base import Needs
from ..config.labelers import ClassifierLabeler
from ..config.loader import load_recipe, read_yaml, setting_keys, study_problems, study_runs, validator_problem
from ..config.methods import Method
from ..config.schema import PAIR_FILE_SUFFIXES, Model, PairsDataset, Prompts, Recipe
from ..errors import RecipeError
from ..labeling.hub_cache import uncached_hub_id
from ..labeling.judge import check_judge_model
from ..labeling.model_labelers import check_classifier, check_reward_model_directory, classifier_labels
from ..labeling.user_functions import import_function
from ..models.builtin import builtin_gguf_path
from ..models.run_outputs import unbuilt_run
from ..stages.pairs_dataset import pairs_prompts
from ..stages.prompts import prompts
from ..training.installed import module_provides


def checked_recipe(path: Path, overrides: list[str] = ()) -> Recipe:
    """The recipe at `path` with `overrides`, validated (config/loader.py) and preflighted."""
    recipe = load_recipe(path, overrides)
    preflight(recipe, path, swept="sweep" in read_yaml(path))
    return recipe


def preflight(recipe: Recipe, path: Path, swept: bool = False) -> None:
    """Check what `recipe` (and every run of its study) needs of the world; one RecipeError listing every
    problem, as load_recipe's, when something is missing. `swept`: the recipe gives its study as an old
    `sweep:` (a problem of a swept value then names sweep.values)."""
    keys, counter = setting_keys(recipe, swept), TrainPromptCounter()
    runs = study_runs(recipe, recipe.model_dump(mode="json"))
    if runs:
        problems = study_problems(runs, lambda run: recipe_problems(run, keys, counter))
    else:
        problems = recipe_problems(recipe, keys, counter)
    if problems:
        raise RecipeError([f"{path}: {len(problems)} problem(s)"] + problems)


def recipe_problems(recipe: Recipe, keys, counter: "TrainPromptCounter") -> list[str]:
    """Every problem of one run's recipe, each once: its settings' needs, its sections', then its train prompts
    (counted only when nothing else is wrong: the prompts file may be what is missing)."""
    problems = list(dict.fromkeys(section_problems(recipe, [])))
    return problems or train_prompt_problems(recipe, keys, counter)


def section_problems(section: BaseModel, path: list[str]) -> Iterator[str]:
    """The problems of `section` and of every section inside it, at their YAML paths."""
    for name, info in type(section).model_fields.items():
        value = getattr(section, name)
        if value is None:
            continue
        for needs in needs_of(info.annotation, info.metadata):
            problem = checked(NEEDS[needs.check], value)
            if problem:
                yield f"{'.'.join([*path, name])}: {problem}."
                break
        for key, item in inner_sections(value):
            yield from section_problems(item, [*path, name, *key])
    for kind, check in SECTION_CHECKS.items():
        if isinstance(section, kind):
            problem = checked(check, section)
            if problem:
                yield f"{validator_problem(path, type(section), problem)}."


def needs_of(annotation, metadata: list) -> list[Needs]:
    """The Needs declared on a field, in its own metadata or inside its annotation (`ExistingFile | None`)."""
    found = [item for item in metadata if isinstance(item, Needs)]
    for argument in typing.get_args(annotation):
        found += needs_of(argument, []) if not isinstance(argument, Needs) else [argument]
    return found


def inner_sections(value) -> list[tuple[list[str], BaseModel]]:
    """The sections a field holds: itself, or those of a list (composite parts) or a mapping (variants)."""
    if isinstance(value, BaseModel):
        return [([], value)]
    if isinstance(value, list):
        return [([str(index)], item) for index, item in enumerate(value) if isinstance(item, BaseModel)]
    if isinstance(value, dict):
        return [([str(key)], item) for key, item in value.items() if isinstance(item, BaseModel)]
    return []


def checked(check: Callable, value) -> str | None:
    """What `check` says is wrong with `value` (its ValueError or RecipeError), or None."""
    try:
        check(value)
    except ValueError as error:
        return str(error)
    except RecipeError as error:
        return "; ".join(error.problems)
    return None


def shown(path: Path) -> str:
    """A path as a person gave it: relative to the current directory when inside it."""
    path = Path(path)
    return str(path.relative_to(Path.cwd())) if path.is_absolute() and path.is_relative_to(Path.cwd()) else str(path)


# The checks of a setting, by the name its Needs gives; each raises ValueError saying what is wrong and the fix.


def existing_file(path: Path) -> None:
    if not path.is_file():
        raise ValueError(
            f"file {shown(path)!r} not found (relative paths start at {Path.cwd()}). Fix: correct the path"
        )


def existing_path(path: Path) -> None:
    if not path.exists():
        raise ValueError(f"{shown(path)!r} not found (relative paths start at {Path.cwd()}). Fix: correct the path")


def gguf_file(path: Path) -> None:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ValueError(
            f"{shown(path)!r} is not a GGUF file (it starts with {magic!r}, not b'GGUF'). Fix: name a .gguf file"
        )


def model_reference(value: str) -> None:
    """A local model directory that exists, or something shaped like a hub id (`org/name` or `name`)."""
    path = Path(value).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{value!r} is a file; a local model is a directory. Fix: name its directory")
        return
    if value.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", value) or unbuilt_run(path):
        raise ValueError(
            unbuilt_run(path)
            or f"{value!r} is neither an existing directory (relative paths start at {Path.cwd()}) nor a hub id "
            "like org/name. Fix: correct the path or the id"
        )


def pairs_source(source: str) -> None:
    path = Path(source)
    if not path.exists() and (path.suffix in PAIR_FILE_SUFFIXES or source.startswith((".", "/", "~"))):
        raise ValueError(
            f"{source!r} not found (relative paths start at {Path.cwd()}). Fix: give an existing file or directory"
        )
    if path.is_file() and path.suffix not in PAIR_FILE_SUFFIXES:
        raise ValueError(f"{source!r}: a pairs file must be one of {', '.join(PAIR_FILE_SUFFIXES)}. Fix: convert it")


def classifier_model(model: str) -> None:
    if not uncached_hub_id(model):  # not downloaded yet: a run checks it before its first stage
        check_classifier(model)


def installed_trackers(names: list[str]) -> None:
    if not names:
        return
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    installed = set(get_available_reporting_integrations())
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(
                f"{name!r} is not a tracker transformers knows. Fix: use one of {sorted(INTEGRATION_TO_CALLBACK)}"
            )
        if name not in installed and name not in ("azure_ml", "flyte", "kubeflow"):  # found otherwise, at run time
            package = {"azure_ml": "azureml-core"}.get(name, name.replace("_", "-"))
            raise ValueError(f"{name!r} is not installed. Fix: pip install {package}, or remove it from report_to")


NEEDS: dict[str, Callable] = {
    "existing_file": existing_file,
    "existing_path": existing_path,
    "gguf_file": gguf_file,
    "model_reference": model_reference,
    "pairs_source": pairs_source,
    "importable_function": import_function,
    "classifier_model": classifier_model,
    "reward_model_directory": lambda path: check_reward_model_directory(Path(shown(path))),
    "judge_model": check_judge_model,
    "installed_trackers": installed_trackers,
}


# The checks of a whole section, by its class; each raises ValueError (or RecipeError) saying the fix.


def builtin_installed(model: Model) -> None:
    if model.builtin is not None:
        try:
            builtin_gguf_path(model.builtin)
        except RecipeError as error:
            raise ValueError("; ".join(error.problems).removeprefix("model.builtin: ")) from None


def classifier_has_labels(labeler: ClassifierLabeler) -> None:
    if uncached_hub_id(labeler.model):  # not downloaded yet: a run checks its labels before its first stage
        return
    known = classifier_labels(labeler.model)
    for name in [labeler.label] if labeler.label is not None else list(labeler.weights):
        if name not in known:
            raise ValueError(
                f"label {name!r} is not one of {labeler.model}'s labels {sorted(known)}. Fix: use one of those"
            )


def trainer_installed(method: Method) -> None:
    module, _, name = method.TRAINER.partition(":")
    if not module_provides(module, name):
        raise ValueError(
            f"the {method.TITLE} method needs {module}.{name}, which the installed TRL "
            f"({metadata.version('trl')}) does not have. Fix: {method.install_fix()}"
        )
    method.check_installed()


def whole_policies_where_sharded(recipe: Recipe) -> None:
    sharding = sharded_training(recipe.compute.accelerate_config)
    curves = [f"{name}.{method.CURVE_KEY}" for name, method in recipe.methods().items() if method.curve_every()]
    if sharding and (recipe.model.lora or recipe.reward_model.lora):
        raise ValueError(
            f"compute.accelerate_config shards the model across processes ({sharding}), which this tool "
            "supports for full fine-tuning. Fix: with LoRA, use DDP or DeepSpeed ZeRO-2 (recipes/accelerate/)"
        )
    if sharding and curves:
        raise ValueError(
            f"compute.accelerate_config shards the policy across processes ({sharding}), but held-out curves "
            "during training generate from the whole policy. "
            f"Fix: set {' and '.join(f'{key}: null' for key in curves)}"
        )


SECTION_CHECKS: dict[type, Callable] = {
    Model: builtin_installed,
    ClassifierLabeler: classifier_has_labels,
    Method: trainer_installed,
    Recipe: whole_policies_where_sharded,
}


def read_accelerate_config(path: Path) -> dict:
    """An accelerate config file as a dict; ValueError (a preflight problem) when it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"cannot read the accelerate config {path}: {error}. Fix: name a YAML file from `accelerate config`"
        ) from error


def sharded_training(accelerate_config: Path | None) -> str | None:
    """'DeepSpeed ZeRO-3' or 'FSDP' when an accelerate config shards parameters across processes, else None."""
    if accelerate_config is None or not accelerate_config.is_file():
        return None
    config = read_accelerate_config(accelerate_config)
    kind = str(config.get("distributed_type", "")).upper()
    if kind == "FSDP":
        return "FSDP"
    if kind == "DEEPSPEED" and (config.get("deepspeed_config") or {}).get("zero_stage") == 3:
        return "DeepSpeed ZeRO-3"
    return None


def train_prompt_problems(recipe: Recipe, key, counter: "TrainPromptCounter") -> list[str]:
    """Each policy whose step takes more distinct train prompts than the run has (Method.too_few_train_prompts),
    or why the prompts cannot be counted; [] when no method counts its steps in prompts."""
    counted = {name: method for name, method in recipe.methods().items() if method.STEP_PROMPTS}
    if not counted:
        return []
    try:
        train = counter.count(recipe)
    except RecipeError as error:
        return error.problems
    if train is None:
        return []
    problems = [
        method.too_few_train_prompts(key(name, method.STEP_PROMPTS[0]), train) for name, method in counted.items()
    ]
    return [problem for problem in problems if problem]


class TrainPromptCounter:
    """The number of distinct train prompts a run will have, by running its prompts stage (your own pairs:
    pairs_prompts) on the recipe's input into a temporary directory, once per input and seed: reading the
    prompts is the one thing the preflight step does with the data. None for an input on the Hugging Face Hub
    (not read before the run)."""

    def __init__(self):
        self.counted: dict[tuple, int | None] = {}

    def count(self, recipe: Recipe) -> int | None:
        source = recipe.preferences.dataset or recipe.prompts
        if (source, recipe.seed) not in self.counted:
            self.counted[source, recipe.seed] = self._run_stage(source, recipe.seed)
        return self.counted[source, recipe.seed]

    @staticmethod
    def _run_stage(source: Prompts | PairsDataset, seed: int) -> int | None:
        if isinstance(source, PairsDataset):
            if not Path(source.source).exists():
                return None
            stage, arguments = pairs_prompts, {"pairs": source}
        elif source.hub_dataset is not None:
            return None
        else:
            stage, arguments = prompts, {"settings": source}
        with tempfile.TemporaryDirectory() as out_dir, _without_progress_bars(isinstance(source, PairsDataset)):
            return stage(**arguments, seed=seed, out_dir=Path(out_dir))["train"]


@contextlib.contextmanager
def _without_progress_bars(datasets_used: bool):
    """No "Generating train split" bar from datasets in `rlhf validate`'s output."""
    if not datasets_used:
        yield
        return
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            datasets.enable_progress_bars()
