"""The package's layers, read from its import graph: data flows downward, never back up.

    errors -> http -> matrix, letta -> state -> identity -> config -> sync -> daemon -> cli

A module may import its own layer and the layers below it. The test kit (`app.testing`) sits on
top of everything and nothing shipped imports it when it loads. The configuration is read only
at the entry points listed below, which hand the layers beneath them plain values.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

LAYERS = [
    {"app.errors"},
    {"app.http"},
    {"app.matrix", "app.letta"},
    {"app.state"},
    {"app.identity"},
    {"app.config"},
    {"app.sync"},
    {"app.daemon"},
    {"app.cli"},
    # The package's face: `from app import SyncService`, the kept module paths, `python -m app`.
    {"app", "app.transport", "app.transport_httpx", "app.__main__"},
]

# Where the configuration object is read: everything below gets plain values.
READS_THE_CONFIGURATION = {
    "app",
    "app.cli",
    "app.daemon.service",
    "app.sync.service",
    "app.sync.plan",
    "app.sync.logins",
}

# The one import of the kit by shipped code, inside the command that runs the demo.
LAZY_KIT_IMPORTS = {("app.cli.entry", "app.testing.demo")}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports
    at_load: bool  # at module level (run when the module loads), not inside a function


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolved against the importing package
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            return [f"{base}.{node.module}" if node.module else base]
        return [node.module or ""]
    return []


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    at_load = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        for target in _targets(node, package):
            if target == "app" or target.startswith("app."):
                found.append(Import(name, target, id(node) in at_load or _in_guard(tree, node)))
    return found


def _in_guard(tree: ast.Module, node: ast.AST) -> bool:
    """Inside a module-level `try`/`if` (an optional dependency): still run at load."""
    for top in tree.body:
        if isinstance(top, (ast.Try, ast.If)) and any(n is node for n in ast.walk(top)):
            return True
    return False


def shipped_modules() -> list[Path]:
    return [p for p in sorted(APP.rglob("*.py")) if "testing" not in p.relative_to(APP).parts]


def all_imports() -> list[Import]:
    return [found for path in shipped_modules() for found in imports_of(path)]


def layer_of(module: str) -> int:
    best, best_length = None, -1
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return best


def test_every_shipped_module_belongs_to_a_layer() -> None:
    for path in shipped_modules():
        layer_of(module_name(path))


def test_imports_only_go_down_the_layers() -> None:
    upward = [
        f"{found.module} (layer {layer_of(found.module)}) imports {found.target} "
        f"(layer {layer_of(found.target)})"
        for found in all_imports()
        if not found.target.startswith("app.testing")
        and layer_of(found.target) > layer_of(found.module)
    ]
    assert upward == []


def test_shipped_modules_never_load_the_test_kit() -> None:
    kit = [found for found in all_imports() if found.target.startswith("app.testing")]
    assert [found for found in kit if found.at_load] == []
    assert {(found.module, found.target) for found in kit} == LAZY_KIT_IMPORTS


def test_the_state_layer_never_reads_the_configuration() -> None:
    state = [found for found in all_imports() if found.module.startswith("app.state")]
    assert [found.target for found in state if found.target.startswith("app.config")] == []


def _is_entry_point(module: str) -> bool:
    """One of READS_THE_CONFIGURATION, or a module of such a package (`app` itself: only it)."""
    return any(
        module == entry or (entry != "app" and module.startswith(entry + "."))
        for entry in READS_THE_CONFIGURATION
    )


def test_the_entry_point_check_can_fail() -> None:
    assert _is_entry_point("app") and _is_entry_point("app.cli.doctor")
    assert not _is_entry_point("app.sync.agent") and not _is_entry_point("app.state.opening")


def test_the_configuration_is_read_only_at_the_entry_points() -> None:
    readers = {
        found.module
        for found in all_imports()
        if found.target == "app.config" or found.target.startswith("app.config.")
    }
    outside = {module for module in readers if not _is_entry_point(module)}
    assert outside == set()


@pytest.mark.parametrize(
    ("module", "target", "expected"),
    [
        ("app.sync.agent", "app.sync.rooms", True),
        ("app.state.opening", "app.config", False),
        ("app.http.calls", "app.matrix", False),
        ("app.cli.entry", "app.sync.service", True),
    ],
)
def test_the_layer_order_itself(module: str, target: str, expected: bool) -> None:
    """The check above can fail: an import of a higher layer is one it would report."""
    assert (layer_of(target) <= layer_of(module)) is expected
