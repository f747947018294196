"""What a stage is: a function declared with `@stage`, called by the pipeline with keyword arguments.

A `Step` is one call the pipeline will make: the stage's name (its folder in the run directory
and what `--force` names), the function, and the exact keyword arguments it is handed. The
step's fingerprint is derived from those arguments and nothing else: recipe sections by value,
files by content, the outputs of earlier stages by those stages' fingerprints. Equal fingerprints
mean a stage's output can be reused; a change anywhere upstream changes every fingerprint
downstream of it. A stage's VERSION is part of its fingerprint: bump it whenever the stage
(or code it calls) would now compute a different output from the same arguments.
"""

import dataclasses
import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

# Files up to this size (data, configs, tokenizers, small models) are hashed by content; bigger ones
# (model weights) by size and modification time, so that no run rereads gigabytes to fingerprint them.
CONTENT_HASHED_BYTES = 64 << 20


def stage(version: int, main_only: bool = False, placement: tuple[str, ...] = (), added_later: tuple[str, ...] = ()):
    """Declare a stage function. `version`: bump it whenever the same arguments would now give another
    output. `main_only`: with several processes, only the main one runs it (the others wait).
    `placement`: parameters that say only where the work runs (a device), not what it computes; they
    stay out of the fingerprint, so adding one does not rebuild earlier runs. (A model labeler on a GPU may
    compute in lower precision than on a CPU; the outputs built on either are reused on the other.)
    `added_later`: parameters added after the stage had stored outputs; each is left out of the fingerprint at
    its default, so that what was stored before is reused."""

    def declare(function: Callable) -> Callable:
        if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in inspect.signature(function).parameters.values()):
            raise TypeError(
                f"stage {function.__name__}: every parameter must be keyword-only (def {function.__name__}(*, ...))"
            )
        defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()}
        missing = [
            name for name in added_later if defaults.get(name, inspect.Parameter.empty) is inspect.Parameter.empty
        ]
        if missing:
            raise TypeError(f"stage {function.__name__}: added_later {missing} must be parameters with a default")
        function.version, function.main_only, function.placement = version, main_only, placement
        function.added_later = {name: defaults[name] for name in added_later}
        return function

    return declare


@dataclass
class Step:
    """One stage call: `function(**arguments, out_dir=<its directory>)` under the name `name`."""

    name: str
    function: Callable
    arguments: dict = field(default_factory=dict)

    def upstream(self, outputs: dict[Path, str]) -> set[str]:
        """Names of the earlier stages whose outputs this step reads (`outputs`: output directory -> name)."""
        return {outputs[path] for path in _paths_in(self.arguments) if path in outputs}


def fingerprints(steps: list[Step], run_dir: Path) -> dict[str, str]:
    """Every step's fingerprint, in order; a step reads earlier steps' outputs as run_dir/<name>."""
    known: dict[Path, str] = {}
    result = {}
    for step in steps:
        result[step.name] = fingerprint(step, known)
        known[run_dir / step.name] = result[step.name]
    return result


def fingerprint(step: Step, outputs: dict[Path, str]) -> str:
    """A hash of the stage's function and VERSION and of the values it is handed. `outputs` maps the
    directories of earlier stages to their fingerprints."""
    function = step.function
    described = {
        "stage": f"{function.__module__}.{function.__qualname__}",
        "version": function.version,
        "arguments": {
            # a stage's own section enters under the stage's name, as it did when its parameter had that name
            (function.__name__ if key == "settings" else key): _value(value, outputs)
            for key, value in sorted(step.arguments.items())
            if key not in getattr(function, "placement", ())
            and not (key in getattr(function, "added_later", {}) and value == function.added_later[key])
        },
    }
    return digest(described)


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _value(value, outputs: dict[Path, str]):
    """What of `value` enters a fingerprint."""
    if isinstance(value, BaseModel):
        described = {
            name: _value(getattr(value, name), outputs)
            for name, info in type(value).model_fields.items()
            if not (info.json_schema_extra or {}).get("output_neutral")
            # a setting added later is left out at its default, so runs made before it existed are reused
            and not ((info.json_schema_extra or {}).get("added_later") and getattr(value, name) == info.default)
        }
        extra = fingerprint_extra_of(type(value))
        return described | ({"extra": extra(value)} if extra else {})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _value(getattr(value, f.name), outputs) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        if value in outputs:
            return {"stage_output": outputs[value]}
        return {"path_content": path_digest(value)}
    if isinstance(value, dict):
        return {str(key): _value(item, outputs) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(item, outputs) for item in value]
    return value


# What a section's settings do not say but its output depends on (a user function's source, a model's files), by
# section class; registered by the layer that knows how to read it (`fingerprint_extra`). A class that has one
# says so (FINGERPRINT_EXTRA = True), so that a fingerprint never silently leaves it out.
FINGERPRINT_EXTRAS: dict[type, Callable[[BaseModel], dict]] = {}


def fingerprint_extra(section: type[BaseModel]):
    """Register the function that gives what `section`'s output depends on beyond its settings."""

    def register(function: Callable[[BaseModel], dict]) -> Callable[[BaseModel], dict]:
        FINGERPRINT_EXTRAS[section] = function
        return function

    return register


def fingerprint_extra_of(section: type) -> Callable[[BaseModel], dict] | None:
    if not getattr(section, "FINGERPRINT_EXTRA", False):
        return None
    if section not in FINGERPRINT_EXTRAS:
        raise RuntimeError(f"{section.__name__} has a fingerprint extra, but no module registered it")
    return FINGERPRINT_EXTRAS[section]


def _paths_in(value) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, dict):
        return [path for item in value.values() for path in _paths_in(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in _paths_in(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [path for f in dataclasses.fields(value) for path in _paths_in(getattr(value, f.name))]
    return []


def path_digest(path: Path) -> str | None:
    """A file's content hash (size and modification time for files over 64 MiB); for a directory, that of
    every file in it with its relative path; None for a path that does not exist."""
    if path.is_file():
        stat = path.stat()
        if stat.st_size > CONTENT_HASHED_BYTES:
            return digest(["size-and-mtime", stat.st_size, stat.st_mtime_ns])
        return _content_digest(path.resolve(), stat.st_size, stat.st_mtime_ns)
    if path.is_dir():
        return digest([(str(p.relative_to(path)), path_digest(p)) for p in sorted(path.rglob("*")) if p.is_file()])
    return None


@functools.cache
def _content_digest(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of a file, once per process for the same size and modification time."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
