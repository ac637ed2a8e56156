"""A rolling restart and a partitioned update under load lose no acknowledged checkpoint.

``kubectl rollout restart`` replaces every pod, highest ordinal first, one at a time (each writer
gets SIGTERM and its grace period). A partitioned update first moves only the ordinals at or
above the partition (the canary), which must leave the lower ones' writers untouched, then
everyone once the partition is lowered.

Proven: every acknowledged checkpoint is intact; every ordinal keeps its claim, PV and stamp;
after the rollout every ordinal serves from a new writer and resumes from at least its newest
acknowledged step; during the canary phase no ordinal below the partition was replaced.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

SCENARIOS = {
    "rollout-restart": model.Scenario(
        name="rollout-restart",
        claim=__doc__ or "",
        deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
        faults={"rollout-restart": model.Fault("rollout-restart", "replaced by the rolling restart")},
        schedule=lambda ctx: (schedule.FaultStep(2.0, "rollout-restart", schedule.Target("set")),),
    ),
    "partitioned-update": model.Scenario(
        name="partitioned-update",
        claim=__doc__ or "",
        deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
        faults={"partitioned-update": model.Fault("partitioned-update", "replaced by the (partitioned) update",
                                                  options={"partition": 2}, hold_s=2.0)},
        schedule=lambda ctx: (schedule.FaultStep(2.0, "partitioned-update", schedule.Target("set")),),
    ),
}


@pytest.mark.extended
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rolling_updates_lose_no_acknowledged_checkpoint(name: str, run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIOS[name])
