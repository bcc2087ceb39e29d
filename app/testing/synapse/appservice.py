"""A production-shaped Synapse: an appservice registration loaded, registration closed, and
Synapse's **default** rate limits (no ``rc_*`` setting at all).

The registration is the caller's (write it with ``letta-matrix-sync registration``); Synapse
reads it at start, so write it before :meth:`SynapseServer.start`.
"""

from __future__ import annotations

from pathlib import Path

from app.testing.synapse.config import _RATE_LIMITERS, _drop_top_level_keys
from app.testing.synapse.server import SynapseServer

_REGISTRATION_KEYS = {"enable_registration", "enable_registration_without_verification"}


def appservice_config(text: str, registration: Path) -> str:
    """The test config with registration closed, every rate limit back at Synapse's default
    and `registration` listed in ``app_service_config_files``."""
    base = _drop_top_level_keys(text, set(_RATE_LIMITERS) | _REGISTRATION_KEYS)
    return base + (
        f"enable_registration: false\napp_service_config_files: [{str(registration.resolve())!r}]\n"
    )


class AppserviceSynapse(SynapseServer):
    """:class:`SynapseServer` as a production homeserver runs: see the module docstring."""

    def __init__(
        self,
        data_dir: Path | str,
        registration: Path,
        python: str | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        super().__init__(data_dir, python=python, ready_timeout=ready_timeout)
        self.registration = registration

    def configure(self) -> None:
        configured = self.config_path.exists() and self._port is not None
        super().configure()
        if not configured:
            text = self.config_path.read_text(encoding="utf-8")
            self.config_path.write_text(
                appservice_config(text, self.registration), encoding="utf-8"
            )
