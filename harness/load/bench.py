"""``make bench`` (suite ``load``): is locust ever the bottleneck, and what does recording cost?

Measured in one run, in one temporary folder on one disk:

* **baseline** — the writer's own figure: ``harness.workload.bench.writer_large`` (the writer
  bench's function: the in-process store running the full publish protocol, hashing
  included, no HTTP) at the *same* checkpoint size and shard count the load uses, median of
  rounds taken before and after the load so a disk that drifts hurts both sides alike;
* **subject** — three local writer processes (``harness writer serve``) loaded by locust in
  its own process through :mod:`harness.load.runner`, as fast as possible: acknowledged
  checkpoint MB/s from the history. Target: >= 0.5 x baseline;
* **recording overhead** — time inside ``HistoryWriter.record`` (invoke + completion) as a
  fraction of request time, summed over every request. Target: < 5 %.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from harness import history
from harness.load import endpoints, local, runner, summary

if TYPE_CHECKING:
    from rich.console import Console

SIZE: Final = 16 << 20
SHARDS: Final = 4
WRITERS: Final = 3
USERS: Final = 6
DURATION_S: Final = 8.0
BASELINE_ROUNDS: Final = 3
RATIO_TARGET: Final = 0.5
OVERHEAD_TARGET: Final = 0.05


def writer_mb_per_s(work: Path, rounds: int) -> list[float]:
    """The writer bench's in-process publish at the load's size, MB/s per round."""
    from harness.workload import bench as writer_bench

    return [SIZE / writer_bench.writer_large(work, SIZE, SHARDS) / 1e6 for _ in range(rounds)]


def run(console: Console) -> None:
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    try:
        console.print(f"measuring in {work}: writer in-process at {SIZE >> 20} MiB / {SHARDS} shards, "
                      f"then locust -> {WRITERS} writer processes, then the writer again")
        baseline = writer_mb_per_s(work, BASELINE_ROUNDS)
        with local.LocalWriters(work / "writers", WRITERS, keep_last=2) as writers:
            spec = runner.LoadSpec(
                endpoints_file=work / "endpoints.json", run_dir=work / "run", users=USERS, spawn_rate=100.0,
                duration_s=DURATION_S, size_bytes=SIZE, shards=SHARDS, request_timeout_s=60.0,
            )
            endpoints.write(spec.endpoints_file, writers.urls())
            with console.status(f"locust: {USERS} users, {DURATION_S:.0f}s, waiting for it to finish"):
                started = time.perf_counter()
                result = runner.run(spec)
                wall = time.perf_counter() - started
        got = summary.summarise(history.read_history(spec.run_dir))
        baseline += writer_mb_per_s(work, BASELINE_ROUNDS)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(baseline)
    ratio = got.mb_per_s / base if base > 0 else 0.0
    overhead = result.metrics.record_overhead
    per_request_us = result.metrics.record_seconds / max(1, result.metrics.requests) * 1e6
    table = Table("figure", "value", "baseline", "ratio", "target", "ok")
    table.add_row(
        f"checkpoint MB/s, locust -> {WRITERS} writers", f"{got.mb_per_s:.0f}",
        f"{base:.0f} (writer in-process, 1 writer)", f"{ratio:.2f}", f">= {RATIO_TARGET}", _ok(ratio >= RATIO_TARGET),
    )
    table.add_row(
        "history recording / request time", f"{overhead * 100:.2f} %", f"{per_request_us:.0f} us per request",
        "", f"< {OVERHEAD_TARGET * 100:.0f} %", _ok(overhead < OVERHEAD_TARGET),
    )
    console.print(table)
    console.print(
        f"load: {got.requests} requests ({got.ok} ok, {got.fail} fail, {got.info} info), locust counted "
        f"{result.requests}; ok latency p50 {got.p50_ms or 0:.0f} ms p99 {got.p99_ms or 0:.0f} ms; "
        f"span {got.span_s:.1f}s, wall {wall:.1f}s"
    )
    console.print("writer in-process rounds, MB/s: " + ", ".join(f"{b:.0f}" for b in baseline))


def _ok(passed: bool) -> str:
    return "[green]yes[/green]" if passed else "[red]NO[/red]"
