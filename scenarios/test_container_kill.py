"""A writer container killed by the runtime (SIGKILL mid-write, or SIGTERM) restarts with every acknowledged checkpoint.

Not an API delete: the pod, its uid, IP and claim stay; the runtime signals the container and the
kubelet restarts it. SIGKILL gives the writer no chance to finish anything; SIGTERM is the clean
shutdown path, where it answers or refuses every in-flight write before exiting.

Proven, for both signals: every acknowledged checkpoint is intact, nothing torn is visible, every
ordinal keeps its claim, PV and stamp, and after each kill the ordinal resumes, from a new writer
process in the same pod, from at least its newest acknowledged step. For SIGTERM also: every write
in flight when the signal was sent is answered, ok or refused, never left indeterminate.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

SCENARIOS = {
    signal: model.Scenario(
        name=f"container-kill-{signal.lower()}",
        claim=__doc__ or "",
        deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
        faults={"container-kill": model.Fault("container-kill", f"its writer got SIG{signal} and is restarting",
                                              options={"signal": signal})},
        schedule=lambda ctx: schedule.repeat(ctx.seed, "container-kill", schedule.ordinals("ordinal", ctx.replicas),
                                             3, delay_s=(1.0, 3.0)),
        checkers=(*model.DEFAULT_CHECKERS, "shutdown") if signal == "TERM" else model.DEFAULT_CHECKERS,
        # four writers per ordinal with 4 MiB checkpoints keep writes in the writer when the signal
        # lands, so the drain is exercised (a stop that held nothing proves nothing about it)
        load=model.LoadProfile(users=12, checkpoint_bytes=4 << 20) if signal == "TERM" else model.LoadProfile(),
    )
    for signal in ("KILL", "TERM")
}


@pytest.mark.parametrize("signal", [
    "KILL",
    pytest.param("TERM", marks=pytest.mark.extended),
])
def test_killed_writer_container_restarts_with_every_checkpoint(signal: str,
                                                                  run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIOS[signal])
