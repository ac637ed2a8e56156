"""Disruption controller (D4): keeps every PodDisruptionBudget's status current.

The eviction subresource (``kubesim.apiserver.eviction``) decides from this status alone and, in
the same write, spends one allowed disruption and records the pod in ``disruptedPods`` — so two
quick evictions cannot both pass before this controller has seen the first deletion. This
controller then recomputes the status from its caches (arithmetic in
:mod:`kubesim.controllers.disruption_logic`) and writes ``poddisruptionbudgets/status`` with the
resourceVersion it read, so a status the eviction handler changed meanwhile is never overwritten
(409 → retried with the fresh object).

Controllers whose scale counts: StatefulSets (``spec.replicas``, the only scalable workload kubesim
serves). A pod owned by anything else makes percentage / maxUnavailable budgets fail safe
(``disruptionsAllowed: 0``, condition reason ``SyncFailed``), as upstream does when no finder
knows the owner. A second controller, ``disruption-stale-pods``, resets a ``DisruptionTarget``
condition left on a pod that was not deleted within two minutes (stalePodDisruptionWorker).
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from kubesim import client
from kubesim.apiserver import selectors
from kubesim.controllers import disruption_logic as logic
from kubesim.controllers import runtime

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.disruption")


def _selector(pdb: Obj) -> selectors.LabelSelector:
    try:
        return selectors.label_selector_from_api((pdb.get("spec") or {}).get("selector"))
    except selectors.SelectorError:
        return selectors.NOTHING


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class DisruptionController:
    """Keys are ``namespace/name`` of PodDisruptionBudgets."""

    name = "disruption"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component("controllermanager")
        self.pdbs = mgr.informer("poddisruptionbudgets")
        self.pods = mgr.informer("pods")
        self.sets = mgr.informer("statefulsets")
        self.pdbs.add_handler(on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new),
                              on_delete=self._enqueue)
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda _old, new: self._pod_changed(new),
                              on_delete=self._pod_changed)
        self.sets.add_handler(on_add=self._set_changed, on_update=self._set_updated)

    def _enqueue(self, pdb: Obj) -> None:
        self.mgr.enqueue(self, _key(pdb))

    def _pdbs_for(self, pod: Obj) -> list[Obj]:
        """GetPodPodDisruptionBudgets: budgets in the pod's namespace whose (non-empty) selector matches it."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        out = []
        for pdb in self.pdbs.list(namespace=str(meta.get("namespace") or "")):
            sel = _selector(pdb)
            if not sel.empty and sel.matches(labels):
                out.append(pdb)
        return out

    def _pod_changed(self, pod: Obj) -> None:
        matching = self._pdbs_for(pod)
        if len(matching) > 1:
            names = sorted(str(p["metadata"]["name"]) for p in matching)
            meta = pod["metadata"]
            msg = (f'Pod "{meta.get("namespace")}"/"{meta.get("name")}" matches multiple PodDisruptionBudgets.  '
                   f'Chose "{names[0]}" arbitrarily.')
            self.recorder.event(pod, "Warning", "MultiplePodDisruptionBudgets", msg)
        for pdb in matching[:1]:
            self._enqueue(pdb)

    def _set_changed(self, sts: Obj) -> None:
        for pdb in self.pdbs.list(namespace=str(sts["metadata"].get("namespace") or "")):
            self._enqueue(pdb)

    def _set_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("spec") or {}).get("replicas") != (new.get("spec") or {}).get("replicas"):
            self._set_changed(new)

    def _find_scale(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """getPodStatefulSet: the owning StatefulSet's uid and spec.replicas (None if not ours / gone)."""
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        if ref.get("kind") != "StatefulSet" or group != "apps":
            return None
        sts = self.sets.get(namespace, str(ref.get("name")))
        if sts is None or (sts.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        replicas = (sts.get("spec") or {}).get("replicas")
        return str(ref.get("uid")), int(1 if replicas is None else replicas)

    def reconcile(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        pdb = self.pdbs.get(ns, name)
        if pdb is None:
            return None
        now = datetime.datetime.now(datetime.UTC)
        pods = self.pods.list(ns, _selector(pdb))  # nil selector: nothing; {}: every pod (LabelSelectorAsSelector)
        try:
            return self._try_sync(pdb, pods, now)
        except client.Conflict:
            raise
        except (logic.ExpectedCountError, client.ApiError) as exc:
            log.info("PDB %s: %s; allowing no disruption", key, exc)
            self.api.update("poddisruptionbudgets", logic.fail_safe_status(pdb, str(exc), now), subresource="status")
            raise

    def _try_sync(self, pdb: Obj, pods: list[Obj], now: datetime.datetime) -> float | None:
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected = logic.expected_pod_count(pdb, pods, self._find_scale)
        except logic.ExpectedCountError as exc:
            self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {exc}")
            raise
        if expected.unmanaged:
            selector = (pdb.get("spec") or {}).get("selector")
            self.recorder.event(pdb, "Warning", "UnmanagedPods", (
                f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
                "As a result, the status of the PDB cannot be calculated correctly, which may result in undefined "
                'behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an '
                "integer value."))
        disrupted = logic.build_disrupted_pods(pods, pdb, now)
        for name in disrupted.not_deleted:
            pod = next(p for p in pods if p["metadata"]["name"] == name)
            self.recorder.event(pod, "Warning", "NotDeleted",
                                f"Pod was expected by PDB {pdb['metadata']['namespace']}/"
                                f"{pdb['metadata']['namespace']} to be deleted but it wasn't")
        healthy = logic.count_healthy(pods, disrupted.pods, now)
        updated = logic.new_status(pdb, current_healthy=healthy, desired_healthy=expected.desired_healthy,
                                   expected_count=expected.expected_count, disrupted=disrupted.pods, now=now)
        if updated is not None:
            self.api.update("poddisruptionbudgets", updated, subresource="status")
            status = updated["status"]
            log.info("PDB %s: healthy %d/%d desired, %d expected, %d disruptions allowed", _key(pdb),
                     status["currentHealthy"], status["desiredHealthy"], status["expectedPods"],
                     status["disruptionsAllowed"])
        if disrupted.recheck_at is None:
            return None
        return max(0.0, (disrupted.recheck_at - now).total_seconds())


class StalePodDisruptionController:
    """Keys are ``namespace/name`` of pods carrying a DisruptionTarget condition but never deleted."""

    name = "disruption-stale-pods"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.pods = mgr.informer("pods")
        self.pods.add_handler(on_add=self._check, on_update=lambda _old, new: self._check(new))

    def _check(self, pod: Obj) -> None:
        wait = logic.stale_disruption_wait(pod, datetime.datetime.now(datetime.UTC))
        if wait is not None:
            self.mgr.enqueue_after(self, _key(pod), wait.total_seconds())

    def reconcile(self, key: str) -> float | None:
        ns, _, name = key.partition("/")
        pod = self.pods.get(ns, name)
        if pod is None:
            return None
        now = datetime.datetime.now(datetime.UTC)
        wait = logic.stale_disruption_wait(pod, now)
        if wait is None:
            return None
        if wait > datetime.timedelta(0):
            return wait.total_seconds()
        self.api.patch("pods", name, {"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "False", "lastTransitionTime": logic.format_time(now)}]}},
            ns, patch_type="strategic", subresource="status")
        log.info("pod %s: reset stale DisruptionTarget condition to False", key)
        return None


def new() -> DisruptionController:
    return DisruptionController()


def new_stale_pods() -> StalePodDisruptionController:
    return StalePodDisruptionController()
