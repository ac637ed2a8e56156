"""D2, D3: node lifecycle and taint eviction controllers against a real API server, with scripted heartbeats.

Periods are shortened (grace 1.5 s, default tolerations 2 s); everything is observed through the API.
"""

from __future__ import annotations

import time

import k4_support as ks
from k4_fixtures import ControlPlane, force_delete_all_pods, k4_controlplane, k4_namespace, running_pod

from kubesim import client
from kubesim.controllers import nodelifecycle_logic as nl

__all__ = ["k4_controlplane", "k4_namespace"]  # fixtures used by name below


def _node(api: client.Client, name: str) -> ks.Obj:
    return api.get("nodes", name)


def test_silent_node_goes_unknown_tainted_pods_not_ready_then_evicted_and_left_terminating(
        k4_controlplane: ControlPlane, k4_namespace: str) -> None:
    """D2: Unknown after the grace, unreachable taints, pods not Ready, deleted after the toleration, stay
    Terminating without a kubelet; heartbeats resume → taints removed."""
    api = k4_controlplane.api
    kubelet = k4_controlplane.node()
    pod = running_pod(api, k4_namespace, "victim", kubelet.name)
    tolerations = pod["spec"]["tolerations"]
    assert {(t["key"], t.get("tolerationSeconds")) for t in tolerations} >= {
        (nl.TAINT_UNREACHABLE, 2), (nl.TAINT_NOT_READY, 2)}, "admission should add the default tolerations"
    assert ks.taint_keys(_node(api, kubelet.name)) == set()

    kubelet.crash()
    crashed = time.monotonic()
    node = ks.await_value("node Ready=Unknown", lambda: _node(api, kubelet.name),
                          lambda n: (ks.condition(n, "Ready") or {}).get("status") == "Unknown", timeout=6)
    went_unknown = time.monotonic() - crashed
    ready = ks.condition(node, "Ready")
    assert ready is not None
    assert (ready["reason"], ready["message"]) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert went_unknown >= 1.0, f"node went Unknown {went_unknown:.2f}s after its last heartbeat, before the grace"
    ks.await_value("unreachable taints", lambda: ks.taint_keys(_node(api, kubelet.name)),
                   lambda keys: {(nl.TAINT_UNREACHABLE, "NoExecute"), (nl.TAINT_UNREACHABLE, "NoSchedule")} <= keys,
                   timeout=5)
    ks.await_value("pod Ready=False", lambda: api.get("pods", "victim", k4_namespace),
                   lambda p: (ks.condition(p, "Ready") or {}).get("status") == "False", timeout=5)
    ks.await_value("NodeNotReady events", lambda: ks.events_for(api, k4_namespace, "victim")
                   + ks.events_for(api, "default", kubelet.name),
                   lambda evs: ("Warning", "NodeNotReady", "Node is not ready") in evs and (
                       "Normal", "NodeNotReady", f"Node {kubelet.name} status is now: NodeNotReady") in evs,
                   timeout=5)

    deleted = ks.await_value("taint eviction (deletionTimestamp)", lambda: api.get("pods", "victim", k4_namespace),
                             lambda p: bool(p["metadata"].get("deletionTimestamp")), timeout=8)
    assert time.monotonic() - crashed >= 1.5 + 2 - 0.5, "evicted before grace + tolerationSeconds"
    target = ks.condition(deleted, "DisruptionTarget")
    assert target is not None
    assert (target["status"], target["reason"], target["message"]) == (
        "True", "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
    ks.await_value("TaintManagerEviction event", lambda: ks.events_for(api, k4_namespace, "victim"),
                   lambda evs: ("Normal", "TaintManagerEviction", f"Marking for deletion Pod {k4_namespace}/victim")
                   in evs, timeout=5)
    assert api.get("pods", "victim", k4_namespace)["metadata"]["deletionTimestamp"], "no kubelet: stays Terminating"

    kubelet.restore()
    ks.await_value("taints removed after heartbeats resume", lambda: ks.taint_keys(_node(api, kubelet.name)),
                   lambda keys: keys == set(), timeout=5)
    force_delete_all_pods(api, k4_namespace)


def test_node_reporting_not_ready_gets_not_ready_taints_that_swap_to_unreachable_when_silent(
        k4_controlplane: ControlPlane) -> None:
    """D2: kubelet says Ready=False → not-ready NoExecute/NoSchedule; then silence → unreachable (exclusive)."""
    api = k4_controlplane.api
    kubelet = k4_controlplane.node()
    kubelet.post_ready("False")
    ks.await_value("not-ready taints", lambda: ks.taint_keys(_node(api, kubelet.name)),
                   lambda keys: keys == {(nl.TAINT_NOT_READY, "NoExecute"), (nl.TAINT_NOT_READY, "NoSchedule")},
                   timeout=5)
    kubelet.crash()
    ks.await_value("unreachable taints replace not-ready ones", lambda: ks.taint_keys(_node(api, kubelet.name)),
                   lambda keys: keys == {(nl.TAINT_UNREACHABLE, "NoExecute"), (nl.TAINT_UNREACHABLE, "NoSchedule")},
                   timeout=6)
    kubelet.restore()
    ks.await_value("taints removed", lambda: ks.taint_keys(_node(api, kubelet.name)), lambda keys: keys == set(),
                   timeout=5)


def test_cordon_adds_the_unschedulable_taint_and_uncordon_removes_it(k4_controlplane: ControlPlane) -> None:
    """D3: spec.unschedulable mirrored to node.kubernetes.io/unschedulable:NoSchedule (TaintNodesByCondition)."""
    api = k4_controlplane.api
    kubelet = k4_controlplane.node()
    api.patch("nodes", kubelet.name, {"spec": {"unschedulable": True}}, patch_type="strategic")
    node = ks.await_value("unschedulable taint", lambda: _node(api, kubelet.name),
                          lambda n: (nl.TAINT_UNSCHEDULABLE, "NoSchedule") in ks.taint_keys(n), timeout=5)
    taint = next(t for t in node["spec"]["taints"] if t["key"] == nl.TAINT_UNSCHEDULABLE)
    assert taint.get("timeAdded"), "node-controller taints carry timeAdded"
    api.patch("nodes", kubelet.name, {"spec": {"unschedulable": False}}, patch_type="strategic")
    ks.await_value("unschedulable taint removed", lambda: ks.taint_keys(_node(api, kubelet.name)),
                   lambda keys: keys == set(), timeout=5)


def test_no_execute_taint_evicts_intolerant_pods_at_once_and_tolerating_pods_after_their_seconds(
        k4_controlplane: ControlPlane, k4_namespace: str) -> None:
    """D2 (tainteviction): untolerated → deleted now; tolerationSeconds → later; forever → stays; removing the
    taint before the time cancels the deletion with an event."""
    api = k4_controlplane.api
    kubelet = k4_controlplane.node()
    taint = {"key": "example.com/drain", "value": "yes", "effect": "NoExecute"}
    running_pod(api, k4_namespace, "intolerant", kubelet.name)
    running_pod(api, k4_namespace, "brief", kubelet.name, tolerations=[
        {"key": "example.com/drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}])
    running_pod(api, k4_namespace, "forever", kubelet.name, tolerations=[
        {"key": "example.com/drain", "operator": "Equal", "value": "yes"}])
    running_pod(api, k4_namespace, "patient", kubelet.name, tolerations=[
        {"key": "example.com/drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}])
    api.patch("nodes", kubelet.name, {"spec": {"taints": [taint]}}, patch_type="merge")
    tainted = time.monotonic()

    def terminating(name: str) -> bool:
        return bool(api.get("pods", name, k4_namespace)["metadata"].get("deletionTimestamp"))

    ks.await_value("intolerant pod deleted", lambda: terminating("intolerant"), bool, timeout=3)
    ks.await_value("brief pod deleted", lambda: terminating("brief"), bool, timeout=5)
    assert time.monotonic() - tainted >= 0.9, "tolerationSeconds 1 was not honoured"
    assert not terminating("forever")
    assert not terminating("patient")
    api.patch("nodes", kubelet.name, {"spec": {"taints": None}}, patch_type="merge")
    ks.await_value("cancellation event", lambda: ks.events_for(api, k4_namespace, "patient"),
                   lambda evs: ("Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {k4_namespace}/patient")
                   in evs, timeout=5)
    assert not terminating("patient")


def test_all_nodes_silent_is_full_disruption_without_no_execute_taints(k4_controlplane: ControlPlane) -> None:
    """D2 (handleDisruption): when no node is Ready the controller blames itself and adds no NoExecute taints."""
    api = k4_controlplane.api
    for kubelet in k4_controlplane.kubelets:
        kubelet.crash()
    try:
        names = [k.name for k in k4_controlplane.kubelets]
        ks.await_value("every node Unknown", lambda: [ks.condition(_node(api, n), "Ready") for n in names],
                       lambda conds: all((c or {}).get("status") == "Unknown" for c in conds), timeout=8)
        ks.await_value("no NoExecute taints in full disruption",
                       lambda: [ks.taint_keys(_node(api, n)) for n in names],
                       lambda sets: all(not any(effect == "NoExecute" for _k, effect in s) for s in sets), timeout=5)
        assert all((nl.TAINT_UNREACHABLE, "NoSchedule") in ks.taint_keys(_node(api, n)) for n in names)
    finally:
        for kubelet in k4_controlplane.kubelets:
            kubelet.restore()
