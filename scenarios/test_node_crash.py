"""A crashed node's ordinals come back with every acknowledged checkpoint when the node is restored.

The node's kubelet and every container on it die at once (a kind node's container stopped; the
embedded cluster SIGKILLs the node's kubelet and its containers). The pods stay bound to the node
until it returns; on restore the kubelet starts their writers again on the same volumes.

Proven: every acknowledged checkpoint on the crashed node's volumes is intact; each ordinal keeps
its claim, PV and stamp and resumes, from a new writer process, from at least its newest
acknowledged step; ordinals on other nodes stay available.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="node-crash",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
    faults={"node-crash": model.Fault("node-crash", "its node crashed: back when the node is restored", hold_s=2.0)},
    schedule=lambda ctx: schedule.repeat(ctx.seed, "node-crash", schedule.ordinals("node-of", ctx.replicas), 2,
                                         delay_s=(1.0, 3.0)),
)


def test_crashed_node_ordinals_come_back_on_restore_with_every_checkpoint(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
