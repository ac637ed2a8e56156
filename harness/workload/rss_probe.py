"""Write one checkpoint in a fresh process and report its peak RSS (used by bench.py).

A separate process so the figure is the writer's own footprint, not the benchmark's. The peak
is this address space's high-water mark (``VmHWM``), not ``ru_maxrss``: Linux carries
``ru_maxrss`` across ``execve``, so a probe started from a big parent (the checkers bench
builds a million-op history first) would report the parent's size.
Usage: ``python -m harness.workload.rss_probe DIR BYTES SHARDS`` -> one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from harness.workload import events, recovery, store


def _vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no procfs: the best estimate left


def main(argv: list[str]) -> int:
    ckdir, nbytes, shards = Path(argv[0]), int(argv[1]), int(argv[2])
    empty = recovery.RecoveryReport((), 0, 0, 0.0)
    before = _vm_hwm_kib()
    s = store.CheckpointStore(ckdir, ordinal=0, volume_id="bench", epoch="rss", recovered=empty, keep_last=0,
                              log=events.NullLog())
    started = time.perf_counter()
    s.publish(None, nbytes, shards)
    seconds = time.perf_counter() - started
    s.close()
    peak = _vm_hwm_kib()
    print(json.dumps({"bytes": nbytes, "peak_rss_kib": peak, "idle_rss_kib": before, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
