"""The sampled mutation score's arithmetic and its choices, without running mutmut."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mutmut_support import SnapshotSet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import mutation_sample
from mutation_sample import Score, draw, mutant_globs, package_of, score_of


def test_the_wilson_interval_of_a_known_sample() -> None:
    # 231 of 300 detected: 77.0%, interval 71.9-81.4% (Wilson, z = 1.96).
    low, high = Score(231, 300).interval()
    assert (round(low, 1), round(high, 1)) == (71.9, 81.4)
    assert Score(231, 300).describe().startswith("77.0% (95% interval 71.9-81.4%")


def test_the_interval_stays_inside_zero_and_a_hundred_at_the_edges() -> None:
    low, high = Score(300, 300).interval()
    assert 98.0 < low < 100.0 and high == pytest.approx(100.0)
    assert Score(0, 0).interval() == (0.0, 100.0)


def test_skipped_and_unrun_mutants_are_not_scored_and_no_tests_counts_against() -> None:
    codes = {"a": 1, "b": 0, "c": 33, "d": 36, "e": 34, "f": None}
    assert score_of(codes) == Score(detected=2, scored=4)


def test_the_same_seed_draws_the_same_sample_and_another_seed_another() -> None:
    names = [f"app.sync.agent.x_f__mutmut_{n}" for n in range(1000)]
    first = draw(names, 300, "3f2a9c")
    assert first == draw(list(reversed(names)), 300, "3f2a9c") and len(set(first)) == 300
    assert first != draw(names, 300, "3f2a9d")
    assert draw(names[:10], 300, "any") == sorted(names[:10])


def test_mutants_are_counted_by_package() -> None:
    assert package_of("app.sync.agent.x_sync_agent__mutmut_3") == "app/sync"
    assert package_of("app.errors.x_describe_non_json__mutmut_1") == "app (top)"
    assert package_of("app.state.migrations.x_up__mutmut_2") == "app/state"


def test_the_functions_of_a_change_become_mutmut_globs() -> None:
    touched = {"app/sync/agent.py": {"sync_agent", "AgentRun.client"}}
    assert mutant_globs(touched) == [
        "app.sync.agent.x\u01c1AgentRun\u01c1client__mutmut_*",
        "app.sync.agent.x_sync_agent__mutmut_*",
    ]


def test_the_functions_a_diff_touches(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "def first():\n    return 1\n\n\nclass Box:\n    def open(self):\n        return 2\n"
    )
    assert mutation_sample._functions_at(module, {2}) == {"first"}
    assert mutation_sample._functions_at(module, {7}) == {"Box.open"}
    assert mutation_sample._functions_at(module, {4}) == set()


def test_the_floor_never_falls(tmp_path: Path) -> None:
    floor = tmp_path / "floor.json"
    saved = mutation_sample.FLOOR
    mutation_sample.FLOOR = floor
    try:
        mutation_sample.raise_floor(74.2)
        mutation_sample.raise_floor(70.0)
        assert mutation_sample.floor() == 74.2
        mutation_sample.raise_floor(76.04)
        assert mutation_sample.floor() == 76.0
    finally:
        mutation_sample.FLOOR = saved


def test_a_set_that_grows_while_it_is_iterated_does_not_stop_the_iteration() -> None:
    """What a test's background thread does to mutmut's stats set during its teardown hook."""
    plain = {"app.a", "app.b"}
    with pytest.raises(RuntimeError, match="changed size"):
        for name in plain:
            plain.add(name + ".late")
    grown = SnapshotSet({"app.a", "app.b"})
    seen = []
    for name in grown:
        grown.add(name + ".late")
        seen.append(name)
    assert sorted(seen) == ["app.a", "app.b"] and len(grown) == 4
