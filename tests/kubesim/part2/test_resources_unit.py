"""Resources without a cluster: cgroup detection and limits, node sizes, NodeResourcesFit (D1, E-Resources).

The kernel test runs a real container through the kubelet's launcher in a cgroup of its own
(skipped, with the reason, where this machine offers no usable cgroup controller); the CPU quota is
measured end to end in ``test_resources_cluster.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubesim.controllers import scheduler_plugins as sp
from kubesim.controllers import volumes_common as vc
from kubesim.kubelet import cgroups, containers, node

V1_HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_HYBRID_CGROUP = "4:memory:/job/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n"


# ----- cgroups: what the container asks for, what the machine offers --------------------------------


@pytest.mark.parametrize(("resources", "expected"), [
    ({}, cgroups.Limits()),
    ({"limits": {"memory": "16Mi"}}, cgroups.Limits(memory=16 * 1024 * 1024)),
    ({"limits": {"cpu": "100m"}, "requests": {"cpu": "100m"}}, cgroups.Limits(cpu_quota_us=10_000, cpu_shares=102)),
    ({"limits": {"cpu": "1m"}}, cgroups.Limits(cpu_quota_us=1000, cpu_shares=2)),  # minimum quota and shares
    ({"requests": {"cpu": "2"}}, cgroups.Limits(cpu_shares=2048)),
])
def test_limits_follow_upstreams_conversions(resources: dict[str, Any], expected: cgroups.Limits) -> None:
    """MilliCPUToQuota (100 ms period, >= 1 ms), MilliCPUToShares (>= 2), memory limit in bytes."""
    assert cgroups.limits_for(resources) == expected
    assert cgroups.shares_to_weight(2) == 1
    assert cgroups.shares_to_weight(262144) == 10000


def test_v1_hybrid_is_chosen_when_v2_has_no_memory_controller(tmp_path: Path) -> None:
    """This machine's layout: v2 mounted with only hugetlb, v1 memory/cpu/cpuacct; v1 nests under our cgroup."""
    root = tmp_path / "cg"
    for sub in ("cpu", "cpuacct", "memory/job/abc", "unified"):
        (root / sub).mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    info = V1_HYBRID_MOUNTINFO.replace("/sys/fs/cgroup", str(root))
    driver = cgroups.detect(info, V1_HYBRID_CGROUP)
    assert driver.version == 1, driver
    assert driver.bases == {"memory": root / "memory/job/abc", "cpu": root / "cpu", "cpuacct": root / "cpuacct"}
    assert driver.problem == ""


def test_v2_is_preferred_when_memory_and_cpu_are_delegated(tmp_path: Path) -> None:
    """A delegated v2 subtree: kubesim's parent goes beside our cgroup (v2: no processes in inner nodes)."""
    root = tmp_path / "cg2"
    (root / "user.slice" / "me.scope").mkdir(parents=True)
    (root / "user.slice" / "me.scope" / "cgroup.controllers").write_text("cpu memory pids\n")
    info = f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n"
    driver = cgroups.detect(info, "0::/user.slice/me.scope\n")
    assert driver.version == 2
    assert driver.bases["memory"] == root / "user.slice"


def test_no_usable_cgroups_says_why_and_creates_nothing(tmp_path: Path) -> None:
    """Neither version usable: limits are not enforced, and the reason names both versions."""
    driver = cgroups.detect("22 1 0:20 / /proc rw - proc proc rw\n", "0::/\n")
    assert driver.version == 0
    assert "not enforced" in driver.problem
    assert "cgroup v2 is not mounted" in driver.problem
    assert "v1 memory controller is not mounted" in driver.problem
    manager = cgroups.NodeCgroups(tmp_path / "nodes" / "n", driver)
    assert manager.create("c1", cgroups.Limits(memory=1 << 20)) is None


def test_two_state_directories_never_share_a_cgroup_name(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert cgroups.cluster_id(tmp_path / "a") != cgroups.cluster_id(tmp_path / "b")
    assert cgroups.cluster_id(tmp_path / "a") == cgroups.cluster_id(tmp_path / "a" / ".." / "a")


def _kernel_cgroups(tmp_path: Path) -> cgroups.NodeCgroups:
    manager = cgroups.NodeCgroups(tmp_path / "state" / "nodes" / "kubesim-worker")
    if not manager.enforced:
        pytest.skip(manager.problem)
    return manager


def _launch(tmp_path: Path, argv: list[str], resources: dict[str, Any]) -> containers.Process:
    node_dir = tmp_path / "state" / "nodes" / "kubesim-worker"
    rootfs = node_dir / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    spec = containers.LaunchSpec(argv=argv, env={"PATH": "/usr/bin:/bin"}, cwd="/", rootfs=str(rootfs), mounts=[],
                                 makedirs=[], uid=None, gid=None, groups=[], hostname="c", pause=False, mode="auto",
                                 resources=resources, node_dir=str(node_dir))
    started = containers.Launcher().launch(spec, node_dir / "c.log")
    assert isinstance(started, containers.Process), started
    return started


def test_kernel_oom_kills_a_container_over_its_memory_limit_and_its_cgroup_goes(tmp_path: Path) -> None:
    """E-Resources: 200 MB in a 64Mi container → SIGKILL by the OOM killer (137, oom_killed); cgroup removed;
    ``sweep_cluster`` leaves nothing of the cluster behind."""
    manager = _kernel_cgroups(tmp_path)
    started = time.monotonic()
    proc = _launch(tmp_path, [sys.executable, "-c", "b = bytearray(200 * 1024 * 1024); print('survived')"],
                   {"limits": {"memory": "64Mi"}})
    assert proc.cgroup is not None
    assert proc.cgroup.memory_limit() == 64 * 1024 * 1024
    proc.wait()
    took = time.monotonic() - started
    assert (proc.exit_code, proc.oom_killed) == (137, True), (proc.exit_code, took)
    assert not any(d.exists() for d in proc.cgroup.dirs.values())
    print(f"OOM kill {took:.2f}s after launch")
    parents = {d.parent for d in proc.cgroup.dirs.values()}
    assert all(p.is_dir() for p in parents)  # the node's parents stay for its next containers ...
    assert cgroups.sweep_cluster(manager.state_dir) == []  # ... until `kubesim down` sweeps them
    assert not any(p.exists() or p.parent.exists() for p in parents)
    assert not (manager.node_dir / cgroups.RECORD).exists()


# ----- node sizes ------------------------------------------------------------------------------------


def test_allocatable_is_capacity_minus_reserved_or_configured_per_node(tmp_path: Path) -> None:
    """Default: allocatable = capacity = the machine; env for every node; node-config.json per node wins."""
    cap, alloc = node.node_resources(tmp_path, "kubesim-worker", environ={})
    assert cap == alloc
    assert cap["pods"] == "110"
    env = {"KUBESIM_NODE_ALLOCATABLE": "cpu=2,memory=4Gi", "KUBESIM_SYSTEM_RESERVED": "pods=10"}
    cap, alloc = node.node_resources(tmp_path, "kubesim-worker", environ=env)
    assert (alloc["cpu"], alloc["memory"], alloc["pods"]) == ("2", "4Gi", "100")
    (tmp_path / "nodes" / "kubesim-worker2").mkdir(parents=True)
    (tmp_path / "nodes" / "kubesim-worker2" / node.NODE_CONFIG).write_text(json.dumps(
        {"capacity": {"cpu": "4", "memory": "8Gi"}, "systemReserved": {"cpu": "500m", "memory": "1Gi"}}))
    cap, alloc = node.node_resources(tmp_path, "kubesim-worker2", environ={})
    assert (cap["cpu"], cap["memory"], alloc["cpu"], alloc["memory"]) == ("4", "8Gi", "3500m", "7340032Ki")
    cap, alloc = node.node_resources(tmp_path, "kubesim-worker", environ={"KUBESIM_NODE_ALLOCATABLE": "cpu=512"})
    assert cap["cpu"] == alloc["cpu"] == "512"  # bigger than the machine: capacity grows with it
    with pytest.raises(node.NodeConfigError, match="name=quantity"):
        node.node_resources(tmp_path, "kubesim-worker", environ={"KUBESIM_NODE_ALLOCATABLE": "cpu"})


# ----- NodeResourcesFit ---------------------------------------------------------------------------------


def _node(name: str, cpu: str = "2", memory: str = "4Gi", pods: str = "110") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {vc.HOSTNAME_LABEL: name}}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}}


def _pod(name: str, node_name: str = "", *, cpu: str = "", memory: str = "", **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in {"cpu": cpu, "memory": memory}.items() if v}
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}],
                     "nodeName": node_name, **spec}, "status": {"phase": "Running" if node_name else "Pending"}}


def _view(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> sp.ClusterView:
    return sp.ClusterView(nodes=nodes, pods=pods, claims={}, volumes={}, classes={})


NODES = [_node("kubesim-worker"), _node("kubesim-worker2"), _node("kubesim-worker3")]


def test_pod_requests_sum_containers_max_init_add_sidecars_and_overhead() -> None:
    """resource.PodRequests: sidecars run beside everything after them; plain init containers one at a time."""
    pod = _pod("p", cpu="1", memory="1Gi")
    pod["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "500m"}}})
    pod["spec"]["initContainers"] = [
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "big-init", "resources": {"requests": {"cpu": "3", "memory": "512Mi"}}},
    ]
    pod["spec"]["overhead"] = {"memory": "64Mi"}
    assert sp.pod_requests(pod) == {"cpu": 3100, "memory": (1024 + 64) * 1024 * 1024}


def test_insufficient_memory_everywhere_gives_upstreams_message() -> None:
    """D1: FitError text with the NodeResourcesFit reason and preemption finding no victims (one priority)."""
    decision = sp.schedule(_pod("huge", memory="64Gi"), _view(NODES, []))
    assert decision.node is None
    assert decision.message == (
        "0/3 nodes are available: 3 Insufficient memory. no new claims to deallocate, preemption: 0/3 nodes are "
        "available: 3 No preemption victims found for incoming pod.")


def test_requests_of_bound_pods_count_and_every_short_resource_is_named() -> None:
    """D1: allocatable minus what the node's live pods request; both reasons of a node are counted."""
    pods = [_pod("a", "kubesim-worker", cpu="1500m", memory="3584Mi"), _pod("b", "kubesim-worker2", cpu="1800m"),
            _pod("done", "kubesim-worker3", cpu="2"), _pod("c", "kubesim-worker3", memory="3900Mi")]
    pods[2]["status"]["phase"] = "Succeeded"  # a finished pod frees what it requested
    decision = sp.schedule(_pod("new", cpu="600m", memory="1Gi"), _view(NODES, pods))
    assert decision.node is None
    assert decision.message.startswith("0/3 nodes are available: 2 Insufficient cpu, 2 Insufficient memory. ")
    fits = sp.schedule(_pod("small", cpu="400m", memory="100Mi"), _view(NODES, pods))
    assert fits.node == "kubesim-worker"  # worker and worker3 fit (one live pod each): the name breaks the tie


def test_too_many_pods_and_nodes_without_allocatable() -> None:
    nodes = [_node("kubesim-worker", pods="1")]
    decision = sp.schedule(_pod("p"), _view(nodes, [_pod("a", "kubesim-worker")]))
    assert decision.message.startswith("0/1 nodes are available: 1 Too many pods.")
    bare = {"metadata": {"name": "scripted"}, "spec": {}, "status": {"conditions": [{"type": "Ready",
                                                                                     "status": "True"}]}}
    assert sp.schedule(_pod("p", cpu="64"), _view([bare], [])).node == "scripted"
