"""Terminal output: rich tables and a progress bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

import io
import logging
import re

from app.cli.output import Output, terminal_log_handler
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


def terminal_lines(stream: Terminal) -> list[str]:
    """What the terminal shows: its lines without the colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    return [line.strip() for line in text.splitlines() if line.strip()]


def cells(line: str, rule: str) -> list[str]:
    return [cell.strip() for cell in line.split(rule)[1:-1]]


def test_the_failed_agents_table_names_its_columns_and_the_agent() -> None:
    stream = Terminal()

    Output(stream).report(a_report())

    header = next(line for line in terminal_lines(stream) if "agent id" in line)
    assert cells(header, "┃") == ["agent id", "name", "step", "reason"]
    row = next(line for line in terminal_lines(stream) if "MatrixError: no" in line)
    assert cells(row, "│") == ["a2", "Broken", "room", "MatrixError: no"]


def test_the_progress_bar_says_what_it_counts() -> None:
    stream = Terminal()

    with Output(stream).progress() as progress:
        progress.started(1)
        progress.agent_done("a1", "One", True)

    assert "syncing agents" in stream.getvalue() and "1/1" in stream.getvalue()


def test_a_plain_table_is_a_title_a_header_and_a_line_per_row() -> None:
    stream = io.StringIO()

    Output(stream).table("Agents", ["id", "name"], [("a1", "One"), ("a2", 2)])

    assert stream.getvalue().splitlines() == ["Agents", "  id | name", "  a1 | One", "  a2 | 2"]


def test_a_plain_heading_is_marked() -> None:
    stream = io.StringIO()

    Output(stream).heading("Rooms")

    assert stream.getvalue() == "== Rooms\n"


def test_log_records_go_above_a_live_progress_bar_and_back_to_stderr_after_it() -> None:
    out, err = Terminal(), Terminal()
    handler = terminal_log_handler(err)
    assert handler is not None and terminal_log_handler(io.StringIO()) is None
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with Output(out).progress() as progress:
            progress.started(1)
            logging.getLogger("app.sync").warning("during the bar")
        logging.getLogger("app.sync").warning("after the bar")
    finally:
        root.removeHandler(handler)

    assert "during the bar" in out.getvalue() and "during the bar" not in err.getvalue()
    assert any(line.endswith("app.sync: after the bar") for line in terminal_lines(err))
