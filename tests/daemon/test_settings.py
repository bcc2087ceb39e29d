"""`run`'s settings from the environment, in-process: the names in errors, the defaults, and
the settings that decide safety (the webhook's token, the lease's time to live)."""

from __future__ import annotations

import pytest

from app.daemon.replicas import poll_seconds
from app.daemon.settings import DEFAULT_LEASE_TTL, ServiceSettings
from app.errors import ConfigError


def test_the_defaults() -> None:
    settings = ServiceSettings.from_env({})
    assert (settings.interval, settings.host, settings.port) == (60.0, "127.0.0.1", 9464)
    assert settings.webhook_token is None and settings.lease_ttl == DEFAULT_LEASE_TTL <= 15
    assert settings.loopback


def test_the_webhook_token_is_read_and_kept_out_of_the_repr() -> None:
    settings = ServiceSettings.from_env({"SYNC_WEBHOOK_TOKEN": " hook-secret-77 "})
    assert settings.webhook_token == "hook-secret-77"
    assert "hook-secret-77" not in repr(settings)


def test_the_lease_ttl_is_read_and_checked() -> None:
    assert ServiceSettings.from_env({"LEASE_TTL": "4"}).lease_ttl == 4.0
    for wrong in ("0", "0.5", "7200", "soon"):
        with pytest.raises(ConfigError, match="LEASE_TTL"):
            ServiceSettings.from_env({"LEASE_TTL": wrong})


def test_the_leader_looks_at_its_lease_at_least_three_times_per_ttl() -> None:
    assert poll_seconds(60) == 5.0 and poll_seconds(60, ttl=15) == 5.0
    assert poll_seconds(60, ttl=6) == 2.0
    assert poll_seconds(1.5, ttl=15) == 0.375 and poll_seconds(0.1) == 0.2


def test_a_wrong_interval_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="SYNC_INTERVAL must be a number of seconds"):
        ServiceSettings.from_env({"SYNC_INTERVAL": "hourly"})


def test_the_lease_ttl_bounds_themselves_are_allowed() -> None:
    assert ServiceSettings.from_env({"LEASE_TTL": "1"}).lease_ttl == 1.0
    assert ServiceSettings.from_env({"LEASE_TTL": "3600"}).lease_ttl == 3600.0
    with pytest.raises(ConfigError, match="between 1 and 3600"):
        ServiceSettings.from_env({"LEASE_TTL": "3600.5"})


@pytest.mark.parametrize(("value", "backend"), [("", "asyncio"), (" trio ", "trio")])
def test_the_event_loop_is_asyncio_unless_trio_is_asked_for(value: str, backend: str) -> None:
    assert ServiceSettings.from_env({"SYNC_BACKEND": value}).backend == backend
    assert ServiceSettings.from_env({}).backend == "asyncio"


def test_an_unknown_event_loop_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="SYNC_BACKEND must be asyncio or trio, got 'curio'"):
        ServiceSettings.from_env({"SYNC_BACKEND": "curio"})
