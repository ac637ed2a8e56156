"""Write one checkpoint in a fresh process and report its peak RSS (used by bench.py).

A separate process so the figure is the writer's own footprint, not the benchmark's.
Usage: ``python -m harness.workload.rss_probe DIR BYTES SHARDS`` -> one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from harness.workload import events, recovery, store


def main(argv: list[str]) -> int:
    ckdir, nbytes, shards = Path(argv[0]), int(argv[1]), int(argv[2])
    empty = recovery.RecoveryReport((), 0, 0, 0.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s = store.CheckpointStore(ckdir, ordinal=0, volume_id="bench", epoch="rss", recovered=empty, keep_last=0,
                              log=events.NullLog())
    started = time.perf_counter()
    s.publish(None, nbytes, shards)
    seconds = time.perf_counter() - started
    s.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"bytes": nbytes, "peak_rss_kib": peak, "idle_rss_kib": before, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
