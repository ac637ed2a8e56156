"""``harness bench checkers``: the durability checker on a million-op history.

Budget (issue 2): 1,000,000 ops over 64 ordinals in < 10 s on 2 cores. The baseline, timed
in the same run on the same ops, is the cheapest thing any checker must do — pairing every
invoke with its completion (:func:`harness.history.pair`) — so the ratio says how much the
durability judgement itself costs on top, whatever the machine.

Peak memory is the ``tracemalloc`` peak of a second, untimed checker call (tracemalloc
slows allocation down, so it never shares a run with the timing).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from harness import facts, history
from harness.checkers import durability, expect, synth, verdict

T = TypeVar("T")

N_OPS = 1_000_000
N_ORDINALS = 64
BUDGET_S = 10.0


def build(n_ops: int | None = None, n_ordinals: int | None = None, seed: int = 2) -> tuple[list[history.Op],
                                                                                           facts.RunFacts]:
    """A history of ``n_ops`` write ops: each round every ordinal has a write in flight at once
    (invokes interleaved as a locust run would), ~1 % indeterminate (half of them published),
    ~0.5 % failed; every acknowledged checkpoint present, so the verdict must be valid."""
    n_ops = N_OPS if n_ops is None else n_ops
    n_ordinals = N_ORDINALS if n_ordinals is None else n_ordinals
    rng = random.Random(seed)
    b = synth.HistoryBuilder()
    step = 0
    while len(b.ops) < n_ops:
        step += 1
        # a full round is 2 ops per ordinal; the last round is cut to land on exactly n_ops
        width = min(n_ordinals, (n_ops - len(b.ops)) // 2)
        opened = [b.begin_write(o, step, process=f"w{o % 8}-u{o}") for o in range(width)]
        if width == 0:  # one op left: an invoke whose process died before it completed
            b.begin_write(0, step, process="w0-u0")
            break
        b.advance(0.001)
        for w in opened:
            r = rng.random()
            if r < 0.01:
                b.end_write(w, "info", publish=r < 0.005)
            elif r < 0.015:
                b.end_write(w, "fail")
            else:
                b.end_write(w, "ok")
            b.advance(0.0001)
    return b.ops, b.facts(range(n_ordinals))


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(console: Console) -> None:
    with console.status(f"building a {N_OPS:,}-op history over {N_ORDINALS} ordinals"):
        t_build, (ops_, run_facts) = _timed(build)
    n = len(ops_)
    exp = expect.Expectations()
    with console.status("baseline: pairing every op (history.pair)"):
        t_pair, _ = _timed(lambda: history.pair(ops_))
    with console.status("durability checker (timed)"):
        t_dur, v = _timed(lambda: durability.check(ops_, run_facts, exp))
    assert isinstance(v, verdict.Verdict)
    with console.status("durability checker again under tracemalloc (memory)"):
        gc.collect()
        tracemalloc.start()
        durability.check(ops_, run_facts, exp)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    table = Table(title=f"durability checker: {n:,} ops, {N_ORDINALS} ordinals, "
                        f"{sum(len(vol.checkpoints) for vol in run_facts.volumes):,} checkpoints on volumes")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("ops/s", justify="right")
    table.add_column("vs baseline", justify="right")
    table.add_row("build history + facts (setup, untimed)", f"{t_build:.2f}", "", "")
    table.add_row("baseline: history.pair", f"{t_pair:.2f}", f"{n / t_pair:,.0f}", "1.00x")
    table.add_row("durability.check", f"{t_dur:.2f}", f"{n / t_dur:,.0f}", f"{t_dur / t_pair:.2f}x")
    console.print(table)
    console.print(f"verdict: valid={v.valid} — {v.summary}")
    console.print(f"peak memory of one durability.check call (tracemalloc peak): {peak / 2**20:,.1f} MiB")
    status = "within" if t_dur < BUDGET_S else "OVER"
    console.print(f"budget: {t_dur:.2f} s for {n:,} ops is {status} the {BUDGET_S:.0f} s budget")
