"""`MatrixClient`: typed Matrix calls for one identity over a shared `JsonApi`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from app.errors import (
    ApiError,
    MalformedResponse,
    MatrixError,
    MatrixForbidden,
    MatrixNotFound,
    MatrixUnknownToken,
    MatrixUserDeactivated,
    MatrixUserInUse,
    SyncError,
)
from app.http.calls import ApiCall, JsonApi, Pacing, retry_after_seconds
from app.http.retry import RetryPolicy
from app.http.transport import Response, Transport
from app.matrix import api
from app.matrix.reads import RoomReads
from app.matrix.types import (
    LoginResult,
    require_str,
)

log = logging.getLogger(__name__)

TokenListener = Callable[[LoginResult], Awaitable[None]]
# Turns a refused login into the error to raise; the flag says whether the client held a token.
LoginRefusal = Callable[[MatrixError, bool], Awaitable[SyncError]]
REFUSED_LOGIN = (MatrixForbidden, MatrixUserDeactivated)


@dataclass(frozen=True)
class Credentials:
    """A user's login; the password never shows in reprs or logs."""

    user: str
    password: str = field(repr=False)


def matrix_error_from(response: Response) -> MatrixError:
    return MatrixError.from_response(
        response.status, response.content, retry_after_seconds(response)
    )


class MatrixClient(RoomReads):
    """Calls the homeserver as one user.

    Holds an access token and, optionally, the credentials to get a new one: an expired token
    (401 M_UNKNOWN_TOKEN) triggers exactly one re-login and one repeat of the call, and
    `on_login` hears about every new token so the caller can persist it instead of logging in
    (and creating a device) again next time. `on_login_refused` decides what a refused login
    with those credentials raises (the caller knows which setting the password came from).

    With `assert_user`, the token is an appservice's `as_token` and every authenticated call
    names `user_id` in its query: the homeserver then acts as that user of the namespace.
    """

    def __init__(
        self,
        http: JsonApi,
        *,
        user_id: str | None = None,
        access_token: str | None = None,
        credentials: Credentials | None = None,
        on_login: TokenListener | None = None,
        on_login_refused: LoginRefusal | None = None,
        assert_user: bool = False,
    ) -> None:
        self.http = http
        self.user_id = user_id
        self.access_token = access_token
        self.credentials = credentials
        self.assert_user = assert_user
        self._on_login = on_login
        self._on_login_refused = on_login_refused
        self._relogin_lock: anyio.Lock | None = None

    @classmethod
    def connect(
        cls,
        transport: Transport,
        homeserver_url: str,
        *,
        policy: RetryPolicy | None = None,
        pacing: Pacing | None = None,
    ) -> MatrixClient:
        """An anonymous client; use `as_user` to act as someone."""
        return cls(
            JsonApi(transport, homeserver_url, matrix_error_from, policy=policy, pacing=pacing)
        )

    def as_user(
        self,
        user_id: str | None,
        access_token: str | None,
        credentials: Credentials | None = None,
        on_login: TokenListener | None = None,
        on_login_refused: LoginRefusal | None = None,
        *,
        assert_user: bool = False,
    ) -> MatrixClient:
        """Another identity over the same connection pool."""
        return MatrixClient(
            self.http,
            user_id=user_id,
            access_token=access_token,
            credentials=credentials,
            on_login=on_login,
            on_login_refused=on_login_refused,
            assert_user=assert_user,
        )

    def __repr__(self) -> str:
        mode = ", appservice=True" if self.assert_user else ""
        has_token = self.access_token is not None
        return f"MatrixClient(user_id={self.user_id!r}, has_token={has_token}{mode})"

    async def pause_before_retry(self, attempt: int) -> None:
        """Wait as the retry policy would before repeat `attempt` of a step made safe to
        repeat by the caller (a createRoom that looks for its result first, say)."""
        pacing = self.http.pacing
        await pacing.sleep(self.http.policy.backoff(attempt, pacing.random()))

    async def _call(self, call: ApiCall) -> Any:
        if self.assert_user and self.user_id is not None and call.authenticated:
            call = replace(call, query={**call.query, "user_id": self.user_id})
        token = self.access_token
        try:
            return await self.http.call(call, token)
        except MatrixUnknownToken:
            if self.credentials is None or not call.authenticated:
                raise
            await self._relogin_once(token)
            return await self.http.call(call, self.access_token)

    async def _relogin_once(self, expired: str | None) -> None:
        """Log in again unless a concurrent call already replaced the expired token.

        Many calls can fail on the same expired token at once; each login would create a device.
        """
        if self._relogin_lock is None:
            self._relogin_lock = anyio.Lock()
        async with self._relogin_lock:
            if self.access_token != expired or self.credentials is None:
                return
            log.info("access token of %s expired; logging in again", self.user_id)
            await self.login_with_credentials()

    async def login_with_credentials(self) -> LoginResult:
        """Log in with the client's own credentials; a refusal raises an error that says why."""
        if self.credentials is None:
            raise ValueError("login_with_credentials needs a client with credentials")
        had_token = self.access_token is not None
        try:
            return await self.login(self.credentials.user, self.credentials.password)
        except REFUSED_LOGIN as exc:
            raise await self._refusal(exc, had_token) from exc

    async def _refusal(self, exc: MatrixError, had_token: bool) -> SyncError:
        if self._on_login_refused is not None:
            return await self._on_login_refused(exc, had_token)
        if not had_token or self.credentials is None:
            return exc
        user = self.credentials.user
        text = f"the token of {user} expired and its password was refused"
        return type(exc)(exc.status, exc.errcode, text, body=exc.body)

    async def _adopt(self, result: LoginResult) -> LoginResult:
        self.user_id, self.access_token = result.user_id, result.access_token
        if self._on_login is not None:
            await self._on_login(result)
        return result

    async def login(self, user: str, password: str) -> LoginResult:
        """Password login; every call creates a device, so prefer re-using tokens."""
        data = await self.http.call(api.login_password(user, password))
        return await self._adopt(LoginResult.parse(data, "login"))

    async def register(self, localpart: str, password: str) -> LoginResult:
        """Register with m.login.dummy; raises `MatrixUserInUse` when the name is taken."""
        data = await self.http.call(api.register_dummy(localpart, password))
        return await self._adopt(LoginResult.parse(data, "register"))

    async def username_available(self, localpart: str) -> bool:
        try:
            data = await self.http.call(api.register_available(localpart))
        except MatrixUserInUse:
            return False
        return bool(isinstance(data, dict) and data.get("available"))

    async def versions(self) -> list[str]:
        """The spec versions the server supports: proof that the URL is a Matrix homeserver."""
        data = await self._call(api.versions())
        listed = data.get("versions") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise MalformedResponse(200, "versions: missing list field 'versions'")
        return [version for version in listed if isinstance(version, str)]

    async def whoami(self) -> str:
        return require_str(await self._call(api.whoami()), "user_id", "whoami")

    async def published_server_name(self) -> str | None:
        """The homeserver's server name from its signing keys, or None where they are not
        served on this URL (a listener without the federation resource, say)."""
        try:
            data = await self.http.call(api.server_keys())
        except ApiError:
            return None
        name = data.get("server_name") if isinstance(data, dict) else None
        return name if isinstance(name, str) and name else None

    async def account_deactivated(self, user_id: str) -> bool | None:
        """Whether Synapse's admin API says `user_id` is deactivated; None when this client may
        not ask (it is no server admin) or the homeserver has no such API."""
        try:
            data = await self._call(api.admin_user(user_id))
        except ApiError:
            return None
        deactivated = data.get("deactivated") if isinstance(data, dict) else None
        return deactivated if isinstance(deactivated, bool) else None

    async def create_room(self, **options: Any) -> str:
        """Create a room (see `api.create_room` for the options) and return its id."""
        return require_str(await self._call(api.create_room(**options)), "room_id", "createRoom")

    async def put_state_event(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        data = await self._call(api.put_state_event(room_id, event_type, content, state_key))
        return require_str(data, "event_id", "put state")

    async def join(self, room_id: str) -> str:
        """Join a room; joining a room one is already in succeeds."""
        data = await self._call(api.join(room_id))
        return data.get("room_id", room_id) if isinstance(data, dict) else room_id

    async def invite(self, room_id: str, user_id: str) -> None:
        await self._call(api.invite(room_id, user_id))

    async def leave(self, room_id: str) -> None:
        await self._call(api.leave(room_id))

    async def unban(self, room_id: str, user_id: str) -> None:
        await self._call(api.unban(room_id, user_id))

    async def set_displayname(self, displayname: str) -> None:
        """Set this client's own display name (homeservers refuse it for other users)."""
        if self.user_id is None:
            raise ValueError("set_displayname needs a client that knows its user id")
        await self._call(api.set_displayname(self.user_id, displayname))

    async def get_displayname(self, user_id: str) -> str | None:
        try:
            data = await self._call(api.get_displayname(user_id))
        except MatrixNotFound:
            return None
        name = data.get("displayname") if isinstance(data, dict) else None
        return name if isinstance(name, str) else None

    async def send_event(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        event_type: str = "m.room.message",
        txn_id: str | None = None,
    ) -> str:
        """Send a room event; pass a stable `txn_id` to make repeats deliver it once."""
        txn = txn_id or secrets.token_urlsafe(16)
        data = await self._call(api.send_event(room_id, event_type, txn, content))
        return require_str(data, "event_id", "send")

    async def send_text(self, room_id: str, body: str, *, txn_id: str | None = None) -> str:
        """Send a plain text message (`m.text`) as this client's user; returns the event id."""
        content = {"msgtype": "m.text", "body": body}
        return await self.send_event(room_id, content, txn_id=txn_id)
