"""Under a seeded mix of every fault for --soak-duration, no acknowledged checkpoint is ever lost.

Jepsen's composed nemesis: pod kills, container SIGKILLs and SIGTERMs, drains, node crashes and
scale-downs drawn by weight from one seed, targets resolved live, each step stored in the run
folder just before it runs (so the file replays exactly what happened), for as long as asked.

Proven: after every fault, every ordinal hit resumes from at least its newest acknowledged step;
at the end, every acknowledged checkpoint is intact, every ordinal on its own claim and stamp;
every write in flight at a SIGTERM was answered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="soak-mixed",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
    faults={
        "pod-kill": model.Fault("pod-kill", "force-deleted"),
        "container-kill": model.Fault("container-kill", "writer SIGKILLed", options={"signal": "KILL"}),
        "container-term": model.Fault("container-kill", "writer SIGTERMed", options={"signal": "TERM"}),
        "drain": model.Fault("drain", "drained: local-path Pending until uncordon", hold_s=1.0),
        "node-crash": model.Fault("node-crash", "node crashed until restore", hold_s=1.0),
        "scale": model.Fault("scale", "scaled away, claim retained", options={"to": 1}),
    },
    schedule=lambda ctx: schedule.mixed(ctx.seed, [
        schedule.MixEntry("pod-kill", 3, schedule.ordinals("ordinal", ctx.replicas)),
        schedule.MixEntry("container-kill", 3, schedule.ordinals("ordinal", ctx.replicas)),
        schedule.MixEntry("container-term", 1, schedule.ordinals("ordinal", ctx.replicas)),
        schedule.MixEntry("drain", 1, schedule.ordinals("node-of", ctx.replicas)),
        schedule.MixEntry("node-crash", 1, schedule.ordinals("node-of", ctx.replicas)),
        schedule.MixEntry("scale", 1, (schedule.Target("set"),)),
    ], 100_000, delay_s=(0.2, 1.0)),
    checkers=(*model.DEFAULT_CHECKERS, "shutdown"),
    duration_s=600.0,
)


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_a_seeded_mix_of_every_fault_loses_nothing_acknowledged(
        run_scenario: Callable[..., object], soak_duration: float, request: pytest.FixtureRequest) -> None:
    if "soak" not in (request.config.getoption("-m") or ""):
        pytest.skip("soak run: select it with -m soak (and --soak-duration SECONDS, default 600)")
    run_scenario(dataclasses.replace(SCENARIO, duration_s=soak_duration))
