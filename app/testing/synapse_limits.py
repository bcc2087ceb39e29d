"""Synapse's default rate limiters as a model: which buckets a request uses, and the least time
a set of requests needs under them.

Read from Synapse 1.163 (synapse/config/ratelimiting.py and the handlers that call each
limiter). Every limiter is a leaky bucket: `burst` actions at once, then one more every
`1 / per_second` seconds. So `n` actions of one bucket need at least `(n - burst) / per_second`
seconds, and a set of requests needs at least the largest of those over the buckets it uses,
whatever the client does. The benchmark reports that bound beside the measured time; the fake
rate limiter (`app.testing.fake_rate_limits`) enforces the same buckets on a clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# A bucket is one limiter for one key: a user's token, or the client's address.
Bucket = tuple[str, str]
ADDRESS = "client address"


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: int

    def least_seconds(self, actions: int) -> float:
        """The shortest time in which `actions` actions fit through this bucket."""
        return max(0.0, (actions - self.burst) / self.per_second)


DEFAULT_LIMITS: dict[str, Limit] = {
    "rc_registration": Limit(0.17, 3),
    "rc_login.address": Limit(0.003, 5),
    "rc_login.account": Limit(0.003, 5),
    "rc_message": Limit(0.2, 10),
    "rc_joins.local": Limit(0.1, 10),
    "rc_room_creation": Limit(0.016, 10),
    "rc_invites.per_room": Limit(0.3, 10),
    "rc_invites.per_user": Limit(0.003, 5),
    "rc_invites.per_issuer": Limit(0.3, 10),
}


def _segments(url: str) -> list[str]:
    path = urlsplit(url).path
    return [unquote(part) for part in path.split("/") if part]


def limiters_of(method: str, url: str, body: object = None) -> list[tuple[str, str | None]]:
    """The limiters a successful request counts against, each with its key if not the sender's.

    Joins are assumed to be first joins (a repeated join of a member is not limited); events,
    state, joins, leaves, invites, profile changes and room creation all pass `rc_message`.
    """
    parts = _segments(url)
    rest = parts[3:] if parts[:2] == ["_matrix", "client"] else []
    head = rest[0] if rest else ""
    if method == "POST" and rest == ["register"]:
        return [("rc_registration", ADDRESS)]
    if method == "POST" and rest == ["login"]:
        account = body.get("identifier", {}).get("user") if isinstance(body, dict) else None
        return [("rc_login.address", ADDRESS), ("rc_login.account", str(account))]
    if method == "POST" and head == "createRoom":
        return [("rc_message", None), ("rc_room_creation", None)]
    if method == "PUT" and head == "profile":
        return [("rc_message", None)]
    if head == "join" or (head == "rooms" and rest[2:3] == ["join"] and method == "POST"):
        return [("rc_joins.local", None), ("rc_message", None)]
    if head == "rooms" and len(rest) >= 3:
        return _room_limiters(method, rest[1], rest[2], body)
    return []


def _room_limiters(
    method: str, room_id: str, action: str, body: object
) -> list[tuple[str, str | None]]:
    if method == "PUT" and action in ("state", "send"):
        return [("rc_message", None)]
    if method == "POST" and action == "leave":
        return [("rc_message", None)]
    if method == "POST" and action == "invite":
        invitee = body.get("user_id") if isinstance(body, dict) else None
        return [
            ("rc_invites.per_room", room_id),
            ("rc_invites.per_user", str(invitee)),
            ("rc_invites.per_issuer", None),
            ("rc_message", None),
        ]
    return []


def buckets_of(method: str, url: str, sender: str, body: object = None) -> list[Bucket]:
    """The buckets one successful request of `sender` (a token, or `ADDRESS`) draws from."""
    return [(name, key or sender) for name, key in limiters_of(method.upper(), url, body)]


@dataclass(frozen=True)
class Bound:
    """The least time the limits allow, and the bucket that sets it."""

    seconds: float
    limiter: str
    actions: int


def least_time(uses: Counter[Bucket], limits: dict[str, Limit] | None = None) -> Bound:
    """The least time in which the counted actions fit through every bucket at once."""
    table = limits or DEFAULT_LIMITS
    best = Bound(0.0, "-", 0)
    for (name, _key), actions in uses.items():
        seconds = table[name].least_seconds(actions)
        if seconds > best.seconds:
            best = Bound(seconds, name, actions)
    return best


def count_uses(requests: Iterable[tuple[str, str, str, object]]) -> Counter[Bucket]:
    """Bucket uses of successful requests given as (method, url, sender, body)."""
    uses: Counter[Bucket] = Counter()
    for method, url, sender, body in requests:
        uses.update(buckets_of(method, url, sender, body))
    return uses
