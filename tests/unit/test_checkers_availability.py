"""The availability checker: windows, expected vs unexpected, recovery times."""

from __future__ import annotations

import dataclasses

import pytest

from harness import facts
from harness.checkers import availability, expect, synth
from harness.checkers.verdict import Verdict

EXP = expect.Expectations()


def _check(b: synth.HistoryBuilder, exp: expect.Expectations = EXP) -> Verdict:
    return availability.check(b.ops, facts.RunFacts(), exp)


def _windows(v: Verdict) -> list[availability.Window]:
    return v.details["windows"]  # type: ignore[return-value]


def _recoveries(v: Verdict, ordinal: int) -> list[availability.Recovery]:
    return [r for r in v.details["recoveries"] if r["ordinal"] == ordinal]  # type: ignore[attr-defined, index]


def _pod_kill(declared: bool, *, comes_back: bool = True, stale_first: bool = False) -> synth.HistoryBuilder:
    """Ordinal 1 down for three samples during a pod kill; ordinal 0 fine throughout.

    Clock (seconds after t0): write to ordinal 1 acked at 0.01 (step 1); fault starts at
    1.0; probes of ordinal 1 fail at 1.1, 2.1, 3.1; heal invoked at 4.5, completes at 4.55;
    ordinal 1 is probed ready at 5.0 (answered 5.005).
    """
    b = synth.HistoryBuilder()
    b.write(1, 1)  # 0.00 → 0.01
    b.write(0, 1)  # 0.01 → 0.02
    b.advance(0.98)
    b.fault_start("pod-kill", ["pod/ckpt-1"], {"1": "pod killed"} if declared else None, latency=0.1)  # 1.0 → 1.1
    for _ in range(3):
        b.probe(1, outcome="fail", latency=0.0)
        b.probe(0, latency=0.0, latest_step=1)
        b.advance(1.0)
    b.advance(0.4)  # 4.5
    b.fault_stop("pod-kill", ["pod/ckpt-1"], latency=0.05)  # healed at 4.55
    b.advance(0.45)  # 5.0
    if comes_back:
        if stale_first:
            b.probe(1, ready=True, latest_step=None, latency=0.005)  # Ready, but serving nothing yet
            b.advance(0.995)
        b.probe(1, ready=True, latest_step=1, latency=0.005)
    b.probe(0, latest_step=1, latency=0.0)
    return b


def test_declared_window_is_expected_and_recovery_time_is_measured_from_the_heal() -> None:
    v = _check(_pod_kill(declared=True))
    assert v.valid is True
    [w] = _windows(v)
    assert w["ordinal"] == 1
    assert w["expected"] is True
    assert w["reasons"] == ["pod-kill: pod killed"]
    assert w["samples"] == 3
    assert w["start"] == pytest.approx(1.1)
    assert w["end"] == pytest.approx(5.005)
    [r] = _recoveries(v, 1)
    assert r["required_step"] == 1
    assert r["healed_at"] == pytest.approx(4.55)
    assert r["recovery_s"] == pytest.approx(5.005 - 4.55)
    assert "1 expected, 0 unexpected" in v.summary


def test_undeclared_window_that_recovers_is_unexpected_but_valid() -> None:
    v = _check(_pod_kill(declared=False))
    assert v.valid is True
    assert _windows(v)[0]["expected"] is False
    assert "0 expected, 1 unexpected" in v.summary


def test_unexpected_window_that_never_recovers_is_invalid() -> None:
    v = _check(_pod_kill(declared=False, comes_back=False))
    assert v.valid is False
    assert _windows(v)[0]["end"] is None
    assert "ordinal 1 unavailable from t=1.100s and never recovered" in v.summary


def test_expected_window_that_never_recovers_is_allowed() -> None:
    v = _check(_pod_kill(declared=True, comes_back=False))
    assert v.valid is True
    assert _recoveries(v, 1)[0]["recovery_s"] is None


def test_an_ordinal_the_fault_did_not_touch_recovers_in_zero_seconds() -> None:
    [r] = _recoveries(_check(_pod_kill(declared=True)), 0)
    assert r["affected"] is False
    assert r["recovery_s"] == 0


def test_ready_but_serving_an_older_step_has_not_recovered() -> None:
    v = _check(_pod_kill(declared=True, stale_first=True))
    [r] = _recoveries(v, 1)
    assert r["recovery_s"] == pytest.approx(6.005 - 4.55)


def test_recovery_slower_than_the_declared_bound_is_invalid_unless_declared_unavailable() -> None:
    bound = dataclasses.replace(EXP, availability=expect.AvailabilityOptions(max_recovery_s=0.3))
    v = _check(_pod_kill(declared=False), bound)
    assert v.valid is False
    assert "ordinal 1 took 0.455s to recover after fault 0 (pod-kill), bound 0.3s" in v.summary
    assert _check(_pod_kill(declared=True), bound).valid is True
    assert _check(_pod_kill(declared=False), dataclasses.replace(
        EXP, availability=expect.AvailabilityOptions(max_recovery_s=1.0))).valid is True


def test_probe_timeouts_count_as_unavailable_unless_told_otherwise() -> None:
    b = synth.HistoryBuilder()
    b.probe(0, latest_step=None)
    b.probe(0, outcome="info")
    b.probe(0, latest_step=None)
    assert len(_windows(_check(b))) == 1
    lenient = dataclasses.replace(EXP, availability=expect.AvailabilityOptions(info_is_unavailable=False))
    assert _windows(_check(b, lenient)) == []


def test_not_ready_answer_is_unavailable() -> None:
    b = synth.HistoryBuilder()
    b.probe(0, ready=False)
    b.probe(0, ready=True)
    [w] = _windows(_check(b))
    assert w["samples"] == 1


def test_no_probe_samples_is_unknown() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    assert _check(b).valid == "unknown"


def test_fault_never_healed_is_unknown_the_harness_broke_its_rule() -> None:
    b = synth.HistoryBuilder()
    b.probe(0)
    b.fault_start("network-partition", ["node/n1"])
    b.probe(0)
    v = _check(b)
    assert v.valid == "unknown"
    assert "heal never" in v.summary


def test_failed_heal_is_unknown() -> None:
    b = synth.HistoryBuilder()
    b.probe(0)
    b.fault_start("drain", ["node/n1"])
    b.record("invoke", "nemesis", "stop", {"fault": "drain", "targets": ["node/n1"]})
    b.record("fail", "nemesis", "stop", {"fault": "drain", "targets": ["node/n1"]}, "uncordon refused")
    b.probe(0)
    assert _check(b).valid == "unknown"
