"""Perf: write throughput and latency over time, with the fault periods to read them against.

Never a deviation (a slow system is not an incorrect one): valid unless there is no
acknowledged write to measure ("unknown"). Latency is ``completion.mono - invoke.mono`` —
the same process's monotonic clock, immune to wall-clock steps; buckets are placed by wall
time so they line up with faults recorded by other processes. Percentiles are nearest-rank
(the smallest latency with at least p % of samples at or below it), so a reported p99 is
always a latency that was actually observed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

from harness import facts, history
from harness.checkers import expect, faults, verdict, writes

#: a bucket width that would make more buckets than this is widened (and says so)
MAX_BUCKETS = 20_000


class Bucket(TypedDict):
    t: float
    ok: int
    fail: int
    info: int
    checkpoints_per_s: float
    mb_per_s: float
    latency_p50_s: float | None
    latency_p99_s: float | None


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    n = len(sorted_values)
    if n == 0:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = max(1, math.ceil(p * n / 100 - 1e-9))
    return sorted_values[min(rank, n) - 1]


def check(ops_: Sequence[history.Op], run: facts.RunFacts, exp: expect.Expectations) -> verdict.Verdict:
    del run
    opts = exp.perf
    t0 = ops_[0].time if ops_ else 0.0
    periods = faults.fault_periods(ops_)
    done: list[tuple[float, float, int]] = []  # (completion wall time, latency, bytes)
    others: list[tuple[float, str]] = []  # (wall time, fail|info)
    first_invoke = math.inf
    for a in writes.write_attempts(ops_):
        first_invoke = min(first_invoke, a.invoke.time)
        if a.outcome == "ok" and a.completion is not None:
            done.append((a.completion.time, a.completion.mono - a.invoke.mono, a.nbytes))
        else:
            others.append(((a.completion or a.invoke).time, a.outcome))
    if not done:
        return verdict.Verdict(verdict.UNKNOWN, f"no acknowledged write to measure ({len(others)} unacknowledged)",
                               {"faults": [p.to_json(t0) for p in periods]})

    last = max([t for t, _, _ in done] + [t for t, _ in others])
    span = max(last - first_invoke, 1e-9)
    width = opts.bucket_s
    if (last - t0) / width > MAX_BUCKETS:
        width = (last - t0) / MAX_BUCKETS
    n_buckets = int((last - t0) // width) + 1
    lat_by: list[list[float]] = [[] for _ in range(n_buckets)]
    bytes_by = [0] * n_buckets
    fail_by = [0] * n_buckets
    info_by = [0] * n_buckets
    for t, lat, nbytes in done:
        b = min(int((t - t0) // width), n_buckets - 1)
        lat_by[b].append(lat)
        bytes_by[b] += nbytes
    for t, outcome in others:
        b = min(max(int((t - t0) // width), 0), n_buckets - 1)
        if outcome == "fail":
            fail_by[b] += 1
        else:
            info_by[b] += 1
    series: list[Bucket] = []
    for b in range(n_buckets):
        lats = sorted(lat_by[b])
        series.append(Bucket(
            t=round(b * width, 6),
            ok=len(lats),
            fail=fail_by[b],
            info=info_by[b],
            checkpoints_per_s=len(lats) / width,
            mb_per_s=bytes_by[b] / width / 1e6,
            latency_p50_s=percentile(lats, 50),
            latency_p99_s=percentile(lats, 99),
        ))

    all_lat = sorted(lat for _, lat, _ in done)
    total_bytes = sum(n for _, _, n in done)
    mb_per_s = total_bytes / span / 1e6
    overall: dict[str, object] = {
        "acknowledged": len(done),
        "failed": sum(1 for _, o in others if o == "fail"),
        "indeterminate": sum(1 for _, o in others if o != "fail"),
        "span_s": round(span, 6),
        "checkpoints_per_s": len(done) / span,
        "mb_per_s": mb_per_s,
        "bytes": total_bytes,
        "latency_p50_s": percentile(all_lat, 50),
        "latency_p99_s": percentile(all_lat, 99),
        "latency_max_s": all_lat[-1],
        "latency_mean_s": sum(all_lat) / len(all_lat),
        "fraction_of_ceiling": None if not opts.ceiling_mb_s else mb_per_s / opts.ceiling_mb_s,
    }
    p50, p99 = overall["latency_p50_s"], overall["latency_p99_s"]
    summary = (f"{len(done)} checkpoints in {span:.1f}s: {len(done) / span:.1f}/s, {mb_per_s:.2f} MB/s; "
               f"latency p50 {_ms(p50)} p99 {_ms(p99)}")
    details: dict[str, object] = {
        "t0": t0,
        "bucket_s": width,
        "overall": overall,
        "series": series,
        "faults": [p.to_json(t0) for p in periods],
    }
    return verdict.Verdict(True, summary, details)


def _ms(seconds: object) -> str:
    return f"{seconds * 1000:.1f}ms" if isinstance(seconds, float) else "-"
