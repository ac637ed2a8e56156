"""StatefulSet pods force-deleted mid-write come back on their own claims with every acknowledged checkpoint.

The checkpointing StatefulSet runs on the session's cluster (the embedded one by default) while
locust writes checkpoints to every ordinal; a seeded schedule force-deletes pods (grace 0: the
kubelet kills the writer without a drain). Each fault heals when the StatefulSet has the ordinal
Ready again with a new UID and the load follows it there.

Proven: every acknowledged checkpoint is on its volume with its digest, nothing torn sits under a
final name, nothing appears that was never attempted; every ordinal keeps its claim, PV and
volume stamp across pod replacement; after each kill the ordinal resumes (a full read) from a
step at least as new as it had acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="pod-kill",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
    faults={"pod-kill": model.Fault("pod-kill", "its pod was force-deleted (grace 0) and is being recreated")},
    schedule=lambda ctx: schedule.repeat(ctx.seed, "pod-kill", schedule.ordinals("ordinal", ctx.replicas), 4,
                                         delay_s=(1.0, 4.5)),
)


def test_force_deleted_pods_keep_every_acknowledged_checkpoint(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
