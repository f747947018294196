"""Files written whole or not at all."""

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write a text file whole or not at all: a temporary file beside it, then a rename."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def link_tree(source: Path, target: Path, skip: tuple[str, ...] = ()) -> None:
    """The files under `source` (a symlink to a stored stage is followed) at the same places under `target`: hard
    links, so that a model is not stored twice, or copies where the file system has none. `skip`: names at the
    top of `source` left out."""
    import shutil

    source = source.resolve()
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if relative.parts[0] in skip or not path.is_file():
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:  # another file system, or one without hard links
            shutil.copy2(path, destination)
