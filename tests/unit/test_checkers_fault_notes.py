"""A scenario's declared claims on what its faults did are judged, not only recorded.

The heal records the nemesis's notes (evictions a budget refused, where a drained ordinal's pod
was just before the uncordon); a claim declared in the expectations that they do not bear out
makes the ``faults`` verdict False, saying what was seen. A claim with no healed fault of its
nemesis is unknown, never a pass. The claims survive run.json (``harness check`` judges them too).
"""

from __future__ import annotations

import dataclasses

import pytest

from harness import history, ops
from harness.checkers import expect, faults, synth
from harness.scenario import model, schedule

PENDING = expect.NoteClaim("drain", "while_cordoned", "each-pending")
MOVED = expect.NoteClaim("drain", "while_cordoned", "each-elsewhere")
REFUSED = expect.NoteClaim("drain", "refused_by_budget", "at-least", 1)


def _drained(notes: dict[str, history.JsonValue] | None, *, heal: str = "ok") -> synth.HistoryBuilder:
    """One drain of node-a, healed with these notes (as harness.nemesis.base.fault records them)."""
    b = synth.HistoryBuilder()
    b.fault_start("drain", ["node-a"], {"1": "pinned"})
    value: dict[str, history.JsonValue] = {"fault": "drain", "targets": ["node-a"]}
    b.record("invoke", ops.NEMESIS_PROCESS, ops.FAULT_STOP, value)
    b.advance(0.05)
    done = {**value, "notes": notes} if notes is not None else value
    b.record(heal, ops.NEMESIS_PROCESS, ops.FAULT_STOP, done)  # type: ignore[arg-type]
    return b


def _check(b: synth.HistoryBuilder, *claims: expect.NoteClaim) -> faults.verdict.Verdict:
    return faults.check(b.ops, b.facts(range(2), declared_faults=1), expect.Expectations(fault_notes=claims))


@pytest.mark.parametrize(("claim", "notes"), [
    (PENDING, {"while_cordoned": {"1": "Pending (unscheduled)"}}),
    (MOVED, {"while_cordoned": {"1": "node-b"}}),
    (REFUSED, {"refused_by_budget": 2, "evicted": ["ckpt-1"]}),
])
def test_a_claim_the_notes_bear_out_holds(claim: expect.NoteClaim, notes: dict[str, history.JsonValue]) -> None:
    v = _check(_drained(notes), claim)
    assert v.valid is True, v.summary
    assert "1 declared note claim(s) held" in v.summary


@pytest.mark.parametrize(("claim", "notes", "said"), [
    (PENDING, {"while_cordoned": {"1": "node-b"}}, "ordinal(s) not Pending: 1 on node-b"),
    (MOVED, {"while_cordoned": {"1": "Pending (unscheduled)"}}, "did not move to another node: 1 Pending"),
    (MOVED, {"while_cordoned": {"1": "node-a"}}, "did not move to another node: 1 node-a"),
    (MOVED, {"while_cordoned": {}}, "not a non-empty ordinal"),
    (REFUSED, {"refused_by_budget": 0}, "refused_by_budget = 0, expected >= 1"),
    (REFUSED, {"evicted": ["ckpt-1"]}, "its heal recorded no 'refused_by_budget' note"),
    (REFUSED, None, "its heal recorded no 'refused_by_budget' note"),
])
def test_a_claim_that_does_not_hold_fails_the_run_saying_what_was_seen(
        claim: expect.NoteClaim, notes: dict[str, history.JsonValue] | None, said: str) -> None:
    v = _check(_drained(notes), claim)
    assert v.valid is False
    assert v.summary.startswith("declared claim(s) did not hold: ")
    assert said in v.summary
    assert "drain of node-a" in v.summary


def test_a_claim_with_no_healed_fault_to_judge_is_unknown_not_a_pass() -> None:
    v = _check(_drained({"refused_by_budget": 3}, heal="info"), REFUSED)
    assert v.valid == "unknown"
    assert "no healed drain fault" in str(v.details["note_claims"])


def test_no_claims_leave_the_verdict_as_it_was() -> None:
    b = _drained({"refused_by_budget": 0})
    plain = faults.check(b.ops, b.facts(range(2), declared_faults=1), expect.Expectations())
    assert plain.valid is True
    assert "note_claims" not in plain.details


def test_claims_survive_run_json() -> None:
    exp = expect.Expectations(fault_notes=(PENDING, REFUSED), same_node=True)
    assert expect.Expectations.from_dict(exp.to_dict()) == exp
    with pytest.raises(ValueError, match="rule should be one of"):
        expect.Expectations.from_dict({"fault_notes": [{"fault": "drain", "note": "x", "rule": "most"}]})


def test_a_scenario_may_only_claim_on_a_nemesis_it_uses() -> None:
    scn = model.Scenario(name="x", claim="c", faults={"kill": model.Fault("pod-kill", "killed")},
                         schedule=lambda ctx: (schedule.FaultStep(0.0, "kill", schedule.Target("ordinal", "0")),))
    with pytest.raises(model.ScenarioError, match="note claim on 'drain', which none of its faults uses"):
        dataclasses.replace(scn, expectations=expect.Expectations(fault_notes=(PENDING,)))
