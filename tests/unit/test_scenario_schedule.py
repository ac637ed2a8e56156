"""The shared scenario steps: seeded schedules, the run folder, fault counting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness import history, ops, scenario
from harness.checkers import expect

TARGETS = ["ckpt-0", "ckpt-1", "ckpt-2"]


def test_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert scenario.seeded_schedule(7, 10, TARGETS) == scenario.seeded_schedule(7, 10, TARGETS)
    assert scenario.seeded_schedule(7, 10, TARGETS) != scenario.seeded_schedule(8, 10, TARGETS)


def test_schedule_keeps_the_process_kill_replay_format() -> None:
    """Seeds recorded by runs before the refactor still replay the same kills."""
    rng = random.Random(42)
    before = [{"delay_s": round(rng.uniform(0.5, 2.5), 3), "target": f"ckpt-{rng.randrange(3)}"} for _ in range(6)]
    assert [s.to_dict() for s in scenario.seeded_schedule(42, 6, TARGETS)] == before


def test_schedule_stays_within_its_delay_range_and_targets() -> None:
    steps = scenario.seeded_schedule(1, 200, TARGETS, delay_s=(0.1, 0.2))
    assert all(0.1 <= s.delay_s <= 0.2 for s in steps)
    assert {s.target for s in steps} == set(TARGETS)


def test_a_schedule_without_targets_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        scenario.seeded_schedule(1, 3, [])
    with pytest.raises(ValueError, match="low <= high"):
        scenario.seeded_schedule(1, 3, TARGETS, delay_s=(2.0, 1.0))


def test_schedule_is_in_the_run_folder_before_anything_runs(tmp_path: Path) -> None:
    steps = scenario.seeded_schedule(3, 4, TARGETS)
    run = scenario.start_run("pod-kill", seed=3, cluster_kind="embedded", settings={"kills": 4},
                             expectations=expect.Expectations(), schedule=steps, base_dir=tmp_path)
    stored = (run.path / scenario.SCHEDULE_FILE).read_text()
    assert scenario.schedule_from_json(stored) == steps
    assert json.loads((run.path / "run.json").read_text())["cluster_kind"] == "embedded"
    assert (tmp_path / "latest").resolve() == run.path.resolve()


def test_acks_and_faults_are_counted_from_the_history(tmp_path: Path) -> None:
    with history.HistoryWriter(tmp_path / "history", "w0-u0") as rec:
        rec.record("invoke", ops.WRITE, {"ordinal": 1})
        rec.record("ok", ops.WRITE, {"ordinal": 1, "step": 1})
        rec.record("invoke", ops.WRITE, {"ordinal": 2})
        rec.record("info", ops.WRITE, {"ordinal": 2})
    with history.HistoryWriter(tmp_path / "history", ops.NEMESIS_PROCESS) as rec:
        rec.record("invoke", ops.FAULT_START, {"fault": "pod-kill", "targets": ["ckpt-1"]})
        rec.record("ok", ops.FAULT_START, {"fault": "pod-kill", "targets": ["ckpt-1"]})
        rec.record("invoke", ops.FAULT_START, {"fault": "pod-kill", "targets": ["ckpt-2"]})
        rec.record("info", ops.FAULT_START, {"fault": "pod-kill", "targets": ["ckpt-2"]})
    assert scenario.acked_per_ordinal(tmp_path, [0, 1, 2]) == {0: 0, 1: 1, 2: 0}
    assert scenario.fault_count(tmp_path) == 1
