"""Fixtures of the reliability suite (the fixtures of the fakes come from app.testing.plugin)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import FrontDoor, harness_with_door
from served_fakes import SyncProcess, UnreachableRun, free_port, sync_env

from app.testing.harness import SyncHarness


@pytest.fixture
def door_harness(tmp_path: Path) -> tuple[SyncHarness, FrontDoor]:
    return harness_with_door(tmp_path / "data")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures logging for the process; put the logging tree back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_level = logging.getLogger("httpx").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)


@pytest.fixture(scope="session", autouse=True)
def unreachable_homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnreachableRun]:
    """Started with the first reliability test, read by test_unreachable_homeserver.py.

    With the CLI's default retry policy this run takes several seconds of real backoff; it
    runs in the background while the rest of the suite does, and the test that reads it is
    collected last.
    """
    workdir = tmp_path_factory.mktemp("unreachable")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = sync_env(url, url, workdir / "data")
    env.pop("LOG_LEVEL", None)  # the default level, as an operator would run it
    run = UnreachableRun(port, SyncProcess.start(env, workdir, "unreachable"))
    yield run
    if run.process.proc.poll() is None:
        run.process.kill()
