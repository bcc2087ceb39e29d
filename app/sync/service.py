"""`SyncService`: the public entry point that runs a full sync in a safe order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from urllib.parse import urlsplit

import anyio

from app.config import SyncConfig, redact_url
from app.errors import (
    ConfigError,
    LettaError,
    MalformedResponse,
    MatrixError,
    MatrixServerError,
    StateFileError,
    StateWriteError,
    SyncError,
    TransportError,
)
from app.http import Pacing
from app.letta import Agent, AgentList, LettaClient
from app.matrix import MatrixClient
from app.retry import RetryPolicy
from app.state import AgentMapping, Store
from app.state.files import OS_FILES, FileOps
from app.state.opening import open_store
from app.sync.accounts import Accounts
from app.sync.agent import AgentSync
from app.sync.context import SyncContext
from app.sync.guard import refuse_unknown_deployment
from app.sync.naming import server_name_of
from app.sync.progress import NoProgress, SyncProgress
from app.sync.refusals import Settings
from app.sync.report import SyncReport, describe
from app.sync.space import ensure_space
from app.transport import Transport

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
    ) -> None:
        self.config = config
        self._transport = transport
        self._owns_transport = transport is None
        self._policy = retry_policy
        self._pacing = pacing
        self._durable = durable
        self._files = files
        self._store: Store | None = None

    async def __aenter__(self) -> SyncService:
        with self._naming_the_data_dir():
            self._store = await open_store(self.config, durable=self._durable, files=self._files)
        if self._transport is None:
            from app.transport_httpx import HttpxTransport

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
                with self._naming_the_data_dir():
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

    def _clients(self) -> tuple[MatrixClient, LettaClient]:
        assert self._transport is not None
        matrix = MatrixClient.connect(
            self._transport, self.config.homeserver_url, policy=self._policy, pacing=self._pacing
        )
        letta = LettaClient.connect(
            self._transport,
            self.config.letta_url,
            self.config.letta_token,
            policy=self._policy,
            pacing=self._pacing,
        )
        return matrix, letta

    async def sync(self, progress: SyncProgress | None = None) -> SyncReport:
        """One full sync. Agent failures go into the report; setup failures raise.

        A state write that fails (a full disk) stops the whole sync with `StateWriteError`:
        going on would do work on the homeserver that nothing records.
        """
        with self._naming_the_data_dir():
            return await self._sync(progress)

    async def _sync(self, progress: SyncProgress | None) -> SyncReport:
        report = SyncReport()
        progress = progress or NoProgress()
        matrix, letta = self._clients()
        accounts = Accounts(matrix, self.store)
        with self._naming_the_homeserver():
            admin, bot = await self._core_users(accounts)
        listing = await self._list_agents(letta, report)
        with self._naming_the_homeserver():
            ctx = await self._context(accounts, letta, admin, bot, report, listing)
        report.space_id, report.space_created = ctx.space.space_id, ctx.space.created
        if listing is not None:
            progress.started(len(listing.agents))
            await self._sync_agents(ctx, listing, progress)
        if self.store.has_pending_changes:  # a sync that changed nothing rewrites nothing
            await self.store.compact()
        return report

    @contextmanager
    def _naming_the_data_dir(self) -> Iterator[None]:
        try:
            yield
        except StateWriteError as exc:
            if self.config.store_url:
                raise  # the database's own message says what failed
            raise StateWriteError(
                f"the sync's state could not be saved in MATRIX_DATA_DIR="
                f"{self.config.data_dir}: {exc}. The state files there are whole but not up "
                "to date: fix the cause (free some space) and run the sync again; it finds "
                "what this one did on the homeserver"
            ) from exc

    @contextmanager
    def _naming_the_homeserver(self) -> Iterator[None]:
        """Setup steps that only talk to the homeserver: say which setting to check."""
        url = redact_url(self.config.homeserver_url)
        try:
            yield
        except TransportError as exc:
            message = f"cannot reach the homeserver (MATRIX_HOMESERVER_URL={url}): {exc}"
            raise type(exc)(message, maybe_sent=exc.maybe_sent) from exc
        except MatrixServerError as exc:
            raise MatrixServerError(
                exc.status,
                exc.errcode,
                exc.error,
                body=exc.body,
                message=f"the homeserver at MATRIX_HOMESERVER_URL={url} failed during setup "
                f"with HTTP {exc.status} ({exc.error}): the server or a proxy in front of it is "
                "in trouble, not the configuration; try again later",
            ) from exc
        except MatrixError as exc:
            # The paths used here exist on every homeserver: "unrecognized" (Synapse's
            # M_UNRECOGNIZED) or a bare 404 page means the URL points at something else.
            if exc.errcode not in (None, "M_UNRECOGNIZED") or exc.status not in (404, 405):
                raise
            raise ConfigError(
                f"MATRIX_HOMESERVER_URL={url} does not answer like a Matrix homeserver "
                f"(HTTP {exc.status}){_path_hint(self.config.homeserver_url)}"
            ) from exc

    async def _core_users(self, accounts: Accounts) -> tuple[MatrixClient, MatrixClient]:
        c = self.config
        bot_settings = Settings("MATRIX_USERNAME", "MATRIX_PASSWORD")
        if c.admin_user == c.username:
            admin = bot = await accounts.ensure_core_user(
                c.username, c.password, settings=bot_settings
            )
        else:
            # The admin first: once in, it can tell (admin API) why another account is refused.
            secret = "MATRIX_ADMIN_PASSWORD" if c.admin_password else "MATRIX_PASSWORD"
            admin = await accounts.ensure_core_user(
                c.admin_user, c.admin_secret, settings=Settings("MATRIX_ADMIN_USERNAME", secret)
            )
            bot = await accounts.ensure_core_user(c.username, c.password, settings=bot_settings)
        if c.mcp_username and c.mcp_password:
            mcp_settings = Settings("MATRIX_MCP_USERNAME", "MATRIX_MCP_PASSWORD")
            await accounts.ensure_core_user(c.mcp_username, c.mcp_password, settings=mcp_settings)
        for client in (admin, bot):
            if client.user_id is None:
                client.user_id = await client.whoami()
        return admin, bot

    async def _list_agents(self, letta: LettaClient, report: SyncReport) -> AgentList | None:
        try:
            listing = await letta.list_agents(self.config.letta_page_size)
        except (MalformedResponse, LettaError) as exc:
            _raise_if_misconfigured(exc, self.config.letta_url)
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
        if not listing.agents and self.store.mappings:
            # An empty list while agents are mapped is far likelier an outage than mass deletion.
            report.letta_error = "Letta listed no agents although mappings exist; nothing changed"
            log.error(report.letta_error)
            return None
        return listing

    async def _context(
        self,
        accounts: Accounts,
        letta: LettaClient,
        admin: MatrixClient,
        bot: MatrixClient,
        report: SyncReport,
        listing: AgentList | None,
    ) -> SyncContext:
        admin_rooms = set(await admin.joined_rooms())
        if listing is not None:
            await refuse_unknown_deployment(admin, self.store, listing.agents, admin_rooms)
        bot_rooms = admin_rooms if bot.user_id == admin.user_id else set(await bot.joined_rooms())
        invitees = [u for u in (bot.user_id or "", *self.config.invite_users) if u != admin.user_id]
        rooms = (admin_rooms, bot_rooms)
        space = await ensure_space(admin, bot, self.store, rooms, invitees, self.config.space_name)
        server_name = server_name_of(admin.user_id or "")
        return SyncContext(
            self.config,
            self.store,
            accounts,
            letta,
            admin,
            bot,
            server_name,
            space,
            admin_rooms,
            bot_rooms,
            report,
        )

    async def _sync_agents(
        self, ctx: SyncContext, listing: AgentList, progress: SyncProgress
    ) -> None:
        ctx.report.agents_seen = len(listing.agents)
        ctx.report.removed_from_letta = listing.missing(self.store.mappings)
        await self._mark_removed(set(ctx.report.removed_from_letta))
        limiter = anyio.CapacityLimiter(self.config.sync_concurrency)
        not_saved: list[StateFileError] = []

        async def one(agent: Agent) -> None:
            async with limiter:
                try:
                    ok = await _sync_one(ctx, agent)
                except StateFileError as exc:
                    not_saved.append(exc)
                    group.cancel_scope.cancel()
                    return
            progress.agent_done(agent.id, agent.name, ok)

        async with anyio.create_task_group() as group:
            for agent in listing.agents:
                group.start_soon(one, agent)
        if not_saved:
            raise not_saved[0]

    async def _mark_removed(self, removed: set[str]) -> None:
        """Flag mappings whose agent Letta no longer lists (and unflag returning ones)."""
        for mapping in self.store.all():
            if mapping.mark_removed_from_letta(mapping.agent_id in removed):
                await self.store.save_mapping(mapping)


def _path_hint(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    if not path:
        return ""
    return f": leave the path {path!r} out, the library adds /_matrix/... itself"


def _raise_if_misconfigured(exc: MalformedResponse | LettaError, url: str) -> None:
    """A wrong URL or token is a setup error (exit 2), not a Letta outage to report."""
    if isinstance(exc, LettaError) and exc.status in (401, 403):
        raise ConfigError(f"Letta refused the credentials (check LETTA_TOKEN): {exc}") from exc
    if isinstance(exc, MalformedResponse) or exc.status in (404, 405):
        hint = " (leave /v1 out of LETTA_API_URL)" if url.rstrip("/").endswith("/v1") else ""
        raise ConfigError(
            f"LETTA_API_URL={redact_url(url)} does not answer like a Letta server "
            f"(HTTP {exc.status}){hint}"
        ) from exc


async def _sync_one(ctx: SyncContext, agent: Agent) -> bool:
    """One agent's whole sync; its failure goes into the report and never stops the others.

    A state file that cannot be written is not the agent's failure: it stops the sync.
    """
    step: AgentSync | None = None
    try:
        step = AgentSync(ctx, agent)
        await step.run()
    except StateFileError:
        raise
    except Exception as exc:
        where = step.step if step is not None else "mapping"
        log.warning("agent %s failed at %s: %s", agent.id, where, describe(exc))
        ctx.report.fail(agent.id, agent.name, where, exc)
        return False
    return True


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
