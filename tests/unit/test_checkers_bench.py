"""The checkers bench, scaled down: its history is what it claims and its report names its figures."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.checkers import bench, durability, expect


@pytest.mark.parametrize("n_ops", [5_000, 5_001, 4_999])
def test_bench_history_has_exactly_the_ops_asked_for_and_is_valid(n_ops: int) -> None:
    ops, facts = bench.build(n_ops=n_ops, n_ordinals=8)
    assert len(ops) == n_ops
    assert {v.ordinal for v in facts.volumes} == set(range(8))
    v = durability.check(ops, facts, expect.Expectations())
    assert v.valid is True
    assert v.details["counts"]["recovered"] > 0  # type: ignore[index]


def test_bench_report_prints_subject_baseline_ratio_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "N_OPS", 4_000)
    out = io.StringIO()
    bench.run(Console(file=out, width=200))
    text = out.getvalue()
    for needle in ("baseline: history.pair", "durability.check", "vs baseline", "tracemalloc peak", "4,000 ops",
                   "valid=True", "within the 10 s budget"):
        assert needle in text, text
