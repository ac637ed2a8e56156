"""Scheme defaulting: the fields a real apiserver fills in whenever it decodes an object.

Clients see these values (`kubectl get -o yaml`, the Python client's models) and controllers rely
on them (a StatefulSet always has an update strategy, a container always has a pull policy), so
they follow upstream: `pkg/apis/core/v1/defaults.go`, `pkg/apis/apps/v1/defaults.go`,
`pkg/apis/storage/v1/defaults.go`. Defaulting is idempotent and runs on every write (create,
update, patch) — the apiserver also runs it on every read from storage, which is why fields such
as a claim's `status.phase: Pending` are always visible.

Things done at create time by registry strategies and admission plugins (pod `status.phase`,
namespace finalizers, the default service account and tolerations, the default StorageClass)
live in `kubesim.apiserver.admission.mutations`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, MutableMapping
from typing import Any

from kubesim.apiserver.admission import endpointslice

Obj = MutableMapping[str, Any]

# --- helpers -----------------------------------------------------------------------------------


def _dict(parent: Obj, key: str) -> Obj:
    """parent[key] as a dict, created if missing (or replaced if it held null)."""
    value = parent.get(key)
    if not isinstance(value, MutableMapping):
        value = {}
        parent[key] = value
    return value


def _dicts(parent: Obj, key: str) -> list[Obj]:
    """The dict items of a list field (absent/null/non-list -> nothing to default)."""
    value = parent.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, MutableMapping)]


def _setdefault(obj: Obj, key: str, value: Any) -> None:
    """Set `key` when it is absent, null or the zero value ("" / 0), like Go's `if x == ""` checks."""
    if obj.get(key) in (None, "", 0) and not isinstance(obj.get(key), bool):
        obj[key] = value


# --- core/v1 --------------------------------------------------------------------------------------

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
VOLUME_DEFAULT_MODE = 0o644  # 420: Secret/ConfigMap/DownwardAPI/Projected volume sources

VOLUME_SOURCES = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
})


def image_tag(image: str) -> str:
    """The tag parsers.ParseImageName reports: "latest" when none is given, "" for a digest-only reference."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    if digest or not name:
        return ""
    return "latest"


def default_pull_policy(image: str) -> str:
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


def _default_probe(probe: Obj) -> None:
    _setdefault(probe, "timeoutSeconds", 1)
    _setdefault(probe, "periodSeconds", 10)
    _setdefault(probe, "successThreshold", 1)
    _setdefault(probe, "failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: Obj) -> None:
    http_get = handler.get("httpGet")
    if isinstance(http_get, MutableMapping):
        _setdefault(http_get, "path", "/")
        _setdefault(http_get, "scheme", "HTTP")


def _default_container(container: Obj) -> None:
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(str(container.get("image") or ""))
    _setdefault(container, "terminationMessagePath", TERMINATION_MESSAGE_PATH)
    _setdefault(container, "terminationMessagePolicy", "File")
    for port in _dicts(container, "ports"):
        _setdefault(port, "protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_key)
        if isinstance(probe, MutableMapping):
            _default_probe(probe)
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, MutableMapping):
        for hook in ("postStart", "preStop"):
            handler = lifecycle.get(hook)
            if isinstance(handler, MutableMapping):
                _default_handler(handler)
    for env in _dicts(container, "env"):
        value_from = env.get("valueFrom")
        if isinstance(value_from, MutableMapping):
            field_ref = value_from.get("fieldRef")
            if isinstance(field_ref, MutableMapping):
                _setdefault(field_ref, "apiVersion", "v1")


def _default_volume(volume: Obj) -> None:
    if not any(volume.get(src) is not None for src in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        src = volume.get(source)
        if isinstance(src, MutableMapping) and src.get("defaultMode") is None:
            src["defaultMode"] = VOLUME_DEFAULT_MODE
    projected = volume.get("projected")
    if isinstance(projected, MutableMapping):
        for item in _dicts(projected, "sources"):
            token = item.get("serviceAccountToken")
            if isinstance(token, MutableMapping) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
    host_path = volume.get("hostPath")
    if isinstance(host_path, MutableMapping) and host_path.get("type") is None:
        host_path["type"] = ""
    downward = volume.get("downwardAPI")
    if isinstance(downward, MutableMapping):
        for item in _dicts(downward, "items"):
            field_ref = item.get("fieldRef")
            if isinstance(field_ref, MutableMapping):
                _setdefault(field_ref, "apiVersion", "v1")


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and everything generated beneath it (containers, volumes, probes)."""
    _setdefault(spec, "dnsPolicy", "ClusterFirst")
    _setdefault(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    _setdefault(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dicts(spec, key):
            _default_container(container)
    for volume in _dicts(spec, "volumes"):
        _default_volume(volume)


def default_pod_template(template: Obj) -> None:
    default_pod_spec(_dict(template, "spec"))


def _default_pod(pod: Obj) -> None:
    spec = _dict(pod, "spec")
    default_pod_spec(spec)
    # SetDefaults_Pod only (not templates): requests default to limits; service links on.
    for key in ("containers", "initContainers"):
        for container in _dicts(spec, key):
            resources = container.get("resources")
            if isinstance(resources, MutableMapping) and isinstance(resources.get("limits"), MutableMapping):
                requests = resources.get("requests")
                if not isinstance(requests, MutableMapping):
                    requests = {}
                    resources["requests"] = requests
                for name, value in resources["limits"].items():
                    requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _dicts(spec, key):
                for port in _dicts(container, "ports"):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


def _default_service(svc: Obj) -> None:
    spec = _dict(svc, "spec")
    _setdefault(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = _dict(spec, "sessionAffinityConfig")
        client_ip = _dict(config, "clientIP")
        if client_ip.get("timeoutSeconds") is None:
            client_ip["timeoutSeconds"] = 10800
    _setdefault(spec, "type", "ClusterIP")
    for port in _dicts(spec, "ports"):
        _setdefault(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = spec["type"] in ("NodePort", "LoadBalancer")
    if externally_accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def _default_pv(pv: Obj) -> None:
    _setdefault(_dict(pv, "status"), "phase", "Pending")
    spec = _dict(pv, "spec")
    _setdefault(spec, "persistentVolumeReclaimPolicy", "Retain")
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def default_pvc(pvc: Obj) -> None:
    """SetDefaults_PersistentVolumeClaim + ...ClaimSpec (also applied to StatefulSet claim templates)."""
    _setdefault(_dict(pvc, "status"), "phase", "Pending")
    spec = _dict(pvc, "spec")
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def _default_endpoints(ep: Obj) -> None:
    for subset in _dicts(ep, "subsets"):
        for port in _dicts(subset, "ports"):
            _setdefault(port, "protocol", "TCP")


def _default_namespace(ns: Obj) -> None:
    name = (ns.get("metadata") or {}).get("name")
    if name:
        _dict(_dict(ns, "metadata"), "labels")["kubernetes.io/metadata.name"] = name
    _setdefault(_dict(ns, "status"), "phase", "Active")


def _default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, MutableMapping) and status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = copy.deepcopy(status["capacity"])


def _default_secret(secret: Obj) -> None:
    _setdefault(secret, "type", "Opaque")


# --- apps/v1 ---------------------------------------------------------------------------------------


def _default_statefulset(sts: Obj) -> None:
    spec = _dict(sts, "spec")
    _setdefault(spec, "podManagementPolicy", "OrderedReady")
    strategy = _dict(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, MutableMapping):
        if rolling.get("partition") is None:
            rolling["partition"] = 0
        # MaxUnavailableStatefulSet is beta and on by default since 1.35 (pkg/features/kube_features.go).
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
    retention = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    _setdefault(retention, "whenDeleted", "Retain")
    _setdefault(retention, "whenScaled", "Retain")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(_dict(spec, "template"))
    for claim in _dicts(spec, "volumeClaimTemplates"):
        # apps/v1 conversion writes TypeMeta into each claim template; kubectl shows it.
        _setdefault(claim, "apiVersion", "v1")
        _setdefault(claim, "kind", "PersistentVolumeClaim")
        default_pvc(claim)


# --- storage.k8s.io/v1 ------------------------------------------------------------------------------


def _default_storageclass(sc: Obj) -> None:
    _setdefault(sc, "reclaimPolicy", "Delete")
    _setdefault(sc, "volumeBindingMode", "Immediate")


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Pod": _default_pod,
    "Service": _default_service,
    "PersistentVolume": _default_pv,
    "PersistentVolumeClaim": default_pvc,
    "Endpoints": _default_endpoints,
    "Namespace": _default_namespace,
    "Node": _default_node,
    "Secret": _default_secret,
    "StatefulSet": _default_statefulset,
    "StorageClass": _default_storageclass,
    "EndpointSlice": endpointslice.default,
}
"""Kinds without an entry (Event, ConfigMap, Lease, ControllerRevision, PodDisruptionBudget) have no defaults."""


def apply_defaults(kind: str, obj: Obj) -> dict[str, Any]:
    """A defaulted deep copy of `obj` (the input is not modified)."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(out)
    return out
