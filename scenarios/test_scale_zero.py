"""Scaling 3 -> 0 -> 3 brings every ordinal back on its own claim with every checkpoint.

With no pod left at all, nothing but the claims remembers the set's state. Scaling back up must
reattach every ordinal to its own claim (whenScaled Retain) — the ordinal-to-volume identity is
the whole promise of a StatefulSet.

Proven: every acknowledged checkpoint is intact; each ordinal keeps its claim, PV and stamp;
every ordinal resumes from at least its newest acknowledged step.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="scale-zero",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
    faults={"scale": model.Fault("scale", "the set was scaled to zero", options={"to": 0}, hold_s=2.0)},
    schedule=lambda ctx: (schedule.FaultStep(2.0, "scale", schedule.Target("set")),),
)


@pytest.mark.extended
def test_scale_to_zero_and_back_reattaches_every_claim(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
