"""Every Python sample in README.md and migration_notes.md runs, so the docs cannot rot.

Each fenced ```python block is executed; every coroutine function it defines is then called
with arguments chosen by parameter name from a fresh in-process world (`sync_harness`,
`config`, `transport`). A returned `SyncReport` must be ok. A sample whose parameters cannot
be supplied fails the test, which keeps samples runnable.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from app import SyncReport
from app.testing.harness import SyncHarness

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "migration_notes.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def samples() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((doc, line, match.group(1)))
    return found


def test_the_docs_have_samples() -> None:
    assert {doc for doc, _, _ in samples()} == set(DOCS)


@pytest.mark.anyio
@pytest.mark.parametrize(("doc", "line", "code"), samples(), ids=lambda v: str(v)[:40])
async def test_sample_runs(
    doc: str, line: int, code: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
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
        supplies = {
            "sync_harness": harness,
            "config": harness.config(),
            "transport": harness.transport(),
            "fake_homeserver": harness.homeserver,
            "fake_letta": harness.letta,
            "tmp_path": tmp_path / f"own{index}",
        }
        parameters = inspect.signature(function).parameters
        if "synapse" in parameters:
            supplies["synapse"] = request.getfixturevalue("synapse")
        missing = [name for name in parameters if name not in supplies]
        assert not missing, f"{origin}: cannot supply {missing} to {function.__name__}"
        result = await function(**{name: supplies[name] for name in parameters})
        if isinstance(result, SyncReport):
            assert result.ok, f"{origin}: {result.failures}"
