"""Module paths a bridge may import from before the house move still import."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from app.moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_is_the_new_module_with_a_warning(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_the_paths_the_docs_named_import_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from app.sync.naming import agent_localpart, new_password
        from app.transport import Transport
        from app.transport_httpx import HttpxTransport
    assert agent_localpart("agent-0d5f") == "agent_0d5f" and len(new_password()) >= 32
    assert callable(HttpxTransport) and Transport.__name__ == "Transport"


@pytest.mark.child_process  # a pytest or python of its own
def test_an_old_path_imports_in_a_fresh_interpreter() -> None:
    """As a bridge would: its first line names the old module, before anything else of app."""
    code = "from app.retry import RetryPolicy; from app.cli_output import Output; print('ok')"
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our interpreter
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
