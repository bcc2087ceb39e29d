"""`letta-matrix-sync doctor`: the configuration checked against the live servers.

One line per check, passed or failed with its fix; exit 0 when none failed. It writes
nothing: no login (a device and a token are writes), no registration, no state file. What
only a write could prove (a password, say) is said to be unchecked, with why.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from app.config import SyncConfig
from app.daemon.settings import ServiceSettings
from app.errors import ConfigError, LettaError, MatrixForbidden, MatrixUnknownToken, SyncError
from app.http.calls import Pacing
from app.http.retry import RetryPolicy
from app.http.transport import Transport
from app.identity.naming import agent_user_id
from app.identity.registration import AppserviceRegistration, load_registration
from app.letta import LettaClient
from app.matrix import MatrixClient
from app.matrix.appservice import acting_as
from app.matrix.ids import localpart_of, server_name_of, user_id_from
from app.state import Store
from app.state.opening import open_store
from app.sync.report import describe

# Room a data directory needs beyond what it holds: state files, their copies while
# replaced, and the view of the homeserver.
SPARE_BYTES = 64 * 1024 * 1024
_PROBE = "letta-matrix-sync-doctor-probe"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, FAIL, skip
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, "FAIL", detail)


def skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


async def run_doctor(
    env: Mapping[str, str],
    transport: Transport | None,
    out: TextIO,
    as_json: bool = False,
    pacing: Pacing | None = None,
) -> int:
    from app.http.httpx_transport import HttpxTransport

    own = HttpxTransport(timeout=10.0) if transport is None else None
    chosen = own or transport
    assert chosen is not None
    try:
        checks = await diagnose(env, chosen, pacing)
    finally:
        if own is not None:
            await own.aclose()
    failed = sum(check.status == "FAIL" for check in checks)
    if as_json:
        listed = [{"name": c.name, "status": c.status.lower(), "detail": c.detail} for c in checks]
        out.write(json.dumps({"ok": not failed, "checks": listed}, indent=2) + "\n")
        return 1 if failed else 0
    for check in checks:
        out.write(check.line() + "\n")
    out.write(f"{len(checks)} checks, {failed} failed\n")
    return 1 if failed else 0


async def diagnose(
    env: Mapping[str, str], transport: Transport, pacing: Pacing | None = None
) -> list[Check]:
    checks = [_service_settings(env)]
    try:
        config = SyncConfig.from_env(env)
    except ConfigError as exc:
        return [fail("settings", str(exc)), *checks]
    checks.insert(0, ok("settings", "read without error"))
    policy = RetryPolicy(budget=min(config.retry_budget, 5.0))
    matrix = MatrixClient.connect(transport, config.homeserver_url, policy=policy, pacing=pacing)
    letta = LettaClient.connect(
        transport, config.letta_url, config.letta_token, policy=policy, pacing=pacing
    )
    checks.append(await _letta(letta, config))
    store_check, store = await _store(config)
    checks.append(store_check)
    reachable = await _homeserver(matrix, config)
    checks.append(reachable)
    if reachable.status != "ok":
        return checks
    agents = await _agent_ids(letta, config)
    if config.appservice_registration is not None:
        checks += await _appservice(matrix, config, agents)
    else:
        checks += await _password_mode(matrix, config, store, agents)
    if store is not None:
        await store.aclose()
    return checks


def _service_settings(env: Mapping[str, str]) -> Check:
    name = "run settings"
    try:
        settings = ServiceSettings.from_env(env)
    except ConfigError as exc:
        return fail(name, str(exc))
    if settings.backend == "trio" and importlib.util.find_spec("trio") is None:
        return fail(name, "SYNC_BACKEND=trio needs trio installed (pip install trio)")
    where = f"{settings.host}:{settings.port}"
    if settings.loopback or settings.webhook_token:
        guarded = "a bearer token" if settings.webhook_token else "loopback only"
        return ok(name, f"{where}; POST /sync takes {guarded}")
    return fail(
        name,
        f"LISTEN_ADDRESS={where} is not loopback and SYNC_WEBHOOK_TOKEN is unset, so POST "
        "/sync would be refused: set SYNC_WEBHOOK_TOKEN (a long random string)",
    )


async def _homeserver(matrix: MatrixClient, config: SyncConfig) -> Check:
    name = "homeserver"
    try:
        versions = await matrix.versions()
    except SyncError as exc:
        return fail(
            name,
            f"MATRIX_HOMESERVER_URL={config.homeserver_url} does not answer as a Matrix "
            f"homeserver ({describe(exc)}): check the URL (the client API's base, "
            "https://matrix.example.org, not the server name)",
        )
    newest = max(versions, default="none", key=_version_key)
    return ok(name, f"{config.homeserver_url} speaks Matrix (newest spec version {newest})")


def _version_key(version: str) -> tuple[int, ...]:
    digits = [part for part in version.lstrip("rv").split(".") if part.isdigit()]
    return tuple(int(part) for part in digits)


async def _letta(letta: LettaClient, config: SyncConfig) -> Check:
    name = "Letta"
    try:
        latest = await letta.latest_change()
    except LettaError as exc:
        if exc.status in (401, 403):
            return fail(name, f"{config.letta_url} refused LETTA_TOKEN: set the server's token")
        return fail(name, f"LETTA_API_URL={config.letta_url} cannot be read: {describe(exc)}")
    except SyncError as exc:
        return fail(name, f"LETTA_API_URL={config.letta_url} cannot be read: {describe(exc)}")
    seen = "no agent yet" if latest is None else f"last agent change {latest:%Y-%m-%d %H:%M}"
    return ok(name, f"{config.letta_url} answers with the token given ({seen})")


async def _agent_ids(letta: LettaClient, config: SyncConfig) -> list[str]:
    try:
        return [agent.id for agent in (await letta.list_agents(config.letta_page_size)).agents]
    except SyncError:
        return []  # already reported by the Letta check


async def _store(config: SyncConfig) -> tuple[Check, Store | None]:
    name = "store"
    if not config.store_url and (problem := _data_dir_problem(config.data_dir)):
        return fail(name, problem), None
    try:
        store = await open_store(config.store_location, read_only=True)
    except SyncError as exc:
        return fail(name, describe(exc)), None
    where = "MATRIX_STORE_URL" if config.store_url else f"MATRIX_DATA_DIR={config.data_dir}"
    return ok(name, f"{where}: {len(store.mappings)} agents recorded"), store


def _data_dir_problem(data_dir: Path) -> str | None:
    existing = next((p for p in (data_dir, *data_dir.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"MATRIX_DATA_DIR={data_dir}: {existing} is not a directory"
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"MATRIX_DATA_DIR={data_dir} cannot be written by this user (checked at "
            f"{existing}): choose a directory it owns, such as the service's StateDirectory"
        )
    free = shutil.disk_usage(existing).free
    if free < SPARE_BYTES:
        return f"MATRIX_DATA_DIR={data_dir}: only {free // 1024**2} MiB free; free some space"
    return None


async def _appservice(matrix: MatrixClient, config: SyncConfig, agents: list[str]) -> list[Check]:
    assert config.appservice_registration is not None
    try:
        registration = load_registration(config.appservice_registration)
    except ConfigError as exc:
        return [fail("appservice registration", str(exc))]
    sender = matrix.as_user(None, registration.as_token)
    try:
        sender_id = await sender.whoami()
    except (MatrixUnknownToken, MatrixForbidden):
        return [
            fail(
                "appservice registration",
                f"the homeserver does not know the as_token of {registration.path}: list the "
                "file in homeserver.yaml (app_service_config_files) and restart the homeserver",
            )
        ]
    checks = [ok("appservice registration", f"loaded by the homeserver; sender {sender_id}")]
    server = server_name_of(sender_id)
    admin = user_id_from(config.admin_user, server)
    users = {"MATRIX_ADMIN_USERNAME": admin}
    users |= {f"agent {agent}": agent_user_id(agent, server) for agent in agents}
    outside = [f"{what} ({user})" for what, user in users.items() if not registration.covers(user)]
    checks.append(_namespace(registration, outside, len(users)))
    admin_client = acting_as(matrix, registration.as_token, admin)
    if await _registered(admin_client):
        checks.append(await _server_admin(admin_client, admin))
    else:
        checks.append(
            skip(
                "admin is a server admin",
                f"{admin} is not registered yet: the first sync registers it; then make it a "
                "server admin (Synapse: PUT /_synapse/admin/v2/users/<admin> with "
                '{"admin": true}) and run doctor again',
            )
        )
    checks.append(_rate_limits_of(registration))
    return checks


def _namespace(registration: AppserviceRegistration, outside: list[str], total: int) -> Check:
    name = "appservice namespace"
    if outside:
        return fail(
            name,
            f"not in namespaces.users of {registration.path}: {', '.join(outside[:5])}"
            f"{' ...' if len(outside) > 5 else ''}; add a regex for them (`letta-matrix-sync "
            "registration` writes one that covers the admin and every agent user)",
        )
    return ok(name, f"covers the admin and every agent user ({total} users)")


def _rate_limits_of(registration: AppserviceRegistration) -> Check:
    if registration.rate_limited:
        return fail(
            "rate limits",
            f"{registration.path} has rate_limited: true (or unset): set rate_limited: false, "
            "or the homeserver's default limits throttle every agent user",
        )
    return ok("rate limits", "the appservice's users are exempt (rate_limited: false)")


async def _registered(user: MatrixClient) -> bool:
    """Whether the appservice may act as the user: Synapse refuses (403) one never
    registered."""
    try:
        await user.whoami()
    except MatrixForbidden:
        return False
    return True


async def _server_admin(admin: MatrixClient, admin_id: str) -> Check:
    name = "admin is a server admin"
    if await admin.account_deactivated(admin_id) is None:
        return fail(
            name,
            f"{admin_id} may not use the homeserver's admin API, so a deactivated agent "
            "account cannot be told apart from other refusals: make it a server admin "
            '(Synapse: PUT /_synapse/admin/v2/users/<admin> with {"admin": true}, as a server '
            "admin)",
        )
    return ok(name, f"{admin_id} may use the admin API")


async def _password_mode(
    matrix: MatrixClient, config: SyncConfig, store: Store | None, agents: list[str]
) -> list[Check]:
    checks = [await _registration_open(matrix, store, agents)]
    admin_id = next((u for u in (store.tokens if store else {}) if _is(u, config.admin_user)), None)
    token = store.token(admin_id) if store is not None and admin_id else None
    if admin_id is None or token is None:
        checks.append(
            skip(
                "admin is a server admin",
                "no stored token for the admin (a login would create a device): run a sync, "
                "then doctor again",
            )
        )
    else:
        checks.append(await _server_admin(matrix.as_user(admin_id, token.access_token), admin_id))
    return checks


def _is(user_id: str, login: str) -> bool:
    return user_id == login or localpart_of(user_id) == localpart_of(login)


async def _registration_open(matrix: MatrixClient, store: Store | None, agents: list[str]) -> Check:
    name = "registration for new agents"
    new = [agent for agent in agents if store is None or store.get(agent) is None]
    try:
        await matrix.username_available(_PROBE)
    except MatrixForbidden:
        if not new:
            return ok(name, "registration is closed, and no agent needs a new user now")
        return fail(
            name,
            f"registration is closed on this homeserver, and {len(new)} Letta agents need a "
            "user: password mode registers them (m.login.dummy), so open registration to it "
            "or use appservice mode (MATRIX_APPSERVICE_REGISTRATION)",
        )
    return ok(name, f"open ({len(new)} agents need a user)")
