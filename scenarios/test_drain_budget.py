"""A disruption budget (maxUnavailable 1) makes a drain evict one ordinal at a time, and nothing is lost.

Four replicas on three nodes put two ordinals on one node. Draining it, the second eviction is
refused (429) while the first ordinal is away; the drain retries, as ``kubectl drain`` does, and
finishes once the first one is back Ready on another node (``shared`` class: it can move).

Proven: the drain completes through the budget (the heal records how many evictions the budget
refused first); every acknowledged checkpoint is intact; every ordinal keeps its claim, PV and
stamp and resumes from at least its newest acknowledged step.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checkers import expect
from harness.scenario import model, schedule

SCENARIO = model.Scenario(
    name="drain-budget",
    claim=__doc__ or "",
    deploy={"replicas": "4", "storage_class": "shared", "keep_last": "3", "pdb_max_unavailable": "1"},
    faults={"drain": model.Fault("drain", "evicted one at a time under the budget, recreated on another node")},
    expectations=expect.Expectations(fault_notes=(expect.NoteClaim("drain", "refused_by_budget", "at-least", 1),)),
    schedule=lambda ctx: (schedule.FaultStep(2.0, "drain", schedule.Target("busiest-node")),),
)


@pytest.mark.extended
def test_budget_blocks_a_second_eviction_until_the_first_ordinal_is_back(run_scenario: Callable[..., object]) -> None:
    run_scenario(SCENARIO)
