"""The homeserver.yaml of a local test Synapse: derived from Synapse's own generated config."""

from __future__ import annotations

_HIGH = "{per_second: 100000, burst_count: 1000000}"

# Every rate limiter Synapse 1.163 reads (in Synapse's source: synapse/config/ratelimiting.py),
# raised out of reach.
_RATE_LIMITERS = {
    "rc_login": ("address", "account", "failed_attempts"),
    "rc_joins": ("local", "remote"),
    "rc_invites": ("per_room", "per_user", "per_issuer"),
    "rc_presence": ("per_user",),
    **dict.fromkeys(
        "rc_message rc_registration rc_registration_token_validity rc_admin_redaction"
        " rc_joins_per_room rc_key_requests rc_3pid_validation rc_third_party_invite"
        " rc_media_create rc_delayed_event_mgmt rc_room_creation rc_reports"
        " rc_user_directory rc_profile".split(),
        (),
    ),
}


def rate_limit_yaml() -> str:
    """YAML for every ``rc_*`` limiter, each set to an unreachable limit."""
    lines: list[str] = []
    for key, subkeys in _RATE_LIMITERS.items():
        if not subkeys:
            lines.append(f"{key}: {_HIGH}")
            continue
        lines.append(f"{key}:")
        lines.extend(f"  {sub}: {_HIGH}" for sub in subkeys)
    return "\n".join(lines) + "\n"


_EXTRA_CONFIG = """
listeners:
  - {{port: {port}, bind_addresses: ['127.0.0.1'], type: http, tls: false,
      resources: [{{names: [client], compress: false}}]}}
enable_registration: true
enable_registration_without_verification: true
bcrypt_rounds: 4
trusted_key_servers: []
suppress_key_server_warning: true
report_stats: false
"""


def _drop_top_level_keys(text: str, keys: set[str]) -> str:
    """Remove the given top-level YAML keys together with their indented blocks."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line[:1] in (" ", "\t", "-") and skipping:
            continue
        skipping = line.split(":", 1)[0] in keys and ":" in line
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def rewrite_config(
    text: str, port: int, *, default_rate_limits: bool = False, room_version: str | None = None
) -> str:
    """Turn a generated homeserver.yaml into one fit for a local test server.

    With `default_rate_limits` every ``rc_*`` limiter keeps Synapse's default, as on a stock
    production homeserver (registration stays open: password mode registers the agents).
    `room_version` sets `default_room_version` (Synapse 1.163 makes rooms of version 12).
    """
    base = _drop_top_level_keys(text, {"listeners", "trusted_key_servers", "report_stats"})
    limits = "" if default_rate_limits else rate_limit_yaml()
    version = f'default_room_version: "{room_version}"\n' if room_version else ""
    return base + _EXTRA_CONFIG.format(port=port) + limits + version


__all__ = ["rate_limit_yaml", "rewrite_config"]
