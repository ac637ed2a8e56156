"""Names and pure helpers the volume controllers and the scheduler share.

The annotation and finalizer strings are the ones upstream components write, because users and
tools (`kubectl describe`, StatefulSet code, our harness) read them:
`pkg/controller/volume/persistentvolume/pv_controller.go` and `component-helpers/storage/volume`
(bind-completed, bound-by-controller, storage-provisioner, selected-node, provisioned-by),
`pkg/util/protectionutil` (the two protection finalizers) and rancher/local-path-provisioner
`provisioner.go` (`local.path.provisioner/selected-node`).

Everything here works on plain JSON dicts (what the kubesim client returns) and does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from kubesim.apiserver.admission import quantity

Obj = dict[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_LOCAL_PATH_SELECTED_NODE = "local.path.provisioner/selected-node"

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"

LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
"""kind's `standard` class: a directory on the node the scheduler picked, pinned there by node affinity."""
SHARED_PROVISIONER = "kubesim.io/shared"
"""kubesim's network-attached stand-in: a directory every node can reach, one node at a time (RWO)."""
LAZY_PROVISIONER = "kubesim.io/lazy"
"""kubesim's power-loss class: a directory on one node like local-path, mounted through the lazy file system
(``kubesim/lazyfs``) by the node's kubelet, so ``kubesim node power-loss`` can drop what was never made durable."""
LAZY_CSI_DRIVER = "lazy.kubesim.io"
"""The PV source of a `lazy` volume: ``csi`` with this driver, its backing directory in ``volumeAttributes``."""
LAZY_BACKING_ATTRIBUTE = "backing"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
OUR_PROVISIONERS = frozenset({LOCAL_PATH_PROVISIONER, SHARED_PROVISIONER, LAZY_PROVISIONER})
NODE_LOCAL_PROVISIONERS = frozenset({LOCAL_PATH_PROVISIONER, LAZY_PROVISIONER})
"""Provisioners whose volumes live on the node the scheduler selected, pinned there by node affinity."""

HOSTNAME_LABEL = "kubernetes.io/hostname"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_SCHEDULER = "default-scheduler"


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, Mapping) else {}


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, Mapping) else {}


def finalizers(obj: Mapping[str, Any]) -> list[str]:
    value = meta(obj).get("finalizers")
    return [str(f) for f in value] if isinstance(value, list) else []


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def key_of(obj: Mapping[str, Any]) -> str:
    """The work-queue key: `namespace/name`, or `name` for cluster-scoped objects."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


# --- pods and their claims -------------------------------------------------------------------


def pod_claim_names(pod: Mapping[str, Any]) -> list[str]:
    """Claims a pod mounts through `persistentVolumeClaim` volumes, in volume order, without repeats.

    Generic ephemeral volumes are not emulated (admission rejects nothing about them, but no
    controller creates their claims), so only direct references count.
    """
    names: list[str] = []
    for volume in spec(pod).get("volumes") or []:
        if not isinstance(volume, Mapping):
            continue
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, Mapping) and source.get("claimName"):
            claim = str(source["claimName"])
            if claim not in names:
                names.append(claim)
    return names


def pod_is_terminal(pod: Mapping[str, Any]) -> bool:
    return status(pod).get("phase") in ("Succeeded", "Failed")


def pod_node(pod: Mapping[str, Any]) -> str:
    return str(spec(pod).get("nodeName") or "")


def pod_uses_claim_for_protection(pod: Mapping[str, Any], claim_name: str) -> bool:
    """pvcprotection `podUsesPVC`: a *scheduled* pod that names the claim keeps it.

    Upstream does not look at the pod's phase for plain claim references (only generic ephemeral
    volumes are released by a shut-down pod): the kubelet may still have the volume mounted until
    the pod object is gone, so a Succeeded pod still blocks removal of the finalizer.
    """
    return bool(pod_node(pod)) and claim_name in pod_claim_names(pod)


# --- claims, volumes and classes -------------------------------------------------------------


def claim_class(claim: Mapping[str, Any]) -> str:
    """The claim's class; the legacy beta annotation wins as in `storagehelpers.GetPersistentVolumeClaimClass`."""
    legacy = annotations_of(claim).get("volume.beta.kubernetes.io/storage-class")
    if legacy is not None:
        return str(legacy)
    return str(spec(claim).get("storageClassName") or "")


def volume_class(pv: Mapping[str, Any]) -> str:
    legacy = annotations_of(pv).get("volume.beta.kubernetes.io/storage-class")
    if legacy is not None:
        return str(legacy)
    return str(spec(pv).get("storageClassName") or "")


def claim_request_bytes(claim: Mapping[str, Any]) -> int:
    requests = (spec(claim).get("resources") or {}).get("requests") or {}
    try:
        return quantity.quantity_bytes(requests.get("storage", 0))
    except ValueError:
        return 0


def volume_capacity_bytes(pv: Mapping[str, Any]) -> int:
    try:
        return quantity.quantity_bytes((spec(pv).get("capacity") or {}).get("storage", 0))
    except ValueError:
        return 0


def access_modes(obj: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(m) for m in spec(obj).get("accessModes") or [])


def is_exclusive(modes: Iterable[str]) -> bool:
    """RWO/RWOP without a shared mode: the volume may be attached to one node at a time."""
    found = set(modes)
    return not found & {"ReadWriteMany", "ReadOnlyMany"}


def claim_ref_matches(pv: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    """`IsVolumeBoundToClaim`: the PV's claimRef names this claim (and its uid, once one is set)."""
    ref = spec(pv).get("claimRef")
    if not isinstance(ref, Mapping):
        return False
    if ref.get("name") != name_of(claim) or ref.get("namespace") != namespace_of(claim):
        return False
    return not ref.get("uid") or ref.get("uid") == uid_of(claim)


@dataclasses.dataclass(frozen=True)
class ClassInfo:
    """The StorageClass fields the controllers act on."""

    name: str
    provisioner: str
    reclaim_policy: str
    wait_for_first_consumer: bool

    @classmethod
    def from_obj(cls, sc: Mapping[str, Any]) -> ClassInfo:
        return cls(
            name=name_of(sc),
            provisioner=str(sc.get("provisioner") or ""),
            reclaim_policy=str(sc.get("reclaimPolicy") or "Delete"),
            wait_for_first_consumer=sc.get("volumeBindingMode") == "WaitForFirstConsumer",
        )


# --- node selectors (PV node affinity, pod node affinity) ------------------------------------


def _requirement_matches(req: Mapping[str, Any], values_by_key: Mapping[str, str]) -> bool:
    key = str(req.get("key") or "")
    op = req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    present = key in values_by_key
    value = values_by_key.get(key, "")
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A NodeSelectorTerm: all requirements hold; a term with none matches nothing (upstream)."""
    expressions = [e for e in term.get("matchExpressions") or [] if isinstance(e, Mapping)]
    fields = [f for f in term.get("matchFields") or [] if isinstance(f, Mapping)]
    if not expressions and not fields:
        return False
    node_labels = {str(k): str(v) for k, v in labels(node).items()}
    node_fields = {"metadata.name": name_of(node)}
    return (all(_requirement_matches(e, node_labels) for e in expressions)
            and all(_requirement_matches(f, node_fields) for f in fields))


def node_selector_matches(selector: Mapping[str, Any] | None, node: Mapping[str, Any]) -> bool:
    """`corev1.NodeSelector` semantics: terms are ORed; a nil selector matches every node."""
    if selector is None:
        return True
    terms = [t for t in selector.get("nodeSelectorTerms") or [] if isinstance(t, Mapping)]
    return any(_term_matches(t, node) for t in terms)


def volume_node_affinity_matches(pv: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """`CheckNodeAffinity`: a PV without `nodeAffinity.required` is reachable from any node."""
    affinity = spec(pv).get("nodeAffinity")
    if not isinstance(affinity, Mapping):
        return True
    required = affinity.get("required")
    return node_selector_matches(required if isinstance(required, Mapping) else None, node)


def volume_pinned_node(pv: Mapping[str, Any]) -> str | None:
    """The node a local-path PV lives on: its single `kubernetes.io/hostname In [node]` value."""
    affinity = spec(pv).get("nodeAffinity")
    if not isinstance(affinity, Mapping) or not isinstance(affinity.get("required"), Mapping):
        return None
    for term in affinity["required"].get("nodeSelectorTerms") or []:
        for expr in (term or {}).get("matchExpressions") or []:
            values = expr.get("values") or []
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None
