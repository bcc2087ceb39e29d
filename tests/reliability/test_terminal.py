"""`sync` on a pseudo-terminal: log records print above the progress bar, not through it.

The process writes to a real pty; what a terminal would then show is rebuilt from the bytes
with the few controls rich uses (carriage return, cursor up, erase line).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from served_fakes import Served, sync_env

from app.identity.naming import agent_localpart

# Starts child processes (python -m app, servers): mutated code cannot run there, and
# in-process twins cover the behaviour. The mutation run leaves these out.
pytestmark = pytest.mark.child_process

_CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07]*\x07")


def run_on_a_terminal(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    """Run `python -m app ARGS` with stdin, stdout and stderr on one pty; its output."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "app", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "160"},
        cwd=cwd,
    )
    os.close(terminal)
    chunks, deadline = [], time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its side
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(30), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw` (only the controls rich's live display uses)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    position = 0
    while position < len(raw):
        control = _CONTROL.match(raw, position)
        if control is not None:
            params, command = control.group(1) or "", control.group(2)
            if command == "A":
                row = max(0, row - int(params or 1))
            elif command == "K":
                lines[row] = [] if params == "2" else lines[row][:col]
            position = control.end()
            continue
        char = raw[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            lines.extend([] for _ in range(row + 1 - len(lines)))
        elif char.isprintable():
            line = lines[row]
            line.extend(" " for _ in range(col + 1 - len(line)))
            line[col] = char
            col += 1
    return ["".join(line).rstrip() for line in lines]


def test_log_lines_print_above_the_progress_bar_not_through_it(tmp_path: Path) -> None:
    served = Served()
    agents = [served.letta.add_agent(f"Agent {n}") for n in range(8)]
    taken = agents[::2]  # their names are someone else's: each fails with a log line
    for agent_id in taken:
        served.homeserver.register_user(agent_localpart(agent_id), "not ours")
    with served.running() as (matrix_url, letta_url):
        env = sync_env(matrix_url, letta_url, tmp_path / "data", SYNC_CONCURRENCY="1")
        code, raw = run_on_a_terminal(env, tmp_path, "sync")

    shown = screen(raw)
    assert code == 1, raw[-2000:]
    assert "syncing agents" in raw and "8/8" in raw  # the bar was drawn, and finished
    failed = [line for line in shown if "failed at user" in line]
    assert sorted(agent for agent in taken if any(agent in line for line in failed)) == sorted(
        taken
    ), "\n".join(shown)
    through = [line for line in shown if "syncing agents" in line and "failed at" in line]
    assert through == [], "\n".join(shown)
