"""Create-time changes a real apiserver makes beyond scheme defaults.

Two sources upstream, both only on create:
- registry strategies' `PrepareForCreate` (`pkg/registry/core/pod/strategy.go`: status reset to
  `phase: Pending` plus `qosClass`; `pkg/registry/core/namespace/strategy.go`: finalizer
  `kubernetes`, phase Active; statefulset/PVC/PV strategies reset status);
- the default admission plugins: ServiceAccount (`serviceAccountName: default`),
  DefaultTolerationSeconds (tolerate `not-ready`/`unreachable` NoExecute for 300 s — the reason
  pods on a dead node are evicted after five minutes), Priority (`priority: 0`,
  `preemptionPolicy: PreemptLowerPriority`) and DefaultStorageClass (a claim without a class gets
  the cluster's default one).

The caller (the REST layer) applies, in order: `apply_defaults`, `apply_create_status`,
`apply_admission_mutations`, then validation.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Mapping, MutableMapping
from decimal import Decimal
from typing import Any

from kubesim.apiserver.admission import quantity

Obj = MutableMapping[str, Any]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_SERVICE_ACCOUNT = "default"
NAMESPACE_FINALIZER = "kubernetes"


@dataclasses.dataclass(frozen=True)
class AdmissionConfig:
    """Cluster state the mutating plugins consult; the REST layer supplies it per request.

    `default_storage_class` is the class annotated `storageclass.kubernetes.io/is-default-class:
    "true"` (None if there is none); `toleration_seconds` is the DefaultTolerationSeconds plugin's
    `--default-not-ready-toleration-seconds`/`--default-unreachable-toleration-seconds` (300
    upstream, shortened in tests).
    """

    default_storage_class: str | None = None
    not_ready_toleration_seconds: int = 300
    unreachable_toleration_seconds: int = 300


def pod_qos_class(pod: Mapping[str, Any]) -> str:
    """qos.GetPodQOS: BestEffort, Guaranteed or Burstable from cpu/memory requests and limits."""
    spec = pod.get("spec") or {}
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    for container in containers:
        resources = (container or {}).get("resources") or {}
        for name, value in (resources.get("requests") or {}).items():
            amount = _amount(value)
            if name in ("cpu", "memory") and amount > 0:
                requests[name] = requests.get(name, Decimal(0)) + amount
        found: set[str] = set()
        for name, value in (resources.get("limits") or {}).items():
            amount = _amount(value)
            if name in ("cpu", "memory") and amount > 0:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + amount
        if not {"cpu", "memory"} <= found:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == amount for name, amount in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _amount(value: object) -> Decimal:
    try:
        return quantity.parse_quantity(value)
    except ValueError:
        return Decimal(0)  # invalid quantities are rejected by validation; they do not count here


def apply_create_status(kind: str, obj: Obj) -> dict[str, Any]:
    """A copy with the status (and strategy fields) a freshly created object has upstream."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    if kind == "Pod":
        out["status"] = {"phase": "Pending", "qosClass": pod_qos_class(out)}
    elif kind == "Namespace":
        spec = out.setdefault("spec", {})
        finalizers = spec.get("finalizers") or []
        if NAMESPACE_FINALIZER not in finalizers:
            spec["finalizers"] = [*finalizers, NAMESPACE_FINALIZER]
        out["status"] = {"phase": "Active"}
    elif kind in ("PersistentVolumeClaim", "PersistentVolume"):
        out["status"] = {"phase": "Pending"}
    elif kind == "StatefulSet":
        out["status"] = {"replicas": 0, "availableReplicas": 0}
    elif kind == "PodDisruptionBudget":
        out["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    return out


def _tolerates(tolerations: list[Any], taint_key: str) -> bool:
    for toleration in tolerations:
        if not isinstance(toleration, Mapping):
            continue
        key_ok = toleration.get("key") in (taint_key, None, "")
        effect_ok = toleration.get("effect") in ("NoExecute", None, "")
        if key_ok and effect_ok:
            return True
    return False


def apply_admission_mutations(kind: str, obj: Obj, config: AdmissionConfig = AdmissionConfig()) -> dict[str, Any]:
    """A copy with the default mutating admission plugins applied (create only)."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    if kind == "Pod":
        spec = out.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccount"] = spec["serviceAccountName"]  # the deprecated alias v1 keeps in sync
        tolerations = list(spec.get("tolerations") or [])
        if not _tolerates(tolerations, NOT_READY_TAINT):
            tolerations.append({"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": config.not_ready_toleration_seconds})
        if not _tolerates(tolerations, UNREACHABLE_TAINT):
            tolerations.append({"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": config.unreachable_toleration_seconds})
        spec["tolerations"] = tolerations
        if spec.get("priority") is None and not spec.get("priorityClassName"):
            spec["priority"] = 0
        if spec.get("preemptionPolicy") is None:
            spec["preemptionPolicy"] = "PreemptLowerPriority"
    elif kind == "PersistentVolumeClaim":
        spec = out.setdefault("spec", {})
        if "storageClassName" not in spec or spec["storageClassName"] is None:
            annotations = (out.get("metadata") or {}).get("annotations") or {}
            legacy = "volume.beta.kubernetes.io/storage-class" in annotations
            if config.default_storage_class is not None and not legacy:
                spec["storageClassName"] = config.default_storage_class
        _add_finalizer(out, PVC_PROTECTION)
    elif kind == "PersistentVolume":
        _add_finalizer(out, PV_PROTECTION)
    return out


#: StorageObjectInUseProtection admission (plugin/pkg/admission/storage/storageobjectinuseprotection)
#: adds these at create so no claim or volume is ever deletable before its controller has looked.
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def _add_finalizer(obj: dict[str, Any], finalizer: str) -> None:
    meta = obj.setdefault("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)
    meta["finalizers"] = finalizers


_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_BASE = 63 - 5


def generate_name(base: str, rng: random.Random | None = None) -> str:
    """names.SimpleNameGenerator: base (cut to 58 characters) plus five random characters."""
    chooser = rng or random.SystemRandom()
    return base[:_MAX_GENERATED_BASE] + "".join(chooser.choice(_NAME_ALPHABET) for _ in range(5))
