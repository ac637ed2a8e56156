"""``harness bench report``: report.html of a 100,000-op run, against merely reading its history.

Budget (the reports issue): report.html of a 100,000-op run built in < 5 s, and < 5 MB. The
baseline, timed in the same run on the same folder, is what ``harness check`` must do before
judging anything — read and merge the history into ops (:meth:`harness.store.StoredRun.history`)
— so the ratio says what the report costs relative to the cheapest look at the evidence, on
any machine. The first build is timed cold (it pays matplotlib's import, as ``harness report``
in a fresh process does), the second warm (as a runner building reports after each scenario
does); the parts are timed separately so a slow one is named.

Setup (untimed): a synthetic run folder (:mod:`harness.report.synthrun`) of ``N_OPS`` ops over
three ordinals with ``N_FAULTS`` pod kills, some lost and torn checkpoints, judged by the real
checkers, in a temporary folder.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from harness import store
from harness.report import model, page, runs, scan, synthrun, timeline

T = TypeVar("T")

N_OPS = 100_000
N_FAULTS = 20
N_INDEX_RUNS = 6
BUDGET_S = 5.0
BUDGET_BYTES = 5 * 1024 * 1024


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(console: Console) -> None:
    cold = "matplotlib" not in sys.modules
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        base = Path(tmp)
        shape = synthrun.Shape(n_ops=N_OPS, faults=N_FAULTS, lost=5, torn=2, keep_last=3, scenario="bench-pod-kill")
        with console.status(f"building a judged {N_OPS:,}-op run with {N_FAULTS} faults (setup, untimed)"):
            t_setup, run_dir = _timed(lambda: synthrun.write(base / "run", shape))
        with console.status("baseline: reading the history (store.StoredRun.history)"):
            t_read, ops_ = _timed(lambda: store.open_run(run_dir).history())
        n = len(ops_)
        del ops_
        with console.status("report.html, cold"):
            t_cold, out = _timed(lambda: page.build(run_dir))
        with console.status("report.html, warm"):
            t_warm, _ = _timed(lambda: page.build(run_dir))
        with console.status("the parts"):
            t_scan, _ = _timed(lambda: scan.scan_run(run_dir))
            t_load, view = _timed(lambda: model.load(run_dir))
            t_draw, _ = _timed(lambda: timeline.draw(view.timeline))
            t_render, _ = _timed(lambda: page.render(view))
        size = out.stat().st_size
        with console.status(f"index of {N_INDEX_RUNS} small runs"):
            for i in range(N_INDEX_RUNS):
                synthrun.write(base / f"idx-{i}", synthrun.Shape(n_ops=1_500, faults=2, seed=i,
                                                                  scenario=f"bench-{i % 3}"))
            t_index, _ = _timed(lambda: runs.build_index(base))

    table = Table(title=f"report.html of a {n:,}-op run: {N_FAULTS} faults, {len(view.timeline.buckets):,} perf "
                        f"buckets, {len(view.timeline.marks)} marks")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("vs baseline", justify="right")
    table.add_row("write + judge the synthetic run (setup, untimed)", f"{t_setup:.2f}", "")
    table.add_row("baseline: read the history (store)", f"{t_read:.2f}", "1.00x")
    table.add_row(f"report.build, {'cold (imports matplotlib)' if cold else 'first call'}", f"{t_cold:.2f}",
                  f"{t_cold / t_read:.2f}x")
    table.add_row("report.build, warm", f"{t_warm:.2f}", f"{t_warm / t_read:.2f}x")
    table.add_row("  part: lean history scan (scan.scan_run)", f"{t_scan:.2f}", f"{t_scan / t_read:.2f}x")
    table.add_row("  part: model.load (scan + results/facts)", f"{t_load:.2f}", f"{t_load / t_read:.2f}x")
    table.add_row("  part: timeline.draw (matplotlib SVG)", f"{t_draw:.2f}", f"{t_draw / t_read:.2f}x")
    table.add_row("  part: page.render (timeline + HTML)", f"{t_render:.2f}", f"{t_render / t_read:.2f}x")
    table.add_row(f"index.html of {N_INDEX_RUNS} runs", f"{t_index:.2f}", f"{t_index / t_read:.2f}x")
    console.print(table)
    worst = max(t_cold, t_warm)
    console.print(f"report.html size: {size / 1024:,.0f} KiB ({size / BUDGET_BYTES:.1%} of the 5 MB budget)")
    status = "within" if worst < BUDGET_S and size < BUDGET_BYTES else "OVER"
    console.print(f"budget: {worst:.2f} s and {size / 2**20:.2f} MiB for {n:,} ops is {status} the "
                  f"{BUDGET_S:.0f} s / 5 MB budget")
