"""What a sync did, for people (`summary`) and for programs (`to_json`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentFailure:
    agent_id: str
    agent_name: str
    step: str
    reason: str
    # When an agent held back after a failure retrying cannot fix is tried again (UTC).
    next_try: str | None = None


@dataclass
class SyncReport:
    agents_seen: int = 0
    space_id: str | None = None
    space_created: bool = False
    space_found: bool = False
    users_created: list[str] = field(default_factory=list)
    rooms_created: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)
    # Agent id -> the writes made for it, each as `step: what as account` (app.sync.decide):
    # the same lines `plan` lists before the sync.
    actions: dict[str, list[str]] = field(default_factory=dict)
    history_imported: dict[str, int] = field(default_factory=dict)
    # Letta message ids too large for any Matrix event even when shortened: never retried.
    history_skipped: dict[str, list[str]] = field(default_factory=dict)
    removed_from_letta: list[str] = field(default_factory=list)
    invalid_agents: list[str] = field(default_factory=list)
    failures: list[AgentFailure] = field(default_factory=list)
    letta_error: str | None = None
    # Why Letta's listing could not be proven whole: no agent was then marked removed, and
    # agents it lacked were not synced.
    listing_incomplete: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.letta_error is None and not self.listing_incomplete

    @property
    def migrated_count(self) -> int:
        return len(self.migrated)

    def deduplicate(self) -> None:
        """An agent listed once per list, however many of its steps repaired something."""
        for name in ("users_created", "rooms_created", "renamed", "repaired", "migrated"):
            setattr(self, name, list(dict.fromkeys(getattr(self, name))))
        self.actions = {
            agent: list(dict.fromkeys(done)) for agent, done in self.actions.items() if done
        }

    def fail(self, agent_id: str, agent_name: str, step: str, error: BaseException) -> None:
        self.failures.append(AgentFailure(agent_id, agent_name, step, describe(error)))

    def held(self, agent_id: str, agent_name: str, step: str, reason: str, when: str) -> None:
        self.failures.append(AgentFailure(agent_id, agent_name, step, reason, when))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def counts(self) -> list[tuple[str, str]]:
        """The summary as (label, value) rows, for a table or for lines."""
        return [
            ("agents seen", str(self.agents_seen)),
            ("space", f"{self.space_id or '-'}{self._space_note}"),
            ("users created", str(len(self.users_created))),
            ("rooms created", str(len(self.rooms_created))),
            ("renamed", str(len(self.renamed))),
            ("repaired", str(len(self.repaired))),
            ("migrated into space", str(len(self.migrated))),
            ("history messages imported", str(sum(self.history_imported.values()))),
            ("history messages skipped", str(sum(map(len, self.history_skipped.values())))),
            ("removed from Letta (kept)", str(len(self.removed_from_letta))),
        ]

    @property
    def _space_note(self) -> str:
        if self.space_created:
            return " (created)"
        return " (found again by its tag)" if self.space_found else ""

    def letta_lines(self) -> list[str]:
        lines = [f"Letta error: {self.letta_error}"] if self.letta_error else []
        if self.listing_incomplete:
            lines.append(
                f"Letta listing incomplete ({self.listing_incomplete}): no agent was marked "
                "removed; the next sync lists again"
            )
        return lines

    def summary(self) -> str:
        lines = [f"{label}: {value}" for label, value in self.counts()]
        lines += self.letta_lines()
        lines += [
            f"FAILED {f.agent_id} ({f.agent_name}) at {f.step}: {f.reason}{_next_try(f)}"
            for f in self.failures
        ]
        return "\n".join(lines)


def _next_try(failure: AgentFailure) -> str:
    return f" (held back: next try after {failure.next_try})" if failure.next_try else ""


def describe(error: BaseException) -> str:
    """`Type: message`; library errors never carry secrets in their messages."""
    return f"{type(error).__name__}: {error}"
