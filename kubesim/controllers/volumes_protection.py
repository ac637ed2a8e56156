"""The storage-object-in-use protection finalizers (C4).

`kubernetes.io/pvc-protection` (`pkg/controller/volume/pvcprotection`): present on every live
claim; when the claim is being deleted it is removed only once no *scheduled* pod names the claim
(`podUsesPVC` looks at `spec.nodeName` and the volume list, not at the phase — the kubelet may
hold the mount until the pod object is gone). The informer's answer "in use" is trusted; "not in
use" is confirmed with a live list of the namespace's pods first, as upstream does, so a pod the
cache has not seen yet cannot lose its volume.

`kubernetes.io/pv-protection` (`pkg/controller/volume/pvprotection`): present on every live PV;
removed from a PV being deleted once it is not Bound.

Upstream the StorageObjectInUseProtection admission plugin adds both finalizers at creation and the
controllers add them to objects that lack them; kubesim's admission does not (yet), so these
controllers add them as soon as they see the object.
"""

from __future__ import annotations

import logging
from typing import Any

from kubesim.controllers import runtime
from kubesim.controllers import volumes_common as vc

log = logging.getLogger("kubesim.controllers.volumes")

Obj = dict[str, Any]


def claim_in_use(claim: Obj, pods: list[Obj]) -> bool:
    name, ns = vc.name_of(claim), vc.namespace_of(claim)
    return any(vc.namespace_of(p) == ns and vc.pod_uses_claim_for_protection(p, name) for p in pods)


def finalizer_change(obj: Obj, finalizer: str, in_use: bool) -> list[str] | None:
    """The new finalizer list (add while live, drop once deleting and unused), or None if nothing changes."""
    current = vc.finalizers(obj)
    if not vc.is_deleting(obj):
        return None if finalizer in current else [*current, finalizer]
    if finalizer in current and not in_use:
        return [f for f in current if f != finalizer]
    return None


def _write_finalizers(api: Any, plural: str, obj: Obj, finalizers: list[str]) -> None:
    """A merge patch guarded by resourceVersion: a concurrent change makes it a Conflict, retried."""
    api.patch(plural, vc.name_of(obj), {"metadata": {
        "resourceVersion": vc.meta(obj).get("resourceVersion"), "finalizers": finalizers}}, vc.namespace_of(obj))


class ClaimProtection:
    name = "pvc-protection"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.claims = mgr.informer("persistentvolumeclaims")
        self.pods = mgr.informer("pods")
        self.claims.add_handler(on_add=self._enqueue_claim, on_update=lambda _o, n: self._enqueue_claim(n))
        self.pods.add_handler(on_update=lambda o, _n: self._enqueue_pod_claims(o), on_delete=self._enqueue_pod_claims)

    def _enqueue_claim(self, claim: Obj) -> None:
        self.mgr.enqueue(self, vc.key_of(claim))

    def _enqueue_pod_claims(self, pod: Obj) -> None:
        for name in vc.pod_claim_names(pod):
            claim = self.claims.get(vc.namespace_of(pod), name)
            if claim is not None and vc.is_deleting(claim):
                self.mgr.enqueue(self, vc.key_of(claim))

    def reconcile(self, key: str) -> float | None:
        claim = self.claims.get_key(key)
        if claim is None:
            return None
        in_use = True
        if vc.is_deleting(claim) and vc.PVC_PROTECTION_FINALIZER in vc.finalizers(claim):
            in_use = claim_in_use(claim, self.pods.list(vc.namespace_of(claim)))
            if not in_use:
                live, _rv = self.api.list("pods", vc.namespace_of(claim))
                in_use = claim_in_use(claim, live)
        change = finalizer_change(claim, vc.PVC_PROTECTION_FINALIZER, in_use)
        if change is not None:
            log.info("pvc-protection: %s finalizer on claim %s", "adding" if not vc.is_deleting(claim) else "removing",
                     key)
            _write_finalizers(self.api, "persistentvolumeclaims", claim, change)
        return None


class VolumeProtection:
    name = "pv-protection"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.volumes = mgr.informer("persistentvolumes")
        self.volumes.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n))

    def _enqueue(self, pv: Obj) -> None:
        self.mgr.enqueue(self, vc.name_of(pv))

    def reconcile(self, key: str) -> float | None:
        pv = self.volumes.get("", key)
        if pv is None:
            return None
        change = finalizer_change(pv, vc.PV_PROTECTION_FINALIZER, vc.status(pv).get("phase") == "Bound")
        if change is not None:
            _write_finalizers(self.api, "persistentvolumes", pv, change)
        return None


def new_claim_protection() -> ClaimProtection:
    return ClaimProtection()


def new_volume_protection() -> VolumeProtection:
    return VolumeProtection()
