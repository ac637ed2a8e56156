"""Draining a node moves a shared-class ordinal to another node with the same claim and data.

A network-attached (``shared`` class, ReadWriteOnce: one node at a time) volume follows its pod:
the evicted ordinal is recreated on another node while the drained one stays cordoned, and must
find its own claim and every acknowledged checkpoint there.

Proven: every acknowledged checkpoint is intact; each drained ordinal keeps its claim, PV and
volume stamp although its node changed, and resumes from at least its newest acknowledged step.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checkers import expect
from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="drain-shared",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "shared", "keep_last": "3"},
    faults={"drain": model.Fault("drain", "evicted: recreated on another node with its network volume", hold_s=2.0)},
    expectations=expect.Expectations(fault_notes=(expect.NoteClaim("drain", "while_cordoned", "each-elsewhere"),)),
    schedule=lambda ctx: schedule.repeat(ctx.seed, "drain", schedule.ordinals("node-of", ctx.replicas), 2,
                                         delay_s=(1.0, 3.0)),
)


@pytest.mark.extended
def test_drain_moves_a_shared_volume_ordinal_with_its_data(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
