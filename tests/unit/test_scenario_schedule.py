"""Seeded schedules with abstract targets, the run folder they are stored in, fault counting."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness import facts, history, ops
from harness.checkers import expect
from harness.scenario import evidence, schedule

TARGETS = schedule.ordinals("ordinal", 3)


def test_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert schedule.repeat(7, "pod-kill", TARGETS, 10) == schedule.repeat(7, "pod-kill", TARGETS, 10)
    assert schedule.repeat(7, "pod-kill", TARGETS, 10) != schedule.repeat(8, "pod-kill", TARGETS, 10)


def test_repeat_draws_like_the_first_runs_so_their_seeds_pick_the_same_victims() -> None:
    rng = random.Random(42)
    before = [(round(rng.uniform(0.5, 2.5), 3), f"ordinal:{rng.randrange(3)}") for _ in range(6)]
    assert [(s.delay_s, str(s.target)) for s in schedule.repeat(42, "kill", TARGETS, 6)] == before


def test_schedule_stays_within_its_delay_range_and_targets() -> None:
    steps = schedule.repeat(1, "pod-kill", TARGETS, 200, delay_s=(0.1, 0.2))
    assert all(0.1 <= s.delay_s <= 0.2 for s in steps)
    assert {s.target for s in steps} == set(TARGETS)


def test_a_mix_draws_each_fault_by_weight_and_only_at_its_own_targets() -> None:
    mix = [schedule.MixEntry("pod-kill", 3, TARGETS), schedule.MixEntry("drain", 1, schedule.ordinals("node-of", 3)),
           schedule.MixEntry("scale", 1, (schedule.Target("set"),))]
    steps = schedule.mixed(5, mix, 500)
    counts = schedule.faults_named(steps)
    assert counts["pod-kill"] > counts["drain"]
    assert counts["pod-kill"] > counts["scale"]
    assert {s.target.kind for s in steps if s.fault == "drain"} == {"node-of"}
    assert {str(s.target) for s in steps if s.fault == "scale"} == {"set"}
    assert schedule.mixed(5, mix, 50) == schedule.mixed(5, mix, 50)


def test_bad_generator_input_is_refused_with_one_line() -> None:
    with pytest.raises(schedule.ScheduleError, match="at least one target"):
        schedule.repeat(1, "pod-kill", [], 3)
    with pytest.raises(schedule.ScheduleError, match="low <= high"):
        schedule.repeat(1, "pod-kill", TARGETS, 3, delay_s=(2.0, 1.0))
    with pytest.raises(schedule.ScheduleError, match="weights must be > 0"):
        schedule.mixed(1, [schedule.MixEntry("drain", 0, TARGETS)], 3)
    with pytest.raises(schedule.ScheduleError, match="has no target"):
        schedule.mixed(1, [schedule.MixEntry("drain", 1, ())], 3)


@pytest.mark.parametrize(("text", "message"), [
    ("pod:1", "expected one of ordinal:N"),
    ("ordinal:x", "needs an ordinal"),
    ("ordinal:01", "needs an ordinal"),
    ("node:", "needs a node name"),
    ("set:ckpt", "takes no argument"),
])
def test_a_malformed_target_says_what_a_target_is(text: str, message: str) -> None:
    with pytest.raises(schedule.ScheduleError, match=message):
        schedule.Target.parse(text)


def test_a_stored_schedule_replays_and_a_malformed_one_names_its_step() -> None:
    steps = schedule.repeat(3, "pod-kill", TARGETS, 4)
    assert schedule.from_json(schedule.to_json(steps)) == steps
    bad = json.loads(schedule.to_json(steps))
    bad[2]["delay_s"] = -1
    with pytest.raises(schedule.ScheduleError, match=r"step 2: delay_s must be a number >= 0"):
        schedule.from_json(json.dumps(bad))
    with pytest.raises(schedule.ScheduleError, match="not JSON"):
        schedule.from_json("{")


def test_schedule_is_in_the_run_folder_before_anything_runs(tmp_path: Path) -> None:
    steps = schedule.repeat(3, "pod-kill", TARGETS, 4)
    run = evidence.start_run("pod-kill", seed=3, cluster_kind="embedded", settings={"kills": 4},
                             expectations=expect.Expectations(), schedule=steps, base_dir=tmp_path)
    stored = (run.path / schedule.SCHEDULE_FILE).read_text()
    assert schedule.from_json(stored) == steps
    assert schedule.SCHEDULE_FILE == facts.SCHEDULE_FILE
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
    assert evidence.acked_per_ordinal(tmp_path, [0, 1, 2]) == {0: 0, 1: 1, 2: 0}
    assert evidence.fault_count(tmp_path) == 1
