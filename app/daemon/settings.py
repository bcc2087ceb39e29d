"""Settings of `run`: interval, listen address, webhook token; flags win over the environment."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.errors import ConfigError

DEFAULT_INTERVAL = 60.0
DEFAULT_LISTEN = "127.0.0.1:9464"
# Replicas: how long a leader that stopped renewing its lease keeps it (see app.state.lease).
DEFAULT_LEASE_TTL = 15.0
BACKENDS = ("asyncio", "trio")


@dataclass(frozen=True)
class ServiceSettings:
    interval: float = DEFAULT_INTERVAL
    host: str = "127.0.0.1"
    port: int = 9464
    webhook_token: str | None = field(default=None, repr=False)
    # Longest wait between attempts while the homeserver or Letta is down.
    max_backoff: float = 900.0
    # How long SIGTERM waits for a sync in flight before cancelling it.
    shutdown_timeout: float = 30.0
    lease_ttl: float = DEFAULT_LEASE_TTL
    # The event loop `run` serves on (SYNC_BACKEND).
    backend: str = "asyncio"

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        interval: float | None = None,
        listen: str | None = None,
    ) -> ServiceSettings:
        source = os.environ if env is None else env
        raw_interval = source.get("SYNC_INTERVAL", "").strip()
        if interval is None:
            interval = _seconds("SYNC_INTERVAL", raw_interval) if raw_interval else DEFAULT_INTERVAL
        if interval <= 0:
            raise ConfigError("SYNC_INTERVAL (--interval) must be a positive number of seconds")
        host, port = parse_listen(
            listen or source.get("LISTEN_ADDRESS", "").strip() or DEFAULT_LISTEN
        )
        token = source.get("SYNC_WEBHOOK_TOKEN", "").strip() or None
        raw_ttl = source.get("LEASE_TTL", "").strip()
        ttl = _seconds("LEASE_TTL", raw_ttl) if raw_ttl else DEFAULT_LEASE_TTL
        if not 1 <= ttl <= 3600:
            raise ConfigError(f"LEASE_TTL must be between 1 and 3600 seconds, got {raw_ttl!r}")
        backend = source.get("SYNC_BACKEND", "").strip() or BACKENDS[0]
        if backend not in BACKENDS:
            raise ConfigError(f"SYNC_BACKEND must be asyncio or trio, got {backend!r}")
        return cls(
            interval,
            host,
            port,
            token,
            max_backoff=max(interval, 900.0),
            lease_ttl=ttl,
            backend=backend,
        )


def _seconds(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None


def parse_listen(value: str) -> tuple[str, int]:
    """ "HOST:PORT" or "[IPv6]:PORT" into its parts."""
    host, separator, port = value.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"LISTEN_ADDRESS (--listen) must be HOST:PORT such as {DEFAULT_LISTEN}, got {value!r}"
        )
    return host, int(port)
