"""After a node crash and a force delete of its pods, a local-path ordinal waits for its node and a shared one moves.

Force-deleting the pods of an unreachable node is what an operator does to get a StatefulSet
going again. The controller recreates each ordinal at once; where it can run depends on its
volume: a local-path PV is pinned to the dead node (the pod stays Pending until the node is
restored), a network volume can be attached elsewhere.

Proven, for both storage classes: every acknowledged checkpoint is intact; each ordinal keeps its
claim, PV and stamp and resumes from at least its newest acknowledged step; there is never more
than one pod per ordinal.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

SCENARIOS = {
    storage: model.Scenario(
        name=f"node-crash-force-delete-{storage}",
        claim=__doc__ or "",
        deploy={"replicas": "3", "storage_class": storage, "keep_last": "3"},
        faults={"node-crash": model.Fault(
            "node-crash", why, options={"force_delete": True}, hold_s=3.0)},
        schedule=lambda ctx: schedule.repeat(ctx.seed, "node-crash", schedule.ordinals("node-of", ctx.replicas), 1),
    )
    for storage, why in (("standard", "its local-path volume is on the crashed node: Pending until restore"),
                         ("shared", "force-deleted from the crashed node: recreated elsewhere with its volume"))
}


@pytest.mark.extended
@pytest.mark.parametrize("storage", sorted(SCENARIOS))
def test_force_deleted_pods_of_a_crashed_node_follow_their_volume(storage: str,
                                                                   run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIOS[storage])
