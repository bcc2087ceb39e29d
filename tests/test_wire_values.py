"""Values on the wire that no scenario looks at, but a homeserver or a reader does: what
/sync asks for, what the view's filter leaves out, and what a body that is not JSON says."""

from __future__ import annotations

import io
import json

import pytest

from app.cli.output import ReaderSafeStream
from app.daemon.metrics import classify
from app.errors import MalformedResponse
from app.http.transport import Request, Response
from app.matrix import api
from app.matrix.view import view_filter


def test_a_sync_never_shows_the_account_online_and_asks_at_once_by_default() -> None:
    call = api.sync(filter_json="{}")

    assert call.query == {"filter": "{}", "timeout": "0", "set_presence": "offline"}
    assert api.sync(filter_json="{}", since="s1", timeout_ms=30000).query == {
        "filter": "{}",
        "timeout": "30000",
        "set_presence": "offline",
        "since": "s1",
    }


def test_the_view_filter_asks_for_the_watched_state_and_nothing_else() -> None:
    nothing = {"types": []}

    data = json.loads(view_filter(("m.room.name",), include_leave=True))

    assert data["presence"] == nothing and data["account_data"] == nothing
    assert data["room"]["ephemeral"] == nothing and data["room"]["account_data"] == nothing
    assert data["room"]["state"] == {"types": ["m.room.name"], "lazy_load_members": False}
    assert data["room"]["include_leave"] is True


def test_a_body_that_is_not_json_says_so_and_keeps_only_an_error_body() -> None:
    with pytest.raises(MalformedResponse) as ok_status:
        Response(200, content=b"<html>").json()
    with pytest.raises(MalformedResponse) as error_status:
        Response(502, content=b"<html>bad gateway").json()

    assert str(ok_status.value) == "malformed response (HTTP 200): body is not JSON"
    assert ok_status.value.body is None  # a 200 body may hold a token
    assert error_status.value.body == b"<html>bad gateway"


def test_a_reader_safe_stream_is_writable() -> None:
    assert ReaderSafeStream(io.StringIO()).writable()


@pytest.mark.parametrize(
    ("method", "url", "labels"),
    [
        (
            "PUT",
            "http://hs/_matrix/client/v3/rooms/%21abc%3Ahs/state/m.room.name/",
            ("matrix", "PUT /_matrix/client/v3/rooms/{id}/state/m.room.name/"),
        ),
        (
            "GET",
            "http://hs/_synapse/admin/v2/users/%40agent_1%3Ahs?x=1",
            ("matrix", "GET /_synapse/admin/v2/users/{id}"),
        ),
        (
            "GET",
            "http://letta/v1/agents/agent-4e7e4236-cef6-4e5b-9299-366fc79550fe/messages",
            ("letta", "GET /v1/agents/{id}/messages"),
        ),
        ("GET", "http://letta/v1/agents/?limit=50", ("letta", "GET /v1/agents/")),
    ],
)
def test_a_requests_metric_labels_fold_ids_so_their_number_stays_small(
    method: str, url: str, labels: tuple[str, str]
) -> None:
    assert classify(Request(method, url)) == labels
