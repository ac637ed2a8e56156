"""The load summary and per-process metrics are computed from what was recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import history
from harness.load import metrics, summary


def op(index: int, t: float, type_: history.OpType, process: str, value: dict[str, object]) -> history.Op:
    return history.Op(index=index, time=t, mono=t, type=type_, process=process, f="write", value=value)  # type: ignore[arg-type]


def test_summary_counts_outcomes_bytes_and_latency_per_ordinal() -> None:
    inv0 = {"ordinal": 0, "request_id": "a", "bytes": 1_000_000, "shards": 1}
    inv1 = {"ordinal": 1, "request_id": "b", "bytes": 1_000_000, "shards": 1}
    inv2 = {"ordinal": 1, "request_id": "c", "bytes": 1_000_000, "shards": 1}
    ops_ = [
        op(0, 10.0, "invoke", "p0", inv0),
        op(1, 10.0, "invoke", "p1", inv1),
        op(2, 10.1, "ok", "p0", {**inv0, "step": 1}),
        op(3, 10.3, "info", "p1", inv1),
        op(4, 10.4, "invoke", "p1", inv2),
        op(5, 10.5, "fail", "p1", inv2),
        op(6, 11.0, "invoke", "p0", {**inv0, "request_id": "d"}),  # never completed: info
    ]
    got = summary.summarise(ops_)
    assert (got.requests, got.ok, got.fail, got.info) == (4, 1, 1, 2)
    assert got.bytes_ok == 1_000_000
    assert got.span_s == pytest.approx(1.0)
    assert got.mb_per_s == pytest.approx(1.0)
    assert got.p50_ms == pytest.approx(100.0)
    assert [(o.ordinal, o.ok, o.fail, o.info) for o in got.ordinals] == [(0, 1, 0, 1), (1, 0, 1, 1)]


def test_empty_history_summarises_to_zero() -> None:
    got = summary.summarise([])
    assert (got.requests, got.mb_per_s, got.p50_ms) == (0, 0.0, None)


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert summary.percentile(values, 50) == 50.0
    assert summary.percentile(values, 99) == 99.0
    assert summary.percentile([], 50) is None


def test_metrics_from_every_process_add_up(tmp_path: Path) -> None:
    a = metrics.LoadMetrics(worker="a")
    a.count("ok", 0.5, 100)
    a.count("info", 0.5, 100)
    a.record_seconds = 0.01
    b = metrics.LoadMetrics(worker="b")
    b.count("fail", 1.0, 100)
    b.record_seconds = 0.01
    metrics.dump(a, tmp_path)
    metrics.dump(b, tmp_path)
    total = metrics.read_dir(tmp_path)
    assert (total.requests, total.ok, total.fail, total.info, total.bytes_ok) == (3, 1, 1, 1, 100)
    assert total.record_overhead == pytest.approx(0.01)
