"""Every Python sample in README.md, migration_notes.md and docs/ runs, so the docs cannot rot.

Test samples (blocks that define ``test_*`` functions) run as pasted into a bridge's test file:
each becomes one file of a fresh project with no conftest, no ini file and no
``pytest_plugins`` line, and pytest runs there in a subprocess of this interpreter, so the
fixtures come from the installed package's plugin alone. Every test must pass on asyncio and on
trio (the samples' own ``pytestmark`` asks for both); the samples that need a real Synapse
run apart, as part of the contract tier. The other samples show library call
sites: they are executed and each coroutine function they define is called with arguments
chosen by parameter name (``config``, ``transport``) from a fresh in-process world.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
from bridge_project import Run, run_pytest

from app import SyncReport
from app.testing.harness import SyncHarness
from app.testing.plugin import BACKENDS
from app.testing.synapse import synapse_available

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "migration_notes.md", "docs/kit.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def samples() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((doc, line, match.group(1)))
    return found


def sample_tests(code: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return [
        node
        for node in ast.parse(code).body
        if isinstance(node, functions) and node.name.startswith("test_")
    ]


TEST_SAMPLES = [sample for sample in samples() if sample_tests(sample[2])]
CALL_SITE_SAMPLES = [sample for sample in samples() if not sample_tests(sample[2])]


def file_name(doc: str, line: int) -> str:
    return f"test_{Path(doc).stem.lower()}_line{line}.py"


def needs_synapse(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return "synapse" in [arg.arg for arg in function.args.args]


def expected_outcomes(samples: list[tuple[str, int, str]], outcome: str) -> dict[str, str]:
    """Test id -> ``outcome`` for every test of ``samples``, an async one once per backend."""
    expected = {}
    for doc, line, code in samples:
        for function in sample_tests(code):
            is_async = isinstance(function, ast.AsyncFunctionDef)
            for suffix in [f"[{b}]" for b in BACKENDS] if is_async else [""]:
                expected[f"{file_name(doc, line)}::{function.name}{suffix}"] = outcome
    return expected


def run_as_pasted(project: Path, samples: list[tuple[str, int, str]]) -> Run:
    run = run_pytest(project, {file_name(doc, line): code for doc, line, code in samples})
    assert not (project / "conftest.py").exists()
    return run


SYNAPSE_SAMPLES = [s for s in TEST_SAMPLES if any(map(needs_synapse, sample_tests(s[2])))]
FAKE_SAMPLES = [s for s in TEST_SAMPLES if s not in SYNAPSE_SAMPLES]


def test_the_docs_have_samples_of_both_kinds() -> None:
    assert {doc for doc, _, _ in TEST_SAMPLES} == set(DOCS)
    assert {doc for doc, _, _ in CALL_SITE_SAMPLES} == set(DOCS)


def test_every_test_sample_declares_its_pytestmark() -> None:
    unmarked = [f"{doc}:{line}" for doc, line, code in TEST_SAMPLES if "pytestmark" not in code]
    assert not unmarked


@pytest.mark.child_process  # a pytest or python of its own
def test_test_samples_pass_as_pasted_into_a_fresh_bridge_project(tmp_path: Path) -> None:
    run = run_as_pasted(tmp_path / "bridge", FAKE_SAMPLES)

    assert run.outcomes == expected_outcomes(FAKE_SAMPLES, "PASSED"), run.output
    assert run.returncode == 0, run.output


@pytest.mark.contract
@pytest.mark.child_process  # a pytest or python of its own
def test_real_synapse_samples_pass_as_pasted_into_a_fresh_bridge_project(tmp_path: Path) -> None:
    """Like the contract tier: skipped without Synapse, unless ``REQUIRE_SYNAPSE=1``."""
    required = os.environ.get("REQUIRE_SYNAPSE") == "1"
    outcome = "PASSED" if required or synapse_available() else "SKIPPED"

    run = run_as_pasted(tmp_path / "bridge", SYNAPSE_SAMPLES)

    assert SYNAPSE_SAMPLES and run.outcomes == expected_outcomes(SYNAPSE_SAMPLES, outcome), (
        run.output
    )
    assert run.returncode == 0, run.output


@pytest.mark.anyio
@pytest.mark.parametrize(("doc", "line", "code"), CALL_SITE_SAMPLES, ids=lambda v: str(v)[:40])
async def test_call_site_sample_runs(doc: str, line: int, code: str, tmp_path: Path) -> None:
    origin = f"{doc}:{line}"
    namespace: dict[str, Any] = {"__name__": f"docs_{doc}_{line}"}
    exec(compile(code, origin, "exec"), namespace)  # noqa: S102 - our own documentation
    functions = [
        value
        for value in namespace.values()
        if inspect.iscoroutinefunction(value) and value.__code__.co_filename == origin
    ]
    assert functions, f"{origin} defines no async function to run"
    for index, function in enumerate(functions):
        harness = SyncHarness(tmp_path / f"world{index}")
        supplies = {"config": harness.config(), "transport": harness.transport()}
        parameters = inspect.signature(function).parameters
        missing = [name for name in parameters if name not in supplies]
        assert not missing, f"{origin}: cannot supply {missing} to {function.__name__}"
        result = await function(**{name: supplies[name] for name in parameters})
        if isinstance(result, SyncReport):
            assert result.ok, f"{origin}: {result.failures}"


def test_the_readme_stays_short_and_names_what_a_bridge_author_needs() -> None:
    """Under 350 lines, one part per reader; the kit's appservice mode and read-backs named."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 350
    parts = [line for line in text.splitlines() if line.startswith("## ")]
    assert [part.split(":")[0] for part in parts] == [
        "## For a newcomer",
        "## For an operator",
        "## For a bridge author",
        "## Reference",
    ]
    for name in ("admin_id", "bot_id", "use_appservice()", "room_messages", "doctor", "deploy/"):
        assert name in text, name
