import json
import os

import pytest

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.runtime.directory import RunDirectory
from rlhf_recipes.runtime.stage import Step, fingerprints, stage
from rlhf_recipes.runtime.store import manifest_files

from .helpers import REPO


@pytest.fixture
def recipe(in_repo):
    return load_recipe(REPO / "recipes/smoke.yaml")


@pytest.fixture
def run(tmp_path, recipe):
    return RunDirectory.open(tmp_path / "run", recipe)


@stage(version=1)
def write_stage(*, text, out_dir, upstream=None):
    """A stage that writes `text`; `upstream`, an earlier stage's output, is only read."""
    (out_dir / "data.txt").write_text(text)
    return {"length": len(text)}


def restamp(entry):
    """Record an edited store entry's files in its store.json, as if it had been stored like that."""
    manifest = json.loads((entry / "store.json").read_text())
    manifest["files"] = manifest_files(entry)
    (entry / "store.json").write_text(json.dumps(manifest))


def writes(name, text) -> Step:
    return Step(name, write_stage, {"text": text})


@pytest.mark.ppo
def test_a_new_run_explains_itself(run):
    names = sorted(p.name for p in run.root.iterdir())
    assert names == [".lock", "recipe.resolved.yaml", "run.json", "versions.json"]
    versions = json.loads(run.path("versions.json").read_text())
    assert {"trl", "transformers", "torch", "python"} <= set(versions)
    seeds = json.loads(run.path("run.json").read_text())
    assert (seeds["seed"], seeds["training_seed"], seeds["policy_seeds"]) == (0, 0, {"ppo": 0, "dpo": 0})


@pytest.mark.ppo
def test_resolved_recipe_loads_back_to_the_same_recipe(run, recipe):
    assert load_recipe(run.path("recipe.resolved.yaml")) == recipe


@pytest.mark.ppo
def test_a_finished_stage_is_published_with_its_fingerprint_and_library_versions(run):
    summary, reused = run.step(writes("samples", "done"))
    assert (summary, reused) == ({"length": 4}, False)
    assert run.path("samples/data.txt").read_text() == "done"
    record = json.loads(run.path("samples/stage.json").read_text())
    assert record["fingerprint"] == fingerprints([writes("samples", "done")], run.root)["samples"]
    assert record["stage_version"] == 1 and set(record["versions"]) == {
        "torch",
        "transformers",
        "trl",
        "peft",
        "datasets",
    }
    assert "samples" in json.loads(run.path("run.json").read_text())["stages"]
    assert not any(p.name.endswith(".partial") for p in run.root.iterdir())


@pytest.mark.ppo
def test_the_same_arguments_are_reused_and_new_ones_rebuild(tmp_path, recipe):
    first = RunDirectory.open(tmp_path / "run", recipe)
    first.step(writes("samples", "first"))
    first.close()
    again = RunDirectory.open(tmp_path / "run", recipe)  # a later invocation on the same directory
    assert again.step(writes("samples", "first")) == ({"length": 5}, True)
    again.close()
    changed = RunDirectory.open(tmp_path / "run", recipe)
    assert changed.step(writes("samples", "second")) == ({"length": 6}, False)
    assert changed.path("samples/data.txt").read_text() == "second"


@pytest.mark.ppo
def test_force_and_a_rebuilt_upstream_stage_rebuild_what_reads_it(tmp_path, recipe):
    def steps(run):
        return [
            writes("samples", "x"),
            Step("preferences", write_stage, {"text": "y", "upstream": run.path("samples")}),
            writes("other", "z"),
        ]

    first = RunDirectory.open(tmp_path / "run", recipe)
    for step in steps(first):
        first.step(step)
    first.close()
    forced = RunDirectory.open(tmp_path / "run", recipe)
    reused = [forced.step(step, force="samples")[1] for step in steps(forced)]
    assert reused == [False, False, True], "samples was forced, preferences reads it, other does not"


@pytest.mark.ppo
def test_a_reused_stage_built_with_other_library_versions_says_how_to_rebuild_it(tmp_path, recipe):
    from rich.console import Console

    first = RunDirectory.open(tmp_path / "run", recipe)
    first.step(writes("samples", "x"))
    record = json.loads(first.path("samples/stage.json").read_text())
    record["versions"]["trl"] = "0.0.1"
    first.path("samples/stage.json").write_text(json.dumps(record))
    restamp(first.path("samples").resolve())  # as if stored so: not damage
    first.close()
    console = Console(record=True, width=200)
    again = RunDirectory.open(tmp_path / "run", recipe, console=console)
    assert again.step(writes("samples", "x"))[1] is True
    said = console.export_text()
    assert "trl 0.0.1 (now " in said and "--force samples" in said


@pytest.mark.ppo
def test_another_runs_stage_is_linked_from_the_store_not_rebuilt(tmp_path, recipe, store):
    first = RunDirectory.open(tmp_path / "a", recipe)
    first.step(writes("samples", "shared"))
    first.close()
    second = RunDirectory.open(tmp_path / "b", recipe)
    assert second.step(writes("samples", "shared"))[1] is True
    assert os.path.islink(second.path("samples")) and second.path("samples/data.txt").read_text() == "shared"
    assert second.path("samples").resolve() == first.path("samples").resolve()
    assert second.path("samples").resolve().parent == (store / "stages").resolve()
    linked = json.loads(second.path("run.json").read_text())["stages"]["samples"]["linked_from"]
    assert linked == str(second.path("samples").resolve())


@pytest.mark.ppo
def test_a_failed_stage_leaves_nothing_behind(run):
    @stage(version=1)
    def crash(*, out_dir):
        (out_dir / "half.bin").write_text("half")
        raise RuntimeError("killed mid-stage")

    with pytest.raises(RuntimeError):
        run.step(Step("reward_model", crash))
    assert not run.path("reward_model").exists()
    assert not any(p.name.endswith(".partial") for p in run.root.iterdir())
    assert "reward_model" not in json.loads(run.path("run.json").read_text())["stages"]


@pytest.mark.ppo
def test_another_runs_directory_is_refused(tmp_path, recipe):
    RunDirectory.open(tmp_path / "run", recipe)
    with pytest.raises(RecipeError, match="holds the run 'smoke', not 'other'"):
        RunDirectory.open(tmp_path / "run", recipe.model_copy(update={"name": "other"}))


def test_a_stage_takes_keyword_arguments_only():
    with pytest.raises(TypeError, match="keyword-only"):

        @stage(version=1)
        def positional(text, *, out_dir):
            pass
