"""Taint eviction controller (D2): deletes pods from nodes with NoExecute taints they do not tolerate.

Decisions in :mod:`kubesim.controllers.tainteviction_logic`. Keys: a node name (its NoExecute
taints changed: re-plan every pod on it) or ``namespace/name`` of a pod (added, deleted, moved to a
node, tolerations changed, or its scheduled eviction is due — ``add_after`` replaces upstream's
TimedWorkerQueue). Scheduled evictions live in memory, like upstream: a restarted control plane
starts the toleration clock again.

When an eviction fires: event ``TaintManagerEviction`` "Marking for deletion Pod ns/name", the
pod's ``DisruptionTarget`` condition (reason ``DeletionByTaintManager``) is patched in, and the pod
is deleted with default options. On an unreachable node no kubelet confirms the deletion, so the
pod stays Terminating until the node returns or someone force-deletes it (B4).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kubesim import client, timestamps
from kubesim.controllers import runtime
from kubesim.controllers import tainteviction_logic as logic

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.tainteviction")

POD_NODE_INDEX = "tainteviction:spec.nodeName"


def _pod_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []


def _pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


_now = timestamps.now


class TaintEvictionController:
    name = "tainteviction"

    def __init__(self) -> None:
        self._scheduled: dict[str, logic.Scheduled] = {}
        self._lock = threading.Lock()

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component("taint-eviction-controller")
        self.nodes = mgr.informer("nodes")
        self.pods = mgr.informer("pods")
        self.pods.add_index(POD_NODE_INDEX, _pod_node)
        self.nodes.add_handler(on_add=self._node_changed, on_update=self._node_updated, on_delete=self._node_changed)
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)

    # ----- handlers (NodeUpdated / PodUpdated) ------------------------------------------------------

    def _node_changed(self, node: Obj) -> None:
        self.mgr.enqueue(self, str(node["metadata"]["name"]))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if logic.no_execute_taints(old) != logic.no_execute_taints(new):
            self._node_changed(new)

    def _pod_changed(self, pod: Obj) -> None:
        self.mgr.enqueue(self, _pod_key(pod))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if (_pod_node(old) != _pod_node(new)
                or (old.get("spec") or {}).get("tolerations") != (new.get("spec") or {}).get("tolerations")):
            self._pod_changed(new)

    # ----- reconcile ------------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        if "/" in key:
            return self._reconcile_pod(key)
        self._reconcile_node(key)
        return None

    def _reconcile_node(self, node_name: str) -> None:
        node = self.nodes.get("", node_name)
        taints = logic.no_execute_taints(node)
        now = time.monotonic()
        for pod in self.pods.by_index(POD_NODE_INDEX, node_name):
            delay = self._process(pod, taints, now)
            if delay is not None:
                self.mgr.enqueue_after(self, _pod_key(pod), delay)

    def _reconcile_pod(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        pod = self.pods.get(ns, name)
        if pod is None:
            self._cancel(key, ns, name)
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            self._cancel(key, ns, name)
            return None
        return self._process(pod, logic.no_execute_taints(self.nodes.get("", str(node_name))), time.monotonic())

    def _process(self, pod: Obj, taints: list[Obj], now: float) -> float | None:
        """processPodOnNode (+ firing a due eviction); returns seconds until the next look, if any."""
        key = _pod_key(pod)
        meta = pod.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        if meta.get("deletionTimestamp"):
            # Already being deleted: a second delete could only repeat the same grace, so just forget it.
            with self._lock:
                self._scheduled.pop(key, None)
            return None
        with self._lock:
            existing = self._scheduled.get(key)
        plan = logic.plan_for_pod((pod.get("spec") or {}).get("tolerations") or [], taints, existing, now)
        if plan.action == "cancel":
            self._cancel(key, ns, name)
            return None
        if plan.action == "evict_now" or (plan.scheduled is not None and plan.scheduled.fire_at <= now):
            self._evict(key, ns, name)
            return None
        assert plan.scheduled is not None
        with self._lock:
            self._scheduled[key] = plan.scheduled
        if plan.action == "schedule":
            log.info("pod %s on a NoExecute-tainted node: eviction in %.1fs", key, plan.scheduled.fire_at - now)
        return max(0.0, plan.scheduled.fire_at - now)

    def _cancel(self, key: str, ns: str, name: str) -> None:
        with self._lock:
            had = self._scheduled.pop(key, None)
        if had is not None:
            self.recorder.event(_ref(ns, name), "Normal", logic.EVICTION_REASON, f"Cancelling deletion of Pod {key}")

    def _evict(self, key: str, ns: str, name: str) -> None:
        """deletePodHandler: event, DisruptionTarget condition, delete."""
        with self._lock:
            self._scheduled.pop(key, None)
        log.info("deleting pod %s: NoExecute taint not tolerated (any more)", key)
        self.recorder.event(_ref(ns, name), "Normal", logic.EVICTION_REASON, f"Marking for deletion Pod {key}")
        condition = {"type": "DisruptionTarget", "status": "True", "reason": logic.DISRUPTION_REASON,
                     "message": logic.DISRUPTION_MESSAGE, "lastTransitionTime": _now()}
        try:
            current = self.api.get("pods", name, ns)
            has = any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                      and c.get("reason") == logic.DISRUPTION_REASON
                      for c in (current.get("status") or {}).get("conditions") or [])
            if not has:
                self.api.patch("pods", name, {"status": {"conditions": [condition]}}, ns, patch_type="strategic",
                               subresource="status")
            self.api.delete("pods", name, ns)
        except client.NotFound:
            return


def _ref(ns: str, name: str) -> Obj:
    """The ObjectReference upstream builds for its events (kind, apiVersion, name, namespace; no uid)."""
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns}}


def new() -> TaintEvictionController:
    return TaintEvictionController()
