"""Small rules with a user-visible edge: the listen address's port range, user ids on a
server with a port, passwords' strength, how power is described, the lease after stepping
down, and the old-path aliases installed once."""

from __future__ import annotations

import re
import sys

import pytest

from app.config import check_admin_is_not_sender
from app.daemon.settings import parse_listen
from app.errors import ConfigError
from app.identity.naming import new_password
from app.matrix.view import CREATE, MEMBER, RoomState
from app.moved import install
from app.state.lease import Lease
from app.sync import power


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:65535", ("::1", 65535))],
)
def test_a_listen_port_may_be_any_from_0_to_65535(value: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(value) == parsed


@pytest.mark.parametrize("value", ["127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1", ":80"])
def test_a_listen_address_outside_the_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="LISTEN_ADDRESS"):
        parse_listen(value)


def test_the_admin_and_the_sender_are_told_apart_on_a_server_with_a_port() -> None:
    check_admin_is_not_sender("@admin:hs.example:8448", "@letta:hs.example:8448")
    with pytest.raises(ConfigError):
        check_admin_is_not_sender("@letta:hs.example:8448", "letta")


def test_a_new_password_is_32_random_bytes_in_url_safe_text() -> None:
    passwords = {new_password() for _ in range(20)}

    assert len(passwords) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", p) for p in passwords)


def test_power_is_described_user_by_user() -> None:
    room = RoomState(
        {
            (CREATE, ""): {"room_version": "12", "sender": "@creator:hs"},
            (power.POWER_LEVELS, ""): {"users": {"@a:hs": 10}, "events": {"m.room.name": 50}},
            (MEMBER, "@a:hs"): {"membership": "join"},
            (MEMBER, "@creator:hs"): {"membership": "join"},
        }
    )

    described = power.describe_levels(room, ["@a:hs", "@b:hs", "@creator:hs"], "m.room.name")

    assert described == (
        "m.room.name needs power 50; @a:hs has 10, @b:hs is not in the room, "
        "@creator:hs has creator power"
    )


def test_a_lease_stepped_down_is_never_valid() -> None:
    lease = Lease("postgresql://db.example/sync", "replica-1", ttl=15)

    lease.step_down()

    assert not lease.valid() and lease.token is None and not lease.is_leader


def test_the_old_paths_are_aliased_by_one_finder_however_often_installed() -> None:
    install()
    install()

    assert sum(type(finder).__name__ == "_MovedModules" for finder in sys.meta_path) == 1
