"""Import a user's function named `module:function`, only when a recipe names it."""

import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path


def import_function(target: str) -> Callable:
    """The callable `target` ("module:function") names; ValueError saying what is missing otherwise.

    The current directory is appended to sys.path (after installed packages, so it cannot shadow
    them), as `python -m` would search it.
    """
    module_name, _, function_name = target.partition(":")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"cannot import module {module_name!r} ({error}). Fix: install it or run from its directory"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"module {module_name!r} has no function {function_name!r}. Fix: name a function it defines")
    return function


def source_digest(target: str) -> str:
    """sha256 of the source file of the module that defines `target` ("module:function")."""
    module = inspect.getmodule(import_function(target))
    source = inspect.getsourcefile(module) if module is not None else None
    if source is None:  # a built-in or compiled module: its version stands for its source
        return f"{module.__name__} {getattr(module, '__version__', 'unknown version')}"
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()
