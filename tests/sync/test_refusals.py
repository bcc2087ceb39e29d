"""The text of every refusal: the cause, the setting to fix, and never a secret."""

from __future__ import annotations

import pytest

from app.errors import (
    ConfigError,
    MatrixError,
    MatrixForbidden,
    MatrixLoginRefused,
    MatrixUserDeactivated,
)
from app.identity.refusals import Refusal, Settings, refusal_error, wrong_server

BOT = "@letta:localhost"
BOT_SETTINGS = Settings("MATRIX_USERNAME", "MATRIX_PASSWORD")
FORBIDDEN = MatrixForbidden(403, "M_FORBIDDEN", "Invalid username or password")


@pytest.mark.parametrize(
    ("had_token", "deactivated", "settings", "error_class", "words"),
    [
        (True, True, BOT_SETTINGS, ConfigError, ["(MATRIX_USERNAME) has been deactivated"]),
        (True, False, BOT_SETTINGS, ConfigError, ["password was changed", "MATRIX_PASSWORD"]),
        (True, None, BOT_SETTINGS, ConfigError, ["changed", "or the account was deactivated"]),
        (False, False, BOT_SETTINGS, ConfigError, ["the password in MATRIX_PASSWORD is wrong"]),
        (False, None, BOT_SETTINGS, ConfigError, ["a wrong password, or a deactivated account"]),
        (True, True, None, MatrixUserDeactivated, ["deactivated", "cannot be synced"]),
        (True, None, None, MatrixLoginRefused, ["token of", "or the account deactivated?"]),
        (False, False, None, MatrixLoginRefused, ["saved password of", "(changed on the server?)"]),
    ],
)
def test_a_refusal_names_its_cause(
    had_token: bool,
    deactivated: bool | None,
    settings: Settings | None,
    error_class: type[Exception],
    words: list[str],
) -> None:
    error = refusal_error(Refusal(BOT, FORBIDDEN, had_token, deactivated, settings))

    assert type(error) is error_class
    assert BOT in str(error)
    for word in words:
        assert word in str(error)
    if isinstance(error, MatrixError):
        assert (error.status, error.errcode) == (403, "M_FORBIDDEN")


def test_an_unverified_server_part_is_offered_as_a_cause() -> None:
    refusal = Refusal("@letta:elsewhere", FORBIDDEN, False, None, BOT_SETTINGS, True)

    text = str(refusal_error(refusal))

    assert "MATRIX_USERNAME names a server ('elsewhere') other than this homeserver's" in text


def test_wrong_server_says_what_to_set() -> None:
    text = str(wrong_server("@letta:wrong.example", "MATRIX_USERNAME", "localhost"))

    assert text == (
        "MATRIX_USERNAME=@letta:wrong.example names the server 'wrong.example', but this "
        "homeserver is 'localhost': set MATRIX_USERNAME to @letta:localhost or just letta"
    )
