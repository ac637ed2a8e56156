"""Dynamic provisioning for the `standard` (local-path) and `shared` classes (C1, C2).

`standard` behaves like rancher/local-path-provisioner as kind ships it (`provisioner.go`
`Provision`): once the scheduler has written `volume.kubernetes.io/selected-node` on a
WaitForFirstConsumer claim, the provisioner creates a directory on that node and a PV named
`pvc-<claim uid>` with a `hostPath` (type DirectoryOrCreate) pointing at it, `nodeAffinity`
required `kubernetes.io/hostname In [<node>]`, the claim's access modes and requested size, the
class's reclaim policy, and the annotations `pv.kubernetes.io/provisioned-by: rancher.io/local-path`
and `local.path.provisioner/selected-node: <node>`. It refuses claims with a selector or an access
mode other than ReadWriteOnce, as upstream does. The PV carries a `claimRef` to the claim (the
external-provisioner library sets it), so the binder binds exactly this volume to the claim.

`shared` (provisioner `kubesim.io/shared`) is the network-attached stand-in: the same PV shape but
the directory lives under `shared-volumes/` and there is no node affinity, so any node may mount
it; the scheduler keeps an exclusive (ReadWriteOnce) claim on one node at a time.

`lazy` (provisioner `kubesim.io/lazy`, WaitForFirstConsumer) is `standard`'s twin for power-loss tests:
the directory is on the selected node (`<state>/nodes/<node>/lazy/...`) and the PV is pinned there,
but its source is `csi` (driver `lazy.kubesim.io`, the directory in `volumeAttributes.backing`) rather
than a hostPath: the node's kubelet mounts it through the lazy file system (`kubesim/lazyfs`) before
the pod's containers start, which is what lets `kubesim node power-loss` drop what was never fsynced.

The control plane runs on the same machine as every "node", so the provisioner creates the
directory itself (upstream runs a helper pod on the node for `mkdir -m 0777 -p`). Directory layout:
`<state>/nodes/<node>/local-path/pvc-<uid>_<ns>_<claim>` and `<state>/shared-volumes/pvc-<uid>_<ns>_<claim>`
(the provisioner's `<pv name>_<namespace>_<claim name>` folder name).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubesim import client
from kubesim.controllers import runtime
from kubesim.controllers import volumes_common as vc

log = logging.getLogger("kubesim.controllers.volumes")

Obj = dict[str, Any]
STATE_DIR_ENV = "KUBESIM_STATE_DIR"


def state_dir_of(mgr: object, argv: list[str] | None = None) -> Path:
    """The cluster's state directory, where volume directories live.

    In order: the manager's `state_dir` attribute, `$KUBESIM_STATE_DIR`, then the `--state DIR`
    argument of the control-plane process (`python -m kubesim.controlplane --state DIR`), which
    is the process these controllers run in.
    """
    found = getattr(mgr, "state_dir", None) or os.environ.get(STATE_DIR_ENV)
    args = sys.argv if argv is None else argv
    if not found:
        for i, arg in enumerate(args):
            if arg == "--state" and i + 1 < len(args):
                found = args[i + 1]
            elif arg.startswith("--state="):
                found = arg.partition("=")[2]
    if not found:
        raise RuntimeError(f"the volume controllers need the state directory: give the Manager a state_dir, "
                           f"set {STATE_DIR_ENV} or run them in `python -m kubesim.controlplane --state DIR`")
    return Path(found).resolve()


#: where on a node each node-local provisioner keeps its directories (``<state>/nodes/<node>/<area>/``)
NODE_AREAS = {vc.LOCAL_PATH_PROVISIONER: "local-path", vc.LAZY_PROVISIONER: "lazy"}


def volume_name(claim: Mapping[str, Any]) -> str:
    return f"pvc-{vc.uid_of(claim)}"


def volume_dir(state_dir: Path, provisioner: str, node: str | None, claim: Mapping[str, Any]) -> Path:
    folder = f"{volume_name(claim)}_{vc.namespace_of(claim)}_{vc.name_of(claim)}"
    if provisioner in vc.NODE_LOCAL_PROVISIONERS:
        if not node:
            raise ValueError("a node-local volume needs a node")
        return state_dir / "nodes" / node / NODE_AREAS[provisioner] / folder
    return state_dir / "shared-volumes" / folder


def refusal(claim: Mapping[str, Any], klass: vc.ClassInfo, node: str | None) -> str | None:
    """Why the provisioner cannot serve this claim (its ProvisioningFailed message), or None."""
    if klass.provisioner in vc.NODE_LOCAL_PROVISIONERS:
        if vc.spec(claim).get("selector") is not None:
            return "claim.Spec.Selector is not supported"
        if any(mode != "ReadWriteOnce" for mode in vc.access_modes(claim)):
            return "Only support ReadWriteOnce access mode"
        if not node:
            return "configuration error, no node was specified"
    return None


def build_volume(claim: Mapping[str, Any], klass: vc.ClassInfo, node: str | None, path: Path) -> Obj:
    """The PV object for a claim: local-path's `Provision` result plus the library's claimRef."""
    annotations = {vc.ANN_DYNAMICALLY_PROVISIONED: klass.provisioner}
    volume_spec: Obj = {
        "persistentVolumeReclaimPolicy": klass.reclaim_policy,
        "accessModes": list(vc.spec(claim).get("accessModes") or ["ReadWriteOnce"]),
        "volumeMode": "Filesystem",
        "capacity": {"storage": ((vc.spec(claim).get("resources") or {}).get("requests") or {}).get("storage", "0")},
        "storageClassName": klass.name,
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": vc.namespace_of(claim),
                     "name": vc.name_of(claim), "uid": vc.uid_of(claim), "apiVersion": "v1",
                     "resourceVersion": str(vc.meta(claim).get("resourceVersion") or "")},
    }
    if klass.provisioner == vc.LAZY_PROVISIONER:
        volume_spec["csi"] = {"driver": vc.LAZY_CSI_DRIVER, "volumeHandle": volume_name(claim), "fsType": "lazyfs",
                              "volumeAttributes": {vc.LAZY_BACKING_ATTRIBUTE: str(path)}}
    else:
        volume_spec["hostPath"] = {"path": str(path), "type": "DirectoryOrCreate"}
    if klass.provisioner in vc.NODE_LOCAL_PROVISIONERS and node:
        if klass.provisioner == vc.LOCAL_PATH_PROVISIONER:
            annotations[vc.ANN_LOCAL_PATH_SELECTED_NODE] = node
        volume_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": vc.HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}}
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": annotations,
                     "finalizers": [vc.PV_PROTECTION_FINALIZER]},
        "spec": volume_spec,
    }


def component_for(provisioner: str) -> str:
    """The event source upstream shows: `<provisioner>_<provisioner pod>_<uuid>`; ours names the process."""
    return f"{provisioner}_kubesim-provisioner"


class Provisioner:
    """Watches claims handed to our provisioners and creates their volumes (external-provisioner, small)."""

    name = "volume-provisioner"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.state_dir = state_dir_of(mgr)
        self.recorders = {p: mgr.recorder.with_component(component_for(p)) for p in vc.OUR_PROVISIONERS}
        self.claims = mgr.informer("persistentvolumeclaims")
        self.volumes = mgr.informer("persistentvolumes")
        self.classes = mgr.informer("storageclasses")
        self.nodes = mgr.informer("nodes")
        self._failed: dict[str, str] = {}
        self.claims.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                on_delete=self._forget)
        self.nodes.add_handler(on_add=lambda _n: self._retry_failed())

    def _forget(self, claim: Obj) -> None:
        self._failed.pop(vc.uid_of(claim), None)

    def _enqueue(self, claim: Obj) -> None:
        if not vc.spec(claim).get("volumeName"):
            self.mgr.enqueue(self, vc.key_of(claim))

    def _retry_failed(self) -> None:
        for claim in self.claims.list():
            if vc.uid_of(claim) in self._failed:
                self._enqueue(claim)

    def _node_exists(self, node: str) -> bool:
        """A live check: the informer may lag a node that just registered."""
        try:
            self.api.get("nodes", node)
        except client.NotFound:
            return False
        return True

    def reconcile(self, key: str) -> float | None:
        claim = self.claims.get_key(key)
        if claim is None or vc.is_deleting(claim) or vc.spec(claim).get("volumeName"):
            return None
        sc = self.classes.get("", vc.claim_class(claim))
        if sc is None:
            return None
        klass = vc.ClassInfo.from_obj(sc)
        if klass.provisioner not in vc.OUR_PROVISIONERS:
            return None
        if vc.annotations_of(claim).get(vc.ANN_STORAGE_PROVISIONER) != klass.provisioner:
            return None  # the binder has not handed the claim to a provisioner yet
        if self.volumes.get("", volume_name(claim)) is not None:
            return None
        node = vc.annotations_of(claim).get(vc.ANN_SELECTED_NODE) or None
        if klass.wait_for_first_consumer and node is None:
            return None  # shouldProvision: a delayed-binding claim waits for the scheduler's node
        recorder = self.recorders[klass.provisioner]
        why = refusal(claim, klass, node)
        if why is None and node is not None and self.nodes.get("", node) is None and not self._node_exists(node):
            # ProvisioningReschedule: give the claim back to the scheduler by dropping its node.
            log.info("claim %s: selected node %s is gone; removing %s", key, node, vc.ANN_SELECTED_NODE)
            recorder.warning(claim, "ProvisioningFailed", f'failed to get target node: nodes "{node}" not found')
            self.api.patch("persistentvolumeclaims", vc.name_of(claim), {"metadata": {
                "resourceVersion": vc.meta(claim).get("resourceVersion"),
                "annotations": {vc.ANN_SELECTED_NODE: None}}}, vc.namespace_of(claim))
            return None
        if why is not None:
            if self._failed.get(vc.uid_of(claim)) != why:
                self._failed[vc.uid_of(claim)] = why
                recorder.warning(claim, "ProvisioningFailed", why)
            return None
        self._failed.pop(vc.uid_of(claim), None)
        recorder.normal(claim, "Provisioning", "External provisioner is provisioning volume for claim "
                        f'"{vc.namespace_of(claim)}/{vc.name_of(claim)}"')
        path = volume_dir(self.state_dir, klass.provisioner, node, claim)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        try:
            self.api.create("persistentvolumes", build_volume(claim, klass, node, path))
        except client.AlreadyExists:
            return None
        log.info("provisioned %s at %s for claim %s", volume_name(claim), path, key)
        recorder.normal(claim, "ProvisioningSucceeded", f"Successfully provisioned volume {volume_name(claim)}")
        return None


def new_provisioner() -> Provisioner:
    return Provisioner()
