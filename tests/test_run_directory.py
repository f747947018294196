import json

import pytest

from rlhf_recipes.recipe_loader import load_recipe
from rlhf_recipes.run_directory import RunDirectory

from .conftest import REPO


@pytest.fixture
def run(tmp_path, in_repo):
    return RunDirectory.create(tmp_path / "run", load_recipe(REPO / "recipes/smoke.yaml"))


def test_a_new_run_explains_itself(run):
    names = sorted(p.name for p in run.root.iterdir())
    assert names == ["recipe.resolved.yaml", "run.json", "versions.json"]
    versions = json.loads(run.path("versions.json").read_text())
    assert {"trl", "transformers", "torch", "python"} <= set(versions)
    assert json.loads(run.path("run.json").read_text())["seed"] == 0


def test_resolved_recipe_loads_back_to_the_same_recipe(run, tmp_path):
    again = load_recipe(run.path("recipe.resolved.yaml"))
    assert again == load_recipe(REPO / "recipes/smoke.yaml")


def test_a_finished_stage_is_published_and_timed(run):
    with run.stage("samples") as out:
        (out / "data.txt").write_text("done")
    assert run.path("samples/data.txt").read_text() == "done"
    assert "samples" in run.stage_seconds()
    assert not any(p.name.endswith(".partial") for p in run.root.iterdir())


def test_a_failed_stage_leaves_nothing_behind(run):
    with pytest.raises(RuntimeError):
        with run.stage("reward_model") as out:
            (out / "half.bin").write_text("half")
            raise RuntimeError("killed mid-stage")
    assert not run.path("reward_model").exists()
    assert not any(p.name.endswith(".partial") for p in run.root.iterdir())
    assert "reward_model" not in run.stage_seconds()
