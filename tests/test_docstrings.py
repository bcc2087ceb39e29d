"""Docstrings of the package: the kit's modules have one, and none points at a missing file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted((ROOT / "app").rglob("*.py"))
# A Markdown file (README.md, DESIGN.md) or a path inside this repository (tests/contract).
FILE_REFERENCE = re.compile(r"\b(?:[\w-]+\.md|(?:app|tests|benchmarks|docs)/[\w/.-]*\w)")


def docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [tree, *ast.walk(tree)]
    found = (ast.get_docstring(node) for node in nodes if _may_have_docstring(node))
    return [text for text in found if text]


def _may_have_docstring(node: ast.AST) -> bool:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return isinstance(node, kinds)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docstrings_point_only_at_files_in_the_repository(path: Path) -> None:
    missing = {
        reference
        for text in docstrings(path)
        for reference in FILE_REFERENCE.findall(text)
        if not (ROOT / reference).exists()
    }
    assert not missing, f"{path.relative_to(ROOT)} points at {sorted(missing)}"


def test_every_module_of_the_kit_says_what_it_is() -> None:
    kit = [path for path in MODULES if "testing" in path.relative_to(ROOT).parts]
    undocumented = [str(path.relative_to(ROOT)) for path in kit if not docstrings(path)]
    assert kit and not undocumented
    package_docstring = docstrings(ROOT / "app/testing/__init__.py")[0]
    assert "pytest11" in package_docstring and "both_backends" in package_docstring


def test_the_reference_pattern_catches_a_missing_design_document() -> None:
    assert FILE_REFERENCE.findall("see ``DESIGN.md`` and tests/contract/") == [
        "DESIGN.md",
        "tests/contract",
    ]
