"""The stage store: stages shared by fingerprint across run directories and recipes, built once when two
runs need them at once, damage detected and rebuilt, pruning that keeps what runs link."""

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.runtime.directory import RunDirectory
from rlhf_recipes.runtime.stage import Step, stage
from rlhf_recipes.runtime.store import StageStore

from .helpers import REPO
from .test_bad_input import QUICK, rlhf

BUILDS: list[str] = []
BUILDING = threading.Event()


@stage(version=1)
def slow_stage(*, text, seconds, out_dir):
    """Writes `text` after `seconds`, and counts its builds."""
    BUILDS.append(text)
    BUILDING.set()
    time.sleep(seconds)
    (out_dir / "data.txt").write_text(text)
    return {"length": len(text)}


@stage(version=1)
def copies_model(*, model, out_dir):
    """Reads the `model` stage's output, and counts its builds."""
    BUILDS.append("copies_model")
    (out_dir / "data.txt").write_text((model / "data.txt").read_text())
    return {}


def step(text="shared", seconds=0.0, name="samples") -> Step:
    return Step(name, slow_stage, {"text": text, "seconds": seconds})


@pytest.fixture
def recipe(in_repo):
    return load_recipe(REPO / "recipes/smoke.yaml")


@pytest.fixture(autouse=True)
def no_builds():
    BUILDS.clear()
    BUILDING.clear()


def open_run(tmp_path, recipe, name, store_dir=None):
    return RunDirectory.open(tmp_path / name, recipe, store=StageStore.open(store_dir) if store_dir else None)


@pytest.mark.ppo
def test_two_concurrent_builders_of_one_stage_build_it_once(tmp_path, recipe, store):
    """The second run waits for the first's build, then links it: one build, one entry, two links."""
    first, second = open_run(tmp_path, recipe, "a"), open_run(tmp_path, recipe, "b")
    results = {}

    def run(run_dir, key):
        results[key] = run_dir.step(step(seconds=1.5))

    builder = threading.Thread(target=run, args=(first, "first"))
    builder.start()
    assert BUILDING.wait(timeout=60)  # the first holds the stage's lock by now, and builds for 1.5 s
    waiter = threading.Thread(target=run, args=(second, "second"))
    waiter.start()
    builder.join()
    waiter.join()
    assert BUILDS == ["shared"]
    assert results == {"first": ({"length": 6}, False), "second": ({"length": 6}, True)}
    assert first.path("samples").resolve() == second.path("samples").resolve()
    assert [p.name for p in (store / "stages").iterdir()] == [first.path("samples").resolve().name]


def test_two_builders_in_two_processes_build_once(tmp_path, store):
    """The same through the CLI: two `rlhf run`s of one recipe in two run directories, started together."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", *QUICK, "--output-dir"]
    runs = [
        subprocess.Popen([*command, tmp_path / d], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for d in ("a", "b")
    ]
    outputs = [run.communicate(timeout=600)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    built = [json.loads((tmp_path / d / "run.json").read_text())["stages"] for d in ("a", "b")]
    assert (
        set(built[0])
        == set(built[1])
        == {"prompts", "model", "samples", "preferences", "reward_model", "dpo", "evaluation"}
    )
    for name in built[0]:
        assert [stages[name]["reused"] for stages in built].count(False) == 1, (name, outputs)
        assert (tmp_path / "a" / name).resolve() == (tmp_path / "b" / name).resolve()


@pytest.mark.ppo
def test_a_damaged_entry_is_detected_and_rebuilt(tmp_path, recipe, store):
    first = open_run(tmp_path, recipe, "a")
    first.step(step("good"))
    entry = first.path("samples").resolve()
    (entry / "data.txt").write_text("evil")  # same size, other content
    second = open_run(tmp_path, recipe, "b")
    assert second.step(step("good")) == ({"length": 4}, False), "rebuilt, not linked"
    assert second.path("samples/data.txt").read_text() == "good"
    assert "data.txt does not have the content it was stored with" in (store / "damaged.log").read_text()
    # the first run's link now leads to the rebuilt entry (same fingerprint, same place)
    assert first.path("samples/data.txt").read_text() == "good"


@pytest.mark.ppo
@pytest.mark.parametrize("lost", ["data.txt", "store.json"])
def test_a_damaged_entry_is_rebuilt_for_the_run_that_links_it(lost, tmp_path, recipe, store):
    """A file of the entry is gone, or its record (never linked without it): the run that links it rebuilds."""
    first = open_run(tmp_path, recipe, "a")
    first.step(step("good"))
    (first.path("samples").resolve() / lost).unlink()
    first.close()
    again = open_run(tmp_path, recipe, "a")
    assert again.step(step("good"))[1] is False
    assert again.path("samples/data.txt").read_text() == "good" and BUILDS == ["good", "good"]
    assert (again.path("samples") / "store.json").is_file()


@pytest.mark.ppo
def test_an_entry_without_its_record_is_never_linked(tmp_path, recipe, store):
    first = open_run(tmp_path, recipe, "a")
    first.step(step("good"))
    (first.path("samples").resolve() / "store.json").unlink()  # as if publishing was cut short
    assert open_run(tmp_path, recipe, "b").step(step("good"))[1] is False


def test_two_recipes_share_stages_through_the_store(tmp_path, store):
    """Two recipes (other names, other methods) with the same data settings: the second links every data
    stage and the reward model from the store, says so, and trains only its own method."""
    first = rlhf("run", "recipes/smoke.yaml", *QUICK, "--output-dir", tmp_path / "first")
    assert first.returncode == 0, first.stderr
    second = rlhf(
        "run", "recipes/smoke.yaml", *QUICK, "name=other", "dpo=null", "kto={epochs: 1, eval_every_steps: null}",
        "--output-dir", tmp_path / "second",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    stages = json.loads((tmp_path / "second" / "run.json").read_text())["stages"]
    for name in ("prompts", "model", "samples", "preferences", "reward_model"):
        assert stages[name]["reused"] and stages[name]["linked_from"].startswith(str(store)), name
        assert f"{name} linked" in second.stderr
    assert not stages["kto"]["reused"] and not stages["evaluation"]["reused"]
    assert f"linked from the stage store: {stages['samples']['linked_from']} (built by {tmp_path / 'first'})" in (
        second.stderr
    )


@pytest.mark.ppo
def test_pruning_keeps_what_a_run_links(tmp_path, recipe, store):
    kept = open_run(tmp_path, recipe, "kept")
    kept.step(step("kept"))
    gone = open_run(tmp_path, recipe, "gone")
    gone.step(step("gone"))
    replaced = open_run(tmp_path, recipe, "replaced")
    replaced.step(step("before"))
    replaced.step(step("after"))  # its link now leads elsewhere: "before" is linked by no one
    import shutil

    shutil.rmtree(tmp_path / "gone")
    opened = StageStore.open(store)
    assert len(opened.prune(dry_run=True)) == 2 and len(opened.entries()) == 4
    assert len(opened.prune(unused_for_days=1)) == 0, "all were used just now"
    removed = opened.prune()
    assert len(removed) == 2 and not any(e.used_by for e in removed)
    assert kept.path("samples/data.txt").read_text() == "kept"
    assert replaced.path("samples/data.txt").read_text() == "after"
    assert sorted(e.used_by for e in opened.entries()) == [[str(kept.root)], [str(replaced.root)]]


@pytest.mark.ppo
def test_store_list_and_prune_commands(tmp_path, recipe, store):
    run = open_run(tmp_path, recipe, "run")
    run.step(step("x"))
    run.step(step("y", name="preferences"))
    os.unlink(run.path("preferences"))
    listed = rlhf("store", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"stage store {store}: 2 entries" in listed.stderr and f"linked by {run.root}" in listed.stderr
    assert "linked by nothing (`rlhf store prune` removes it)" in listed.stderr
    dry = rlhf("store", "prune", "--dry-run")
    assert "would remove 1 entries" in dry.stderr and len(StageStore(store).entries()) == 2
    pruned = rlhf("store", "prune")
    assert pruned.returncode == 0 and "removed 1 entries" in pruned.stderr and "preferences" in pruned.stderr
    assert [e.stage for e in StageStore(store).entries()] == ["samples"]


def test_a_store_that_cannot_be_written_is_a_clean_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RecipeError, match=r"stage store: cannot write to .*file/store .*Fix: point RLHF_RECIPES_STORE"):
        StageStore.open(tmp_path / "file" / "store")


@pytest.mark.ppo
def test_a_store_on_another_file_system_is_copied_into_atomically(tmp_path, recipe, store, monkeypatch):
    """A run directory and a store on two file systems: the stage cannot be renamed into the store, so it
    is copied in (then renamed inside the store) and the run's partial directory removed."""
    real_rename = os.rename

    def rename(source, target):
        if ".partial" in str(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    run = open_run(tmp_path, recipe, "run")
    assert run.step(step("copied"))[1] is False
    assert run.path("samples/data.txt").read_text() == "copied"
    assert not any(p.name.startswith(".") for p in (store / "stages").iterdir())
    assert not run.path(".samples.partial").exists()


@pytest.mark.ppo
def test_a_forced_rebuild_replaces_the_entry(tmp_path, recipe, store):
    first = open_run(tmp_path, recipe, "a")
    first.step(step("x"))
    entry = first.path("samples").resolve()
    assert first.step(step("x"), force="samples") == ({"length": 1}, False)
    assert first.path("samples").resolve() == entry and BUILDS == ["x", "x"]
    assert [p.name for p in (store / "stages").iterdir()] == [entry.name]


@pytest.mark.ppo
def test_a_stage_built_before_the_store_is_stored_when_reused(tmp_path, recipe, store):
    """A run directory from before the store (real stage directories) keeps working, and its stages become
    linkable by other runs."""
    first = open_run(tmp_path, recipe, "old")
    first.step(step("old"))
    link = first.path("samples")
    entry = link.resolve()
    os.unlink(link)
    os.rename(entry, link)  # as an older version left it: a directory in the run
    (link / "store.json").unlink()
    first.close()
    again = open_run(tmp_path, recipe, "old")
    assert again.step(step("old"))[1] is True and again.path("samples").is_symlink()
    assert open_run(tmp_path, recipe, "new").step(step("old"))[1] is True and BUILDS == ["old"]


def test_the_default_store_is_in_the_tools_cache(tmp_path, monkeypatch):
    from rlhf_recipes.runtime.store import default_store_root

    monkeypatch.delenv("RLHF_RECIPES_STORE")
    monkeypatch.setenv("RLHF_RECIPES_CACHE", str(tmp_path / "cache"))
    assert default_store_root() == tmp_path / "cache" / "store"
    monkeypatch.setenv("RLHF_RECIPES_STORE", "~/elsewhere")
    assert default_store_root() == Path.home() / "elsewhere"


@pytest.mark.ppo
def test_prune_checks_again_under_the_lock_and_keeps_what_was_linked_since(tmp_path, recipe, store, monkeypatch):
    """A run links an entry after prune listed it as unused: prune, checking again under the entry's lock,
    keeps it."""
    first = open_run(tmp_path, recipe, "a")
    first.step(step("x"))
    os.unlink(first.path("samples"))  # unused now
    opened = StageStore.open(store)
    listed = opened.entries()
    assert listed[0].used_by == []
    second = open_run(tmp_path, recipe, "b")
    second.step(step("x"))  # ... and linked again, after the listing
    monkeypatch.setattr(StageStore, "entries", lambda self: listed)  # prune decides on the stale listing
    assert opened.prune() == []
    assert second.path("samples/data.txt").read_text() == "x"


@pytest.mark.ppo
def test_a_moved_run_directory_is_registered_where_it_is_when_rerun(tmp_path, recipe, store):
    first = open_run(tmp_path, recipe, "before")
    first.step(step("x"))
    first.close()
    os.rename(tmp_path / "before", tmp_path / "after")
    moved = open_run(tmp_path, recipe, "after")
    assert moved.step(step("x"))[1] is True
    assert StageStore.open(store).prune() == [] and moved.path("samples/data.txt").read_text() == "x"


@pytest.mark.ppo
def test_a_run_directory_that_cannot_be_seen_keeps_what_its_record_lists(tmp_path, recipe, store):
    """A shared store pruned from a machine that does not see a run's disk: the run's record decides."""
    run = open_run(tmp_path, recipe, "run")
    run.step(step("x"))
    (record,) = (store / "runs").glob("*.json")
    data = json.loads(record.read_text())
    record.write_text(json.dumps(data | {"run_dir": "/elsewhere/not/mounted/run"}))
    opened = StageStore.open(store)
    assert opened.prune() == []
    (entry,) = opened.entries()
    assert entry.used_by == [f"/elsewhere/not/mounted/run (on {data['host']}, not seen from here)"]


@pytest.mark.ppo
def test_a_stage_interrupted_while_being_stored_is_stored_not_rebuilt(tmp_path, recipe, store):
    """Killed after the stage finished (stage.json written) and before it reached the store: the next run
    stores what it finished."""
    run = open_run(tmp_path, recipe, "run")
    run.step(step("x"))
    entry = run.path("samples").resolve()
    os.unlink(run.path("samples"))
    os.rename(entry, run.path(".samples.partial"))  # where the finished stage waited to be stored
    run.close()
    again = open_run(tmp_path, recipe, "run")
    assert again.step(step("x")) == ({"length": 1}, False) and BUILDS == ["x"]
    assert again.path("samples/data.txt").read_text() == "x" and not again.path(".samples.partial").exists()


def test_prune_sweeps_day_old_leftovers_of_interrupted_publishing(store):
    opened = StageStore.open(store)
    old, recent = store / "stages" / ".aaaa.incoming-1", store / "stages" / ".bbbb.discarded-1-2"
    for leftover in (old, recent):
        leftover.mkdir()
        (leftover / "data.txt").write_text("x")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    opened.prune()
    assert not old.exists() and recent.exists()


@pytest.mark.ppo
def test_a_stage_this_run_built_does_not_rebuild_what_follows_it_from_the_store(tmp_path, recipe, store):
    """Run b builds the model (the store lacks it) and run a links it; a builds the next stage first, and b links
    it rather than building it again: only --force makes what follows rebuild. (Two concurrent `rlhf run`s of
    one recipe built a stage twice when the one that lost a race for an earlier stage won the next.)"""
    first, second = open_run(tmp_path, recipe, "a"), open_run(tmp_path, recipe, "b")

    def reader(run) -> Step:
        return Step("samples", copies_model, {"model": run.path("model")})

    assert second.step(step(name="model"))[1] is False
    assert first.step(step(name="model"))[1] is True
    assert first.step(reader(first))[1] is False
    assert second.step(reader(second))[1] is True, "linked from the store"
    assert BUILDS == ["shared", "copies_model"]
    forced = open_run(tmp_path, recipe, "c")
    assert forced.step(step(name="model"), force="model")[1] is False
    assert forced.step(reader(forced))[1] is False, "downstream of a forced stage: rebuilt"
    assert BUILDS == ["shared", "copies_model", "shared", "copies_model"]
