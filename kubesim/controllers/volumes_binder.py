"""The PersistentVolume binder: claims meet volumes, volumes are released (C3).

A small `pkg/controller/volume/persistentvolume/pv_controller.go`: `syncClaim` and `syncVolume`,
level-triggered from the claim and volume informers. What it does, in upstream's order:

* an unbound claim whose class waits for the first consumer and has no
  `volume.kubernetes.io/selected-node` yet gets the Normal event `WaitForFirstConsumer`; once the
  scheduler picked a node (or for Immediate classes at once) it is handed to the external
  provisioner by the `volume.kubernetes.io/storage-provisioner` annotations plus the
  `ExternalProvisioning` event;
* a volume whose `claimRef` names the claim (provisioned for it, or pre-bound by the scheduler)
  is bound: PV `claimRef` completed, PV phase Bound, claim `spec.volumeName`, annotations
  `pv.kubernetes.io/bind-completed` and `pv.kubernetes.io/bound-by-controller`, claim status Bound
  with the volume's capacity and access modes;
* Immediate claims with no pre-bound volume bind the smallest Available volume that fits;
  WaitForFirstConsumer claims never do — the scheduler chooses their volume (as upstream);
* a bound volume whose claim is gone becomes Released (the reclaim controller then deletes or keeps
  it); a claim whose volume vanished becomes Lost.

Keys are `pvc/<namespace>/<name>` and `pv/<name>` on one queue, as upstream runs both syncs in one
controller.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from kubesim import client, timestamps
from kubesim.controllers import runtime
from kubesim.controllers import scheduler_plugins as sp
from kubesim.controllers import volumes_common as vc

log = logging.getLogger("kubesim.controllers.volumes")

Obj = dict[str, Any]
COMPONENT = "persistentvolume-controller"
VOLUME_CACHE_LAG = 0.5
"""Re-check delay when the API server has a volume the informer has not delivered yet."""

ClaimStep = Literal["none", "wait_for_consumer", "provision", "bind", "lost", "misbound", "no_volume"]
VolumeStep = Literal["none", "available", "bound", "released"]


now = timestamps.now


@dataclasses.dataclass(frozen=True)
class ClaimPlan:
    step: ClaimStep
    volume: str = ""


def plan_claim(claim: Mapping[str, Any], volumes: Sequence[Mapping[str, Any]],
               klass: vc.ClassInfo | None) -> ClaimPlan:
    """What `syncClaim` should do next for this claim (pure; the controller carries it out)."""
    if vc.is_deleting(claim):
        return ClaimPlan("none")
    by_name = {vc.name_of(v): v for v in volumes}
    volume_name = str(vc.spec(claim).get("volumeName") or "")
    if volume_name:
        pv = by_name.get(volume_name)
        if pv is None:
            return ClaimPlan("lost") if vc.status(claim).get("phase") != "Lost" else ClaimPlan("none")
        ref = vc.spec(pv).get("claimRef")
        if not ref or vc.claim_ref_matches(pv, claim):
            done = (vc.status(claim).get("phase") == "Bound" and vc.ANN_BIND_COMPLETED in vc.annotations_of(claim)
                    and vc.status(pv).get("phase") == "Bound" and bool((ref or {}).get("uid")))
            return ClaimPlan("none") if done else ClaimPlan("bind", volume_name)
        return ClaimPlan("misbound", volume_name)
    for pv in sorted(volumes, key=vc.name_of):
        if not vc.claim_ref_matches(pv, claim) or vc.is_deleting(pv):
            continue
        if sp.volume_satisfies_claim(pv, claim) or vc.annotations_of(pv).get(vc.ANN_DYNAMICALLY_PROVISIONED):
            return ClaimPlan("bind", vc.name_of(pv))
    delayed = klass is not None and klass.wait_for_first_consumer
    if delayed and vc.ANN_SELECTED_NODE not in vc.annotations_of(claim):
        return ClaimPlan("wait_for_consumer")
    if not delayed:
        best: tuple[int, str] | None = None
        for pv in volumes:
            if vc.spec(pv).get("claimRef") or vc.status(pv).get("phase") not in (None, "Available", "Pending"):
                continue
            if sp.volume_satisfies_claim(pv, claim):
                size = vc.volume_capacity_bytes(pv)
                if best is None or (size, vc.name_of(pv)) < best:
                    best = (size, vc.name_of(pv))
        if best is not None:
            return ClaimPlan("bind", best[1])
    if klass is not None and klass.provisioner not in ("", vc.NO_PROVISIONER):
        return ClaimPlan("provision")
    return ClaimPlan("no_volume")


def plan_volume(pv: Mapping[str, Any], claim: Mapping[str, Any] | None) -> VolumeStep:
    """What `syncVolume` should do: the phase the volume must move to (pure)."""
    phase = vc.status(pv).get("phase")
    ref = vc.spec(pv).get("claimRef")
    if not isinstance(ref, Mapping) or not ref:
        return "available" if phase not in ("Available", "Failed") else "none"
    if not ref.get("uid"):
        # Pre-bound by a user (or the scheduler) to a claim name: Available until the claim binds.
        return "available" if phase not in ("Available", "Failed") else "none"
    if claim is None or vc.uid_of(claim) != ref.get("uid"):
        return "released" if phase not in ("Released", "Failed") else "none"
    if vc.spec(claim).get("volumeName") == vc.name_of(pv):
        return "bound" if phase != "Bound" else "none"
    return "none"  # the claim side is not written yet; its sync finishes the bind


def unscheduled_users(claim: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """`findNonScheduledPodsByPVC`: pods naming the claim that have no node yet."""
    name = vc.name_of(claim)
    return sorted(vc.name_of(p) for p in pods
                  if not vc.pod_node(p) and not vc.pod_is_terminal(p) and name in vc.pod_claim_names(p))


def waiting_message(pods: Sequence[str]) -> str:
    """emitEventForUnboundDelayBindingClaim's text: one pod is named singular, several are joined with commas."""
    if len(pods) > 1:
        return f"waiting for pods {','.join(pods)} to be scheduled"
    return f"waiting for pod {pods[0]} to be scheduled"


def claim_ref(claim: Mapping[str, Any]) -> Obj:
    return {"kind": "PersistentVolumeClaim", "namespace": vc.namespace_of(claim), "name": vc.name_of(claim),
            "uid": vc.uid_of(claim), "apiVersion": "v1",
            "resourceVersion": str(vc.meta(claim).get("resourceVersion") or "")}


class Binder:
    """The PV controller's binding half (`persistentvolume-binder` in kube-controller-manager)."""

    name = "persistentvolume-binder"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component(COMPONENT)
        self.claims = mgr.informer("persistentvolumeclaims")
        self.volumes = mgr.informer("persistentvolumes")
        self.classes = mgr.informer("storageclasses")
        self.pods = mgr.informer("pods")
        self._said: dict[str, str] = {}
        """claim uid -> the last waiting event recorded (upstream repeats them every resync; we do once)."""
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda _o, n: self._claim_changed(n),
                                on_delete=self._claim_deleted)
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda _o, n: self._volume_changed(n),
                                 on_delete=self._volume_deleted)
        self.classes.add_handler(on_add=lambda _sc: self._all_claims())
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda _o, n: self._pod_changed(n))

    # ----- event handlers -------------------------------------------------------------------------

    def _claim_changed(self, claim: Obj) -> None:
        self.mgr.enqueue(self, f"pvc/{vc.key_of(claim)}")
        volume = vc.spec(claim).get("volumeName")
        if volume:
            self.mgr.enqueue(self, f"pv/{volume}")

    def _claim_deleted(self, claim: Obj) -> None:
        self._said.pop(vc.uid_of(claim), None)
        self._claim_changed(claim)
        for pv in self.volumes.list():
            ref = vc.spec(pv).get("claimRef") or {}
            if ref.get("uid") == vc.uid_of(claim):
                self.mgr.enqueue(self, f"pv/{vc.name_of(pv)}")

    def _volume_changed(self, pv: Obj) -> None:
        self.mgr.enqueue(self, f"pv/{vc.name_of(pv)}")
        ref = vc.spec(pv).get("claimRef") or {}
        if ref.get("name") and ref.get("namespace"):
            self.mgr.enqueue(self, f"pvc/{ref['namespace']}/{ref['name']}")

    def _volume_deleted(self, pv: Obj) -> None:
        for claim in self.claims.list():
            if vc.spec(claim).get("volumeName") == vc.name_of(pv):
                self.mgr.enqueue(self, f"pvc/{vc.key_of(claim)}")
        self._volume_changed(pv)

    def _pod_changed(self, pod: Obj) -> None:
        """An unscheduled pod naming an unbound claim changes the claim's waiting event."""
        if vc.pod_node(pod):
            return
        for name in vc.pod_claim_names(pod):
            claim = self.claims.get(vc.namespace_of(pod), name)
            if claim is not None and not vc.spec(claim).get("volumeName"):
                self.mgr.enqueue(self, f"pvc/{vc.key_of(claim)}")

    def _all_claims(self) -> None:
        for claim in self.claims.list():
            self.mgr.enqueue(self, f"pvc/{vc.key_of(claim)}")

    # ----- reconcile ------------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        kind, _, rest = key.partition("/")
        if kind == "pvc":
            return self._sync_claim(rest)
        if kind == "pv":
            return self._sync_volume(rest)
        log.warning("persistentvolume-binder: ignoring malformed key %r", key)
        return None

    def _class_of(self, claim: Mapping[str, Any]) -> vc.ClassInfo | None:
        sc = self.classes.get("", vc.claim_class(claim))
        return vc.ClassInfo.from_obj(sc) if sc is not None else None

    def _sync_claim(self, key: str) -> float | None:
        claim = self.claims.get_key(key)
        if claim is None:
            return None
        klass = self._class_of(claim)
        plan = plan_claim(claim, self.volumes.list(), klass)
        if plan.step == "wait_for_consumer":
            waiting = unscheduled_users(claim, self.pods.list(vc.namespace_of(claim)))
            if waiting:
                self._say_once(claim, "Normal", "WaitForPodScheduled", waiting_message(waiting))
            else:
                self._say_once(claim, "Normal", "WaitForFirstConsumer",
                               "waiting for first consumer to be created before binding")
        elif plan.step == "provision" and klass is not None:
            self._hand_to_provisioner(claim, klass)
        elif plan.step == "no_volume":
            self._say_once(claim, "Normal", "FailedBinding",
                           "no persistent volumes available for this claim and no storage class is set")
        elif plan.step == "bind":
            pv = self.volumes.get("", plan.volume)
            if pv is not None:
                self._bind(pv, claim)
        elif plan.step == "lost":
            # The volume informer may simply lag the claim's; only a live 404 means the volume is gone.
            try:
                self.api.get("persistentvolumes", str(vc.spec(claim).get("volumeName")))
                return VOLUME_CACHE_LAG
            except client.NotFound:
                pass
            self._set_claim_phase(claim, "Lost")
            self.recorder.warning(claim, "ClaimLost",
                                  "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
        elif plan.step == "misbound":
            self._say_once(claim, "Warning", "ClaimMisbound",
                           "Two claims are bound to the same volume, this one is bound incorrectly")
        return None

    def _say_once(self, claim: Obj, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        uid = vc.uid_of(claim)
        if self._said.get(uid) == reason:
            return
        self._said[uid] = reason
        self.recorder.event(claim, type_, reason, message)

    def _hand_to_provisioner(self, claim: Obj, klass: vc.ClassInfo) -> None:
        """setClaimProvisioner: the annotations the external provisioner filters on, then the event."""
        ann = vc.annotations_of(claim)
        if ann.get(vc.ANN_STORAGE_PROVISIONER) != klass.provisioner:
            self.api.patch("persistentvolumeclaims", vc.name_of(claim), {"metadata": {
                "resourceVersion": vc.meta(claim).get("resourceVersion"),
                "annotations": {vc.ANN_STORAGE_PROVISIONER: klass.provisioner,
                                vc.ANN_BETA_STORAGE_PROVISIONER: klass.provisioner}}}, vc.namespace_of(claim))
        self._say_once(claim, "Normal", "ExternalProvisioning",
                       f"Waiting for a volume to be created either by the external provisioner '{klass.provisioner}' "
                       "or manually by the system administrator. If volume creation is delayed, please verify that "
                       "the provisioner is running and correctly registered.")

    def _bind(self, pv: Obj, claim: Obj) -> None:
        """bind(): volume side first (claimRef + phase), then the claim (volumeName, annotations, status)."""
        ref = vc.spec(pv).get("claimRef") or {}
        if ref.get("uid") != vc.uid_of(claim) or ref.get("name") != vc.name_of(claim):
            updated = dict(pv)
            updated["spec"] = {**vc.spec(pv), "claimRef": claim_ref(claim)}
            meta = dict(vc.meta(pv))
            if not ref:
                meta["annotations"] = {**vc.annotations_of(pv), vc.ANN_BOUND_BY_CONTROLLER: "yes"}
            updated["metadata"] = meta
            pv = self.api.update("persistentvolumes", updated)
        if vc.status(pv).get("phase") != "Bound":
            pv = self._set_volume_phase(pv, "Bound")
        claim_ann = vc.annotations_of(claim)
        if vc.spec(claim).get("volumeName") != vc.name_of(pv) or vc.ANN_BIND_COMPLETED not in claim_ann:
            updated = dict(claim)
            updated["spec"] = {**vc.spec(claim), "volumeName": vc.name_of(pv)}
            ann = {**claim_ann, vc.ANN_BIND_COMPLETED: "yes"}
            if not vc.spec(claim).get("volumeName"):
                ann[vc.ANN_BOUND_BY_CONTROLLER] = "yes"
            updated["metadata"] = {**vc.meta(claim), "annotations": ann}
            claim = self.api.update("persistentvolumeclaims", updated)
        if vc.status(claim).get("phase") != "Bound":
            status = {**vc.status(claim), "phase": "Bound",
                      "accessModes": list(vc.spec(pv).get("accessModes") or []),
                      "capacity": dict(vc.spec(pv).get("capacity") or {})}
            self.api.update("persistentvolumeclaims", {**claim, "status": status}, subresource="status")
        self._said.pop(vc.uid_of(claim), None)

    def _set_volume_phase(self, pv: Obj, phase: str, message: str = "") -> Obj:
        status: Obj = {**vc.status(pv), "phase": phase, "lastPhaseTransitionTime": now()}
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        return self.api.update("persistentvolumes", {**pv, "status": status}, subresource="status")

    def _set_claim_phase(self, claim: Obj, phase: str) -> Obj:
        return self.api.update("persistentvolumeclaims", {**claim, "status": {**vc.status(claim), "phase": phase}},
                               subresource="status")

    def _sync_volume(self, name: str) -> float | None:
        pv = self.volumes.get("", name)
        if pv is None or (vc.is_deleting(pv) and vc.status(pv).get("phase") != "Bound"):
            return None
        ref = vc.spec(pv).get("claimRef") or {}
        claim = self.claims.get(str(ref.get("namespace") or ""), str(ref.get("name") or "")) if ref else None
        step = plan_volume(pv, claim)
        if step == "released" and claim is None and ref.get("name"):
            # The cache may lag a just-created claim; upstream asks the API server before releasing.
            try:
                live = self.api.get("persistentvolumeclaims", str(ref["name"]), str(ref.get("namespace") or ""))
            except client.NotFound:
                live = None
            step = plan_volume(pv, live)
        if step == "available":
            self._set_volume_phase(pv, "Available")
        elif step == "bound":
            self._set_volume_phase(pv, "Bound")
        elif step == "released":
            log.info("volume %s released: its claim %s/%s is gone", name, ref.get("namespace"), ref.get("name"))
            self._set_volume_phase(pv, "Released")
        return None


def new_binder() -> Binder:
    return Binder()
