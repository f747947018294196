import json
import os

import pytest

from rlhf_recipes.errors import RecipeError
from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.run.directory import RunDirectory

from .conftest import REPO


@pytest.fixture
def recipe(in_repo):
    return load_recipe(REPO / "recipes/smoke.yaml")


@pytest.fixture
def run(tmp_path, recipe):
    return RunDirectory.open(tmp_path / "run", recipe)


def write_stage(text, out_dir):
    (out_dir / "data.txt").write_text(text)
    return {"length": len(text)}


def test_a_new_run_explains_itself(run):
    names = sorted(p.name for p in run.root.iterdir())
    assert names == [".lock", "recipe.resolved.yaml", "run.json", "versions.json"]
    versions = json.loads(run.path("versions.json").read_text())
    assert {"trl", "transformers", "torch", "python"} <= set(versions)
    assert json.loads(run.path("run.json").read_text())["seed"] == 0


def test_resolved_recipe_loads_back_to_the_same_recipe(run, recipe):
    assert load_recipe(run.path("recipe.resolved.yaml")) == recipe


def test_a_finished_stage_is_published_with_its_fingerprint(run):
    summary, reused = run.step("samples", "abc", write_stage, "done")
    assert (summary, reused) == ({"length": 4}, False)
    assert run.path("samples/data.txt").read_text() == "done"
    assert json.loads(run.path("samples/stage.json").read_text())["fingerprint"] == "abc"
    assert "samples" in run.stage_seconds()
    assert not any(p.name.endswith(".partial") for p in run.root.iterdir())


def test_the_same_fingerprint_is_reused_and_a_new_one_rebuilds(run):
    run.step("samples", "abc", write_stage, "first")
    assert run.step("samples", "abc", write_stage, "second") == ({"length": 5}, True)
    assert run.path("samples/data.txt").read_text() == "first"
    assert run.step("samples", "xyz", write_stage, "second") == ({"length": 6}, False)
    assert run.path("samples/data.txt").read_text() == "second"


def test_a_sibling_runs_stage_is_linked_not_rebuilt(tmp_path, recipe):
    first = RunDirectory.open(tmp_path / "a", recipe)
    first.step("samples", "abc", write_stage, "shared")
    second = RunDirectory.open(tmp_path / "b", recipe, siblings=[tmp_path / "a"])
    assert second.step("samples", "abc", write_stage, "not run")[1] is True
    assert os.path.islink(second.path("samples")) and second.path("samples/data.txt").read_text() == "shared"


def test_a_failed_stage_leaves_nothing_behind(run):
    def crash(out_dir):
        (out_dir / "half.bin").write_text("half")
        raise RuntimeError("killed mid-stage")

    with pytest.raises(RuntimeError):
        run.step("reward_model", "abc", crash)
    assert not run.path("reward_model").exists()
    assert not any(p.name.endswith(".partial") for p in run.root.iterdir())
    assert "reward_model" not in run.stage_seconds()


def test_another_runs_directory_is_refused(tmp_path, recipe):
    RunDirectory.open(tmp_path / "run", recipe)
    with pytest.raises(RecipeError, match="holds the run 'smoke', not 'other'"):
        RunDirectory.open(tmp_path / "run", recipe.model_copy(update={"name": "other"}))
