"""What the lazy file system costs: the checkpoint writer's throughput through a lazyfs mount,
as a ratio against the same writer on the backing file system directly, measured in one run.

The writer is started as a process (``python -m harness.workload serve``, kubesim does not
import the harness) on a fresh directory each time; one client POSTs checkpoints back to back
for ``seconds``. Each checkpoint costs FUSE round trips for mkdir, create, writes, the fsyncs
and the rename, all served by Python; the backing file is never fsynced by the lazy file
system (the host keeps its power), which is why small checkpoints can come out faster.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubesim.lazyfs import manage


def _writer(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, POD_NAME="ckpt-0", POD_NAMESPACE="bench", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.workload", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
         "--port", "0", "--keep-last", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
    )
    assert proc.stdout is not None
    port = 0
    for line in proc.stdout:  # the writer's events, until it is ready (it exits on a bad start)
        event = json.loads(line)
        if event.get("event") == "listening":
            port = int(event["port"])
        if event.get("event") == "ready":
            # keep reading: a full pipe would block the writer on its next event line
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, port
    raise RuntimeError(f"writer on {data_dir} exited before it was ready (rc={proc.wait()})")


def _measure(data_dir: Path, nbytes: int, shards: int, seconds: float) -> dict[str, float]:
    proc, port = _writer(data_dir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"bytes": nbytes, "shards": shards})
        done = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            conn.request("POST", "/checkpoints", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"checkpoint failed with {resp.status}")
            done += 1
        elapsed = time.monotonic() - started
        conn.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return {"checkpoints_per_s": round(done / elapsed, 1), "mb_per_s": round(done * nbytes / elapsed / 1e6, 1)}


def run(nbytes: int = 1 << 20, shards: int = 4, seconds: float = 5.0) -> dict[str, Any]:
    """Direct, then through lazyfs, then direct again (the baseline brackets the measurement)."""
    reason = manage.unavailable_reason()
    if reason is not None:
        raise manage.LazyFSUnavailable(reason)
    with tempfile.TemporaryDirectory(prefix="lazyfs-bench-") as tmp:
        root = Path(tmp)
        for d in ("direct1", "direct2", "backing", "mnt", "state"):
            (root / d).mkdir()
        direct1 = _measure(root / "direct1", nbytes, shards, seconds)
        with manage.mounted(root / "backing", root / "mnt", root / "state") as _m:
            lazy = _measure(root / "mnt", nbytes, shards, seconds)
        direct2 = _measure(root / "direct2", nbytes, shards, seconds)
    base = (direct1["checkpoints_per_s"] + direct2["checkpoints_per_s"]) / 2
    return {"checkpoint_bytes": nbytes, "shards": shards, "seconds": seconds, "direct": [direct1, direct2],
            "lazyfs": lazy, "ratio_lazyfs_to_direct": round(lazy["checkpoints_per_s"] / base, 3) if base else None}
