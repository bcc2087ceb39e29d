"""Terminal output: rich tables and a progress bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

import io

from app.cli.output import Output
from app.sync.report import AgentFailure, SyncReport


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def a_report() -> SyncReport:
    report = SyncReport(agents_seen=2, space_id="!space", rooms_created=["a1"])
    report.failures.append(AgentFailure("a2", "Broken", "room", "MatrixError: no"))
    return report


def test_a_terminal_gets_tables_and_a_progress_bar() -> None:
    stream = Terminal()
    output = Output(stream)

    with output.progress() as progress:
        progress.started(2)
        progress.agent_done("a1", "One", True)
        progress.agent_done("a2", "Broken", False)
    output.report(a_report())

    text = stream.getvalue()
    assert "Sync report" in text and "Failed agents" in text and "MatrixError: no" in text
    assert "2/2" in text  # the bar reached the end


def test_a_pipe_gets_plain_lines() -> None:
    stream = io.StringIO()

    Output(stream).report(a_report())

    assert stream.getvalue().splitlines()[:3] == [
        "agents seen: 2",
        "space: !space",
        "users created: 0",
    ]
    assert "FAILED a2 (Broken) at room: MatrixError: no" in stream.getvalue()
