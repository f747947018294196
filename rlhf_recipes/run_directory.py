"""The run directory: every artifact of a run, next to the recipe, versions and seed that made it.

A stage writes into a temporary sibling and is renamed into place only when complete, so a stage
directory that exists can be trusted. Each stage directory records its fingerprint in stage.json;
a later `rlhf run` on the same directory reuses every stage whose fingerprint is unchanged.
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

from .errors import RecipeError
from .recipe import Recipe

PACKAGES = ["rlhf-recipes", "trl", "transformers", "torch", "datasets", "peft", "accelerate", "pydantic"]


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class RunDirectory:
    """A run's directory. `step` runs a stage, or reuses its output when the fingerprint matches."""

    def __init__(self, root: Path, siblings: list[Path] = ()):
        self.root, self.siblings = root, list(siblings)

    @classmethod
    def open(cls, root: Path, recipe: Recipe, siblings: list[Path] = ()) -> "RunDirectory":
        """A new run directory, or an earlier run of the same recipe name to resume. Nothing else is reused,
        and nothing is ever deleted but a stage of this run that is about to be rebuilt."""
        if root.exists() and not root.is_dir():
            raise RecipeError(f"--output-dir: {root} is a file. Fix: name a directory.")
        earlier = root / "run.json"
        if root.is_dir() and any(root.iterdir()) and not earlier.is_file():
            raise RecipeError(
                f"--output-dir: {root} already exists, is not empty and holds no run. Fix: pass another "
                "--output-dir, or move that directory away (nothing is ever deleted for you)."
            )
        if earlier.is_file() and json.loads(earlier.read_text()).get("name") != recipe.name:
            raise RecipeError(
                f"--output-dir: {root} holds the run {json.loads(earlier.read_text()).get('name')!r}, not {recipe.name!r}. "
                "Fix: pass another --output-dir."
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise RecipeError(f"--output-dir: cannot write to {root} ({error.strerror}). Fix: choose a writable place.")
        run = cls(root, siblings)
        run.write_text("recipe.resolved.yaml", yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        run.write_json("versions.json", package_versions())
        run.write_json("run.json", {"name": recipe.name, "seed": recipe.seed, "stages": {}})
        return run

    def path(self, name: str) -> Path:
        return self.root / name

    def fingerprint_of(self, directory: Path) -> str | None:
        record = directory / "stage.json"
        return json.loads(record.read_text())["fingerprint"] if record.is_file() else None

    def step(self, name: str, fingerprint: str, function, *args, **kwargs) -> tuple[dict, bool]:
        """Run `function(*args, out_dir=<temporary dir>, **kwargs)` and publish its directory as `name`,
        unless this run or a sibling run already holds `name` with this fingerprint.

        Returns (the stage's summary, whether it was reused).
        """
        final = self.path(name)
        for source in [self.root] + self.siblings:
            if self.fingerprint_of(source / name) == fingerprint:
                if source != self.root:  # a sibling run (another variant of a sweep) built it: link to it
                    self._discard(final)
                    os.symlink(os.path.relpath((source / name).resolve(), self.root.resolve()), final)
                record = json.loads((final / "stage.json").read_text())
                self._record(name, record["seconds"], reused=True)
                return record["summary"], True
        temporary = self.path(f".{name}.partial")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        started = time.time()
        try:
            summary = function(*args, out_dir=temporary, **kwargs)
            seconds = round(time.time() - started, 2)
            record = {"fingerprint": fingerprint, "summary": summary, "seconds": seconds}
            (temporary / "stage.json").write_text(json.dumps(record, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        self._discard(final)
        os.replace(temporary, final)
        self._record(name, seconds, reused=False)
        return summary, False

    def _discard(self, final: Path) -> None:
        """Remove this run's out-of-date output of a stage (a directory, or a link to a sibling's)."""
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.is_dir():
            stale = final.with_name(f".{final.name}.stale")
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(final, stale)
            shutil.rmtree(stale)

    def _record(self, name: str, seconds: float, reused: bool) -> None:
        """run.json lists the stages of the latest invocation, with the seconds each took when it was built."""
        run = json.loads(self.path("run.json").read_text())
        run["stages"][name] = {"seconds": seconds, "reused": reused}
        self.write_json("run.json", run)

    def record(self, key: str, value) -> None:
        """Add a fact about the run (e.g. where the base model was loaded from) to run.json."""
        run = json.loads(self.path("run.json").read_text())
        run[key] = value
        self.write_json("run.json", run)

    def write_text(self, name: str, text: str) -> None:
        """Write a file in the run directory atomically (temporary file, then rename)."""
        temporary = self.path(f".{name}.partial")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.path(name))

    def write_json(self, name: str, data) -> None:
        self.write_text(name, json.dumps(data, indent=2) + "\n")

    def stage_seconds(self) -> dict[str, float]:
        return {name: info["seconds"] for name, info in json.loads(self.path("run.json").read_text())["stages"].items()}
