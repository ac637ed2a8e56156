"""The perf checker: nearest-rank percentiles, throughput, series with fault periods."""

from __future__ import annotations

import dataclasses

import pytest

from harness import facts
from harness.checkers import expect, perf, synth
from harness.checkers.verdict import Verdict

EXP = expect.Expectations()


def _check(b: synth.HistoryBuilder, exp: expect.Expectations = EXP) -> Verdict:
    return perf.check(b.ops, facts.RunFacts(), exp)


def _overall(v: Verdict) -> dict[str, float]:
    return v.details["overall"]  # type: ignore[return-value]


def _series(v: Verdict) -> list[perf.Bucket]:
    return v.details["series"]  # type: ignore[return-value]


def test_nearest_rank_percentiles_of_known_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert perf.percentile(values, 50) == 50
    assert perf.percentile(values, 99) == 99
    assert perf.percentile(values, 100) == 100
    assert perf.percentile([7.0], 1) == 7
    assert perf.percentile([1.0, 2.0], 50) == 1
    assert perf.percentile([], 50) is None
    with pytest.raises(ValueError, match="percentile"):
        perf.percentile(values, 0)


def test_latency_percentiles_come_from_invoke_to_completion_on_the_monotonic_clock() -> None:
    b = synth.HistoryBuilder()
    for i, ms in enumerate(range(100, 0, -1)):  # 100 ms .. 1 ms, in reverse order
        b.write(0, i + 1, latency=ms / 1000)
    v = _check(b)
    assert v.valid is True
    o = _overall(v)
    assert o["latency_p50_s"] == pytest.approx(0.050, abs=1e-6)
    assert o["latency_p99_s"] == pytest.approx(0.099, abs=1e-6)
    assert o["latency_max_s"] == pytest.approx(0.100, abs=1e-6)
    assert "p50 50.0ms p99 99.0ms" in v.summary


def test_throughput_overall_and_per_bucket() -> None:
    b = synth.HistoryBuilder()
    for step in range(1, 11):  # 10 writes of 2 MB, 0.09 s each: all done by 0.9 s
        b.write(0, step, latency=0.09, nbytes=2_000_000)
    b.advance(1.45)
    b.write(0, 11, latency=0.5, nbytes=2_000_000)  # completes at 2.85 s
    v = _check(b)
    o = _overall(v)
    assert o["acknowledged"] == 11
    assert o["span_s"] == pytest.approx(2.85)
    assert o["checkpoints_per_s"] == pytest.approx(11 / 2.85)
    assert o["mb_per_s"] == pytest.approx(22.0 / 2.85)
    s = _series(v)
    assert [bucket["ok"] for bucket in s] == [10, 0, 1]
    assert [bucket["t"] for bucket in s] == [0.0, 1.0, 2.0]
    assert s[0]["mb_per_s"] == pytest.approx(20.0)
    assert s[0]["checkpoints_per_s"] == pytest.approx(10.0)
    assert s[1]["latency_p50_s"] is None
    assert s[2]["latency_p99_s"] == pytest.approx(0.5, abs=1e-6)


def test_failed_and_indeterminate_writes_are_counted_in_their_buckets() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.write(0, 2, "fail")
    b.write(0, 3, "info")
    b.write(0, 4, "never")
    v = _check(b)
    s = _series(v)[0]
    assert (s["ok"], s["fail"], s["info"]) == (1, 1, 2)
    assert (_overall(v)["failed"], _overall(v)["indeterminate"]) == (1, 2)


def test_fault_periods_ride_along_for_the_report() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.fault_start("pod-kill", ["pod/ckpt-0"])
    b.advance(1.0)
    b.fault_stop("pod-kill", ["pod/ckpt-0"])
    b.write(0, 2)
    [f] = _check(b).details["faults"]  # type: ignore[misc]
    assert f["fault"] == "pod-kill"
    assert f["start"] == pytest.approx(0.01)
    assert f["end"] == pytest.approx(1.11)


def test_ceiling_fraction_is_reported_when_declared() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1, latency=1.0, nbytes=50_000_000)
    v = _check(b, dataclasses.replace(EXP, perf=expect.PerfOptions(ceiling_mb_s=100.0)))
    assert _overall(v)["fraction_of_ceiling"] == pytest.approx(0.5)


def test_too_many_buckets_widen_the_bucket_and_say_so() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.advance(1000.0)
    b.write(0, 2)
    v = _check(b, dataclasses.replace(EXP, perf=expect.PerfOptions(bucket_s=0.001)))
    assert v.details["bucket_s"] > 0.001  # type: ignore[operator]
    assert len(_series(v)) <= perf.MAX_BUCKETS + 1


def test_no_acknowledged_write_is_unknown() -> None:
    b = synth.HistoryBuilder()
    b.write(0, 1, "fail")
    assert _check(b).valid == "unknown"


def test_bucket_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bucket width"):
        expect.PerfOptions(bucket_s=0)
