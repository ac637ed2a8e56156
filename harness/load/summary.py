"""What a load run achieved, computed from its history (not from locust's sampling).

Latency is the recording process's own monotonic clock from invoke to completion;
throughput is acknowledged checkpoint bytes over the span from the first invoke to the last
completion. Pure: takes ops, returns numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from harness import history, ops


@dataclasses.dataclass(frozen=True, slots=True)
class OrdinalSummary:
    ordinal: int
    ok: int = 0
    fail: int = 0
    info: int = 0
    bytes_ok: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class LoadSummary:
    requests: int
    ok: int
    fail: int
    info: int
    bytes_ok: int
    span_s: float
    p50_ms: float | None
    p99_ms: float | None
    ordinals: tuple[OrdinalSummary, ...]

    @property
    def mb_per_s(self) -> float:
        return self.bytes_ok / 1e6 / self.span_s if self.span_s > 0 else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


def summarise(ops_: Iterable[history.Op]) -> LoadSummary:
    pairs = [p for p in history.pair(op for op in ops_ if op.f == ops.WRITE)]
    per: dict[int, dict[str, int]] = {}
    latencies: list[float] = []
    first = last = None
    for p in pairs:
        value = p.invoke.value if isinstance(p.invoke.value, dict) else {}
        ordinal = value.get("ordinal")
        size = value.get("bytes")
        if not isinstance(ordinal, int):
            continue
        row = per.setdefault(ordinal, {"ok": 0, "fail": 0, "info": 0, "bytes_ok": 0})
        row[p.outcome] += 1
        first = p.invoke.time if first is None else min(first, p.invoke.time)
        end = p.completion.time if p.completion is not None else p.invoke.time
        last = end if last is None else max(last, end)
        if p.outcome == "ok" and p.completion is not None:
            row["bytes_ok"] += size if isinstance(size, int) else 0
            latencies.append((p.completion.mono - p.invoke.mono) * 1000.0)
    latencies.sort()
    rows = tuple(OrdinalSummary(ordinal=o, **per[o]) for o in sorted(per))
    return LoadSummary(
        requests=sum(r.ok + r.fail + r.info for r in rows),
        ok=sum(r.ok for r in rows),
        fail=sum(r.fail for r in rows),
        info=sum(r.info for r in rows),
        bytes_ok=sum(r.bytes_ok for r in rows),
        span_s=(last - first) if first is not None and last is not None else 0.0,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        ordinals=rows,
    )
