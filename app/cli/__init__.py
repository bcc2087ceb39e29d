"""The command line, `letta-matrix-sync` (also `python -m app`): one module per command group.

`main` is the console script's entry point (`app.cli:main`).
"""

from app.cli.entry import (
    COMMANDS,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_NOT_SAVED,
    EXIT_OK,
    EXIT_SERVER_TROUBLE,
    EXIT_SETUP,
    build_parser,
    main,
)

__all__ = [
    "COMMANDS",
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_NOT_SAVED",
    "EXIT_OK",
    "EXIT_SERVER_TROUBLE",
    "EXIT_SETUP",
    "build_parser",
    "main",
]
