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
  fraction of request time, summed over every request, for the large checkpoints and for
  4 KiB ones (short requests: the worst case). Target: < 5 %.

The subject runs three writers and the baseline one, as the issue specifies: the ratio says
locust keeps three writers busier than one writer alone can be, i.e. load generation is not
what limits the figure.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
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
#: small checkpoints make requests short, the worst case for the recording overhead
SMALL: Final = 4096
SMALL_DURATION_S: Final = 4.0
BASELINE_ROUNDS: Final = 3
RATIO_TARGET: Final = 0.5
OVERHEAD_TARGET: Final = 0.05


def writer_mb_per_s(work: Path, rounds: int) -> list[float]:
    """The writer bench's in-process publish at the load's size, MB/s per round."""
    from harness.workload import bench as writer_bench

    return [SIZE / writer_bench.writer_large(work, SIZE, SHARDS) / 1e6 for _ in range(rounds)]


def _load(
    work: Path, writers: local.LocalWriters, name: str, *, size: int, shards: int, duration_s: float
) -> tuple[runner.LoadResult, summary.LoadSummary]:
    spec = runner.LoadSpec(
        endpoints_file=work / "endpoints.json", run_dir=work / name, users=USERS, spawn_rate=100.0,
        duration_s=duration_s, size_bytes=size, shards=shards, request_timeout_s=60.0,
    )
    endpoints.write(spec.endpoints_file, writers.urls())
    result = runner.run(spec)
    return result, summary.summarise(history.read_history(spec.run_dir))


def run(console: Console) -> None:
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    try:
        console.print(f"measuring in {work}: writer in-process at {SIZE >> 20} MiB / {SHARDS} shards, "
                      f"then locust -> {WRITERS} writer processes ({SIZE >> 20} MiB, then {SMALL} B checkpoints), "
                      "then the writer again")
        baseline = writer_mb_per_s(work, BASELINE_ROUNDS)
        with local.LocalWriters(work / "writers", WRITERS, keep_last=2) as writers:
            with console.status(f"locust: {USERS} users, {SIZE >> 20} MiB checkpoints for {DURATION_S:.0f}s"):
                big, got = _load(work, writers, "run-large", size=SIZE, shards=SHARDS, duration_s=DURATION_S)
            with console.status(f"locust: {USERS} users, {SMALL} B checkpoints for {SMALL_DURATION_S:.0f}s"):
                small, got_small = _load(
                    work, writers, "run-small", size=SMALL, shards=1, duration_s=SMALL_DURATION_S
                )
        baseline += writer_mb_per_s(work, BASELINE_ROUNDS)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(baseline)
    ratio = got.mb_per_s / base if base > 0 else 0.0
    table = Table("figure", "value", "baseline", "ratio", "target", "ok")
    table.add_row(
        f"checkpoint MB/s, locust -> {WRITERS} writers", f"{got.mb_per_s:.0f}",
        f"{base:.0f} (writer in-process, 1 writer)", f"{ratio:.2f}", f">= {RATIO_TARGET}", _ok(ratio >= RATIO_TARGET),
    )
    for label, result in ((f"{SIZE >> 20} MiB", big), (f"{SMALL} B", small)):
        m = result.metrics
        table.add_row(
            f"history recording / request time, {label}", f"{m.record_overhead * 100:.2f} %",
            f"{m.record_seconds / max(1, m.requests) * 1e6:.0f} us of "
            f"{m.request_seconds / max(1, m.requests) * 1e3:.1f} ms per request",
            "", f"< {OVERHEAD_TARGET * 100:.0f} %", _ok(m.record_overhead < OVERHEAD_TARGET),
        )
    console.print(table)
    for label, result, s in ((f"{SIZE >> 20} MiB", big, got), (f"{SMALL} B", small, got_small)):
        console.print(
            f"{label}: {s.requests} requests ({s.ok} ok, {s.fail} fail, {s.info} info), locust counted "
            f"{result.requests}; {s.ok / s.span_s if s.span_s else 0:.0f} checkpoints/s; "
            f"ok latency p50 {s.p50_ms or 0:.1f} ms p99 {s.p99_ms or 0:.1f} ms"
        )
    console.print("writer in-process rounds, MB/s: " + ", ".join(f"{b:.0f}" for b in baseline))


def _ok(passed: bool) -> str:
    return "[green]yes[/green]" if passed else "[red]NO[/red]"
