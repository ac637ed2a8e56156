"""compose: checkers by name, three-valued combination, crashes are unknown."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness import facts, history
from harness.checkers import expect, registry, synth, verdict


def _const(v: verdict.Validity) -> registry.Checker:
    def checker(ops: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
        return verdict.Verdict(v, f"always {v}")
    return checker


def _crash(ops: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    raise KeyError("step")


REGISTRY: dict[str, registry.Checker] = {
    "yes": _const(True), "no": _const(False), "dunno": _const("unknown"), "crash": _crash,
}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["yes"], True),
        (["yes", "yes"], True),
        (["yes", "dunno"], "unknown"),
        (["yes", "dunno", "no"], False),
        (["no", "crash"], False),
        (["yes", "crash"], "unknown"),
    ],
)
def test_any_false_wins_then_any_unknown(names: list[str], expected: verdict.Validity) -> None:
    assert registry.compose(names, [], facts.RunFacts(), registry=REGISTRY).valid == expected


def test_a_crashing_checker_is_unknown_with_its_error_never_a_pass() -> None:
    c = registry.compose(["crash", "yes"], [], facts.RunFacts(), registry=REGISTRY)
    v = c.verdicts["crash"]
    assert v.valid == "unknown"
    assert "checker crashed: KeyError" in v.summary
    assert "Traceback" in str(v.details["traceback"])
    assert c.verdicts["yes"].valid is True  # the others still answered


def test_unknown_checker_name_is_an_error_before_anything_runs() -> None:
    ran: list[str] = []

    def spy(ops: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
        ran.append("spy")
        return verdict.Verdict(True, "")

    with pytest.raises(registry.UnknownCheckerError, match="unknown checker 'durabilty'; known: spy"):
        registry.compose(["spy", "durabilty"], [], facts.RunFacts(), registry={"spy": spy})
    assert ran == []


def test_no_checker_chosen_is_an_error() -> None:
    with pytest.raises(registry.UnknownCheckerError, match="no checker"):
        registry.resolve([])


def test_combining_nothing_is_unknown_never_a_pass() -> None:
    assert verdict.combine([]) == "unknown"


def test_default_runs_every_registered_checker_and_serialises() -> None:
    b = synth.HistoryBuilder()
    b.probe(0, latest_step=None)
    b.write(0, 1)
    b.probe(0, latest_step=1)
    c = registry.compose(None, b.ops, b.facts([0]))
    assert list(c.verdicts) == ["durability", "identity", "availability", "perf"]
    assert c.valid is True
    d = c.to_dict()
    assert d["valid"] is True
    assert set(d["checkers"]) == set(c.verdicts)  # type: ignore[call-overload]
    assert verdict.Verdict.from_dict(d["checkers"]["durability"]).valid is True  # type: ignore[index]


def test_expectations_round_trip_and_reject_typos() -> None:
    e = expect.Expectations(set_deleted=True, availability=expect.AvailabilityOptions(max_recovery_s=3.0),
                            perf=expect.PerfOptions(bucket_s=5))
    assert expect.Expectations.from_dict(e.to_dict()) == e
    with pytest.raises(ValueError, match="unknown keys"):
        expect.Expectations.from_dict({"availability": {"max_recovery": 3}})
    with pytest.raises(ValueError, match="should be bool"):
        expect.Expectations.from_dict({"set_deleted": "yes"})
