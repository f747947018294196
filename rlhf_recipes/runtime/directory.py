"""The run directory: every artifact of a run, next to the recipe, versions and seed that made it.

A stage writes into a temporary sibling and, when complete, is moved into the stage store (store.py)
and linked from the run directory, so a stage that exists can be trusted. Each stage directory records
its fingerprint in stage.json; a later `rlhf run` on the same directory reuses every stage whose
fingerprint is unchanged, and any run links a stage that any other run already stored.
"""

import json
import os
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

from ..config.schema import Recipe
from ..console import styled
from ..errors import RecipeError
from . import progress
from .distributed import barrier, broadcast, gather_batches, is_main, rank, world_size
from .files import write_atomically
from .stage import Step
from .stage import fingerprint as stage_fingerprint
from .store import StageStore, damage, read_manifest, waiting_message

PACKAGES = ["rlhf-recipes", "trl", "transformers", "torch", "datasets", "peft", "accelerate", "pydantic"]
# The libraries whose version can change what a stage computes: each stage records them.
STAGE_LIBRARIES = ["torch", "transformers", "trl", "peft", "datasets"]


def package_versions() -> dict[str, str]:
    return {"python": sys.version.split()[0], "platform": platform.platform()} | {
        name: _version(name) for name in PACKAGES
    }


def library_versions() -> dict[str, str]:
    return {name: _version(name) for name in STAGE_LIBRARIES}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class RunDirectory:
    """A run's directory. `step` runs a stage, or reuses its output when the fingerprint matches: this
    run's own, or any run's through the stage store."""

    def __init__(self, root: Path, store: StageStore | None = None):
        self.root = root
        self.store = store
        self.console = self.lock = None
        self.fingerprints: dict[str, str] = {}  # stage name -> fingerprint, for every stage handled so far
        self.rebuilt: set[str] = set()  # the stages this invocation built (rather than reused)
        # the stages rebuilt by --force and those downstream of them: each is rebuilt even when stored
        self.forced: set[str] = set()

    @classmethod
    def open(cls, root: Path, recipe: Recipe, console=None, store: StageStore | None = None) -> "RunDirectory":
        """A new run directory, or an earlier run of the same recipe name to resume. Nothing else is reused,
        and nothing is ever deleted but a stage of this run that is about to be rebuilt. `store`: the
        stage store (default: StageStore.open(), which says how to fix a store that cannot be written).

        With several processes (distributed.py), the main one checks, locks and writes; the others wait.
        """
        run = cls(root, store)
        run.console = console
        if is_main():
            run.store = store or StageStore.open()
            run._prepare(recipe)
            run.store.register(root)  # known to the store from the start: a moved run registers where it is now
        barrier()
        return run

    def _prepare(self, recipe: Recipe) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise RecipeError(f"--output-dir: {root} is a file. Fix: name a directory.")
        earlier = root / "run.json"
        ours = {".lock", ".write-test"}
        if root.is_dir() and any(p.name not in ours for p in root.iterdir()) and not earlier.is_file():
            raise RecipeError(
                f"--output-dir: {root} already exists, is not empty and holds no run. Fix: pass another "
                "--output-dir, or move that directory away (nothing is ever deleted for you)."
            )
        if earlier.is_file() and json.loads(earlier.read_text()).get("name") != recipe.name:
            raise RecipeError(
                f"--output-dir: {root} holds the run {json.loads(earlier.read_text()).get('name')!r}, "
                f"not {recipe.name!r}. "
                "Fix: pass another --output-dir."
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise RecipeError(
                f"--output-dir: cannot write to {root} ({error.strerror}). Fix: choose a writable place."
            ) from error
        self.lock = hold_lock(root)
        for derived in ("metrics.json", "report.md", "report.html"):  # describe the previous recipe; rebuilt at the end
            (root / derived).unlink(missing_ok=True)
        shutil.rmtree(root / "plots", ignore_errors=True)
        self.write_text("recipe.resolved.yaml", yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        self.write_json("versions.json", package_versions())
        seeds = {
            "seed": recipe.seed,
            "training_seed": recipe.seed_of_training(),
            "policy_seeds": {name: recipe.policy_seed(name) for name in recipe.methods()},
        }
        self.write_json("run.json", {"name": recipe.name, **seeds, "processes": world_size(), "stages": {}})

    def close(self) -> None:
        """Release the run directory's lock (it is released anyway when the process ends)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def path(self, name: str) -> Path:
        return self.root / name

    def fingerprint_of(self, directory: Path) -> str | None:
        """The fingerprint a stage directory records; None when it has no readable stage.json."""
        try:
            return json.loads((directory / "stage.json").read_text())["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def step(self, step: Step, force: str | None = None) -> tuple[dict, bool]:
        """Run `step` and publish its directory as run_dir/<step.name> (a link to its entry in the stage
        store), or reuse what this run already holds, or link what the store holds, with the step's
        fingerprint.

        A step is run anyway when it is the stage named by `force`, or reads the output of a stage so
        rebuilt (a stage this run built only because it was not stored is what the store would have linked:
        the stages after it are linked as usual). While it is built, its fingerprint is locked in the store: another
        run that needs the same stage at the same time waits, then links it. The temporary directory
        survives an interruption when it holds a training checkpoint of the same fingerprint, so that the
        stage can resume from it. With several processes, all of them run the stage (its writes are the
        main process's alone), or only the main one for a `main_only` stage; the main process publishes.
        Returns (summary, whether it was reused).
        """
        name = step.name
        fingerprint = stage_fingerprint(step, {self.path(done): value for done, value in self.fingerprints.items()})
        rebuild = name == force or bool(step.upstream({self.path(d): d for d in self.fingerprints}) & self.forced)
        if rebuild:
            self.forced.add(name)
        self.fingerprints[name] = fingerprint
        barrier()  # every process decides on the same files
        if broadcast(is_main() and not rebuild and self._holds(name, fingerprint)):
            return self._reuse(name, None)
        lock = self.store.lock(fingerprint) if is_main() else None
        told = False
        # the fingerprint's lock: one builder at a time, and no pruning under a link. Polled, with every
        # process in step, so that a long wait for another run's build times out no process group.
        while not broadcast(lock.try_acquire() if is_main() else None):
            if is_main() and not told:
                self._say(waiting_message(name, lock.holder()))
                told = True
            time.sleep(2.0)
        try:
            entry = broadcast(self._link_stored(name, fingerprint) if is_main() and not rebuild else None)
            if entry is not None:
                return self._reuse(name, entry)
            return self._build(step, fingerprint, recover=not rebuild)
        finally:
            if lock is not None:
                lock.release()

    def _holds(self, name: str, fingerprint: str) -> bool:
        """Does run_dir/<name> hold the stage, whole? A link to a store entry is checked against the entry's
        record; a damaged one is unlinked (the entry itself is set aside under its lock, by the store's
        `find`) so that the stage is linked anew or rebuilt. A stage directory from before the store is
        stored and linked."""
        final = self.path(name)
        if self.fingerprint_of(final) != fingerprint:
            return False
        target = Path(os.path.realpath(final))
        if final.is_symlink() and (self.store.contains(final) or read_manifest(target) is not None):
            problem = damage(target)
            if problem is None:
                return True
            self._say(f"{name}: its stored copy {target} is damaged ({problem}); rebuilding it")
            self._discard(final)
            return False
        if not final.is_symlink():
            with self.store.building(fingerprint, name, self._say):
                if self.store.find(fingerprint) is None:  # built before the store: stored, for other runs to link
                    entry = self.store.publish(final, fingerprint, name, built_by=self.root)
                    self.store.link(entry, final)
        return True  # or a link from before the store (a study's sibling run): kept as it is

    def _link_stored(self, name: str, fingerprint: str) -> str | None:
        """Link the store's entry for the stage as run_dir/<name>, if the store holds it whole (the caller
        holds the fingerprint's lock)."""
        entry = self.store.find(fingerprint)
        if entry is None:
            return None
        final = self.path(name)
        self._discard(final)
        self.store.link(entry, final)
        return str(entry)

    def _reuse(self, name: str, entry: str | None) -> tuple[dict, bool]:
        barrier()
        record = json.loads((self.path(name) / "stage.json").read_text())
        self._record(name, record, reused=True, linked_from=entry)
        self._announce(name, record, reused=True, linked_from=entry)
        return record["summary"], True

    def _build(self, step: Step, fingerprint: str, recover: bool = True) -> tuple[dict, bool]:
        """Run the stage into .<name>.partial/, then move it into the store and link it."""
        name, function = step.name, step.function
        self.rebuilt.add(name)
        temporary = self.path(f".{name}.partial")
        if recover and broadcast(is_main() and self._finished_but_unpublished(temporary, fingerprint)):
            return self._publish(name, temporary, fingerprint)
        try:  # from the partial directory's creation on: an interruption anywhere leaves nothing half-made
            if is_main() and not (self.fingerprint_of_partial(temporary) == fingerprint and resumable(temporary)):
                shutil.rmtree(temporary, ignore_errors=True)
                temporary.mkdir()
                (temporary / "partial.json").write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
            barrier()
            started = time.time()
            with progress.stage(name, self.console) as counters:
                runs_here = is_main() or not function.main_only
                summary = function(**step.arguments, out_dir=temporary) if runs_here else None
            record = {
                "fingerprint": fingerprint,
                "stage_version": function.version,
                "summary": summary,
                "seconds": round(time.time() - started, 2),
                "peak_rss_mib": progress.peak_memory_mib(),
                "generated_tokens": sum(gather_batches({rank(): [counters.generated_tokens]})),
                "versions": library_versions(),
            }
            if is_main():
                (temporary / "partial.json").unlink()
                shutil.rmtree(temporary / "checkpoints", ignore_errors=True)
                (temporary / "stage.json").write_text(json.dumps(record, indent=2) + "\n")
        except BaseException:
            if is_main() and not resumable(temporary):  # nothing to resume from
                shutil.rmtree(temporary, ignore_errors=True)
            raise
        return self._publish(name, temporary, fingerprint)

    def _finished_but_unpublished(self, temporary: Path, fingerprint: str) -> bool:
        """Did an interruption stop this stage after it finished and before it was stored? (stage.json is
        written last, and partial.json is gone by then.)"""
        return self.fingerprint_of(temporary) == fingerprint and not (temporary / "partial.json").exists()

    def _publish(self, name: str, temporary: Path, fingerprint: str) -> tuple[dict, bool]:
        """Move the finished stage into the store and link it as run_dir/<name>."""
        final = self.path(name)
        barrier()
        if is_main():
            entry = self.store.publish(temporary, fingerprint, name, built_by=self.root)
            self._discard(final)
            self.store.link(entry, final)
        barrier()
        record = json.loads((final / "stage.json").read_text())  # the main process's summary, on every process
        self._record(name, record, reused=False)
        self._announce(name, record, reused=False)
        return record["summary"], False

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(styled("  note:", "yellow"), text)

    def _announce(self, name: str, record: dict, reused: bool, linked_from: str | None = None) -> None:
        """One line per stage: built, reused (this run had it) or linked (from the store, naming the entry
        and the run that built it); a reused stage built with other library versions says so, and how to
        rebuild it."""
        if self.console is None:
            return
        shown = ", ".join(f"{key}={_short(value)}" for key, value in (record["summary"] or {}).items())
        how = "built" if not reused else "reused" if linked_from is None else "linked"
        self.console.print(styled(name, "bold"), f"{how}: {shown}")
        if linked_from is not None:
            built_by = (read_manifest(Path(linked_from)) or {}).get("built_by", "?")
            self.console.print(f"  linked from the stage store: {linked_from} (built by {built_by})")
        built_with, now = record.get("versions"), library_versions()
        if reused and built_with != now:
            changed = ", ".join(
                f"{package} {built_with.get(package) if built_with else '?'} (now {now[package]})"
                for package in now
                if not built_with or built_with.get(package) != now[package]
            )
            self.console.print(
                styled("  note:", "yellow"),
                f"{name} was built with {changed}; it is reused as its fingerprint "
                f"matches. To rebuild it with the installed versions: --force {name}",
            )

    @staticmethod
    def fingerprint_of_partial(directory: Path) -> str | None:
        record = directory / "partial.json"
        return json.loads(record.read_text())["fingerprint"] if record.is_file() else None

    def _discard(self, final: Path) -> None:
        """Remove this run's out-of-date output of a stage (a directory, or a link to a stored one: only
        the link)."""
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.is_dir():
            stale = final.with_name(f".{final.name}.stale")
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(final, stale)
            shutil.rmtree(stale)

    def _record(self, name: str, record: dict, reused: bool, linked_from: str | None = None) -> None:
        """run.json lists the stages of the latest invocation, with what each cost when it was built:
        seconds, peak resident memory (MiB, of the main process) and generated tokens (all processes);
        for a stage linked from the store, which entry."""
        if not is_main():
            return
        run = json.loads(self.path("run.json").read_text())
        costs = {key: record.get(key) for key in ("seconds", "peak_rss_mib", "generated_tokens")}
        run["stages"][name] = costs | {"reused": reused} | ({"linked_from": linked_from} if linked_from else {})
        self.write_json("run.json", run)

    def write_text(self, name: str, text: str) -> None:
        """Write a file in the run directory atomically (temporary file, then rename)."""
        write_atomically(self.path(name), text)

    def write_json(self, name: str, data) -> None:
        self.write_text(name, json.dumps(data, indent=2) + "\n")


def resumable(partial: Path) -> bool:
    """Did an interrupted stage leave something to resume from in its partial directory: a training
    checkpoint, or (rejection sampling) a finished round? Stages keep those under checkpoints/."""
    checkpoints = partial / "checkpoints"
    return checkpoints.is_dir() and any(path.is_file() for path in checkpoints.rglob("*"))


def latest_checkpoint(directory: Path) -> str | None:
    """The newest complete Trainer checkpoint in `directory`: trainer_state.json is written last, so a
    checkpoint without it was interrupted while being written and is skipped."""
    if not directory.is_dir():
        return None
    complete = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def hold_lock(root: Path):
    """Hold an exclusive lock on the run directory for as long as this process lives.

    flock locks belong to the process and die with it, even by SIGKILL, so a crashed run never
    leaves a stale lock behind. Returns the open file; closing it releases the lock.
    """
    import fcntl

    handle = open(root / ".lock", "a+")  # noqa: SIM115 (held open, and so locked, until the process ends)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RecipeError(
            f"--output-dir: {root} is in use by another rlhf run (pid {holder}). Fix: wait for it to finish, "
            "or pass another --output-dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
