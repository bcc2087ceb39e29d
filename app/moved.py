"""Module paths from before the house move, still importable (with a DeprecationWarning).

Each old path is an alias of the module that now holds its code: `import app.retry` gives
`app.http.retry` itself, so nothing is copied and nothing can drift. The paths the docs named
(`app.transport`, `app.transport_httpx`, `app.sync.naming`) are real modules instead, which
type checkers see. See migration_notes.md, "Module paths after the house move".
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED = {
    "app.appservice_registration": "app.identity.registration",
    "app.cli_commands": "app.cli.commands",
    "app.cli_doctor": "app.cli.doctor",
    "app.cli_output": "app.cli.output",
    "app.cli_registration": "app.cli.registration",
    "app.cli_service": "app.cli.service",
    "app.daemon.http": "app.daemon.http_server",
    "app.demo": "app.testing.demo",
    "app.paths": "app.http.paths",
    "app.retry": "app.http.retry",
    "app.server_state": "app.http.server_state",
    "app.sync.accounts": "app.identity.password",
    "app.sync.identity": "app.identity.appservice",
    "app.sync.refusals": "app.identity.refusals",
    "app.sync.agent_steps": "app.sync.agent_run",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        # The import system sets the alias's spec on the module it gets: the real one is put
        # back, so that reload() and tools that read __spec__ see the module's own file.
        self._real_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}  # by new name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2
        )
        module = importlib.import_module(new)
        self._real_specs[new] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module is the new one, already loaded: only its own spec is restored."""
        module.__spec__ = self._real_specs[module.__name__]


def install() -> None:
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
