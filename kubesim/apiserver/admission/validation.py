"""Create and update validation, with the field paths, error types and messages upstream uses.

Sources: `pkg/apis/core/validation/validation.go` (ObjectMeta via apimachinery
`pkg/api/validation/objectmeta.go`, pods, claims, volumes, services, namespaces, nodes, config
maps), `pkg/apis/apps/validation/validation.go` (StatefulSet, ControllerRevision),
`pkg/apis/policy/validation`, `pkg/apis/storage/validation`, `pkg/apis/coordination/validation`.

Objects are validated after defaulting (as upstream does), so e.g. a pod's `restartPolicy` is
always present here. The REST layer is expected to have carried system fields over on update
(uid, creationTimestamp, resourceVersion — `rest.BeforeUpdate` upstream) and to have reset
status/spec for main-resource/`/status` writes; what is checked here is what the kinds' own
`ValidateXUpdate` functions check.

Deliberately like upstream, a StatefulSet's pod template is *not* validated beyond its labels,
`restartPolicy: Always` and `activeDeadlineSeconds` (apps validation leaves a TODO there); a bad
template surfaces when the controller's pod create is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubesim.apiserver import fielderrors as fe
from kubesim.apiserver import selectors
from kubesim.apiserver.admission import endpointslice, quantity, rbac
from kubesim.apiserver.admission.meta import (
    NEGATIVE_MSG,
    as_list,
    as_map,
    dns1123_label_errors,
    get_path,
    immutable,
    name_is_dns_subdomain,
    nonnegative,
    semantic,
    semantic_map,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubesim.apiserver.admission.podspec import (
    PORT_RANGE_MSG,
    PROTOCOLS,
    TAINT_EFFECTS,
    port_name_errors,
    valid_port_number,
    validate_pod_spec,
    validate_quantity,
)
from kubesim.apiserver.fielderrors import FieldError

Obj = Mapping[str, Any]
Errors = list[FieldError]

# ---------------------------------------------------------------------------------------------
# Per kind: create
# ---------------------------------------------------------------------------------------------


def _validate_pod(obj: Obj) -> Errors:
    errs = validate_pod_spec(obj.get("spec"), "spec")
    if as_list(get_path(obj, "spec", "ephemeralContainers")):
        errs.append(fe.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errs


STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
STATEFULSET_UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)




def _validate_statefulset_spec(spec: Mapping[str, Any]) -> Errors:
    errs: Errors = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.append(fe.required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(fe.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = as_map(spec.get("updateStrategy"))
    stype = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if not stype:
        errs.append(fe.required("spec.updateStrategy"))
    elif stype == "OnDelete":
        if rolling is not None:
            errs.append(fe.invalid("spec.updateStrategy.rollingUpdate", rolling,
                                   "only allowed for updateStrategy 'RollingUpdate'"))
    elif stype == "RollingUpdate":
        if isinstance(rolling, Mapping):
            errs += nonnegative(rolling.get("partition"), "spec.updateStrategy.rollingUpdate.partition")
            errs += _validate_max_unavailable(rolling.get("maxUnavailable"))
    else:
        errs.append(fe.invalid("spec.updateStrategy", dict(strategy), "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, Mapping):
        for key in ("whenDeleted", "whenScaled"):
            if retention.get(key) not in ("Retain", "Delete"):
                errs.append(fe.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", retention.get(key),
                                             ("Retain", "Delete")))
    errs += nonnegative(spec.get("replicas"), "spec.replicas")
    errs += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    if isinstance(spec.get("ordinals"), Mapping):
        errs += nonnegative(spec["ordinals"].get("start"), "spec.ordinals.start")
    selector = spec.get("selector")
    template = as_map(spec.get("template"))
    if selector is None:
        errs.append(fe.required("spec.selector"))
    else:
        errs += validate_label_selector(selector, "spec.selector")
        if not as_map(selector).get("matchLabels") and not as_map(selector).get("matchExpressions"):
            errs.append(fe.invalid("spec.selector", selector, "empty selector is invalid for statefulset"))
    try:
        parsed = selectors.label_selector_from_api(selector if isinstance(selector, Mapping) else None)
    except selectors.SelectorError:
        errs.append(fe.invalid("spec.selector", selector, ""))
    else:
        labels = as_map(get_path(template, "metadata", "labels"))
        if not parsed.empty and not parsed.matches({str(k): str(v) for k, v in labels.items()}):
            errs.append(fe.invalid("spec.template.metadata.labels", dict(labels),
                                   "`selector` does not match template `labels`"))
        errs += validate_labels(labels, "spec.template.labels")
        errs += validate_annotations(get_path(template, "metadata", "annotations"), "spec.template.annotations")
    restart = get_path(template, "spec", "restartPolicy")
    if restart != "Always":
        errs.append(fe.not_supported("spec.template.spec.restartPolicy", restart, ("Always",)))
    if get_path(template, "spec", "activeDeadlineSeconds") is not None:
        errs.append(fe.forbidden("spec.template.spec.activeDeadlineSeconds",
                                 "activeDeadlineSeconds in StatefulSet is not Supported"))
    return errs


_PERCENT_RE = re.compile(r"^[0-9]+%$")


def _validate_max_unavailable(value: object) -> Errors:
    path = "spec.updateStrategy.rollingUpdate.maxUnavailable"
    if value is None:
        return []
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            return [fe.invalid(path, value, "a valid percent string must be a numeric string followed by an ending "
                                            "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]
        amount = int(value[:-1])
        errs: Errors = []
        if amount == 0:
            errs.append(fe.invalid(path, value, "cannot be 0"))
        if amount > 100:
            errs.append(fe.invalid(path, value, "must not be greater than 100%"))
        return errs
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            return [fe.invalid(path, value, NEGATIVE_MSG)]
        if value == 0:
            return [fe.invalid(path, value, "cannot be 0")]
        return []
    return [fe.invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _validate_statefulset(obj: Obj) -> Errors:
    return _validate_statefulset_spec(as_map(obj.get("spec")))


ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _validate_access_modes(modes: object, path: str, required_detail: str) -> Errors:
    errs: Errors = []
    values = as_list(modes)
    if not values:
        errs.append(fe.required(path, required_detail))
    for mode in values:
        if mode not in ACCESS_MODES:
            errs.append(fe.not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in values and len(values) > 1:
        errs.append(fe.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def validate_pvc_spec(spec: object, path: str) -> Errors:
    s = as_map(spec)
    errs = _validate_access_modes(s.get("accessModes"), f"{path}.accessModes", "at least 1 access mode is required")
    errs += validate_label_selector(s.get("selector"), f"{path}.selector") if s.get("selector") else []
    storage_path = f"{path}.resources[storage]"
    requests = as_map(get_path(s, "resources", "requests"))
    if "storage" not in requests:
        errs.append(fe.required(storage_path))
    else:
        errs += validate_quantity(requests["storage"], storage_path, positive=True)
    mode = s.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        errs.append(fe.not_supported(f"{path}.volumeMode", mode, ("Block", "Filesystem")))
    klass = s.get("storageClassName")
    if klass:
        errs += [fe.invalid(f"{path}.storageClassName", klass, msg) for msg in name_is_dns_subdomain(str(klass), False)]
    return errs


def _validate_pvc(obj: Obj) -> Errors:
    return validate_pvc_spec(obj.get("spec"), "spec")


RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
PV_SOURCES = frozenset({
    "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi", "cinder", "cephfs",
    "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "portworxVolume", "scaleIO", "local", "storageos", "csi",
})
"""PersistentVolumeSource members (differs from pod volume sources: `local` yes, `emptyDir` no)."""


def _validate_pv(obj: Obj) -> Errors:
    spec = as_map(obj.get("spec"))
    errs = _validate_access_modes(spec.get("accessModes"), "spec.accessModes", "")
    capacity = as_map(spec.get("capacity"))
    if not capacity:
        errs.append(fe.required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(fe.not_supported("spec.capacity", dict(capacity), ("storage",)))
    for name, value in capacity.items():
        errs += validate_quantity(value, f"spec.capacity[{name}]", positive=True)
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy not in RECLAIM_POLICIES:
        errs.append(fe.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    sources = [k for k in spec if k in PV_SOURCES and spec[k] is not None]
    if not sources:
        errs.append(fe.required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(fe.forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    if "local" in sources:
        if not get_path(spec, "local", "path"):
            errs.append(fe.required("spec.local.path"))
        if spec.get("nodeAffinity") is None:
            errs.append(fe.required("spec.nodeAffinity", "Local volume requires node affinity"))
    if "hostPath" in sources and not get_path(spec, "hostPath", "path"):
        errs.append(fe.required("spec.hostPath.path"))
    klass = spec.get("storageClassName")
    if klass:
        errs += [fe.invalid("spec.storageClassName", klass, msg) for msg in name_is_dns_subdomain(str(klass), False)]
    return errs


SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _validate_service(obj: Obj) -> Errors:
    spec = as_map(obj.get("spec"))
    errs: Errors = []
    stype = spec.get("type")
    if stype not in SERVICE_TYPES:
        errs.append(fe.not_supported("spec.type", stype, SERVICE_TYPES))
    ports = as_list(spec.get("ports"))
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and stype != "ExternalName":
        errs.append(fe.required("spec.ports"))
    seen_names: set[str] = set()
    seen_ports: set[tuple[object, object]] = set()
    for i, raw_port in enumerate(ports):
        ppath = f"spec.ports[{i}]"
        port = as_map(raw_port)
        pname = port.get("name") or ""
        if len(ports) > 1 and not pname:
            errs.append(fe.required(f"{ppath}.name"))
        elif pname:
            errs += [fe.invalid(f"{ppath}.name", pname, msg) for msg in dns1123_label_errors(str(pname))]
            if pname in seen_names:
                errs.append(fe.duplicate(f"{ppath}.name", pname))
            seen_names.add(str(pname))
        if not valid_port_number(port.get("port")):
            errs.append(fe.invalid(f"{ppath}.port", port.get("port"), PORT_RANGE_MSG))
        if port.get("protocol") not in PROTOCOLS:
            errs.append(fe.not_supported(f"{ppath}.protocol", port.get("protocol"), PROTOCOLS))
        target = port.get("targetPort")
        if isinstance(target, str):
            errs += [fe.invalid(f"{ppath}.targetPort", target, msg) for msg in port_name_errors(target)]
        elif not valid_port_number(target):
            errs.append(fe.invalid(f"{ppath}.targetPort", target, PORT_RANGE_MSG))
        key = (port.get("port"), port.get("protocol"))
        if key in seen_ports:
            errs.append(fe.duplicate(ppath, {"port": key[0], "protocol": key[1]}))
        seen_ports.add(key)
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        errs.append(fe.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    selector = spec.get("selector")
    if selector:
        errs += validate_labels(selector, "spec.selector")
    return errs


STANDARD_FINALIZERS = ("kubernetes",)


def _validate_namespace(obj: Obj) -> Errors:
    errs: Errors = []
    for name in as_list(get_path(obj, "spec", "finalizers")):
        text = str(name)
        errs += [fe.invalid("spec.finalizers", text, msg) for msg in selectors.qualified_name_errors(text)]
        if "/" not in text and text not in STANDARD_FINALIZERS:
            errs.append(fe.invalid("spec.finalizers", text,
                                   "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def _validate_node(obj: Obj) -> Errors:
    errs: Errors = []
    for i, raw_taint in enumerate(as_list(get_path(obj, "spec", "taints"))):
        taint = as_map(raw_taint)
        tpath = f"spec.taints[{i}]"
        key = str(taint.get("key") or "")
        if not key:
            errs.append(fe.required(f"{tpath}.key"))
        else:
            errs += [fe.invalid(f"{tpath}.key", key, msg) for msg in selectors.qualified_name_errors(key)]
        effect = taint.get("effect")
        if not effect:
            errs.append(fe.required(f"{tpath}.effect"))
        elif effect not in TAINT_EFFECTS:
            errs.append(fe.not_supported(f"{tpath}.effect", effect, TAINT_EFFECTS))
    return errs


CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(f"^{CONFIG_KEY_FMT}$")


def _config_key_errors(key: str) -> list[str]:
    errs: list[str] = []
    if len(key) > 253:
        errs.append(selectors.max_len_error(253))
    if not _CONFIG_KEY_RE.match(key):
        errs.append(selectors.regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or "
                                          "'.'", CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key in (".", ".."):
        errs.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _validate_data_keys(obj: Obj) -> Errors:
    errs: Errors = []
    data, binary = as_map(obj.get("data")), as_map(obj.get("binaryData"))
    for section, values in (("data", data), ("binaryData", binary)):
        for key in values:
            errs += [fe.invalid(f"{section}[{key}]", key, msg) for msg in _config_key_errors(str(key))]
    for key in data.keys() & binary.keys():
        errs.append(fe.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    return errs


def _validate_event(obj: Obj) -> Errors:
    namespace = get_path(obj, "metadata", "namespace") or ""
    involved = as_map(obj.get("involvedObject"))
    involved_ns = involved.get("namespace") or ""
    if not involved_ns:
        if namespace not in ("default", ""):
            return [fe.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")]
    elif involved_ns != namespace:
        return [fe.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")]
    return []


def _validate_pdb(obj: Obj) -> Errors:
    spec = as_map(obj.get("spec"))
    errs: Errors = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(fe.invalid("spec", dict(spec), "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        value = spec.get(key)
        if isinstance(value, str):
            if not _PERCENT_RE.match(value):
                errs.append(fe.invalid(f"spec.{key}", value, "must be an integer or percentage (e.g '5%')"))
            elif int(value[:-1]) > 100:
                errs.append(fe.invalid(f"spec.{key}", value, "must not be greater than 100%"))
        else:
            errs += nonnegative(value, f"spec.{key}")
    if spec.get("selector") is not None:
        errs += validate_label_selector(spec["selector"], "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(fe.not_supported("spec.unhealthyPodEvictionPolicy", policy, ("AlwaysAllow", "IfHealthyBudget")))
    return errs


def _validate_storageclass(obj: Obj) -> Errors:
    errs: Errors = []
    provisioner = obj.get("provisioner") or ""
    if not provisioner:
        errs.append(fe.required("provisioner"))
    else:
        errs += [fe.invalid("provisioner", provisioner, msg)
                 for msg in selectors.qualified_name_errors(str(provisioner).lower())]
    policy = obj.get("reclaimPolicy")
    if policy not in ("Delete", "Retain"):
        errs.append(fe.not_supported("reclaimPolicy", policy, ("Delete", "Retain")))
    mode = obj.get("volumeBindingMode")
    if mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(fe.not_supported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
    return errs


def _validate_lease(obj: Obj) -> Errors:
    spec = as_map(obj.get("spec"))
    errs: Errors = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        errs.append(fe.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    errs += nonnegative(spec.get("leaseTransitions"), "spec.leaseTransitions")
    return errs


def _validate_controller_revision(obj: Obj) -> Errors:
    errs: Errors = []
    if obj.get("data") is None:
        errs.append(fe.required("data", "data is mandatory"))
    errs += nonnegative(obj.get("revision"), "revision")
    return errs


def _validate_scale(obj: Obj) -> Errors:
    return nonnegative(get_path(obj, "spec", "replicas"), "spec.replicas")


_CREATE_VALIDATORS: Mapping[str, Callable[[Obj], Errors]] = {
    "Pod": _validate_pod,
    "StatefulSet": _validate_statefulset,
    "PersistentVolumeClaim": _validate_pvc,
    "PersistentVolume": _validate_pv,
    "Service": _validate_service,
    "Namespace": _validate_namespace,
    "Node": _validate_node,
    "ConfigMap": _validate_data_keys,
    "Secret": _validate_data_keys,
    "Event": _validate_event,
    "PodDisruptionBudget": _validate_pdb,
    "StorageClass": _validate_storageclass,
    "Lease": _validate_lease,
    "ControllerRevision": _validate_controller_revision,
    "EndpointSlice": endpointslice.validate,
    **rbac.CREATE,
}

def validate_create(kind: str, obj: Obj) -> list[FieldError]:
    """Errors that make the apiserver refuse to create `obj` (empty when it is valid)."""
    if kind == "Scale":
        return _validate_scale(obj)
    errs = validate_object_meta(kind, obj)
    validator = _CREATE_VALIDATORS.get(kind)
    if validator is not None:
        errs += validator(obj)
    return errs


# ---------------------------------------------------------------------------------------------
# Per kind: update
# ---------------------------------------------------------------------------------------------

POD_UPDATABLE_FIELDS = (
    "`spec.containers[*].image`", "`spec.initContainers[*].image`", "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _changed_keys(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k))


def _munge_pod_spec(new_spec: Mapping[str, Any], old_spec: Mapping[str, Any]) -> dict[str, Any]:
    """new_spec with the fields a pod update may change set back to the old values."""
    munged = dict(new_spec)
    for key in ("containers", "initContainers"):
        new_list, old_list = as_list(new_spec.get(key)), as_list(old_spec.get(key))
        if new_list and len(new_list) == len(old_list):
            munged[key] = [
                {**as_map(n), "image": as_map(o).get("image")} if isinstance(n, Mapping) else n
                for n, o in zip(new_list, old_list, strict=True)
            ]
    munged["activeDeadlineSeconds"] = old_spec.get("activeDeadlineSeconds")
    old_tolerations = as_list(old_spec.get("tolerations"))
    new_tolerations = as_list(new_spec.get("tolerations"))
    if all(t in new_tolerations for t in old_tolerations):
        munged["tolerations"] = old_spec.get("tolerations")
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_spec.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    old_gates = as_list(old_spec.get("schedulingGates"))
    if all(g in old_gates for g in as_list(new_spec.get("schedulingGates"))):
        munged["schedulingGates"] = old_spec.get("schedulingGates")  # gates may only be removed
    return {k: v for k, v in munged.items() if v is not None}


def _validate_pod_update(new: Obj, old: Obj) -> Errors:
    errs = validate_pod_spec(new.get("spec"), "spec")
    new_spec, old_spec = as_map(new.get("spec")), as_map(old.get("spec"))
    new_deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if old_deadline is not None:
        if new_deadline is None:
            errs.append(fe.invalid("spec.activeDeadlineSeconds", new_deadline,
                                   "must not update from a positive integer to nil value"))
        elif isinstance(new_deadline, int) and new_deadline > old_deadline:
            errs.append(fe.invalid("spec.activeDeadlineSeconds", new_deadline,
                                   "must be less than or equal to previous value"))
    munged = semantic_map(_munge_pod_spec(new_spec, old_spec))
    old_clean = semantic_map(old_spec)
    if munged != old_clean:
        changed = ", ".join(f"spec.{k}" for k in _changed_keys(munged, old_clean))
        allowed = ",".join(POD_UPDATABLE_FIELDS)
        detail = f"pod updates may not change fields other than {allowed} (changed: {changed})"
        errs.append(fe.forbidden("spec", detail))
    return errs


def _validate_statefulset_update(new: Obj, old: Obj) -> Errors:
    new_spec, old_spec = as_map(new.get("spec")), as_map(old.get("spec"))
    errs = _validate_statefulset_spec(new_spec)
    rest_new = semantic({k: v for k, v in new_spec.items() if k not in STATEFULSET_MUTABLE})
    rest_old = semantic({k: v for k, v in old_spec.items() if k not in STATEFULSET_MUTABLE})
    if rest_new != rest_old:
        errs.append(fe.forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN))
    return errs


PVC_UPDATE_FORBIDDEN = "spec is immutable after creation except resources.requests and volumeAttributesClassName " \
    "for bound claims"


def _pvc_shrink_errors(new_size: object, old_size: object, capacity: object) -> Errors:
    """A request may shrink (to recover from a failed expansion) but only to above status.capacity.

    RecoverVolumeExpansionFailure is on by default (GA), so upstream compares with the recorded
    capacity, and forbids reaching it exactly (`newSize.Cmp(statusSize) <= 0`).
    """
    try:
        new_q = quantity.parse_quantity(new_size)
        old_q = quantity.parse_quantity(old_size)
        cap_q = quantity.parse_quantity(capacity) if capacity is not None else quantity.parse_quantity(0)
    except ValueError:
        return []  # malformed sizes are reported by spec validation
    if new_q < old_q and new_q <= cap_q:
        return [fe.forbidden("spec.resources.requests.storage", "field can not be less than status.capacity")]
    return []


def _validate_pvc_update(new: Obj, old: Obj) -> Errors:
    new_spec, old_spec = dict(as_map(new.get("spec"))), dict(as_map(old.get("spec")))
    errs = validate_pvc_spec(new_spec, "spec")
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec.get("volumeName")  # the binder sets volumeName once
    bound = get_path(old, "status", "phase") == "Bound"
    new_storage = get_path(new_spec, "resources", "requests", "storage")
    old_storage = get_path(old_spec, "resources", "requests", "storage")
    if bound:
        old_spec["volumeAttributesClassName"] = new_spec.get("volumeAttributesClassName")
        old_requests = dict(as_map(get_path(old_spec, "resources", "requests")))
        old_requests["storage"] = new_storage
        old_spec["resources"] = {**as_map(old_spec.get("resources")), "requests": old_requests}
    errs += _pvc_shrink_errors(new_storage, old_storage, get_path(old, "status", "capacity", "storage"))
    clean_new, clean_old = semantic_map(new_spec), semantic_map(old_spec)
    if clean_new != clean_old:
        changed = ", ".join(f"spec.{k}" for k in _changed_keys(clean_new, clean_old))
        errs.append(fe.forbidden("spec", f"{PVC_UPDATE_FORBIDDEN} (changed: {changed})"))
    return errs


def _validate_pv_update(new: Obj, old: Obj) -> Errors:
    errs = _validate_pv(new)
    new_spec, old_spec = as_map(new.get("spec")), as_map(old.get("spec"))
    new_source = {k: new_spec.get(k) for k in PV_SOURCES if new_spec.get(k) is not None}
    old_source = {k: old_spec.get(k) for k in PV_SOURCES if old_spec.get(k) is not None}
    if new_source != old_source:
        errs.append(fe.forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after "
                                                                "creation"))
    errs += immutable(new_spec.get("volumeMode"), old_spec.get("volumeMode"), "spec.volumeMode")
    if old_spec.get("nodeAffinity") is not None:
        errs += immutable(new_spec.get("nodeAffinity"), old_spec.get("nodeAffinity"), "spec.nodeAffinity")
    return errs


def _validate_service_update(new: Obj, old: Obj) -> Errors:
    errs = _validate_service(new)
    old_ip = get_path(old, "spec", "clusterIP")
    new_ip = get_path(new, "spec", "clusterIP")
    if old_ip and new_ip != old_ip:
        errs.append(fe.invalid("spec.clusterIPs[0]", new_ip, "may not change once set"))
    return errs


NODE_UPDATE_FORBIDDEN = "node updates may only change labels, taints, or capacity (or configSource, if the " \
    "DynamicKubeletConfig feature gate is enabled)"


def _validate_node_update(new: Obj, old: Obj) -> Errors:
    errs = _validate_node(new)
    new_spec, old_spec = dict(as_map(new.get("spec"))), dict(as_map(old.get("spec")))
    for key in ("taints", "unschedulable", "configSource"):
        new_spec.pop(key, None)
        old_spec.pop(key, None)
    for key in ("podCIDR", "podCIDRs", "providerID"):
        if not old_spec.get(key):
            old_spec[key] = new_spec.get(key)
    if semantic(new_spec) != semantic(old_spec):
        errs.append(fe.forbidden("", NODE_UPDATE_FORBIDDEN))
    return errs


def _validate_immutable_data_update(new: Obj, old: Obj) -> Errors:
    errs = _validate_data_keys(new)
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(fe.forbidden("immutable", "field is immutable when `immutable` is set"))
        for key in ("data", "binaryData"):
            if (new.get(key) or {}) != (old.get(key) or {}):
                errs.append(fe.forbidden(key, "field is immutable when `immutable` is set"))
    return errs


def _validate_secret_update(new: Obj, old: Obj) -> Errors:
    errs = _validate_immutable_data_update(new, old)
    errs += immutable(new.get("type"), old.get("type"), "type")
    return errs


def _validate_storageclass_update(new: Obj, old: Obj) -> Errors:
    errs = _validate_storageclass(new)
    if new.get("parameters") != old.get("parameters"):
        errs.append(fe.forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(fe.forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(fe.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    errs += immutable(new.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode")
    return errs


def _validate_controller_revision_update(new: Obj, old: Obj) -> Errors:
    return _validate_controller_revision(new) + immutable(new.get("data"), old.get("data"), "data")


def _validate_namespace_update(new: Obj, old: Obj) -> Errors:
    return _validate_namespace(new)


def _same_as_create(kind: str) -> Callable[[Obj, Obj], Errors]:
    def check(new: Obj, old: Obj) -> Errors:
        validator = _CREATE_VALIDATORS.get(kind)
        return validator(new) if validator is not None else []
    return check


_UPDATE_VALIDATORS: Mapping[str, Callable[[Obj, Obj], Errors]] = {
    "Pod": _validate_pod_update,
    "StatefulSet": _validate_statefulset_update,
    "PersistentVolumeClaim": _validate_pvc_update,
    "PersistentVolume": _validate_pv_update,
    "Service": _validate_service_update,
    "Node": _validate_node_update,
    "ConfigMap": _validate_immutable_data_update,
    "Secret": _validate_secret_update,
    "StorageClass": _validate_storageclass_update,
    "ControllerRevision": _validate_controller_revision_update,
    "Namespace": _validate_namespace_update,
    "EndpointSlice": endpointslice.validate_update,
    **rbac.UPDATE,
}


def validate_update(kind: str, old: Obj, new: Obj) -> list[FieldError]:
    """Errors that make the apiserver refuse to replace `old` by `new` (empty when allowed)."""
    if kind == "Scale":
        return _validate_scale(new)
    errs = validate_object_meta_update(new, old)
    validator = _UPDATE_VALIDATORS.get(kind) or _same_as_create(kind)
    errs += validator(new, old)
    return errs


def field_paths(errors: Sequence[FieldError]) -> list[str]:
    """The `field` of each error, in order (handy for callers and tests)."""
    return [e.field for e in errors]
