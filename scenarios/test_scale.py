"""Scaling 3 -> 1 -> 3 with whenScaled Retain gives ordinals 1 and 2 their old claims and checkpoints back.

The default PVC retention keeps a scaled-down ordinal's claim; when the set scales up again the
controller must bind the same claim, so the ordinal finds its own volume, stamp and checkpoints.

Proven: every acknowledged checkpoint, those of the scaled-away ordinals included, is intact;
each ordinal keeps its claim, PV and stamp; after the scale-up each resumes from at least its
newest acknowledged step.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="scale-retain",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3", "when_scaled": "Retain"},
    faults={"scale": model.Fault("scale", "scaled away; back on its retained claim after the scale-up",
                                 options={"to": 1}, hold_s=2.0)},
    schedule=lambda ctx: (schedule.FaultStep(2.0, "scale", schedule.Target("set")),),
)


def test_scale_down_and_up_with_retain_gives_every_ordinal_its_claim_back(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
