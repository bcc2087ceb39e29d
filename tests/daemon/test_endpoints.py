"""The service's endpoints, served on 127.0.0.1 in-process over the stateful fakes."""

from __future__ import annotations

import json
import logging
from functools import partial

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.daemon.http_server import HttpRequest
from app.daemon.metrics import SyncMetrics
from app.daemon.routes import Routes
from app.daemon.runner import SyncRunner
from app.daemon.service import SyncDaemon
from app.daemon.settings import ServiceSettings
from app.identity.naming import agent_localpart
from app.state import MappingStore
from app.testing.harness import SyncHarness

from helpers import CountingSyncs

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_it_syncs_at_start_and_on_post_sync_and_its_metrics_count_both(
    sync_harness: SyncHarness,
) -> None:
    h = sync_harness
    first = h.letta.add_agent("First")
    settings = ServiceSettings(interval=3600, host="127.0.0.1", port=0)
    daemon = SyncDaemon(h.config(), settings, h.transport(), pacing=h.clock.pacing())
    async with anyio.create_task_group() as group:
        port = await group.start(partial(daemon.run, signals=False))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            with anyio.fail_after(10):
                await daemon.runner.wait_for_syncs(1)
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["role"] == "leader"

            second = h.letta.add_agent("Second")  # "agent created": the webhook fires
            accepted = await client.post("/sync")
            assert accepted.status_code == 202
            with anyio.fail_after(10):
                await daemon.runner.wait_for_syncs(2)
            metrics = await client.get("/metrics")
            assert (await client.get("/sync")).status_code == 405
        daemon.shutdown()

    state = MappingStore.read(h.data_dir)
    for agent_id in (first, second):
        mapping = state.get(agent_id)
        assert mapping is not None and mapping.room_id is not None
        assert h.homeserver.members(mapping.room_id)[mapping.matrix_user_id] == "join"
    found = samples(metrics.text)
    assert found[("letta_matrix_sync_syncs_total", (("outcome", "ok"),))] == 2
    assert found[("letta_matrix_sync_sync_duration_seconds_count", ())] == 2
    assert found[("letta_matrix_sync_agents_in_order", ())] == 2
    assert found[("letta_matrix_sync_agents_failed", ())] == 0
    assert found[("letta_matrix_sync_last_success_timestamp_seconds", ())] > 0
    created = ("service", "matrix"), ("status", "200")
    rooms = [v for (n, labels), v in found.items() if "createRoom" in str(labels)]
    assert rooms and sum(rooms) >= 3  # the space and one room per agent
    assert any(
        n == "letta_matrix_sync_requests_total" and set(created) <= set(labels)
        for (n, labels) in found
    )


@pytest.mark.parametrize(
    ("host", "token", "authorization", "status"),
    [
        ("127.0.0.1", "s3cret", None, 401),
        ("127.0.0.1", "s3cret", "Bearer wrong", 401),
        ("127.0.0.1", "s3cret", "Basic s3cret", 401),
        ("127.0.0.1", "s3cret", "Bearer s3cret", 202),
        ("0.0.0.0", "s3cret", "bearer s3cret", 202),  # noqa: S104
        ("0.0.0.0", None, None, 403),  # noqa: S104 - no token: refused off loopback
        ("::1", None, None, 202),
    ],
)
async def test_the_webhook_takes_a_sync_only_with_the_token_or_on_loopback(
    host: str, token: str | None, authorization: str | None, status: int
) -> None:
    syncs = CountingSyncs()
    settings = ServiceSettings(interval=3600, host=host, port=0, webhook_token=token)
    runner = SyncRunner(syncs, settings, SyncMetrics())
    headers = {"authorization": authorization} if authorization else {}
    async with anyio.create_task_group() as group:
        group.start_soon(runner.run)
        await runner.wait_for_syncs(1)
        answer = await Routes(runner)(HttpRequest("POST", "/sync", headers))
        if status == 202:
            await runner.wait_for_syncs(2)
        runner.stop()
    assert answer.status == status
    assert syncs.count == (2 if status == 202 else 1)
    assert b"s3cret" not in answer.body


async def test_each_sync_logs_one_line_with_its_counts_then_one_warning_per_failed_agent(
    sync_harness: SyncHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = sync_harness
    h.letta.add_agent("Fine")
    taken = h.letta.add_agent("Taken")
    h.homeserver.register_user(agent_localpart(taken), "someone else's password")
    settings = ServiceSettings(interval=3600, host="127.0.0.1", port=0)
    daemon = SyncDaemon(h.config(), settings, h.transport(), pacing=h.clock.pacing())
    caplog.set_level(logging.INFO, logger="app")
    async with anyio.create_task_group() as group:
        port = await group.start(partial(daemon.run, signals=False))
        with anyio.fail_after(10):
            await daemon.runner.wait_for_syncs(1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            found = samples((await client.get("/metrics")).text)
        daemon.shutdown()

    sent = {
        service: sum(
            value
            for (name, labels), value in found.items()
            if name == "letta_matrix_sync_requests_total" and ("service", service) in labels
        )
        for service in ("matrix", "letta")
    }
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "app.daemon.runner"]
    (level, summary), (warned, failure) = lines
    assert level == "INFO" and summary.startswith("sync done in ")
    assert (
        "2 agents seen, 1 created, 0 renamed, 0 repaired, 0 migrated, 1 failed, 0 held" in summary
    )
    assert summary.endswith(f"; {sent['matrix']:g} Matrix and {sent['letta']:g} Letta requests")
    assert sent["matrix"] > 5 and sent["letta"] >= 1
    assert warned == "WARNING" and failure.startswith(f"agent {taken} (Taken) failed at user")
    assert found[("letta_matrix_sync_leader", ())] == 1.0  # a lone daemon leads


async def test_healthz_answers_ok_true_and_unknown_methods_are_refused() -> None:
    runner = SyncRunner(CountingSyncs(), ServiceSettings(interval=3600, port=0), SyncMetrics())
    routes = Routes(runner)
    health = await routes(HttpRequest("GET", "/healthz", {}))
    assert (health.status, json.loads(health.body)) == (200, {"ok": True})
    assert (await routes(HttpRequest("DELETE", "/healthz", {}))).status == 405
    assert (await routes(HttpRequest("GET", "/nowhere", {}))).status == 404


async def test_every_endpoint_names_the_method_it_refuses() -> None:
    runner = SyncRunner(CountingSyncs(), ServiceSettings(interval=3600, port=0), SyncMetrics())
    routes = Routes(runner)
    for method, path in (("POST", "/healthz"), ("POST", "/readyz"), ("POST", "/metrics")):
        refused = await routes(HttpRequest(method, path, {}))
        assert (refused.status, refused.body) == (
            405,
            f'{{"error": "{method} is not allowed on {path}"}}\n'.encode(),
        )


async def test_the_webhook_answers_say_what_happened_in_their_bodies() -> None:
    loopback = Routes(SyncRunner(CountingSyncs(), ServiceSettings(port=0), SyncMetrics()))
    public = Routes(SyncRunner(CountingSyncs(), ServiceSettings(host="0.0.0.0"), SyncMetrics()))  # noqa: S104
    guarded = Routes(
        SyncRunner(CountingSyncs(), ServiceSettings(webhook_token="s3cret-token"), SyncMetrics())
    )

    accepted = await loopback(HttpRequest("POST", "/sync", {}))
    refused = await public(HttpRequest("POST", "/sync", {}))
    wrong = await guarded(HttpRequest("POST", "/sync", {"authorization": "Bearer nope"}))

    assert (accepted.status, json.loads(accepted.body)) == (
        202,
        {"accepted": True, "after_current_sync": False},
    )
    assert (refused.status, json.loads(refused.body)) == (
        403,
        {"error": "set SYNC_WEBHOOK_TOKEN to accept POST /sync on a public address"},
    )
    assert (wrong.status, json.loads(wrong.body)) == (
        401,
        {"error": "a valid 'Authorization: Bearer <token>' is required"},
    )


async def test_metrics_are_served_in_prometheus_text_format() -> None:
    runner = SyncRunner(CountingSyncs(), ServiceSettings(interval=3600, port=0), SyncMetrics())

    answer = await Routes(runner)(HttpRequest("GET", "/metrics", {}))

    assert answer.status == 200 and answer.content_type.startswith("text/plain; version=0.0.4")
    assert b"letta_matrix_sync_syncs_total" in answer.body
