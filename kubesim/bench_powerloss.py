"""Bench: what power loss costs — the writer through the lazy file system, and one power-loss cycle.

Two figures, each against a baseline measured in the same run:

* **throughput**: the checkpoint writer on a lazyfs mount against the same writer on the backing
  directory directly (:mod:`kubesim.lazyfs.bench`, 1 MiB checkpoints in 4 shards);
* **cycle**: on a fresh one-node cluster, a pod on a `lazy` claim fsyncing a file in a loop;
  ``kubesim node power-loss`` then ``node restore`` until the pod is Ready again with a new
  container, against the same cycle with ``node crash`` (which keeps the page cache, so it has
  nothing to drop). The ratio is what dropping the un-fsynced state and remounting adds.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesim import client
from kubesim.lazyfs import bench as lazyfs_bench
from kubesim.lazyfs import manage

NODE = "kubesim-worker"
NAMESPACE = "default"
POD = "fsyncer"
ROUNDS = 3
TIMEOUT_S = 120.0

LOOP = r"""
import os, time
n = 0
while True:
    fd = os.open("/data/tick", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, str(n).encode())
    os.fsync(fd)
    os.close(fd)
    n += 1
    time.sleep(0.05)
"""


def _kubesim(state_dir: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "kubesim", *args, "--state", str(state_dir)], capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"kubesim {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")


def _ready_container(api: client.Client) -> str | None:
    """The running container's id when the pod is Ready, else None."""
    pod = api.get("pods", POD, NAMESPACE)
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    ids = [c.get("containerID") for c in status.get("containerStatuses") or [] if (c.get("state") or {}).get("running")]
    return str(ids[0]) if ready and ids and ids[0] else None


def _await(what: str, probe: Callable[[], Any]) -> Any:
    """Poll the API (every 20 ms) until ``probe`` is truthy; the timeout names what it waited for."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        with contextlib.suppress(client.ApiError):
            value = probe()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {TIMEOUT_S:.0f}s waiting for {what}")
        time.sleep(0.02)


def _cycle(state_dir: Path, api: client.Client, fault: str) -> float:
    """Seconds from the fault to the pod Ready again in a new container (fault, restore, restart)."""
    before = _await(f"pod {POD} Ready", lambda: _ready_container(api))
    started = time.monotonic()
    _kubesim(state_dir, "node", fault, NODE)
    _kubesim(state_dir, "node", "restore", NODE)
    _await(f"pod {POD} Ready in a new container after {fault}",
           lambda: (cid := _ready_container(api)) is not None and cid != before)
    return time.monotonic() - started


def cycles() -> dict[str, list[float]]:
    """Crash and power-loss cycles, interleaved round by round so drift hurts both alike."""
    with tempfile.TemporaryDirectory(prefix="kubesim-powerloss-bench-") as raw:
        state_dir = Path(raw)
        _kubesim(state_dir, "up", "--port", "0", "--nodes", "1")
        try:
            api = client.Client.from_state(state_dir)
            try:
                api.create("persistentvolumeclaims", {"metadata": {"name": POD}, "spec": {
                    "storageClassName": "lazy", "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}, NAMESPACE)
                api.create("pods", {"metadata": {"name": POD}, "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": "busybox", "command": [sys.executable, "-c", LOOP],
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": POD}}]}}, NAMESPACE)
                out: dict[str, list[float]] = {"crash": [], "power-loss": []}
                for _ in range(ROUNDS):
                    for fault, seconds in out.items():
                        seconds.append(_cycle(state_dir, api, fault))
                return out
            finally:
                api.close()
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _kubesim(state_dir, "down")


def run(console: object) -> None:
    """Bench entry: lazyfs throughput against direct, and the power-loss cycle against a crash cycle."""
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    reason = manage.unavailable_reason()
    if reason is not None:
        console.print(f"skipped: the lazy file system cannot mount here ({reason})")
        return
    with console.status("writer on the backing directory, through lazyfs, then directly again (5 s each)"):
        tp = lazyfs_bench.run()
    with console.status(f"1-node cluster: {ROUNDS} node crash and {ROUNDS} power-loss cycles"):
        cyc = cycles()
    table = Table("figure", "value", "baseline", "ratio")
    direct = statistics.mean(d["checkpoints_per_s"] for d in tp["direct"])
    table.add_row("writer checkpoints/s through lazyfs (1 MiB, 4 shards)", f"{tp['lazyfs']['checkpoints_per_s']:.1f}",
                  f"{direct:.1f} directly on the backing directory", f"{tp['ratio_lazyfs_to_direct']:.2f}")
    crash, power = statistics.median(cyc["crash"]), statistics.median(cyc["power-loss"])
    table.add_row(f"power-loss + restore -> pod Ready (median of {ROUNDS})", f"{power:.2f} s",
                  f"{crash:.2f} s for node crash + restore", f"{power / crash:.2f}")
    console.print(table)
    console.print("cycle rounds, s: crash " + ", ".join(f"{x:.2f}" for x in cyc["crash"]) + "; power-loss "
                  + ", ".join(f"{x:.2f}" for x in cyc["power-loss"]))


if __name__ == "__main__":
    from rich.console import Console

    run(Console())
