"""`SyncService`: the public entry point that runs a full sync in a safe order."""

from __future__ import annotations

import logging
from types import TracebackType

from app.config import SyncConfig
from app.errors import (
    LettaError,
    MalformedResponse,
    SyncError,
    TransportError,
)
from app.http.calls import Pacing
from app.http.paths import redact_url
from app.http.retry import RetryPolicy
from app.http.transport import Transport
from app.identity import Identity, agent_client_for, identity_for
from app.identity.registration import AppserviceRegistration, load_registration
from app.letta import AgentList, LettaClient
from app.letta.directory import LettaDirectory
from app.matrix import MatrixClient
from app.matrix.ids import server_name_of
from app.state import AgentMapping, Store
from app.state.files import OS_FILES, FileOps
from app.state.opening import open_store
from app.sync.agents import sync_agents
from app.sync.confirm import report_unheld, unheld
from app.sync.context import SyncContext
from app.sync.drift import read_homeserver
from app.sync.guard import refuse_unknown_deployment
from app.sync.logins import admin_login, bot_login, mcp_login
from app.sync.policy import AgentPolicy
from app.sync.progress import NoProgress, SyncProgress
from app.sync.report import SyncReport, describe
from app.sync.setup_errors import (
    naming_the_data_dir,
    naming_the_homeserver,
    raise_if_letta_misconfigured,
)
from app.sync.space import ensure_space
from app.sync.throttle import raise_if_lost

log = logging.getLogger(__name__)


class SyncService:
    """Keeps Matrix in step with Letta. Use as `async with SyncService(config) as service`.

    Pass `transport` to route HTTP elsewhere (tests pass one built on respx routes); without
    it the service owns one pooled `HttpxTransport` for its lifetime.
    """

    def __init__(
        self,
        config: SyncConfig,
        transport: Transport | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
        pacing: Pacing | None = None,
        durable: bool = True,
        files: FileOps = OS_FILES,
        fence: int | None = None,
        letta_directory: LettaDirectory | None = None,
    ) -> None:
        self.config = config
        # What Letta listed, kept so that a later sync asks only what changed: the `run`
        # service hands each sync the same one. None: every sync lists every agent.
        self._letta_directory = letta_directory
        self._fence = fence  # a replica's lease token: see app.state.lease
        self._transport = transport
        self._owns_transport = transport is None
        self._policy = retry_policy
        self._pacing = pacing
        self._durable = durable
        self._files = files
        self._store: Store | None = None
        self._registration: AppserviceRegistration | None = None
        self._identity: Identity | None = None

    async def __aenter__(self) -> SyncService:
        if self.config.appservice_registration is not None:
            self._registration = load_registration(self.config.appservice_registration)
        with naming_the_data_dir(self.config.store_location):
            self._store = await open_store(
                self.config.store_location,
                durable=self._durable,
                files=self._files,
                fence=self._fence,
            )
        if self._transport is None:
            from app.http.httpx_transport import HttpxTransport

            self._transport = HttpxTransport(timeout=self.config.http_timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._store is not None:
                store, self._store = self._store, None
                with naming_the_data_dir(self.config.store_location):
                    await store.aclose()
        finally:
            if self._owns_transport and self._transport is not None:
                await self._transport.aclose()
                self._transport = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise SyncError("SyncService is not open: use `async with SyncService(config)`")
        return self._store

    def mapping(self, agent_id: str) -> AgentMapping | None:
        return self.store.get(agent_id)

    def mappings(self) -> list[AgentMapping]:
        return self.store.all()

    async def bot_client(self) -> MatrixClient:
        """A client that sends and reads as the bot, in either mode (see `agent_client`)."""
        identity = self._open_identity()
        with identity.explaining_refusals():
            return await identity.ensure_core_user(bot_login(self.config))

    async def admin_client(self) -> MatrixClient:
        """A client that sends and reads as the admin, in either mode."""
        identity = self._open_identity()
        with identity.explaining_refusals():
            return await identity.ensure_core_user(admin_login(self.config))

    async def agent_client(self, agent_id: str) -> MatrixClient:
        """A client that sends and reads as the agent's user; the agent must have been synced.

        Password mode re-uses the stored token, logs in again once when it expired and saves
        the new one; appservice mode acts as the user with the as_token. No request is made
        until the client is used.
        """
        return await agent_client_for(self._open_identity(), self.store, agent_id)

    def _open_identity(self) -> Identity:
        if self._identity is None:
            matrix, _ = self._clients()
            self._identity = identity_for(matrix, self.store, self._registration)
        return self._identity

    def _clients(self) -> tuple[MatrixClient, LettaClient]:
        assert self._transport is not None
        policy = self._policy or RetryPolicy(budget=self.config.retry_budget)
        matrix = MatrixClient.connect(
            self._transport, self.config.homeserver_url, policy=policy, pacing=self._pacing
        )
        letta = LettaClient.connect(
            self._transport,
            self.config.letta_url,
            self.config.letta_token,
            policy=policy,
            pacing=self._pacing,
        )
        return matrix, letta

    async def sync(self, progress: SyncProgress | None = None) -> SyncReport:
        """One full sync. Agent failures go into the report; setup failures raise.

        A state write that fails (a full disk) stops the whole sync with `StateWriteError`:
        going on would do work on the homeserver that nothing records.
        """
        with naming_the_data_dir(self.config.store_location):
            return await self._sync(progress)

    async def _sync(self, progress: SyncProgress | None) -> SyncReport:
        report = SyncReport()
        progress = progress or NoProgress()
        matrix, letta = self._clients()
        identity = identity_for(matrix, self.store, self._registration)
        homeserver = self.config.homeserver_url
        # Letta first: a LETTA_API_URL or LETTA_TOKEN that is wrong stops the sync before it
        # writes anything to the homeserver (registering the bot, say).
        listing = await self._list_agents(letta, report)
        with naming_the_homeserver(homeserver), identity.explaining_refusals():
            admin, bot = await self._core_users(identity)
        if listing is not None:
            identity.refuse_uncovered_agents(self.store, listing.agents)
        with naming_the_homeserver(homeserver), identity.explaining_refusals():
            ctx = await self._context(identity, letta, admin, bot, report, listing)
        report.space_id, report.space_created = ctx.space.space_id, ctx.space.created
        report.space_found = ctx.space.found
        if listing is not None:
            progress.started(len(listing.agents))
            await sync_agents(ctx, listing, progress)
        if ctx.writes:  # what the sync wrote, as the homeserver now holds it
            with naming_the_homeserver(homeserver):
                view = await read_homeserver(admin, self.store, homeserver)
            report_unheld(report, unheld(view, ctx.writes))
        report.deduplicate()
        if self.store.has_pending_changes:  # a sync that changed nothing rewrites nothing
            await self.store.compact()
        raise_if_lost(matrix.http, self.config.homeserver_url)
        return report

    async def _core_users(self, identity: Identity) -> tuple[MatrixClient, MatrixClient]:
        c = self.config
        if c.admin_user == c.username:
            admin = bot = await identity.ensure_core_user(bot_login(c))
        else:
            # The admin first: once in, it can tell (admin API) why another account is refused.
            admin = await identity.ensure_core_user(admin_login(c))
            bot = await identity.ensure_core_user(bot_login(c))
        mcp = mcp_login(c)
        if mcp is not None:
            await identity.ensure_core_user(mcp)
        if admin.user_id is None:
            admin.user_id = await admin.whoami()
        if bot is not admin:
            # The admin's token is proven by the view it reads; the bot may do nothing in a
            # steady sync, and a bot that can no longer log in must fail here, not the bridge.
            bot.user_id = await bot.whoami()
        return admin, bot

    async def _list_agents(self, letta: LettaClient, report: SyncReport) -> AgentList | None:
        try:
            listing = await letta.list_agents(self.config.letta_page_size, self._letta_directory)
        except (MalformedResponse, LettaError) as exc:
            raise_if_letta_misconfigured(exc, self.config.letta_url)
            report.letta_error = describe(exc)
            log.error("cannot list Letta agents: %s", report.letta_error)
            return None
        except SyncError as exc:
            where = f"LETTA_API_URL={redact_url(self.config.letta_url)}"
            prefix = f"cannot reach Letta ({where}): " if isinstance(exc, TransportError) else ""
            report.letta_error = prefix + describe(exc)
            log.error("cannot list Letta agents: %s", report.letta_error)
            return None
        report.invalid_agents = list(listing.invalid)
        report.listing_incomplete = listing.incomplete
        if not listing.agents and self.store.mappings:
            # An empty list while agents are mapped is far likelier an outage than mass deletion.
            report.letta_error = "Letta listed no agents although mappings exist; nothing changed"
            log.error(report.letta_error)
            return None
        return listing

    async def _context(
        self,
        identity: Identity,
        letta: LettaClient,
        admin: MatrixClient,
        bot: MatrixClient,
        report: SyncReport,
        listing: AgentList | None,
    ) -> SyncContext:
        homeserver = await read_homeserver(admin, self.store, self.config.homeserver_url)
        if listing is not None and not identity.adopts_existing_users:
            await refuse_unknown_deployment(admin, self.store, listing.agents, homeserver)
        admin_rooms = homeserver.joined()
        bot_rooms = admin_rooms if bot.user_id == admin.user_id else homeserver.joined_by(bot)
        invitees = [u for u in (bot.user_id or "", *self.config.invite_users) if u != admin.user_id]
        space = await ensure_space(
            admin, bot, self.store, homeserver, bot_rooms, invitees, self.config.space_name
        )
        admin_rooms.add(space.space_id)
        server_name = server_name_of(admin.user_id or "")
        return SyncContext(
            agent_policy(self.config),
            self.store,
            identity,
            letta,
            admin,
            bot,
            server_name,
            space,
            homeserver,
            admin_rooms,
            bot_rooms,
            report,
            now=(self._pacing or Pacing()).wall,
        )


def agent_policy(config: SyncConfig) -> AgentPolicy:
    return AgentPolicy(
        invite_users=config.invite_users,
        history_import_limit=config.history_import_limit,
        room_name_template=config.room_name_template,
        sync_concurrency=config.sync_concurrency,
        retry_failed=config.retry_failed,
        failed_retry_max=config.failed_retry_max,
    )


async def run_agent_sync(
    config: SyncConfig | object, transport: Transport | None = None
) -> SyncReport:
    """Compatibility entry point for the old `run_agent_sync(config)` call site: one full sync.

    Accepts a `SyncConfig` or the old bridge's config object (see `SyncConfig.from_legacy`).
    Returns the report (the old version returned its manager object).
    """
    if not isinstance(config, SyncConfig):
        config = SyncConfig.from_legacy(config)
    async with SyncService(config, transport) as service:
        return await service.sync()


__all__ = ["SyncService", "run_agent_sync"]
