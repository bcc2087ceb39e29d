"""What Letta 0.16.8 does, as checks run on the fake (tests/test_letta_contract.py) and on the
real server (tests/contract/test_letta_scenarios.py): the fake is only as good as these.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import anyio
from letta_targets import RestLetta

from app.http.httpx_transport import HttpxTransport
from app.letta import LettaClient, LettaDirectory

Check = Callable[[Any], None]


def listed(target: RestLetta, **query: str) -> list[dict[str, Any]]:
    response = target.request("GET", "/v1/agents/", params=query)
    assert response.status_code == 200, response.text
    data = response.json()
    assert isinstance(data, list), data  # a bare list, no {"data", "has_more"}
    return data


def the_list_lives_at_the_trailing_slash_route(target: RestLetta) -> None:
    response = target.request("GET", "/v1/agents", params={"limit": "3"})
    assert response.status_code == 307 and response.content == b""
    assert response.headers["location"].split("?")[0].endswith("/v1/agents/")


def the_list_is_newest_first_and_pages_with_after(target: RestLetta) -> None:
    ids = [target.add_agent(f"Paging {n}") for n in range(3)]
    whole = [agent["id"] for agent in listed(target, limit="1000")]
    assert [i for i in whole if i in ids] == list(reversed(ids))
    first = listed(target, limit="2")
    second = listed(target, limit="2", after=first[-1]["id"])
    assert [a["id"] for a in first + second] == whole[:4]


def an_after_naming_no_agent_starts_over(target: RestLetta) -> None:
    target.add_agent("Cursor keeper")
    gone = target.add_agent("Cursor")
    target.remove(gone)
    again = listed(target, limit="2", after=gone)
    assert [a["id"] for a in again] == [a["id"] for a in listed(target, limit="2")]


def the_count_is_the_total(target: RestLetta) -> None:
    target.add_agent("Counted")
    response = target.request("GET", "/v1/agents/count")
    assert response.status_code == 200
    assert response.json() == len(listed(target, limit="100000"))


def an_empty_include_relationships_lists_agents_lean(target: RestLetta) -> None:
    agent_id = target.add_agent("Heavy")
    full = next(a for a in listed(target, limit="1000") if a["id"] == agent_id)
    lean = next(
        a for a in listed(target, limit="1000", include_relationships="") if a["id"] == agent_id
    )
    assert full["tools"] and not lean.get("tools")
    assert len(json.dumps(lean)) < len(json.dumps(full)) * 0.7
    assert {"id", "name"} <= set(lean)


def ids_are_agent_uuid4_else_422_and_unknown_ones_404(target: RestLetta) -> None:
    assert target.request("GET", "/v1/agents/agent-1").status_code == 422
    unknown = f"agent-{uuid.uuid4()}"
    response = target.request("GET", f"/v1/agents/{unknown}")
    assert response.status_code == 404 and "not found" in response.json()["detail"]


def names_with_refused_characters_fail_and_duplicates_pass(target: RestLetta) -> None:
    for name in ("Who?", "v1.2", "<b>"):
        response = target.request("POST", "/v1/agents/", json={"name": name, **target._create})
        assert response.status_code == 500, (name, response.status_code)
    first, second = target.add_agent("Twin"), target.add_agent("Twin")
    assert first != second


def a_conversation_lists_oldest_first_with_records_of_a_step_sharing_an_id(
    target: RestLetta,
) -> None:
    agent_id = target.add_agent("Talker", agent_type="memgpt_v2_agent")
    answers = [target.converse(agent_id, f"question {n}") for n in range(2)]  # type: ignore[attr-defined]
    path = f"/v1/agents/{agent_id}/messages"
    records = target.request("GET", path, params={"order": "desc", "limit": "1000"}).json()
    lines = [
        (r["message_type"], r["content"])
        for r in records
        if r["message_type"] in ("user_message", "assistant_message")
        and not str(r["content"]).startswith("{")
    ]
    assert lines[-4:] == [
        ("user_message", "question 0"),
        ("assistant_message", answers[0]),
        ("user_message", "question 1"),
        ("assistant_message", answers[1]),
    ]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_id.setdefault(record["id"], []).append(record)
    shared = [group for group in by_id.values() if len(group) > 1]
    assert shared and all(len({r["otid"] for r in group}) == len(group) for group in shared)
    newest = target.request("GET", path, params={"order": "desc", "limit": "2"}).json()
    assert newest and set(r["id"] for r in newest) <= set(r["id"] for r in records[-4:])


def messages_page_back_with_before_by_stored_message(target: RestLetta) -> None:
    """`limit` and `before` count stored messages: the newest three of a conversation are a
    question, the step answering it (reasoning and answer, one id) and that step's
    `send_message` return, which lists as nothing. `before` the question gives the rest."""
    agent_id = target.add_agent("Pager", agent_type="memgpt_v2_agent")
    for n in range(3):
        target.converse(agent_id, f"question {n}")  # type: ignore[attr-defined]
    path = f"/v1/agents/{agent_id}/messages"
    whole = target.request("GET", path, params={"order": "desc", "limit": "1000"}).json()
    newest = target.request("GET", path, params={"order": "desc", "limit": "3"}).json()
    assert [r["message_type"] for r in newest] == [
        "user_message",
        "reasoning_message",
        "assistant_message",
    ]
    assert newest[1]["id"] == newest[2]["id"] and newest[0]["content"] == "question 2"
    query = {"order": "desc", "limit": "1000", "before": newest[0]["id"]}
    older = target.request("GET", path, params=query).json()
    assert older + newest == whole


def older_agent_types_start_with_a_login_event(target: RestLetta) -> None:
    agent_id = target.add_agent("Veteran", agent_type="memgpt_agent")
    path = f"/v1/agents/{agent_id}/messages"
    records = target.request("GET", path, params={"order": "asc", "limit": "50"}).json()
    users = [r["content"] for r in records if r["message_type"] == "user_message"]
    assert any(json.loads(text).get("type") == "login" for text in users if text.startswith("{"))


def a_missing_or_wrong_token_is_401(target: RestLetta) -> None:
    assert target.token is not None, "both targets run with a token"
    wrong = target.http.get("/v1/agents/", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    target.http.headers.pop("Authorization")
    try:
        assert target.request("GET", "/v1/agents/").status_code == 401
    finally:
        target.http.headers["Authorization"] = f"Bearer {target.token}"


def a_rename_or_a_message_puts_the_agent_first_by_updated_at(target: RestLetta) -> None:
    renamed, talker, _ = (target.add_agent(f"Changed {n}") for n in range(3))
    target.rename(renamed, "Changed again")
    first = listed(target, order_by="updated_at", order="desc", limit="1")
    assert [a["id"] for a in first] == [renamed] and first[0]["name"] == "Changed again"
    assert first[0]["updated_at"] >= first[0]["created_at"]
    target.converse(talker, "anyone there?")  # type: ignore[attr-defined]
    first = listed(target, order_by="updated_at", order="desc", limit="2")
    assert [a["id"] for a in first] == [talker, renamed]
    after = listed(target, order_by="updated_at", order="desc", limit="1", after=talker)
    assert [a["id"] for a in after] == [renamed]


def a_directory_follows_renames_deletions_and_new_agents(target: RestLetta) -> None:
    """The library's own listing of changes (`LettaDirectory`), as `run` uses it."""
    target.clear()
    ids = [target.add_agent(f"Listed {n}") for n in range(4)]
    directory = LettaDirectory()

    async def listing() -> dict[str, str]:
        transport = HttpxTransport()
        try:
            letta = LettaClient.connect(transport, target.base_url, target.token)
            found = await letta.list_agents(2, directory)
        finally:
            await transport.aclose()
        assert found.incomplete is None
        return {agent.id: agent.name for agent in found.agents}

    assert anyio.run(listing) == {agent_id: f"Listed {n}" for n, agent_id in enumerate(ids)}
    target.rename(ids[1], "Renamed")
    target.remove(ids[2])
    new = target.add_agent("Newcomer")
    assert anyio.run(listing) == {
        ids[0]: "Listed 0",
        ids[1]: "Renamed",
        ids[3]: "Listed 3",
        new: "Newcomer",
    }
    assert directory.changes_since_full == 0  # the count showed a deletion: a full walk
    target.rename(ids[0], "Renamed too")
    assert anyio.run(listing)[ids[0]] == "Renamed too"
    assert directory.changes_since_full == 1  # a walk of changes sufficed


CHECKS: list[Check] = [
    the_list_lives_at_the_trailing_slash_route,
    the_list_is_newest_first_and_pages_with_after,
    an_after_naming_no_agent_starts_over,
    the_count_is_the_total,
    an_empty_include_relationships_lists_agents_lean,
    ids_are_agent_uuid4_else_422_and_unknown_ones_404,
    names_with_refused_characters_fail_and_duplicates_pass,
    a_conversation_lists_oldest_first_with_records_of_a_step_sharing_an_id,
    messages_page_back_with_before_by_stored_message,
    older_agent_types_start_with_a_login_event,
    a_missing_or_wrong_token_is_401,
    a_rename_or_a_message_puts_the_agent_first_by_updated_at,
    a_directory_follows_renames_deletions_and_new_agents,
]
