"""With whenScaled Delete, a scale-down takes the removed ordinals' claims, and only those.

The policy says a scaled-down ordinal's claim is deleted; after the scale-up it starts on a new,
empty volume. The identity and durability checkers must call exactly that expected (the policy's
doing, said so in the verdict), not a loss — and still hold every other ordinal to its claim
and its checkpoints.

Proven: ordinals 0 keep claim, PV, stamp and every checkpoint; ordinals 1 and 2 get fresh
volumes, which the verdicts name as whenScaled=Delete applied; every ordinal resumes after the
scale-up from at least the newest step acknowledged since its volume was new.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="scale-delete",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3", "when_scaled": "Delete"},
    faults={"scale": model.Fault("scale", "scaled away; its claim is deleted by whenScaled=Delete",
                                 options={"to": 1}, hold_s=2.0)},
    schedule=lambda ctx: (schedule.FaultStep(2.0, "scale", schedule.Target("set")),),
)


@pytest.mark.extended
def test_when_scaled_delete_gives_scaled_ordinals_new_volumes_and_says_so(run_scenario: Callable[..., object]) -> None:
    outcome = run_scenario(SCENARIO)
    identity = outcome.composed.verdicts["identity"]  # type: ignore[attr-defined]
    assert "whenScaled=Delete" in str(identity.details), identity.summary
