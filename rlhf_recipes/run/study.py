"""Studies: the recipe once per seed (and per value of a condition), in <study>/[<condition>-<value>/]seed-<s>/,
or once per training seed, in .../training-seed-<t>/, each run training one policy per grid point
(config/study.py). Stages a run shares with an earlier one (same fingerprint: another condition value that
leaves them unchanged, or another training seed: all of its data stages) are linked from the stage store
(runtime/store.py), not rebuilt; within a run, every policy shares its seed's samples and reward model. The
study's own report compares the methods over seeds (reporting/study.py)."""

import json
from pathlib import Path

import yaml
from rich.console import Console

from ..config.loader import study_runs
from ..config.schema import Recipe
from ..config.study import point_name
from ..console import make_console, styled
from ..errors import RecipeError
from ..reporting.study_report import write_study_report
from ..runtime.directory import hold_lock
from ..runtime.files import write_atomically
from .pipeline import run_recipe


def families(recipe: Recipe) -> dict[str, dict]:
    """Each compared method of the study, by the name of the policy it was set as: its method, its grid
    knob (None when not gridded) and its policies with their knob values, in grid order."""
    grid = recipe.study.grid if recipe.study else {}
    entries = {}
    for name, method in recipe.methods().items():
        if name in grid:
            ((knob, values),) = grid[name].items()
            policies = {point_name(name, knob, value): value for value in values}
        else:
            knob, policies = None, {name: None}
        entries[name] = {"method": method.stage, "knob": knob, "policies": policies}
    return entries


def run_study(recipe: Recipe, study_dir: Path, console: Console | None = None, force: str | None = None) -> dict:
    """Run every run of recipe.study (resuming those already done) and write the study's metrics.json,
    report.md and report.html."""

    console = console or make_console()
    if study_dir.is_dir() and any(study_dir.iterdir()) and not (study_dir / "study.json").is_file():
        raise RecipeError(
            f"--output-dir: {study_dir} already exists, is not empty and holds no study. "
            "Fix: pass another --output-dir."
        )
    study_dir.mkdir(parents=True, exist_ok=True)
    lock = hold_lock(study_dir)  # noqa: F841 (held until the study ends)
    data = recipe.model_dump(mode="json")
    runs = study_runs(recipe, data)
    study = recipe.study
    plan = {
        "name": recipe.name,
        "replicates": "training_seeds" if study.training_seeds else "seeds",  # what the intervals are over
        "seeds": study.seeds or [recipe.seed],
        "training_seeds": study.training_seeds,
        "condition": study.condition.model_dump(mode="json") if study.condition else None,
        "grid": study.grid,
        "kl_budgets": study.kl_budgets,
        "detect_gold_difference": study.detect_gold_difference,
        "families": families(recipe),
        "runs": [
            {"dir": run.label, "condition": run.condition, "seed": run.seed, "training_seed": run.training_seed}
            for run in runs
        ],
    }
    write_atomically(study_dir / "study.json", json.dumps(plan, indent=2) + "\n")
    write_atomically(study_dir / "recipe.resolved.yaml", yaml.safe_dump(data, sort_keys=False))
    for index, run in enumerate(runs, 1):
        console.print(styled(f"study run {index}/{len(runs)}: {run.label}", "bold"))
        run_recipe(Recipe.model_validate(run.data), study_dir / run.label, console, force=force)
    return write_study_report(study_dir)
