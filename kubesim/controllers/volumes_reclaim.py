"""Reclaiming Released volumes per `persistentVolumeReclaimPolicy` (C3).

Upstream `reclaimVolume` (pv_controller.go): Retain leaves a Released volume alone (an admin
recovers the data and deletes it); Delete hands a dynamically provisioned volume back to its
provisioner, which removes the storage and then the PV object (local-path's `Delete` runs
`rm -rf` on the node). Volumes with Delete that no provisioner of ours created cannot be deleted
here, so they go to phase Failed with upstream's VolumeFailedDelete reason, as an in-tree cluster
without a matching deleter plugin does.

The directory is removed only if it lies inside the state directory's volume areas — a PV
pointing anywhere else (a static hostPath) is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from kubesim import client
from kubesim.controllers import runtime, volumes_binder, volumes_provisioner
from kubesim.controllers import volumes_common as vc

log = logging.getLogger("kubesim.controllers.volumes")

Obj = dict[str, Any]


def owned_directory(state_dir: Path, pv: Obj) -> Path | None:
    """The PV's directory (its hostPath, or a `lazy` volume's backing directory) if one of our
    provisioners made it, else None."""
    csi = vc.spec(pv).get("csi") or {}
    if csi.get("driver") == vc.LAZY_CSI_DRIVER:
        raw = (csi.get("volumeAttributes") or {}).get(vc.LAZY_BACKING_ATTRIBUTE)
    else:
        raw = (vc.spec(pv).get("hostPath") or {}).get("path")
    if not raw:
        return None
    path = Path(str(raw)).resolve()
    shared = (state_dir / "shared-volumes").resolve()
    nodes = (state_dir / "nodes").resolve()
    if path.parent == shared:
        return path
    if path.parent.name in volumes_provisioner.NODE_AREAS.values() and path.parent.parent.parent == nodes:
        return path
    return None


def should_delete(pv: Obj) -> bool:
    return (vc.status(pv).get("phase") == "Released"
            and vc.spec(pv).get("persistentVolumeReclaimPolicy") == "Delete"
            and not vc.is_deleting(pv))


class Reclaimer:
    """Deletes Released volumes whose policy is Delete, storage first (the provisioner's `Delete`)."""

    name = "volume-reclaimer"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.state_dir = volumes_provisioner.state_dir_of(mgr)
        self.recorder = mgr.recorder.with_component(volumes_binder.COMPONENT)
        self.volumes = mgr.informer("persistentvolumes")
        self.volumes.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n))

    def _enqueue(self, pv: Obj) -> None:
        if should_delete(pv):
            self.mgr.enqueue(self, vc.name_of(pv))

    def reconcile(self, key: str) -> float | None:
        pv = self.volumes.get("", key)
        if pv is None or not should_delete(pv):
            return None
        provisioner = vc.annotations_of(pv).get(vc.ANN_DYNAMICALLY_PROVISIONED, "")
        directory = owned_directory(self.state_dir, pv)
        if provisioner not in vc.OUR_PROVISIONERS or directory is None:
            message = f'error getting deleter volume plugin for volume "{key}": no deletable volume plugin matched'
            self.recorder.warning(pv, "VolumeFailedDelete", message)
            status = {**vc.status(pv), "phase": "Failed", "message": message,
                      "lastPhaseTransitionTime": volumes_binder.now()}
            self.api.update("persistentvolumes", {**pv, "status": status}, subresource="status")
            return None
        log.info("deleting volume %s at %s (reclaim policy Delete)", key, directory)
        shutil.rmtree(directory, ignore_errors=True)
        if directory.exists():
            raise RuntimeError(f"could not remove {directory} of volume {key}")
        with contextlib.suppress(client.NotFound):
            self.api.delete("persistentvolumes", key, preconditions={"uid": vc.uid_of(pv)})
        return None


def new_reclaimer() -> Reclaimer:
    return Reclaimer()
