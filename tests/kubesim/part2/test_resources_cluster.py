"""Resources on K1's 3-node ``kubesim_cluster``: limits enforced by the kubelet, requests fitted by the scheduler.

E-Resources: a container over its memory limit is OOM-killed (137, ``OOMKilled``) and restarted
per its policy; a CPU limit is a CFS quota; the container's cgroup goes with it. D1: the scheduler's
NodeResourcesFit keeps a pod Pending with upstream's ``Insufficient cpu`` text and places it once a
pod that held the room is deleted. The kubelet tests skip (naming why) where the kubelets report
that no cgroup controller is usable.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from streaming_support import await_

from kubesim import client
from kubesim.controllers import scheduler_plugins as sp

Obj = dict[str, Any]
NODE = "kubesim-worker3"


def _pod(name: str, command: list[str], resources: Obj, *, node: str = NODE, policy: str = "Always") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "restartPolicy": policy, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "command": command, "resources": resources}]}}


def _cstatus(pod: Obj) -> Obj:
    return next(iter((pod.get("status") or {}).get("containerStatuses") or []), {})


def _require_enforced(cluster: Any, node: str, what: str) -> None:
    """Skip, quoting the node's own Warning, where its kubelet found no usable cgroup controller for ``what``."""
    items, _ = cluster.client.list("events", "default", field_selector=f"involvedObject.name={node}")
    problems = [str(e.get("message")) for e in items if e.get("reason") == "ResourceLimitsNotEnforced"]
    if any("neither cgroup" in p or what in p for p in problems):
        pytest.skip(problems[-1])


def _cgroup_dirs(cluster: Any, node: str, container_id: str) -> list[Path]:
    doc = json.loads((Path(cluster.state_dir) / "nodes" / node / "cgroups.json").read_text())
    return [Path(p) / container_id for p in doc["parents"]]


def test_memory_over_the_limit_is_oomkilled_and_restarted(kubesim_cluster: Any, namespace: str) -> None:
    """E-Resources: 200 MB allocated under a 64Mi limit → exit 137, reason OOMKilled, restarted (Always)."""
    cluster = kubesim_cluster
    _require_enforced(cluster, NODE, "memory")
    hog = [sys.executable, "-c", "b = bytearray(200 * 1024 * 1024); print('survived')"]
    cluster.client.create("pods", _pod("oom", hog, {"limits": {"memory": "64Mi"}}), namespace)
    started = time.monotonic()
    pod = await_("the container's first OOM kill", lambda: cluster.client.get("pods", "oom", namespace),
                 lambda p: bool((_cstatus(p).get("lastState") or {}).get("terminated")), timeout=30)
    took = time.monotonic() - started
    terminated = _cstatus(pod)["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled"), terminated
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"memory": "64Mi"}  # defaulted from the limit
    print(f"OOMKilled reported {took:.2f}s after the pod was created")
    await_("a restart after the OOM kill", lambda: cluster.client.get("pods", "oom", namespace),
           lambda p: int(_cstatus(p).get("restartCount") or 0) >= 1)


def test_cpu_limit_is_a_cfs_quota_and_the_cgroup_goes_with_the_pod(kubesim_cluster: Any, namespace: str) -> None:
    """E-Resources: a busy loop limited to 100m uses about a tenth of a CPU, measured on its cgroup's counter."""
    cluster = kubesim_cluster
    _require_enforced(cluster, NODE, "CPU")
    spin = "import signal, sys\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\nwhile True: pass"
    cluster.client.create("pods", _pod("spin", [sys.executable, "-c", spin],
                                       {"limits": {"cpu": "100m"}}), namespace)
    pod = await_("the busy loop running", lambda: cluster.client.get("pods", "spin", namespace),
                 lambda p: "running" in (_cstatus(p).get("state") or {}))
    container_id = str(_cstatus(pod)["containerID"]).removeprefix("kubesim://")
    dirs = _cgroup_dirs(cluster, NODE, container_id)
    assert all(d.is_dir() for d in dirs), dirs
    v1 = next((d / "cpuacct.usage" for d in dirs if (d / "cpuacct.usage").exists()), None)
    v2 = next((d / "cpu.stat" for d in dirs if "usage_usec" in (d / "cpu.stat").read_text()), None) if not v1 else None
    assert v1 or v2, dirs

    def used() -> float:
        if v1 is not None:
            return int(v1.read_text()) / 1e9
        assert v2 is not None
        stat = dict(line.split() for line in v2.read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6

    u0, t0 = used(), time.monotonic()
    await_("a 2 s measuring window", time.monotonic, lambda now: now - t0 >= 2.0, timeout=5)
    share = (used() - u0) / (time.monotonic() - t0)
    print(f"busy loop limited to 100m used {share:.3f} of a CPU")
    assert share < 0.3, share
    cluster.client.delete("pods", "spin", namespace)
    await_("the container's cgroups removed", lambda: [d for d in dirs if d.exists()], lambda left: not left)


def test_scheduler_keeps_a_pod_pending_until_requests_fit(kubesim_cluster: Any, namespace: str) -> None:
    """D1 NodeResourcesFit: every node nearly full → Unschedulable with upstream's text; deleting a pod
    that held the room schedules it."""
    cluster = kubesim_cluster
    nodes = {n["metadata"]["name"]: n for n in cluster.client.list("nodes")[0]}
    for name in cluster.nodes:
        free = sp.resource_amount(nodes[name]["status"]["allocatable"]["cpu"], "cpu") - 100  # room for leftovers
        hold = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"hold-{name}"},
                "spec": {"nodeName": name, "terminationGracePeriodSeconds": 0, "containers": [
                    {"name": "c", "image": "registry.k8s.io/pause:3.10",
                     "resources": {"requests": {"cpu": f"{free}m"}}}]}}
        cluster.client.create("pods", hold, namespace)
    wanting = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wanting"},
               "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                   {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "500m"}}}]}}
    cluster.client.create("pods", wanting, namespace)
    n = len(cluster.nodes)

    def scheduled(pod: Obj) -> Obj:
        return next((c for c in (pod.get("status") or {}).get("conditions") or []
                     if c.get("type") == "PodScheduled"), {})

    pod = await_("PodScheduled=False", lambda: cluster.client.get("pods", "wanting", namespace),
                 lambda p: scheduled(p).get("status") == "False")
    assert scheduled(pod)["reason"] == "Unschedulable"
    assert scheduled(pod)["message"] == (
        f"0/{n} nodes are available: {n} Insufficient cpu. no new claims to deallocate, preemption: 0/{n} nodes "
        f"are available: {n} No preemption victims found for incoming pod.")
    cluster.client.delete("pods", f"hold-{cluster.nodes[1]}", namespace)
    pod = await_("the pod bound once room was freed", lambda: cluster.client.get("pods", "wanting", namespace),
                 lambda p: bool(p["spec"].get("nodeName")), timeout=30)
    assert pod["spec"]["nodeName"] == cluster.nodes[1]
    with pytest.raises(client.NotFound):
        cluster.client.get("pods", f"hold-{cluster.nodes[1]}", namespace)
