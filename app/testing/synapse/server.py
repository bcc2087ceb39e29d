"""Run a real Synapse on 127.0.0.1 for contract tests and benchmarks.

Config comes from Synapse's ``--generate-config``, then: a free port bound to 127.0.0.1
only, open registration, cheap bcrypt, no key servers, every rate limiter out of reach (or,
with ``default_rate_limits=True``, every rate limiter at Synapse's default).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

from app.testing.orphans import forget_server, record_server, stop_orphaned_servers
from app.testing.ports import stable_port
from app.testing.synapse.config import rewrite_config

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

SERVER_NAME = "localhost"
CONFIG_NAME = "homeserver.yaml"
STDOUT_LOG = "synapse.stdout.log"
_HOST = "127.0.0.1"


class SynapseError(RuntimeError):
    """The harness could not start Synapse, or an admin call answered an error."""


def synapse_python() -> str:
    """The interpreter that runs Synapse: env ``SYNAPSE_PYTHON`` or the current one."""
    return os.environ.get("SYNAPSE_PYTHON") or sys.executable


def synapse_available(python: str | None = None) -> bool:
    """Whether ``python`` (default: :func:`synapse_python`) can ``import synapse``."""
    cmd = [python or synapse_python(), "-c", "import synapse"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, and safe to restart on."""
    return stable_port()


def _read_shared_secret(text: str) -> str:
    match = re.search(r'^registration_shared_secret:\s*"?([^"\n]+)"?\s*$', text, re.M)
    if match is None:
        raise SynapseError("generated config holds no registration_shared_secret")
    return match.group(1)


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"<no {path.name}>"
    content = path.read_text(encoding="utf-8", errors="replace")
    return f"--- {path.name} ---\n" + "\n".join(content.splitlines()[-lines:])


def _mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, user, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


class SynapseServer:
    """A Synapse subprocess with a generated config in ``data_dir``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        data_dir: Path | str,
        python: str | None = None,
        ready_timeout: float = 60.0,
        *,
        default_rate_limits: bool = False,
        room_version: str | None = None,
    ) -> None:
        self._data_dir = Path(data_dir).absolute()  # the config path in its command line
        self.default_rate_limits = default_rate_limits
        self.room_version = room_version
        self._python = python or synapse_python()
        self._ready_timeout = ready_timeout
        self._port: int | None = None
        self._secret: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._record: Path | None = None
        self.startup_seconds: float | None = None

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def server_name(self) -> str:
        return SERVER_NAME

    @property
    def port(self) -> int:
        return _configured(self._port)

    @property
    def base_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def shared_secret(self) -> str:
        return _configured(self._secret)

    @property
    def config_path(self) -> Path:
        return self._data_dir / CONFIG_NAME

    def __enter__(self) -> SynapseServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Configure (once) and launch Synapse, then wait until the client API answers."""
        if self._proc is not None:
            raise SynapseError("Synapse is already running")
        stop_orphaned_servers()
        self.configure()
        log = (self._data_dir / STDOUT_LOG).open("ab")
        cmd = [self._python, "-m", "synapse.app.homeserver", "-c", str(self.config_path)]
        began = time.monotonic()
        try:
            self._proc = subprocess.Popen(  # noqa: S603
                cmd, cwd=self._data_dir, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        try:
            # The config path names this server alone: a sweep never takes another for it.
            self._record = record_server(self._proc.pid, str(self.config_path))
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        logger.info("Synapse ready at %s in %.2fs", self.base_url, self.startup_seconds)

    def configure(self) -> None:
        """Generate and rewrite the config, unless this object already did."""
        if self._port is not None:
            return
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._generate()
        text = self.config_path.read_text(encoding="utf-8")
        self._secret = _read_shared_secret(text)
        port = free_port()
        config = rewrite_config(
            text, port, default_rate_limits=self.default_rate_limits, room_version=self.room_version
        )
        self.config_path.write_text(config, encoding="utf-8")
        self._port = port

    def _generate(self) -> None:
        cmd = [
            self._python, "-m", "synapse.app.homeserver",
            "--server-name", SERVER_NAME,
            "--config-path", str(self.config_path),
            "--data-directory", str(self._data_dir),
            "--generate-config", "--report-stats=no",
        ]  # fmt: skip
        done = subprocess.run(  # noqa: S603
            cmd, cwd=self._data_dir, capture_output=True, timeout=120, check=False
        )
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace")[-4000:]
            raise SynapseError(f"synapse --generate-config failed:\n{detail}")

    def _wait_ready(self, began: float) -> None:
        deadline = began + self._ready_timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise SynapseError(
                    f"Synapse exited with {self._proc.returncode}\n{self._log_tail()}"
                )
            if self._versions_answer():
                return
            time.sleep(0.05)
        raise SynapseError(f"Synapse not ready after {self._ready_timeout}s\n{self._log_tail()}")

    def _versions_answer(self) -> bool:
        try:
            self.request("GET", "/_matrix/client/versions", timeout=2.0)
        except (OSError, SynapseError):
            return False
        return True

    def _log_tail(self) -> str:
        return "\n".join(_tail(self._data_dir / n) for n in (STDOUT_LOG, "homeserver.log"))

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate Synapse, wait for it, and kill it if it does not go."""
        proc, self._proc = self._proc, None
        record, self._record = self._record, None
        if proc is not None and proc.poll() is None:
            _terminate(proc, timeout)
        if record is not None:
            forget_server(record)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> Any:
        """Send one request to this server; return the decoded JSON body.

        Raises :class:`SynapseError` (with status and body) on any non-2xx answer.
        """
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(  # noqa: S310 - fixed http://127.0.0.1 base
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                raw: bytes = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise SynapseError(f"{method} {path} -> {err.code}: {detail}") from err
        return json.loads(raw) if raw else None

    def register_admin(self, localpart: str, password: str) -> tuple[str, str]:
        """Register a server admin via the shared secret; return (user_id, access_token)."""
        path = "/_synapse/admin/v1/register"
        nonce: str = self.request("GET", path)["nonce"]
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": True,
            "mac": _mac(self.shared_secret, nonce, localpart, password, admin=True),
        }
        answer = self.request("POST", path, body)
        return str(answer["user_id"]), str(answer["access_token"])

    def count_devices(self, user_id: str, admin_token: str) -> int:
        """How many devices the server holds for ``user_id``."""
        answer = self._admin_get("v2/users", user_id, "/devices", admin_token)
        return int(answer.get("total", len(answer["devices"])))

    def room_state(self, room_id: str, admin_token: str) -> list[dict[str, Any]]:
        """The room's current state events, as the admin API lists them."""
        answer = self._admin_get("v1/rooms", room_id, "/state", admin_token)
        return list(answer["state"])

    def room_members(self, room_id: str, admin_token: str) -> list[str]:
        """User ids of the room's joined members."""
        answer = self._admin_get("v1/rooms", room_id, "/members", admin_token)
        return [str(m) for m in answer["members"]]

    def user_joined_rooms(self, user_id: str, admin_token: str) -> list[str]:
        """The rooms the user is joined to."""
        answer = self._admin_get("v1/users", user_id, "/joined_rooms", admin_token)
        return [str(room) for room in answer["joined_rooms"]]

    def room_messages(self, room_id: str, admin_token: str) -> list[dict[str, Any]]:
        """The room's events, oldest first (up to 1,000), through the admin API."""
        answer = self._admin_get("v1/rooms", room_id, "/messages?dir=f&limit=1000", admin_token)
        return list(answer["chunk"])

    def user_displayname(self, user_id: str, admin_token: str) -> str | None:
        """The user's display name (None when unset)."""
        name = self._admin_get("v2/users", user_id, "", admin_token).get("displayname")
        return None if name is None else str(name)

    def _admin_get(self, prefix: str, ident: str, suffix: str, token: str) -> Any:
        quoted = urllib.parse.quote(ident, safe="")  # '@', ':' and '!' all encoded
        return self.request("GET", f"/_synapse/admin/{prefix}/{quoted}{suffix}", token=token)


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        logger.warning("Synapse ignored SIGTERM; killing pid %s", proc.pid)
        proc.kill()
        proc.wait(timeout=timeout)


def _configured(value: _T | None) -> _T:
    if value is None:
        raise SynapseError("Synapse has not been configured yet (call start())")
    return value
