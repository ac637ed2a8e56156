"""kube-scheduler, small (D1): one pod at a time, decisions from `scheduler_plugins`, bind via pods/binding.

The cycle mirrors `pkg/scheduler/schedule_one.go`:

* a pending pod (`spec.nodeName` empty, `schedulerName: default-scheduler`, not terminating) is
  filtered (including NodeResourcesFit: requests against allocatable minus what the node's pods
  request) and scored (`scheduler_plugins.schedule`);
* no feasible node: a Warning `FailedScheduling` event with the FitError text and the
  `PodScheduled=False` condition, reason `Unschedulable`, same message; the pod is retried when
  something that could make it schedulable changes (a node added/removed or its schedulability
  changed, a pod leaving a node, a claim/PV/StorageClass change — upstream's cluster events) and at
  the latest after `UNSCHEDULABLE_FLUSH` (upstream's podMaxInUnschedulablePodsDuration), with the
  per-pod back-off upstream's backoffQ applies (1 s doubling to 10 s) between attempts;
* a feasible node: the volume plan is carried out first (Reserve/PreBind of VolumeBinding): claims
  needing provisioning get `volume.kubernetes.io/selected-node`, static matches are pre-bound, and
  the pod is held as *assumed* on the node until the volume controllers report every claim bound
  (re-checked on claim/PV events; given up after `BIND_TIMEOUT`, upstream's bindTimeoutSeconds);
  then `POST pods/<name>/binding` and the Normal event `Scheduled` ("Successfully assigned ns/pod
  to node"). Assumed pods count on their node for spreading, host ports and the shared-volume rule
  until the pod informer shows them bound, like the scheduler cache's assumed pods.

Ties between equally loaded nodes break by node name (upstream picks randomly among the best).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from kubesim import client
from kubesim.controllers import runtime
from kubesim.controllers import scheduler_plugins as sp
from kubesim.controllers import volumes_binder as vb
from kubesim.controllers import volumes_common as vc

log = logging.getLogger("kubesim.controllers.scheduler")

Obj = dict[str, Any]
COMPONENT = vc.DEFAULT_SCHEDULER
INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_FLUSH = 300.0
BIND_TIMEOUT = 600.0
VOLUME_RECHECK = 5.0


@dataclasses.dataclass
class _Assumed:
    uid: str
    node: str
    since: float
    bound: bool = False
    """True once the binding POST succeeded (kept until the informer shows spec.nodeName)."""


def node_schedulability(node: Mapping[str, Any]) -> tuple[object, ...]:
    """What of a node the filters read; heartbeat-only updates leave it unchanged (no retry storm).

    Allocatable is part of it: a node that grows (or a kubelet restarted with another size) can fit
    pods that were Insufficient before (upstream's UpdateNodeAllocatable event).
    """
    taints = tuple(sorted((str(t.get("key")), str(t.get("value")), str(t.get("effect")))
                          for t in vc.spec(node).get("taints") or []))
    allocatable = vc.status(node).get("allocatable")
    sizes = tuple(sorted((str(k), str(v)) for k, v in allocatable.items())) if isinstance(allocatable, Mapping) else ()
    return (bool(vc.spec(node).get("unschedulable")), taints, tuple(sorted(vc.labels(node).items())),
            sp.node_ready_status(node), sizes)


def is_pending(pod: Mapping[str, Any]) -> bool:
    return (not vc.pod_node(pod) and not vc.is_deleting(pod) and not vc.pod_is_terminal(pod)
            and (vc.spec(pod).get("schedulerName") or vc.DEFAULT_SCHEDULER) == vc.DEFAULT_SCHEDULER)


class Scheduler:
    name = "scheduler"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component(COMPONENT)
        self.pods = mgr.informer("pods")
        self.nodes = mgr.informer("nodes")
        self.claims = mgr.informer("persistentvolumeclaims")
        self.volumes = mgr.informer("persistentvolumes")
        self.classes = mgr.informer("storageclasses")
        self._lock = threading.Lock()
        self._assumed: dict[str, _Assumed] = {}
        self._attempts: dict[str, tuple[int, float]] = {}
        """pod key -> (failed attempts, monotonic time the next attempt is allowed)."""
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.nodes.add_handler(on_add=lambda _n: self._all_pending(), on_update=self._node_updated,
                               on_delete=lambda _n: self._all_pending())
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda _o, n: self._claim_changed(n),
                                on_delete=self._claim_changed)
        self.volumes.add_handler(on_add=lambda _v: self._all_pending(), on_update=lambda _o, _n: self._all_pending(),
                                 on_delete=lambda _v: self._all_pending())
        self.classes.add_handler(on_add=lambda _c: self._all_pending())

    # ----- event handlers (upstream's cluster events that move unschedulable pods) ---------------

    def _pod_added(self, pod: Obj) -> None:
        if is_pending(pod):
            self.mgr.enqueue(self, vc.key_of(pod))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = vc.key_of(new)
        if vc.pod_node(new):
            with self._lock:
                assumed = self._assumed.get(key)
                if assumed is not None and assumed.uid == vc.uid_of(new):
                    del self._assumed[key]
                self._attempts.pop(key, None)
        if is_pending(new):
            self.mgr.enqueue(self, key)
        elif vc.pod_node(new) and not vc.pod_is_terminal(old) and vc.pod_is_terminal(new):
            self._all_pending()  # a finished pod frees its host ports and its exclusive volume

    def _pod_deleted(self, pod: Obj) -> None:
        key = vc.key_of(pod)
        with self._lock:
            assumed = self._assumed.get(key)
            if assumed is not None and assumed.uid == vc.uid_of(pod):
                del self._assumed[key]
            self._attempts.pop(key, None)
        if vc.pod_node(pod):
            self._all_pending()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if node_schedulability(old) != node_schedulability(new):
            self._all_pending()

    def _claim_changed(self, claim: Obj) -> None:
        ns, name = vc.namespace_of(claim), vc.name_of(claim)
        for pod in self.pods.list(ns):
            if (is_pending(pod) or vc.key_of(pod) in self._assumed) and name in vc.pod_claim_names(pod):
                self.mgr.enqueue(self, vc.key_of(pod))

    def _all_pending(self) -> None:
        for pod in self.pods.list():
            if is_pending(pod):
                self.mgr.enqueue(self, vc.key_of(pod))

    # ----- the scheduling cycle -------------------------------------------------------------------

    def _view(self) -> sp.ClusterView:
        with self._lock:
            assumed = {k: a.node for k, a in self._assumed.items()}
        classes = {vc.name_of(sc): vc.ClassInfo.from_obj(sc) for sc in self.classes.list()}
        return sp.ClusterView(
            nodes=self.nodes.list(), pods=self.pods.list(),
            claims={(vc.namespace_of(c), vc.name_of(c)): c for c in self.claims.list()},
            volumes={vc.name_of(v): v for v in self.volumes.list()}, classes=classes, assumed=assumed)

    def reconcile(self, key: str) -> float | None:
        pod = self.pods.get_key(key)
        if pod is None or not is_pending(pod):
            return None
        with self._lock:
            assumed = self._assumed.get(key)
            if assumed is not None and assumed.uid != vc.uid_of(pod):
                del self._assumed[key]
                assumed = None
            attempts, not_before = self._attempts.get(key, (0, 0.0))
        if assumed is not None:
            if assumed.bound:
                return None  # bound; waiting for the informer to show it
            return self._continue_prebind(pod, assumed)
        wait = not_before - time.monotonic()
        if wait > 0:
            return wait
        decision = sp.schedule(pod, self._view())
        if decision.node is None:
            return self._unschedulable(pod, decision.message, attempts)
        return self._reserve(pod, decision)

    def _unschedulable(self, pod: Obj, message: str, attempts: int) -> float:
        key = vc.key_of(pod)
        backoff = min(INITIAL_BACKOFF * (2 ** attempts), MAX_BACKOFF)
        with self._lock:
            self._attempts[key] = (attempts + 1, time.monotonic() + backoff)
        log.info("pod %s unschedulable: %s", key, message)
        self.recorder.warning(pod, "FailedScheduling", message)
        self._set_condition(pod, message)
        return UNSCHEDULABLE_FLUSH

    def _set_condition(self, pod: Obj, message: str) -> None:
        """PodScheduled=False/Unschedulable, written only when it changes (upstream's updatePod)."""
        for cond in vc.status(pod).get("conditions") or []:
            if (cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                    and cond.get("reason") == "Unschedulable" and cond.get("message") == message):
                return
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None, "lastTransitionTime": vb.now()}
        with contextlib.suppress(client.NotFound):
            self.api.patch("pods", vc.name_of(pod), {"status": {"conditions": [condition]}}, vc.namespace_of(pod),
                           patch_type="strategic", subresource="status")

    def _reserve(self, pod: Obj, decision: sp.Decision) -> float | None:
        assert decision.node is not None
        key, node = vc.key_of(pod), decision.node
        plan = decision.plan
        if plan.all_bound:
            return self._bind(pod, node)
        with self._lock:
            self._assumed[key] = _Assumed(vc.uid_of(pod), node, time.monotonic())
        ns = vc.namespace_of(pod)
        try:
            for claim_name in plan.provision:
                claim = self.claims.get(ns, claim_name)
                self.api.patch("persistentvolumeclaims", claim_name, {"metadata": {
                    "resourceVersion": vc.meta(claim or {}).get("resourceVersion"),
                    "annotations": {vc.ANN_SELECTED_NODE: node}}}, ns)
                log.info("pod %s: claim %s/%s will be provisioned on %s", key, ns, claim_name, node)
            for claim_name, pv_name in plan.static:
                self._prebind(ns, claim_name, pv_name)
        except client.ApiError:
            with self._lock:
                self._assumed.pop(key, None)  # Unreserve: the next attempt decides afresh
            raise
        return VOLUME_RECHECK

    def _prebind(self, ns: str, claim_name: str, pv_name: str) -> None:
        """GetBindVolumeToClaim + the PV update of BindPodVolumes; the binder completes the claim side."""
        claim = self.claims.get(ns, claim_name)
        pv = self.volumes.get("", pv_name)
        if claim is None or pv is None:
            raise client.Conflict(409, "Conflict", f"claim {ns}/{claim_name} or volume {pv_name} vanished")
        updated = dict(pv)
        updated["spec"] = {**vc.spec(pv), "claimRef": vb.claim_ref(claim)}
        annotations = {**vc.annotations_of(pv), vc.ANN_BOUND_BY_CONTROLLER: "yes"}
        updated["metadata"] = {**vc.meta(pv), "annotations": annotations}
        self.api.update("persistentvolumes", updated)

    def _continue_prebind(self, pod: Obj, assumed: _Assumed) -> float | None:
        """PreBind: bind the pod once every claim is fully bound and still fits the assumed node."""
        key = vc.key_of(pod)
        view = self._view()
        claims = sp.pod_claims(pod, view)
        node = next((n for n in view.nodes if vc.name_of(n) == assumed.node), None)
        ready = claims.error is None and not claims.delayed and node is not None
        if ready and node is not None and sp.filter_volume_binding(node, claims, view) is None:
            return self._bind(pod, assumed.node)
        reset = [vc.name_of(c) for c in claims.delayed
                 if vc.annotations_of(c).get(vc.ANN_SELECTED_NODE) != assumed.node]
        if claims.error is not None or node is None or reset or time.monotonic() - assumed.since > BIND_TIMEOUT:
            with self._lock:
                self._assumed.pop(key, None)
            if claims.error is not None:
                reason = claims.error
            elif node is None:
                reason = f'node "{assumed.node}" not found'
            elif reset:
                # checkBindings: the provisioner gave the claim back (e.g. its node vanished).
                reason = f'binding volumes: selectedNode annotation reset for PVC "{reset[0]}"'
            else:
                reason = "binding volumes: context deadline exceeded"
            log.info("pod %s: giving up waiting for volumes on %s: %s", key, assumed.node, reason)
            self.recorder.warning(pod, "FailedScheduling", f"running PreBind plugin \"VolumeBinding\": {reason}")
            return INITIAL_BACKOFF
        return VOLUME_RECHECK

    def _bind(self, pod: Obj, node: str) -> float | None:
        key, ns, name = vc.key_of(pod), vc.namespace_of(pod), vc.name_of(pod)
        with self._lock:
            self._assumed[key] = _Assumed(vc.uid_of(pod), node, time.monotonic(), bound=True)
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns,
                                                                   "uid": vc.uid_of(pod)},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            self.api.post_subresource("pods", name, ns, "binding", body)
        except (client.Conflict, client.NotFound) as exc:
            log.info("pod %s: binding to %s refused: %s", key, node, exc.message)
            with self._lock:
                self._assumed.pop(key, None)
            return None
        except client.ApiError:
            with self._lock:
                self._assumed.pop(key, None)
            raise
        with self._lock:
            self._attempts.pop(key, None)
        log.info("pod %s bound to %s", key, node)
        self.recorder.normal(pod, "Scheduled", f"Successfully assigned {ns}/{name} to {node}")
        return None


def new_scheduler() -> Scheduler:
    return Scheduler()
