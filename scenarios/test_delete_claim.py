"""Deleting an ordinal's claim gives that ordinal a new, empty volume — expected and declared — and nothing else.

A user deletes the PVC of ordinal 1 while its pod runs: the claim stays Terminating (the
pvc-protection finalizer) and the writer keeps writing to the old volume. The heal deletes the
pod; the StatefulSet recreates pod and claim, so ordinal 1 starts on a new, empty volume. The
scenario declares exactly that (``accept_data_loss`` and ``new_volumes``), so the checkers call it
expected, with the reason, never a silent loss.

Proven: ordinal 1 gets a new claim uid and PV, which identity names as declared; its checkpoints
acknowledged on the deleted volume are excused as expected-lost with the reason; it resumes from
at least the newest step acknowledged on its new volume; ordinals 0 and 2 keep claim, PV, stamp
and every acknowledged checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.checkers import expect
from harness.scenario import model, schedule

REASON = "the scenario deletes ordinal 1's claim (delete-claim); a new empty volume is expected"

SCENARIO = model.Scenario(
    name="delete-claim",
    claim=__doc__ or "",
    deploy={"replicas": "3", "storage_class": "standard", "keep_last": "3"},
    faults={"delete-claim": model.Fault("delete-claim", "its claim was deleted; pod and a new claim are recreated",
                                        options={"accept_data_loss": True}, hold_s=2.0)},
    schedule=lambda ctx: (schedule.FaultStep(2.0, "delete-claim", schedule.Target("ordinal", "1")),),
    expectations=expect.Expectations(new_volumes={1: REASON}),
)


@pytest.mark.extended
def test_deleted_claim_gives_only_that_ordinal_a_new_declared_volume(run_scenario: Callable[..., object]) -> None:
    outcome = run_scenario(SCENARIO)
    verdicts = outcome.composed.verdicts  # type: ignore[attr-defined]
    assert set(verdicts["identity"].details["allowed_by_retention"]) == {"1"}, verdicts["identity"].summary
    assert verdicts["identity"].details["unchanged"] == [0, 2], verdicts["identity"].summary
