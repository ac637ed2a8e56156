"""Checkpoint writers SIGKILLed mid-write and restarted on the same directory lose nothing acknowledged.

The writers run as plain local processes (one per ordinal, each on its own directory): the
durability claims without Kubernetes in the way. A seeded schedule SIGKILLs a writer's process
group mid-write and restarts it on the same directory; afterwards every volume is read back with
the offline verifier.

Proven: every acknowledged checkpoint is present with its digest, nothing torn is under a final
name, nothing appears that was not attempted, and after each kill the writer resumes (a full
read) from a step at least as new as it had acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="process-kill",
    claim=__doc__ or "",
    system="local-processes",
    deploy={"replicas": "3", "keep_last": "3"},
    faults={"kill-writer-process": model.Fault("kill-writer-process", "its writer process was SIGKILLed")},
    schedule=lambda ctx: schedule.repeat(ctx.seed, "kill-writer-process", schedule.ordinals("ordinal", ctx.replicas),
                                         6),
    checkers=("durability", "availability", "resume", "faults", "perf"),
)


def test_sigkilled_writers_keep_every_acknowledged_checkpoint(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
