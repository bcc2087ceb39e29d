"""A sync on a real, small filesystem (tmpfs) that fills up: nothing is lost, nothing is hidden.

Every agent is renamed, and the disk fills up at a different point of that sync for each
level of free space: the journal, the folded mapping file, the token file. Whatever the point,
a good state file is never replaced by a partial one, the sync says it could not save its
state (exit 4, naming MATRIX_DATA_DIR) unless it really saved everything, and once there is
space again the next sync loses nothing: same users, same passwords, same rooms.

Mounting a tmpfs needs root. `.ci/run` runs as root and sets REQUIRE_TMPFS=1, so there this
test must run; elsewhere it is skipped and says why.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import assert_converged, mappings_on_disk, state_files_valid

from app.cli import main
from app.testing.harness import SyncHarness

from helpers import cli_env

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

AGENTS = 16
DISK = "1m"
# Free bytes left on the disk before the rename sync: from "nothing at all" to "just enough
# for the journal but not the folded file", a page (4 KiB) at a time.
FREE_LEVELS = [0, 2048, 4096, 8192, 12288, 16384, 20480, 24576, 32768, 49152]
EXIT_STATE_NOT_SAVED = 4


def _cannot_mount_reason() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (run as root, or rely on .ci/run)"
    return None


@contextlib.contextmanager
def small_disk(mount_point: Path) -> Iterator[Path]:
    reason = _cannot_mount_reason()
    if reason is not None:
        if os.environ.get("REQUIRE_TMPFS") == "1":
            pytest.fail(f"REQUIRE_TMPFS=1 but {reason}")
        pytest.skip(reason)
    mount_point.mkdir(parents=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(mount_point)]
    mounted = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("REQUIRE_TMPFS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)  # noqa: S603, S607


def fill_leaving(disk: Path, free_bytes: int) -> Path:
    """Write a filler file so that about `free_bytes` stay available on `disk`."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    available = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, available - free_bytes))
    return filler


def run_cli(h: SyncHarness, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["sync", "--json", *args], env=env, transport=h.transport(), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("free_bytes", FREE_LEVELS)
def test_a_disk_that_fills_during_a_rename_sync_loses_nothing(
    tmp_path: Path, free_bytes: int, restore_logging: None
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        data_dir = disk / "data"
        h = SyncHarness(data_dir)
        env = cli_env(h, HISTORY_IMPORT_LIMIT="0", LOG_LEVEL="CRITICAL")
        agents = [h.letta.add_agent(f"Agent {n:02d}") for n in range(AGENTS)]
        assert run_cli(h, env)[0] == 0
        before = mappings_on_disk(data_dir)
        for agent_id in agents:
            h.letta.rename(agent_id, f"Renamed agent {agent_id} with a longer name than before")

        filler = fill_leaving(disk, free_bytes)
        code, _out, err = run_cli(h, env)

        state_files_valid(data_dir)  # never a partial file, full disk or not
        on_disk = mappings_on_disk(data_dir)
        assert set(on_disk) == set(before)
        for agent_id, old in before.items():
            assert on_disk[agent_id]["matrix_password"] == old["matrix_password"]
        if code == 0:
            # Exit 0 is only allowed when the files the bridge reads hold the whole sync.
            assert {m["agent_name"] for m in on_disk.values()} == {
                h.letta.agent(a).name for a in agents
            }
        else:
            assert code == EXIT_STATE_NOT_SAVED, err
            assert "MATRIX_DATA_DIR" in err and "No space left on device" in err, err
            assert "Traceback" not in err

        filler.unlink()
        code, out, err = run_cli(h, env)
        assert code == 0, err
        assert json.loads(out)["ok"] is True
        assert_converged(h.homeserver, data_dir, agents, members=(h.admin_id, h.bot_id))
        after = mappings_on_disk(data_dir)
        for agent_id, old in before.items():
            assert after[agent_id]["matrix_password"] == old["matrix_password"]
            assert after[agent_id]["agent_name"] == h.letta.agent(agent_id).name
            assert h.homeserver.displayname(old["matrix_user_id"]) == h.letta.agent(agent_id).name


def test_some_level_really_fills_the_disk(tmp_path: Path, restore_logging: None) -> None:
    """Guard against the levels above drifting so far that no sync meets a full disk."""
    with small_disk(tmp_path / "disk") as disk:
        data_dir = disk / "data"
        h = SyncHarness(data_dir)
        env = cli_env(h, HISTORY_IMPORT_LIMIT="0", LOG_LEVEL="CRITICAL")
        for n in range(AGENTS):
            h.letta.add_agent(f"Agent {n:02d}")
        assert run_cli(h, env)[0] == 0
        for agent in h.letta.agents():
            h.letta.rename(agent.id, f"Renamed agent {agent.id} with a longer name than before")
        fill_leaving(disk, 4096)
        code, _out, err = run_cli(h, env)
        assert code == EXIT_STATE_NOT_SAVED, err
