"""What the installed TRL has, read from its source without importing it: importing a TRL trainer takes seconds
(torch, transformers), and checking a recipe must not. A method's trainer is imported only when it trains."""

import ast
import functools
import importlib
import importlib.util
import os
from pathlib import Path


def trainer_class(trainer: str) -> type:
    """The TRL class a method's TRAINER names ("module:Class"), imported."""
    module, _, name = trainer.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def installed_source(module: str) -> str | None:
    """The source of the installed `module`'s file (a package's __init__.py), read without importing it:
    importing a TRL trainer takes seconds (torch, transformers), and checking a recipe must not. None if
    it is not installed."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # trl.experimental warns on import otherwise
    try:
        spec = importlib.util.find_spec(module)  # imports the parent packages only
    except ImportError:
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).read_text(encoding="utf-8")


def module_mentions(module: str, word: str) -> bool:
    """Whether the installed `module`'s source names `word` in quotes (a value a TRL config accepts)."""
    source = installed_source(module)
    return source is not None and (f"'{word}'" in source or f'"{word}"' in source)


@functools.cache
def module_provides(module: str, name: str) -> bool:
    """Whether the installed `module` provides `name`, read from its __init__.py: a name it imports, or a
    string of a lazy module's import structure, as trl's."""
    source = installed_source(module)
    if source is None:
        return False
    tree = ast.parse(source)
    names = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             for alias in node.names}  # fmt: skip
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return name in names | strings
