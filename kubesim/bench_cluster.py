"""Cluster figures: idle CPU of the control plane and kubelets, and StatefulSet speed targets.

The target: an idle control plane + 3 kubelets under 5 % of one core. The
figure is read from ``/proc/<pid>/stat`` (utime + stime of every thread of each recorded
component) over a window, so it measures exactly the processes ``up`` recorded and nothing else
on the machine. The baseline in the same run is a bare API server (``--nodes 0``, no controllers):
the difference is what controllers, heartbeats and kubelet loops cost.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesim import client, state

TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class IdleCpu:
    seconds: float
    per_component: dict[str, float]
    """Percent of one core per component name (``apiserver``, ``kubelet/<node>``)."""

    @property
    def total(self) -> float:
        return sum(self.per_component.values())


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of the process (all its threads), in clock ticks; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


def idle_cpu(state_dir: Path, seconds: float = 10.0) -> IdleCpu:
    """CPU use of every component recorded in ``state_dir`` over ``seconds`` (percent of one core)."""
    layout = state.Layout(state_dir.resolve())
    comps = [c for c in state.components(layout) if state.is_ours(layout, c.pid)]
    before = {c.name: cpu_ticks(c.pid) for c in comps}
    started = time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing to await
    elapsed = time.monotonic() - started
    out: dict[str, float] = {}
    for comp in comps:
        start, end = before[comp.name], cpu_ticks(comp.pid)
        if start is not None and end is not None:
            out[comp.name] = 100.0 * (end - start) / TICKS / elapsed
    return IdleCpu(elapsed, out)


def _up(state_dir: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "kubesim", "up", "--state", str(state_dir), "--port", "0", *args],
                          capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubesim up {' '.join(args)} failed: {proc.stdout}{proc.stderr}")


def _down(state_dir: Path) -> None:
    subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state_dir), "--grace", "5"],
                   capture_output=True, text=True, timeout=120, check=False)


def measure(nodes: int, seconds: float, settle: float = 3.0) -> IdleCpu:
    """Start a cluster with ``nodes`` kubelets (default periods), let start-up work finish, measure, stop it."""
    with tempfile.TemporaryDirectory(prefix="kubesim-idle-") as tmp:
        state_dir = Path(tmp)
        try:
            _up(state_dir, "--nodes", str(nodes))
            time.sleep(settle)  # start-up bursts (first lists, node registration) are not idle cost
            return idle_cpu(state_dir, seconds)
        finally:
            _down(state_dir)


def _sts(name: str, replicas: int, policy: str) -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "podManagementPolicy": policy, "serviceName": name,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}


def _await_event(api: client.Client, plural: str, name: str, rv: str, done: Callable[[dict[str, Any]], bool], *,
                 timeout: int = 120) -> None:
    """Follow a watch from ``rv`` until ``done(object)``; the clock stops at the event, not at a poll tick."""
    for etype, obj in api.watch(plural, "default", resource_version=rv, field_selector=f"metadata.name={name}",
                                timeout_seconds=timeout):
        if etype in ("ADDED", "MODIFIED") and done(obj):
            return
    raise TimeoutError(f"{plural}/{name} did not get there within {timeout}s")


def _ready_replicas(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (obj.get("status") or {}).get("readyReplicas") == n


def _pod_ready_other_than(uid: str) -> Callable[[dict[str, Any]], bool]:
    def check(pod: dict[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return pod["metadata"]["uid"] != uid and any(c.get("type") == "Ready" and c.get("status") == "True"
                                                     for c in conditions)
    return check


@dataclasses.dataclass(frozen=True)
class Speed:
    ordered3: float
    replacement: float
    parallel32: float


def speed() -> Speed:
    """The part-2 speed targets on a fresh 3-node cluster (default periods), each timed create → Ready by watch."""
    with tempfile.TemporaryDirectory(prefix="kubesim-speed-") as tmp:
        state_dir = Path(tmp)
        try:
            _up(state_dir, "--nodes", "3")
            api = client.Client.from_state(state_dir)
            _items, rv = api.list("statefulsets", "default")
            started = time.monotonic()
            api.create("statefulsets", _sts("ordered", 3, "OrderedReady"), "default")
            _await_event(api, "statefulsets", "ordered", rv, _ready_replicas(3))
            ordered3 = time.monotonic() - started
            victim = api.get("pods", "ordered-1", "default")
            started = time.monotonic()
            api.delete("pods", "ordered-1", "default")
            _await_event(api, "pods", "ordered-1", victim["metadata"]["resourceVersion"],
                         _pod_ready_other_than(victim["metadata"]["uid"]))
            replacement = time.monotonic() - started
            _items, rv = api.list("statefulsets", "default")
            started = time.monotonic()
            api.create("statefulsets", _sts("burst", 32, "Parallel"), "default")
            _await_event(api, "statefulsets", "burst", rv, _ready_replicas(32))
            parallel32 = time.monotonic() - started
            api.close()
            return Speed(ordered3, replacement, parallel32)
        finally:
            _down(state_dir)


def run(console: object) -> None:
    """Bench entry: idle CPU of control plane + 3 kubelets vs. a bare API server, both over 10 s."""
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    console.print("[bold]kubesim idle CPU[/bold] (percent of one core over 10 s, default periods)")
    baseline = measure(0, 10.0)
    cluster = measure(3, 10.0)
    table = Table("component", "CPU %")
    for name, pct in sorted(cluster.per_component.items()):
        table.add_row(name, f"{pct:.2f}")
    table.add_row("[bold]cluster total[/bold]", f"{cluster.total:.2f}")
    table.add_row("baseline: bare API server", f"{baseline.total:.2f}")
    console.print(table)
    verdict = "meets" if cluster.total < 5.0 else "MISSES"
    console.print(f"control plane + 3 kubelets idle: {cluster.total:.2f} % of one core ({verdict} the 5 % target); "
                  f"{cluster.total - baseline.total:+.2f} points over the bare API server")
    console.print("[bold]kubesim StatefulSet speed[/bold] (3 nodes, pause containers, create -> Ready seen by watch)")
    figures = speed()
    for label, seconds, target in (("3 replicas OrderedReady", figures.ordered3, 5.0),
                                   ("deleted pod's replacement", figures.replacement, 2.0),
                                   ("32 replicas Parallel", figures.parallel32, 30.0)):
        ok = "meets" if seconds <= target else "MISSES"
        console.print(f"  {label}: {seconds:.2f} s (target {target:.0f} s, {seconds / target:.0%} of it: {ok})")
