"""Unknown-field handling (``fieldValidation``), with the Python client's generated models as the schema.

A real apiserver never stores fields its types do not have: with ``fieldValidation=Strict`` it
rejects the request (400, ``strict decoding error: unknown field "spec.replica"``), with
``Warn`` — the default since v1.23 — it drops them and says so in a ``Warning`` header, with
``Ignore`` it drops them silently (apiserver ``handlers/rest.go``, KEP-2885). kubesim needs the
same, or tests would pass here on manifests a real cluster mangles. The schema is the one the
official client ships for the same Kubernetes minor (``openapi_types`` / ``attribute_map`` of
``kubernetes.client.models``, generated from upstream's OpenAPI), walked lazily per request.

Only the object's own fields are checked; duplicate JSON keys are not detected (Python's JSON
decoder keeps the last one, as upstream does in Warn/Ignore mode).
"""

from __future__ import annotations

import contextvars
import functools
import importlib
from typing import Any

from kubesim.apiserver import errors

MODES = ("Ignore", "Warn", "Strict")

#: (group, kind) -> model class name in kubernetes.client.models.
MODELS: dict[tuple[str, str], str] = {
    ("", "Pod"): "V1Pod", ("", "Namespace"): "V1Namespace", ("", "Node"): "V1Node",
    ("", "Service"): "V1Service", ("", "Endpoints"): "V1Endpoints",
    ("", "PersistentVolumeClaim"): "V1PersistentVolumeClaim", ("", "PersistentVolume"): "V1PersistentVolume",
    ("", "Event"): "CoreV1Event", ("", "ConfigMap"): "V1ConfigMap", ("", "Secret"): "V1Secret",
    ("", "ServiceAccount"): "V1ServiceAccount", ("apps", "StatefulSet"): "V1StatefulSet",
    ("apps", "ControllerRevision"): "V1ControllerRevision", ("policy", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("storage.k8s.io", "StorageClass"): "V1StorageClass", ("coordination.k8s.io", "Lease"): "V1Lease",
    ("events.k8s.io", "Event"): "EventsV1Event", ("autoscaling", "Scale"): "V1Scale",
    ("discovery.k8s.io", "EndpointSlice"): "V1EndpointSlice",
    ("rbac.authorization.k8s.io", "Role"): "V1Role", ("rbac.authorization.k8s.io", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io", "RoleBinding"): "V1RoleBinding",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "V1ClusterRoleBinding",
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): "V1ValidatingAdmissionPolicy",
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): "V1ValidatingAdmissionPolicyBinding",
}

_LEAVES = frozenset({"str", "int", "bool", "float", "bytes", "bytearray", "datetime", "date", "object"})

#: Warnings for the current request (one list per request; the server turns them into headers).
warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("kubesim_warnings", default=None)


@functools.cache
def _fields(model: str) -> tuple[dict[str, str], ...] | None:
    """(json name -> type string) for a model; None if the client has no such model."""
    models = importlib.import_module("kubernetes.client.models")
    cls = getattr(models, model, None)
    if cls is None:
        return None
    types: dict[str, str] = dict(getattr(cls, "openapi_types", {}))
    names: dict[str, str] = dict(getattr(cls, "attribute_map", {}))
    return ({names.get(attr, attr): kind for attr, kind in types.items()},)


def _walk(value: Any, type_name: str, path: str, found: list[str]) -> None:
    if value is None or type_name in _LEAVES:
        return
    if type_name.startswith("List[") and type_name.endswith("]"):
        if isinstance(value, list):
            inner = type_name[5:-1]
            for i, item in enumerate(value):
                _walk(item, inner, f"{path}[{i}]", found)
        return
    if type_name.startswith("Dict[") and type_name.endswith("]"):
        if isinstance(value, dict):
            inner = type_name[5:-1].split(",", 1)[1].strip()
            for key, item in value.items():
                _walk(item, inner, f"{path}[{key}]", found)
        return
    if not isinstance(value, dict):
        return
    described = _fields(type_name)
    if described is None:
        return
    known = described[0]
    for key in list(value):
        child = f"{path}.{key}" if path else key
        if key not in known:
            found.append(child)
            del value[key]
        else:
            _walk(value[key], known[key], child, found)


def mode(query: dict[str, str] | Any) -> str:
    chosen = str(query.get("fieldValidation") or "Warn")
    if chosen not in MODES:
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{chosen}": supported values: "Ignore", "Strict", "Warn"'
        )
    return chosen


def enforce(group: str, kind: str, api_version: str, obj: dict[str, Any], query: dict[str, str] | Any) -> None:
    """Drop fields ``kind`` does not have; Strict refuses them, Warn records a warning per field."""
    model = MODELS.get((group, kind))
    chosen = mode(query)
    if model is None:
        return
    found: list[str] = []
    for key in list(obj):
        if key in ("apiVersion", "kind"):
            continue
        described = _fields(model)
        if described is None:
            return
        known = described[0]
        if key not in known:
            found.append(key)
            del obj[key]
        else:
            _walk(obj[key], known[key], key, found)
    if not found:
        return
    if chosen == "Strict":
        version = api_version.rpartition("/")[2]
        detail = ", ".join(f'unknown field "{f}"' for f in found)
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                 f"strict decoding error: {detail}")
    if chosen == "Warn":
        sink = warnings.get()
        if sink is not None:
            sink.extend(f'unknown field "{f}"' for f in found)
