"""Draining a node keeps a local-path ordinal Pending until uncordon, then back on its own claim with every checkpoint.

A local-path (``standard``) volume lives on one node and its PV is pinned there by node
affinity, so a drained ordinal cannot move: its replacement pod waits Pending until the node is
uncordoned. That is expected unavailability, not a failure — and a drain that "passes" while the
pod sits Pending forever is exactly what this scenario must not call valid.

Proven: every acknowledged checkpoint is intact; each drained ordinal comes back on the same
claim, PV and volume stamp and resumes from at least its newest acknowledged step; ordinals on
other nodes stay available throughout. The heal records where each drained pod was just before
the uncordon (Pending, never another node).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.checkers import expect
from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="drain-local",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
    faults={"drain": model.Fault("drain", "its local-path volume pins it to the drained node: Pending until uncordon",
                                 hold_s=3.0)},
    expectations=expect.Expectations(fault_notes=(expect.NoteClaim("drain", "while_cordoned", "each-pending"),),
                                     same_node=True),
    schedule=lambda ctx: schedule.repeat(ctx.seed, "drain", schedule.ordinals("node-of", ctx.replicas), 2,
                                         delay_s=(1.0, 3.0)),
)


def test_drain_keeps_local_volume_ordinal_pending_until_uncordon(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
