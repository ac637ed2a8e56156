"""D2, B4: a crashed node on the real 3-node cluster (kubelet and containers SIGKILLed by `kubesim node crash`).

The pods use 1 s not-ready/unreachable tolerations (set in the template, as a user could) so the
eviction comes quickly; the cluster's node monitor grace is 4 s (K1's CLUSTER_FLAGS). Every wait after
a crash names what `kubesim node crash` printed (which kubelet pid it killed, or that it found none);
the conftest's autouse heal restores the node even when a test fails before its ``finally`` knows it.
"""

from __future__ import annotations

from typing import Any

import k4_cluster as kc
import k4_support as ks
import pytest

from kubesim.controllers import nodelifecycle_logic as nl

TOLERATE = 1


@pytest.fixture
def _pieces() -> None:
    kc.require_pieces()


def _crash_until_terminating(kubesim_cluster: Any, namespace: str, name: str) -> tuple[str, str]:
    """Crash the pod's node; check Unknown + taints + not Ready + marked for deletion; return (node, old uid)."""
    api = kubesim_cluster.client
    pod = kc.await_ready(api, namespace, name, timeout=40)
    node, uid = pod["spec"]["nodeName"], pod["metadata"]["uid"]
    crashed = kubesim_cluster.run("node", "crash", node)
    after = f"after `kubesim node crash {node}` printed {(crashed.stdout + crashed.stderr).strip()!r}"
    ks.await_value(f"{node} Ready=Unknown {after}", lambda: ks.condition(api.get("nodes", node), "Ready"),
                   lambda c: (c or {}).get("status") == "Unknown" and c.get("reason") == "NodeStatusUnknown",
                   timeout=15)
    ks.await_value(f"{node} unreachable:NoExecute {after}", lambda: ks.taint_keys(api.get("nodes", node)),
                   lambda keys: (nl.TAINT_UNREACHABLE, "NoExecute") in keys, timeout=5)
    ks.await_value(f"{name} not Ready {after}", lambda: kc.pod_or_none(api, namespace, name),
                   lambda p: p is not None and (ks.condition(p, "Ready") or {}).get("status") == "False", timeout=5)
    terminating = ks.await_value(f"{name} marked for deletion {after}", lambda: kc.pod_or_none(api, namespace, name),
                                 lambda p: p is not None and bool(p["metadata"].get("deletionTimestamp")),
                                 timeout=TOLERATE + 8)
    assert terminating["metadata"]["uid"] == uid
    return node, uid


def _stays_terminating(api: Any, namespace: str, name: str, uid: str, *, seconds: int) -> None:
    """B4: with no kubelet to confirm, the pod stays Terminating and no second pod takes its identity.

    Watches the namespace for ``seconds``: any pod of that name with another uid, or its deletion, fails.
    """
    _items, rv = api.list("pods", namespace)
    seen = []
    for etype, obj in api.watch("pods", namespace, resource_version=rv, timeout_seconds=seconds,
                                allow_bookmarks=False):
        if obj["metadata"]["name"] == name:
            seen.append((etype, obj["metadata"]["uid"]))
    assert all(u == uid and etype != "DELETED" for etype, u in seen), f"{name} changed while its node was down: {seen}"
    still = api.get("pods", name, namespace)
    assert still["metadata"]["uid"] == uid
    assert still["metadata"].get("deletionTimestamp")


def test_crashed_node_marks_a_bare_pod_not_ready_and_terminating_and_restore_finishes_the_deletion(
        kubesim_cluster: Any, namespace: str) -> None:
    """D2 without any workload controller: Unknown, taints, not Ready, Terminating; the restored kubelet
    confirms the deletion and the pod object goes away."""
    kc.require_pieces(("scheduler", "nodelifecycle", "tainteviction"))
    api = kubesim_cluster.client
    api.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"}, "spec": {
        "terminationGracePeriodSeconds": 1, "tolerations": kc.statefulset(
            "x", storage_class=None, tolerate_seconds=TOLERATE)["spec"]["template"]["spec"]["tolerations"],
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}, namespace)
    node = ""
    try:
        node, _uid = _crash_until_terminating(kubesim_cluster, namespace, "bare")
        kubesim_cluster.run("node", "restore", node)
        node = ""
        ks.await_value("bare pod deleted once its kubelet is back", lambda: kc.pod_or_none(api, namespace, "bare"),
                       lambda p: p is None, timeout=30)
    finally:
        if node:
            kubesim_cluster.run("node", "restore", node, check=False)


@pytest.mark.usefixtures("_pieces")
def test_crashed_node_pod_goes_not_ready_stays_terminating_and_comes_back_on_restore(
        kubesim_cluster: Any, namespace: str) -> None:
    api = kubesim_cluster.client
    api.create("statefulsets", kc.statefulset("crash", storage_class=None, tolerate_seconds=TOLERATE), namespace)
    node = ""
    try:
        node, uid = _crash_until_terminating(kubesim_cluster, namespace, "crash-0")
        _stays_terminating(api, namespace, "crash-0", uid, seconds=3)
        kubesim_cluster.run("node", "restore", node)
        node = ""
        back = ks.await_value("crash-0 recreated and Ready after restore", lambda: kc.pod_or_none(
            api, namespace, "crash-0"), lambda p: kc.is_ready(p) and p["metadata"]["uid"] != uid, timeout=40)
        assert len(kc.pods_of(api, namespace, "crash")) == 1
        assert back["metadata"]["name"] == "crash-0"
    finally:
        if node:
            kubesim_cluster.run("node", "restore", node, check=False)


@pytest.mark.usefixtures("_pieces")
@pytest.mark.parametrize(("storage_class", "moves"), [("shared", True), ("standard", False)])
def test_force_deleting_a_pod_on_a_crashed_node_recreates_it_elsewhere_only_where_its_volume_allows(
        kubesim_cluster: Any, namespace: str, storage_class: str, moves: bool) -> None:
    """B4 + C5: shared class → the new pod runs on another node; local-path → Pending with FailedScheduling
    until the node is back, then it runs there again."""
    api = kubesim_cluster.client
    api.create("statefulsets", kc.statefulset("vol", storage_class=storage_class, tolerate_seconds=TOLERATE),
               namespace)
    node = ""
    try:
        node, uid = _crash_until_terminating(kubesim_cluster, namespace, "vol-0")
        api.delete("pods", "vol-0", namespace, grace_period_seconds=0)
        if moves:
            moved = ks.await_value("vol-0 Ready on another node", lambda: kc.pod_or_none(api, namespace, "vol-0"),
                                   lambda p: kc.is_ready(p) and p["metadata"]["uid"] != uid, timeout=40)
            assert moved["spec"]["nodeName"] != node
            return
        pending = ks.await_value("vol-0 recreated", lambda: kc.pod_or_none(api, namespace, "vol-0"),
                                 lambda p: p is not None and p["metadata"]["uid"] != uid, timeout=20)
        ks.await_value("FailedScheduling for the pinned volume",
                       lambda: ks.events_for(api, namespace, "vol-0", pending["metadata"]["uid"]),
                       lambda evs: any(reason == "FailedScheduling" for _t, reason, _m in evs), timeout=15)
        again = api.get("pods", "vol-0", namespace)
        assert again["metadata"]["uid"] == pending["metadata"]["uid"]
        assert not again["spec"].get("nodeName"), f"local-path pod scheduled away from {node}"
        assert again["status"].get("phase") == "Pending"
        kubesim_cluster.run("node", "restore", node)
        node_back = node
        node = ""
        back = kc.await_ready(api, namespace, "vol-0", timeout=40)
        assert back["spec"]["nodeName"] == node_back
    finally:
        if node:
            kubesim_cluster.run("node", "restore", node, check=False)
