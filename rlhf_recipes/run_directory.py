"""The run directory: every artifact of a run, next to the recipe, versions and seed that made it.

A stage writes into a temporary sibling and is renamed into place only when complete, so a
stage directory that exists can be trusted.
"""

import json
import os
import platform
import shutil
import sys
import time
from contextlib import contextmanager
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
    """A run's directory; `stage(name)` hands out a temporary directory and publishes it when done."""

    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def create(cls, root: Path, recipe: Recipe) -> "RunDirectory":
        """Make a new run directory for `recipe`. An existing non-empty directory is never reused or deleted."""
        if root.exists() and not root.is_dir():
            raise RecipeError(f"--output-dir: {root} is a file. Fix: name a directory.")
        if root.is_dir() and any(root.iterdir()):
            raise RecipeError(
                f"--output-dir: {root} already exists and is not empty. Fix: pass another --output-dir, "
                "or move that directory away (nothing is ever deleted for you)."
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise RecipeError(f"--output-dir: cannot write to {root} ({error.strerror}). Fix: choose a writable place.")
        run = cls(root)
        run.write_text("recipe.resolved.yaml", yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        run.write_json("versions.json", package_versions())
        run.write_json("run.json", {"name": recipe.name, "seed": recipe.seed, "stages": {}})
        return run

    def path(self, name: str) -> Path:
        return self.root / name

    @contextmanager
    def stage(self, name: str):
        """Yield an empty temporary directory; on success rename it to `name` and record the stage's time."""
        final, temporary = self.path(name), self.path(f".{name}.partial")
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir()
        started = time.time()
        try:
            yield temporary
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        os.replace(temporary, final)
        run = json.loads(self.path("run.json").read_text())
        run["stages"][name] = {"seconds": round(time.time() - started, 2)}
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
