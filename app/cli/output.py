"""Terminal output: rich tables and a progress bar on a terminal, plain lines otherwise.

rich is optional (`pip install 'letta-matrix-sync[cli]'`); without it, or when stdout is not
a terminal, everything degrades to plain text that logs and pipes read well.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

from app.sync.progress import NoProgress, SyncProgress
from app.sync.report import SyncReport

try:
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table
except ImportError:  # pragma: no cover - exercised only without the optional extra
    Console = None  # type: ignore[assignment,misc]
    RichHandler = None  # type: ignore[assignment,misc]


def terminal_log_handler(stderr: TextIO) -> logging.Handler | None:
    """Log records for a terminal (rich's handler), or None when `stderr` is not one."""
    if RichHandler is None or not stderr.isatty():
        return None
    handler = _TerminalLogHandler(Console(file=stderr))
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def _route_terminal_logs(console: Any) -> None:
    """While a progress bar is live, records go through its console, which prints them above
    the bar (a write of its own to the terminal would land in the middle of the bar)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _TerminalLogHandler):
            handler.console = console or handler.own_console


if RichHandler is not None:

    class _TerminalLogHandler(RichHandler):
        def __init__(self, console: Any) -> None:
            super().__init__(console=console, show_path=False, markup=False)
            self.own_console = console


class ReaderSafeStream(io.TextIOBase):
    """Writes through to `stream` until its reader goes away (`| head`), then drops output.

    Each write is flushed, so a closed pipe shows up here and not at interpreter exit.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self.stream.write(text)
                self.stream.flush()
            except BrokenPipeError:
                self.reader_gone = True
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.reader_gone = True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def writable(self) -> bool:
        return True


class Output:
    def __init__(self, stream: TextIO, *, force_plain: bool = False) -> None:
        self.stream = stream
        fancy = Console is not None and not force_plain and stream.isatty()
        self._console = Console(file=stream) if fancy else None

    def line(self, text: str = "") -> None:
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            self.stream.write(text + "\n")

    def heading(self, text: str) -> None:
        if self._console is not None:
            self._console.rule(text)
        else:
            self.line(f"== {text}")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self._console is not None:
            table = Table(title=title)
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*(str(cell) for cell in row))
            self._console.print(table)
            return
        self.line(title)
        self.line("  " + " | ".join(columns))
        for row in rows:
            self.line("  " + " | ".join(str(cell) for cell in row))

    def report(self, report: SyncReport) -> None:
        """The end-of-sync summary: a table on a terminal, `label: value` lines otherwise."""
        if self._console is None:
            self.line(report.summary())
            return
        self.table("Sync report", ["", "result"], report.counts())
        for line in report.letta_lines():
            self.line(line)
        if report.failures:
            rows = [(f.agent_id, f.agent_name, f.step, f.reason) for f in report.failures]
            self.table("Failed agents", ["agent id", "name", "step", "reason"], rows)

    def progress(self) -> ProgressDisplay:
        return ProgressDisplay(self._console)


class ProgressDisplay:
    """A context manager yielding a `SyncProgress`: a bar on a terminal, nothing otherwise
    (the library's log lines already say what happens)."""

    def __init__(self, console: Any) -> None:
        self._console = console
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> SyncProgress:
        if self._console is None:
            return NoProgress()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self._bar = Progress(*columns, console=self._console)
        self._bar.__enter__()
        _route_terminal_logs(self._console)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            _route_terminal_logs(None)
            self._bar.__exit__(exc_type, exc, tb)

    def started(self, total_agents: int) -> None:
        self._task = self._bar.add_task("syncing agents", total=total_agents)

    def agent_done(self, agent_id: str, agent_name: str, ok: bool) -> None:
        self._bar.advance(self._task)
