"""The error tree in `app.errors`' docstring names every error the library defines."""

from __future__ import annotations

import importlib
import pkgutil

import app
from app import errors
from app.errors import MatrixError, SyncError


def all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


def test_every_error_of_the_library_is_in_the_tree() -> None:
    for module in pkgutil.walk_packages(app.__path__, "app."):
        if not module.name.startswith("app.testing") and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    ours = {cls for cls in all_subclasses(SyncError) if cls.__module__.startswith("app.")}
    ours = {cls for cls in ours if not cls.__module__.startswith("app.testing")}
    documented = (errors.__doc__ or "").split()
    assert sorted(cls.__name__ for cls in ours if cls.__name__ not in documented) == []


def test_errcodes_of_the_registry_are_in_the_tree() -> None:
    tree = errors.__doc__ or ""
    assert [code for code in MatrixError.registry if code not in tree] == []
