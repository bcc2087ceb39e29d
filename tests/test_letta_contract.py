"""Letta 0.16.8's behaviour, checked on the fake over HTTP (tests/contract/test_letta_scenarios.py
runs the same checks on the real server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from letta_contract_checks import CHECKS, Check
from letta_targets import FakeTarget, served_fake


@pytest.fixture
def fake_target() -> Iterator[FakeTarget]:
    with served_fake("contract-token") as target:
        yield target


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_fake_behaves_like_letta(check: Check, fake_target: FakeTarget) -> None:
    check(fake_target)
