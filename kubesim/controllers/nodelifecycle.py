"""Node lifecycle controller (D2, D3): heartbeats → Ready condition, node-controller taints, pods not Ready.

The decisions are in :mod:`kubesim.controllers.nodelifecycle_logic`; this module wires them to the
cluster. Upstream runs ``monitorNodeHealth`` over all nodes every ``--node-monitor-period``; here
each node is its own key, re-checked when its Node or Lease changes, when one of its pods changes,
and — instead of a polling loop — at the moment its grace period would run out (``add_after``),
capped by the node monitor period so disruption-mode changes are noticed as upstream would.

Writes, all with the object's resourceVersion (a stale cache answers 409 and the key is retried):
``nodes/status`` (conditions → Unknown), ``nodes`` (``spec.taints``), ``pods/status`` (Ready False).
Events as upstream: ``NodeNotReady`` on the Node ("Node X status is now: NodeNotReady") when Ready
leaves True, and a Warning ``NodeNotReady`` "Node is not ready" on every pod marked not Ready.
"""

from __future__ import annotations

import copy
import datetime
import logging
import threading
import time
from typing import Any

from kubesim import client
from kubesim.controllers import nodelifecycle_logic as logic
from kubesim.controllers import runtime

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.nodelifecycle")

POD_NODE_INDEX = "nodelifecycle:spec.nodeName"
_MIN_RECHECK = 0.05


def _pod_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


class NodeLifecycleController:
    """Keys are node names."""

    name = "nodelifecycle"

    def __init__(self) -> None:
        self._health: dict[str, logic.NodeHealth] = {}
        self._lock = threading.Lock()
        self._all_down = False

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component("node-controller")
        self.nodes = mgr.informer("nodes")
        self.leases = mgr.informer("leases", logic.NODE_LEASE_NAMESPACE)
        self.pods = mgr.informer("pods")
        self.pods.add_index(POD_NODE_INDEX, _pod_node)
        self.nodes.add_handler(on_add=self._enqueue_node, on_update=self._node_updated,
                               on_delete=self._forget_node)
        self.leases.add_handler(on_add=self._enqueue_named, on_update=lambda _old, new: self._enqueue_named(new))
        self.pods.add_handler(on_add=self._enqueue_pod_node, on_update=self._pod_updated)

    # ----- event handlers -------------------------------------------------------------------------

    def _enqueue_node(self, node: Obj) -> None:
        self.mgr.enqueue(self, str(node["metadata"]["name"]))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self._enqueue_node(new)
        if logic.ready_status(old) != logic.ready_status(new):  # the disruption mode of the others may change
            for other in self.nodes.list():
                self._enqueue_node(other)

    def _enqueue_named(self, lease: Obj) -> None:
        self.mgr.enqueue(self, str(lease["metadata"]["name"]))

    def _forget_node(self, node: Obj) -> None:
        with self._lock:
            self._health.pop(str(node["metadata"]["name"]), None)
        for other in self.nodes.list():  # a node fewer can change the disruption mode of the rest
            self._enqueue_node(other)

    def _enqueue_pod_node(self, pod: Obj) -> None:
        for node in _pod_node(pod):
            self.mgr.enqueue(self, node)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _pod_node(old) != _pod_node(new) or logic.condition(
                (new.get("status") or {}).get("conditions"), "Ready") != logic.condition(
                (old.get("status") or {}).get("conditions"), "Ready"):
            self._enqueue_pod_node(new)

    # ----- reconcile ------------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        cached = self.nodes.get("", key)
        if cached is None:
            with self._lock:
                self._health.pop(key, None)
            return None
        node = copy.deepcopy(cached)
        settings = self.mgr.settings
        now_mono = time.monotonic()
        now_wall = datetime.datetime.now(datetime.UTC)
        with self._lock:
            saved = self._health.get(key)
        assessment = logic.assess_health(node, self.leases.get(logic.NODE_LEASE_NAMESPACE, key), saved,
                                         now_mono=now_mono, now_wall=now_wall, grace=settings.node_monitor_grace,
                                         startup_grace=settings.node_startup_grace)
        if assessment.conditions_to_write is not None:
            node.setdefault("status", {})["conditions"] = assessment.conditions_to_write
            node = self.api.update("nodes", node, subresource="status")
            log.info("node %s: no heartbeat for %.1fs; Ready is now Unknown", key,
                     now_mono - assessment.health.probe_timestamp)
        with self._lock:
            self._health[key] = assessment.health
        current = str((assessment.current_ready or {}).get("status") or "Unknown")
        if current != "True" and assessment.observed_ready.get("status") == "True":
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {key} status is now: NodeNotReady")
        node = self._taint(node, now_wall)
        if current != "True":
            self._mark_pods_not_ready(key, now_wall)
        until_silent = assessment.deadline - time.monotonic() + _MIN_RECHECK
        delay = settings.node_monitor_period
        if until_silent > 0:
            delay = max(_MIN_RECHECK, min(until_silent, settings.node_monitor_period))
        return delay

    def _taint(self, node: Obj, now_wall: datetime.datetime) -> Obj:
        """The NoSchedule pass (conditions, cordon) and the NoExecute pass (not-ready / unreachable)."""
        taints = logic.reconcile_no_schedule_taints(node, now_wall)
        if taints is not None:
            node["spec"] = {**(node.get("spec") or {}), "taints": taints}
        modes, all_down = logic.eviction_modes(self.nodes.list())
        mode = modes.get(logic.zone_key(node), logic.EvictionMode(adding_allowed=True, remove_all=False))
        if all_down != self._all_down:
            self._all_down = all_down
            log.info("every node is not Ready: assuming the control plane is cut off, removing NoExecute taints"
                     if all_down else "some node is Ready again: NoExecute tainting resumes")
        add, remove = logic.wanted_no_execute(node, adding_allowed=mode.adding_allowed, remove_all=mode.remove_all)
        if add or remove:
            spec = node.get("spec") or {}
            node["spec"] = {**spec, "taints": logic.swap_taints(spec.get("taints") or [], add, remove, now_wall)}
        if taints is None and not add and not remove:
            return node
        if not node["spec"]["taints"]:
            node["spec"].pop("taints")
        updated = self.api.update("nodes", node)
        log.info("node %s: taints now %s", node["metadata"]["name"],
                 [f"{t['key']}:{t['effect']}" for t in node["spec"].get("taints") or []])
        return updated

    def _mark_pods_not_ready(self, node_name: str, now_wall: datetime.datetime) -> None:
        for pod in self.pods.by_index(POD_NODE_INDEX, node_name):
            conditions = logic.pod_not_ready_conditions(pod, now_wall)
            if conditions is None:
                continue
            updated = copy.deepcopy(pod)
            updated.setdefault("status", {})["conditions"] = conditions
            try:
                self.api.update("pods", updated, subresource="status")
            except client.NotFound:
                continue
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")


def new() -> NodeLifecycleController:
    return NodeLifecycleController()
