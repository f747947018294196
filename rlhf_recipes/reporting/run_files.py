"""What `rlhf report` and `rlhf compare` read, read defensively. A file that is missing, not UTF-8, cut short
or of another kind is a RecipeError (exit 2) naming the file and what rebuilds it, never a traceback; what a
run directory must hold for its report, and what a run's metrics.json must hold to be compared or summarised
in a study, are checked here and nowhere else."""

import json
from pathlib import Path

from pydantic import ValidationError

import rlhf_recipes.stages.methods  # noqa: F401  (registers the methods a recipe's sections may name)

from ..config.loader import describe_errors, rename_old_sections
from ..config.schema import Recipe
from ..errors import RecipeError

MISSING = object()  # read_json without a default: the file must exist
# The columns of evaluation/generations.jsonl (stages/evaluation.py, answer); gold is None without a gold judge.
GENERATION_KEYS = ("policy", "prompt_index", "prompt", "response", "gold", "reward_model", "kl", "words")
# What `rlhf compare` and a study read of a run's metrics.json (reporting/compare.py, reporting/study.py).
COMPARED_KEYS = ("name", "seed", "labeler", "policies", "best_of_n", "costs", "reward_model.heldout_accuracy")
COMPARED_POLICY_KEYS = ("gold_mean", "reward_model_mean", "kl_mean", "win_rate_vs_reference")
COMPARED_COST_KEYS = ("training_generations", "training_seconds")

# The layout of a run's metrics.json (analysis.py writes it, without_gold.py too).
SCHEMA_VERSION = 3  # 2: implicit_rewards per policy, methods; 3: intervals over prompts, overoptimization, power


def rerun(directory: Path, force: str | None = None) -> str:
    """The command that finishes the run (or study) in `directory` from its own resolved recipe, reusing
    every finished stage; with `force`, rebuilding that stage and those that read it."""
    command = f"rlhf run {directory / 'recipe.resolved.yaml'} --output-dir {directory}"
    return f"`{command}{f' --force {force}' if force else ''}`"


def fix_for(path: Path) -> str:
    """What rebuilds a file: the stage that wrote it (a file in a stage directory of a run), `rlhf report` (a
    run's or a study's metrics.json), or running the run again (the rest of what `rlhf run` writes)."""
    directory = path.parent
    if (directory.parent / "run.json").is_file():
        return f"Fix: rebuild the {directory.name} stage: {rerun(directory.parent, directory.name)}."
    if path.name == "recipe.resolved.yaml":
        return f"Fix: run your recipe into it again: `rlhf run RECIPE --output-dir {directory}` (stages are reused)."
    if path.name == "metrics.json":
        return f"Fix: `rlhf report {directory}` rebuilds it from the run's files."
    return f"Fix: {rerun(directory)} writes it again (finished stages are reused)."


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: not found. {fix_for(path)}") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: is a directory, not a file. {fix_for(path)}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not UTF-8 text (damaged, or another tool's file). {fix_for(path)}") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot be read ({error.strerror}). {fix_for(path)}") from None


def read_json(path: Path, default=MISSING, kind: type = dict):
    """The JSON value in `path`, which must be a `kind` (dict or list); `default` when the file does not exist,
    if one is given."""
    if default is not MISSING and not path.exists():
        return default
    text = read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        where = "empty" if not text.strip() else f"not valid JSON at line {error.lineno} column {error.colno}"
        raise RecipeError(f"{path}: {where} (cut short, or not written by rlhf-recipes). {fix_for(path)}") from None
    if not isinstance(value, kind):
        raise RecipeError(
            f"{path}: holds a JSON {json_type(value)}, not the {json_type(kind())} rlhf-recipes writes there. "
            + fix_for(path)
        )
    return value


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of `path`, one a line."""
    rows = []
    for number, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise RecipeError(f"{path}, line {number}: not a JSON object (cut short?). {fix_for(path)}")
        rows.append(row)
    return rows


def read_recipe(run_dir: Path) -> Recipe:
    """A run's recipe.resolved.yaml, validated again as a recipe. Validation reads no file, so a run whose data,
    models or labeler modules have moved since still reads; a RecipeError naming the file when it does not
    validate (written by another version, or edited)."""
    path = run_dir / "recipe.resolved.yaml"
    data = read_yaml(path)
    try:
        return Recipe.model_validate(rename_old_sections(data))
    except ValidationError as error:
        problems = describe_errors(error)
        raise RecipeError(
            [f"{path}: not a recipe this version of rlhf-recipes reads ({len(problems)} problem(s)). {fix_for(path)}"]
            + problems
        ) from None


def read_yaml(path: Path) -> dict:
    """A mapping written as YAML (recipe.resolved.yaml)."""
    import yaml

    try:
        value = yaml.safe_load(read_text(path))
    except yaml.YAMLError:
        value = None
    if not isinstance(value, dict):
        raise RecipeError(f"{path}: not the YAML mapping of a recipe (cut short?). {fix_for(path)}")
    return value


def json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def evaluation_rows(run_dir: Path) -> dict[str, list[dict]]:
    """evaluation/generations.jsonl by policy, in file order (the reference first): every row whole, and every
    policy with as many responses as the reference, which each is paired with."""
    path = run_dir / "evaluation" / "generations.jsonl"
    by_policy: dict[str, list[dict]] = {}
    for number, row in enumerate(read_jsonl(path), 1):
        missing = [key for key in GENERATION_KEYS if key not in row]
        if missing:
            raise RecipeError(
                f"{path}: response {number} has no {', '.join(missing)} (not written by this version's "
                f"evaluation stage). {fix_for(path)}"
            )
        by_policy.setdefault(row["policy"], []).append(row)
    if "reference" not in by_policy:
        found = "is empty" if not by_policy else "holds no responses of the reference"
        raise RecipeError(f"{path}: {found}, so no policy can be compared with it. {fix_for(path)}")
    expected = len(by_policy["reference"])
    for name, rows in by_policy.items():
        if len(rows) != expected:
            raise RecipeError(
                f"{path}: {len(rows)} responses of {name} and {expected} of the reference (cut short?). "
                + fix_for(path)
            )
    return by_policy


def reported_methods(run_dir: Path, methods: dict[str, str], by_policy: dict) -> dict[str, str]:
    """The recipe's trained policies (name -> method) that the report covers: those with responses in the
    evaluation. One without (the run stopped before evaluating it) is left out; write_report says so.

    A policy evaluated whose directory is gone (deleted to save space) stops the report instead: its
    stage.json was the only record of what its training cost, and rebuilding without it would replace a
    complete metrics.json and report with poorer ones."""
    for name in methods:
        if name in by_policy and not (run_dir / name / "stage.json").exists():
            raise RecipeError(
                f"{run_dir / name}: policy {name}'s directory is gone (deleted to save space?), and its stage.json "
                "was the only record of what its training cost; metrics.json and the report are left as they were. "
                f"Fix: retrain it: {rerun(run_dir, name)}."
            )
    return {name: method for name, method in methods.items() if name in by_policy}


def not_evaluated(run_dir: Path, names: list[str], reported: list[str]) -> list[str]:
    """One line per trained policy the evaluation lacks, once the report of the others is written."""
    return [
        f"{run_dir / 'evaluation' / 'generations.jsonl'}: no responses of {name}, which the recipe trains (the "
        f"run stopped before evaluating it); the report covers {', '.join(reported)} without it. "
        f"Fix: finish the run: {rerun(run_dir)}."
        for name in names
    ]


def read_run_metrics(path: Path) -> dict:
    """A run's metrics.json holding everything `rlhf compare` and a study read of it; a RecipeError naming the
    file if the run did not finish, the file is damaged or foreign, the run has no gold judge, or the file
    was written by an older version."""
    if not path.exists() and not (path.parent / "evaluation" / "generations.jsonl").is_file():
        raise RecipeError(unfinished(path.parent))
    metrics = read_json(path)
    if "policies" not in metrics or "gold_labeler" not in metrics:
        raise RecipeError(f"{path}: not the metrics.json of a run or a study. Fix: name a run or study directory.")
    if metrics["gold_labeler"] is None:
        raise RecipeError(
            f"{path.parent}: this run has no gold judge (your own pairs, no gold_labeler), and compare compares gold. "
            "Fix: rerun it with a gold_labeler (earlier stages are reused), or read its own report."
        )
    missing = missing_keys(metrics)
    if missing:
        raise RecipeError(f"{path}: has no {', '.join(missing[:3])}{older(metrics)} {fix_for(path)}")
    return metrics


def unfinished(directory: Path) -> str:
    """Why a directory without metrics.json or an evaluation has nothing to compare, and what to do."""
    study = directory.parent
    if (study / "study.json").is_file():
        return f"{directory}: the run did not finish (no metrics.json). Fix: finish the study: {rerun(study)}."
    if (directory / "run.json").is_file():
        return f"{directory}: the run did not finish (no metrics.json). Fix: finish it: {rerun(directory)}."
    return f"{directory}: no metrics.json, and not a run or a study. Fix: name finished runs or studies."


def missing_keys(metrics: dict) -> list[str]:
    """The dotted keys of COMPARED_KEYS (and of each policy and cost) that a run's metrics.json lacks."""
    missing = [key for key in COMPARED_KEYS if not has_key(metrics, key.split("."))]
    tables = ("policies", "best_of_n", "costs")
    missing += [key for key in tables if key not in missing and not isinstance(metrics[key], dict)]
    if missing:
        return missing
    for name, policy in metrics["policies"].items():
        missing += [f"policies.{name}.{key}" for key in COMPARED_POLICY_KEYS if not has_key(policy, [key])]
    for name in [*metrics["policies"], *(f"best_of_{n}" for n in metrics["best_of_n"])]:
        missing += [f"costs.{name}.{key}" for key in COMPARED_COST_KEYS if not has_key(metrics["costs"], [name, key])]
    return missing


def has_key(value, keys: list[str]) -> bool:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


def older(metrics: dict) -> str:
    """Why a metrics.json lacks a key: an older schema, or an edit."""
    version = metrics.get("schema_version")
    if isinstance(version, int) and version >= SCHEMA_VERSION:
        return ": it is incomplete (edited, or not written by rlhf-recipes)."
    return (
        f": it was written by an older version of rlhf-recipes (schema_version {version or 'none'}; this version "
        f"writes {SCHEMA_VERSION})."
    )


def read_study_plan(study_dir: Path) -> dict:
    """study.json, which lists the study's runs and method families."""
    path = study_dir / "study.json"
    if not path.exists():
        runs = " ".join(str(run.parent) for run in sorted(study_dir.glob("*/metrics.json")))
        fix = f"name its runs instead: `rlhf compare {runs}`" if runs else "run the study again"
        raise RecipeError(f"{path}: not found, and it lists the study's runs and methods. Fix: {fix}.")
    plan = read_json(path)
    runs = plan.get("runs")
    keys = ("name", "seeds", "condition", "kl_budgets", "families")
    if (
        not isinstance(runs, list)
        or not all(isinstance(run, dict) and "dir" in run for run in runs)
        or any(key not in plan for key in keys)
    ):
        raise RecipeError(f"{path}: not the study.json rlhf-recipes writes (no list of runs). {fix_for(path)}")
    return plan
