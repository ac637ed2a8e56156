"""The StatefulSet controller: informers → work queue → reconcile (sync) → plan → API calls.

Mirrors upstream `pkg/controller/statefulset/stateful_set.go` (event handlers, adoption,
revision adoption, requeue for minReadySeconds), `stateful_pod_control.go` (claims before pods,
"pvc X is being deleted", the event reasons and messages) and `stateful_set_status_updater.go`
(status written through /status, retried on conflict). The decisions themselves live in
:mod:`kubesim.controllers.statefulset_control`; this module only gathers the inputs from the
informer caches and carries the plan out.

Deliberate difference from upstream: pod deletions carry the pod's uid as a precondition, so a
reconcile working from a cache that has not yet seen a pod's replacement can never delete the
replacement (the 409 that answers a stale uid just means "already replaced"). And a pod's
template claims are re-read from the API server just before the pod is created (upstream reads
its claim lister; Kubernetes 1.7 did a live GET as here), so a claim deletion the claims watch has
not delivered yet still blocks the creation with "pvc X is being deleted" (B8).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubesim import client
from kubesim.apiserver import selectors
from kubesim.controllers import revisions as rv
from kubesim.controllers import runtime
from kubesim.controllers import statefulset_control as ctl
from kubesim.controllers import statefulset_refs as refs
from kubesim.controllers import statefulset_utils as su

Obj = dict[str, Any]

log = logging.getLogger("kubesim.controllers.statefulset")

COMPONENT = "statefulset-controller"
_STATUS_RETRIES = 5
_COLLISION_RETRIES = 20


class SyncError(Exception):
    """One or more API calls of a sync failed; the sync is retried with backoff (as upstream's AddRateLimited)."""


def _aggregate(messages: Sequence[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one error prints as itself, several as `[a, b]`."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


class StatefulSetController:
    name = "statefulset"

    def __init__(self, namespace: str = "") -> None:
        """`namespace` confines the controller (and its informers) to one namespace; "" watches all."""
        self._mgr: runtime.Manager | None = None
        self.namespace = namespace

    # ----- wiring ---------------------------------------------------------------------------------------

    @property
    def mgr(self) -> runtime.Manager:
        assert self._mgr is not None, "setup() was not called"
        return self._mgr

    def setup(self, mgr: runtime.Manager) -> None:
        self._mgr = mgr
        self.sets = mgr.informer("statefulsets", self.namespace)
        self.pods = mgr.informer("pods", self.namespace)
        self.claims = mgr.informer("persistentvolumeclaims", self.namespace)
        self.revisions = mgr.informer("controllerrevisions", self.namespace)
        self.recorder = mgr.recorder.with_component(COMPONENT)
        self.sets.add_handler(self._enqueue, lambda _old, new: self._enqueue(new), self._enqueue)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        # Upstream only lists claims and revisions; watching them as well wakes a set whose pod
        # creation a terminating claim blocked (B8) as soon as the claim is gone, not at the next backoff.
        self.claims.add_handler(self._owned_or_matching, lambda _o, new: self._owned_or_matching(new),
                                self._owned_or_matching)
        self.revisions.add_handler(None, None, self._owned_or_matching)

    def _enqueue(self, sts: Obj) -> None:
        self.mgr.enqueue(self, client.key_of(sts))

    def _resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Obj | None:
        if ref is None or ref.get("kind") != su.SET_KIND:
            return None
        sts = self.sets.get(namespace, str(ref.get("name") or ""))
        return sts if sts is not None and su.uid_of(sts) == ref.get("uid") else None

    def _matching_sets(self, obj: Mapping[str, Any]) -> list[Obj]:
        out = []
        labels = su.labels_of(obj)
        for sts in self.sets.list(su.namespace_of(obj)):
            try:
                selector = selectors.label_selector_from_api(su.spec(sts).get("selector"))
            except selectors.SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                out.append(sts)
        return out

    def _pod_added(self, pod: Obj) -> None:
        if su.is_terminating(pod):
            self._pod_deleted(pod)
            return
        owner = self._resolve(su.namespace_of(pod), su.controller_ref(pod))
        if owner is not None:
            self._enqueue(owner)
            return
        if su.controller_ref(pod) is None:
            for sts in self._matching_sets(pod):
                self._enqueue(sts)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if su.meta(old).get("resourceVersion") == su.meta(cur).get("resourceVersion"):
            return
        old_ref, cur_ref = su.controller_ref(old), su.controller_ref(cur)
        if old_ref != cur_ref and old_ref is not None:
            previous = self._resolve(su.namespace_of(old), old_ref)
            if previous is not None:
                self._enqueue(previous)
        if cur_ref is not None:
            owner = self._resolve(su.namespace_of(cur), cur_ref)
            if owner is None:
                return
            self._enqueue(owner)
            min_ready = su.min_ready_seconds(owner)
            if min_ready > 0 and not su.is_running_and_ready(old) and su.is_running_and_ready(cur):
                # a second of slack against clock skew, as upstream adds
                self.mgr.enqueue_after(self, client.key_of(owner), min_ready + 1.0)
            return
        if su.labels_of(old) != su.labels_of(cur) or old_ref != cur_ref:
            for sts in self._matching_sets(cur):
                self._enqueue(sts)

    def _pod_deleted(self, pod: Obj) -> None:
        owner = self._resolve(su.namespace_of(pod), su.controller_ref(pod))
        if owner is not None:
            self._enqueue(owner)

    def _owned_or_matching(self, obj: Obj) -> None:
        owner = self._resolve(su.namespace_of(obj), su.controller_ref(obj))
        for sts in [owner] if owner is not None else self._matching_sets(obj):
            self._enqueue(sts)

    # ----- sync -------------------------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        cached = self.sets.get_key(key)
        if cached is None:
            return None
        sts: Obj = {**cached, "apiVersion": su.SET_API_VERSION, "kind": su.SET_KIND}
        try:
            selector = selectors.label_selector_from_api(su.spec(sts).get("selector"))
        except selectors.SelectorError as exc:
            log.warning("statefulset %s: bad selector, not syncing: %s", key, exc)
            return None
        namespace = su.namespace_of(sts)
        revisions = self._adopt_revisions(sts, selector)
        pods = self._claim_pods(sts, selector)
        claims = {su.name_of(c): c for c in self.claims.list(namespace)}

        collision_count = int((sts.get("status") or {}).get("collisionCount") or 0)
        choice = ctl.choose_revisions(sts, revisions, collision_count)
        update_rev, collision_count = self._realise_revision(sts, choice, collision_count)
        current_rev = choice.current if choice.current is not None else update_rev
        now = datetime.datetime.now(datetime.UTC)
        plan = ctl.plan_update(ctl.Inputs(sts, pods, claims, current_rev, update_rev, collision_count, now))

        if plan.stages:
            log.debug("statefulset %s: %s", key, "; ".join(
                f"{stage.name}: {len(stage.tasks)} task(s)" for stage in plan.stages))
        errors = self._execute(sts, plan)
        if ctl.status_changed(sts, plan.status):
            self._write_status(sts, plan.status)
        live = {su.name_of(current_rev), su.name_of(update_rev), *(su.pod_revision(p) for p in pods)}
        known = [r for r in rv.sort_revisions([*revisions, update_rev]) if su.name_of(r) != ""]
        unique = list({su.name_of(r): r for r in known}.values())
        for stale in rv.revisions_to_delete(sts, rv.sort_revisions(unique), live):
            with contextlib.suppress(client.NotFound):
                self.mgr.client.delete("controllerrevisions", su.name_of(stale), namespace)
        if errors:
            raise SyncError(f"statefulset {key}: {_aggregate(errors)}")
        return self._requeue_after(sts, pods, plan.status, now)

    @staticmethod
    def _requeue_after(sts: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], status: Mapping[str, Any],
                       now: datetime.datetime) -> float | None:
        """With minReadySeconds, come back when the next Ready pod turns available (upstream: after minReadySeconds)."""
        min_ready = su.min_ready_seconds(sts)
        if min_ready <= 0 or status.get("availableReplicas") == su.replicas_of(sts):
            return None
        waits = [(at - now).total_seconds() for p in pods
                 if (at := su.available_at(p, min_ready)) is not None and at >= now]
        return max(0.05, min(waits) + 0.05) if waits else float(min_ready)

    # ----- adoption -----------------------------------------------------------------------------------------

    def _can_adopt(self, sts: Mapping[str, Any]) -> bool:
        """RecheckDeletionTimestamp: re-read the set (not the cache) before adopting anything."""
        try:
            fresh = self.mgr.client.get("statefulsets", su.name_of(sts), su.namespace_of(sts))
        except client.NotFound:
            return False
        return su.uid_of(fresh) == su.uid_of(sts) and not su.meta(fresh).get("deletionTimestamp")

    def _adopt_revisions(self, sts: Obj, selector: selectors.LabelSelector) -> list[Mapping[str, Any]]:
        revisions = rv.owned_revisions(sts, self.revisions.list(su.namespace_of(sts)), selector.matches)
        orphans = [r for r in revisions if su.controller_ref(r) is None]
        if not orphans:
            return revisions
        if not self._can_adopt(sts):
            raise SyncError(f"can't adopt ControllerRevisions: StatefulSet {su.name_of(sts)} is gone or being deleted")
        out = [r for r in revisions if su.controller_ref(r) is not None]
        for orphan in orphans:
            out.append(self.mgr.client.patch("controllerrevisions", su.name_of(orphan), refs.adopt_patch(sts, orphan),
                                              su.namespace_of(sts), patch_type="strategic"))
        return out

    def _claim_pods(self, sts: Obj, selector: selectors.LabelSelector) -> list[Mapping[str, Any]]:
        claim = refs.classify(sts, self.pods.list(su.namespace_of(sts)), selector)
        pods = list(claim.owned)
        if claim.adopt and self._can_adopt(sts):
            for pod in claim.adopt:
                try:
                    pods.append(self.mgr.client.patch("pods", su.name_of(pod), refs.adopt_patch(sts, pod),
                                                      su.namespace_of(pod), patch_type="strategic"))
                except client.NotFound:
                    continue
        for pod in claim.release:
            try:
                self.mgr.client.patch("pods", su.name_of(pod), refs.release_patch(sts, pod), su.namespace_of(pod),
                                      patch_type="strategic")
            except (client.NotFound, client.Invalid):
                continue
        return pods

    # ----- revisions ------------------------------------------------------------------------------------------

    def _realise_revision(self, sts: Obj, choice: ctl.RevisionChoice, collision_count: int) -> tuple[Obj, int]:
        api = self.mgr.client
        if choice.action == "reuse":
            return choice.update, collision_count
        if choice.action == "bump":
            return api.update("controllerrevisions", choice.update), collision_count
        candidate = choice.update
        for _ in range(_COLLISION_RETRIES):
            try:
                return api.create("controllerrevisions", candidate, su.namespace_of(sts)), collision_count
            except client.AlreadyExists:
                existing = api.get("controllerrevisions", su.name_of(candidate), su.namespace_of(sts))
                if rv.go_json(existing.get("data")) == rv.go_json(candidate.get("data")):
                    return existing, collision_count
                collision_count += 1
                candidate = rv.new_revision(sts, rv.revision_number(candidate), collision_count)
        raise SyncError(f"statefulset {su.name_of(sts)}: no free ControllerRevision name after "
                        f"{_COLLISION_RETRIES} collisions")

    # ----- status -----------------------------------------------------------------------------------------------

    def _write_status(self, sts: Obj, status: Mapping[str, Any]) -> None:
        """UpdateStatefulSetStatus: PUT /status with the set we planned from, re-reading on conflict."""
        target = dict(sts)
        for _ in range(_STATUS_RETRIES):
            target["status"] = dict(status)
            try:
                self.mgr.client.update("statefulsets", target, subresource="status")
                return
            except client.Conflict:
                target = self.mgr.client.get("statefulsets", su.name_of(sts), su.namespace_of(sts))
                if su.uid_of(target) != su.uid_of(sts):
                    return
            except client.NotFound:
                return
        raise SyncError(f"statefulset {su.name_of(sts)}: status update kept conflicting")

    # ----- executing a plan -------------------------------------------------------------------------------------

    def _execute(self, sts: Obj, plan: ctl.Plan) -> list[str]:
        """Run the stages in order; stop at the first failed task (a burst stops after its failing batch)."""
        for stage in plan.stages:
            if not stage.burst:
                for task in stage.tasks:
                    error = self._run_task(sts, task)
                    if error is not None:
                        return [error]
                continue
            done, batch = 0, 1
            while done < len(stage.tasks):  # slowStartBatch: 1, 2, 4, ... while every call succeeds
                chunk = stage.tasks[done:done + batch]
                errors = [e for task in chunk if (e := self._run_task(sts, task)) is not None]
                if errors:
                    return errors
                done += len(chunk)
                batch *= 2
        return []

    def _run_task(self, sts: Obj, task: ctl.Task) -> str | None:
        for op in task:
            error = self._run_op(sts, op)
            if error is not None:
                return error
        return None

    def _pod_event(self, sts: Obj, verb: str, pod: str, error: str | None) -> None:
        """recordPodEvent."""
        if error is None:
            self.recorder.normal(sts, f"Successful{verb.title()}", f"{verb} Pod {pod} in StatefulSet "
                                 f"{su.name_of(sts)} successful")
        else:
            self.recorder.warning(sts, f"Failed{verb.title()}", f"{verb} Pod {pod} in StatefulSet "
                                  f"{su.name_of(sts)} failed error: {error}")

    def _run_op(self, sts: Obj, op: ctl.Op) -> str | None:
        api = self.mgr.client
        namespace = su.namespace_of(sts)
        if isinstance(op, ctl.EnsureClaims):
            error = self._ensure_claims(sts, op)
            if error is not None and op.for_create:
                self._pod_event(sts, "create", op.pod_name, error)
            return error
        if isinstance(op, ctl.CreatePod):
            name = su.name_of(op.pod)
            deleting, missing = self._live_claims(sts, op.pod)
            if deleting:
                message = _aggregate([f"pvc {claim} is being deleted" for claim in deleting])
                self._pod_event(sts, "create", name, message)
                return message
            if missing:  # the claims watch will deliver the deletion; the next sync recreates the claim
                return f"create Pod {name}: pvc {', '.join(missing)} gone since this sync's cache read"
            try:
                api.create("pods", op.pod, namespace)
            except client.AlreadyExists as exc:
                return f"create Pod {name}: {exc.message}"  # a cache that has not seen the pod yet: no event
            except client.ApiError as exc:
                self._pod_event(sts, "create", name, exc.message)
                return exc.message
            self._pod_event(sts, "create", name, None)
            return None
        if isinstance(op, ctl.UpdatePod):
            name = su.name_of(op.pod)
            try:
                api.update("pods", op.pod)
            except client.ApiError as exc:
                self._pod_event(sts, "update", name, exc.message)
                return exc.message
            self._pod_event(sts, "update", name, None)
            return None
        if isinstance(op, ctl.DeletePod):
            name = su.name_of(op.pod)
            try:
                api.delete("pods", name, namespace, preconditions={"uid": su.uid_of(op.pod)})
            except client.Conflict:
                return None  # the pod by this name is already a newer incarnation
            except client.NotFound as exc:
                self._pod_event(sts, "delete", name, exc.message)
                return None if op.why == "update" else exc.message
            except client.ApiError as exc:
                self._pod_event(sts, "delete", name, exc.message)
                return exc.message
            self._pod_event(sts, "delete", name, None)
            return None
        if isinstance(op, ctl.ConflictingController):
            self.recorder.warning(sts, "ConflictingController", f"PersistentVolumeClaim {op.claim_name} has a "
                                  "conflicting OwnerReference that acts as a manging controller, the retention "
                                  "policy is ignored for this claim")  # sic: upstream's wording, typo included
            return None
        claim_name = su.name_of(op.claim)
        try:
            api.update("persistentvolumeclaims", op.claim)
        except client.NotFound:
            return None  # "expected claim missing, continuing to pick up in next iteration"
        except client.ApiError as exc:
            message = f"could not update claim {claim_name} for delete policy ownerRefs: {exc.message}"
            self._pod_event(sts, "update", op.pod_name, message)
            return message
        return None

    def _live_claims(self, sts: Obj, pod: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(claims being deleted, claims missing): the pod's template claims re-read just before it is created.

        The claims cache and the pods cache are fed by separate watches, so a sync woken by a
        pod's deletion can run before the claims cache has seen a claim deletion that happened
        earlier on the server, and would create the pod on a claim that is going away (upstream
        reads its claim lister here and has the same window; the B8 test caught it under load).
        The pod's deletion, already observed, came after its claim's deletion, so a read from the
        server now sees it. Pod creations are rare and claims per pod few: one GET each is cheap.
        """
        deleting: list[str] = []
        missing: list[str] = []
        for claim in su.new_claims(sts, su.ordinal_of(pod)).values():
            claim_name = su.name_of(claim)
            try:
                live = self.mgr.client.get("persistentvolumeclaims", claim_name, su.namespace_of(sts))
            except client.NotFound:
                missing.append(claim_name)
                continue
            if su.is_terminating(live):
                deleting.append(claim_name)
        return deleting, missing

    def _ensure_claims(self, sts: Obj, op: ctl.EnsureClaims) -> str | None:
        """createPersistentVolumeClaims: every missing claim is tried; all failures are reported together."""
        errors: list[str] = []
        for claim in op.create:
            name = su.name_of(claim)
            try:
                self.mgr.client.create("persistentvolumeclaims", claim, su.namespace_of(sts))
            except client.AlreadyExists as exc:
                errors.append(f"failed to create PVC {name}: {exc.message}")
                continue
            except client.ApiError as exc:
                errors.append(f"failed to create PVC {name}: {exc.message}")
                self.recorder.warning(sts, "FailedCreate", f"create Claim {name} for Pod {op.pod_name} in "
                                      f"StatefulSet {su.name_of(sts)} failed error: {exc.message}")
                continue
            self.recorder.normal(sts, "SuccessfulCreate", f"create Claim {name} Pod {op.pod_name} in StatefulSet "
                                 f"{su.name_of(sts)} success")
        errors += [f"pvc {name} is being deleted" for name in op.being_deleted]
        return _aggregate(errors) if errors else None


def new_controller() -> runtime.Controller:
    """The factory `kubesim.controllers.CONTROLLERS` names."""
    return StatefulSetController()

