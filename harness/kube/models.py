"""Offline validation of manifests against the Kubernetes client's models.

kubernetes 37's models are strict pydantic models with ``extra='forbid'``, which makes them a
cheap schema check — with two traps this module closes:

- ``Model.from_dict`` copies only the keys it knows, so an unknown or misspelt key is dropped
  silently; ``model_validate`` is what actually forbids it.
- the models accept snake_case aliases too (``service_name``), which the API server would
  ignore. A round trip (validate, serialise back to camelCase, compare with the input) finds
  those and any value the model would have changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pydantic
from kubernetes import client as k8s_client

#: (apiVersion, kind) -> model class; extend when the harness deploys a new kind.
MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("v1", "Namespace"): k8s_client.V1Namespace,
    ("v1", "Service"): k8s_client.V1Service,
    ("v1", "PersistentVolumeClaim"): k8s_client.V1PersistentVolumeClaim,
    ("v1", "ConfigMap"): k8s_client.V1ConfigMap,
    ("apps/v1", "StatefulSet"): k8s_client.V1StatefulSet,
    ("policy/v1", "PodDisruptionBudget"): k8s_client.V1PodDisruptionBudget,
    ("storage.k8s.io/v1", "StorageClass"): k8s_client.V1StorageClass,
}


class ManifestInvalid(ValueError):
    """A manifest is not a valid Kubernetes object; the message is one line naming the field."""


def validate(body: Mapping[str, object]) -> None:
    """Raise :class:`ManifestInvalid` unless ``body`` is exactly a valid object of a known kind."""
    api_version, kind = body.get("apiVersion"), body.get("kind")
    ref = _ref(body)
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise ManifestInvalid(f"{ref}: apiVersion and kind must both be set (camelCase keys)")
    model = MODELS.get((api_version, kind))
    if model is None:
        known = ", ".join(f"{k} ({v})" for v, k in MODELS)
        raise ManifestInvalid(f"{ref}: no model for {api_version} {kind}; known: {known}")
    try:
        parsed = model.model_validate(dict(body))
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = _path(first["loc"])
        got = first.get("input")
        shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) else ""
        raise ManifestInvalid(f"{ref}: {where}: {first['msg']}{shown}") from None
    round_trip: object = k8s_client.ApiClient().sanitize_for_serialization(parsed)  # type: ignore[no-untyped-call]
    difference = _first_difference(body, round_trip, "")
    if difference is not None:
        raise ManifestInvalid(f"{ref}: {difference}")


def validate_all(bodies: Sequence[Mapping[str, object]]) -> None:
    for body in bodies:
        validate(body)


def _ref(body: Mapping[str, object]) -> str:
    kind = body.get("kind") if isinstance(body.get("kind"), str) else "object"
    meta = body.get("metadata")
    name, namespace = "?", None
    if isinstance(meta, Mapping):
        name = str(meta.get("name", "?"))
        namespace = meta.get("namespace")
    return f"{kind} {namespace}/{name}" if isinstance(namespace, str) else f"{kind} {name}"


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _first_difference(given: object, canonical: object, path: str) -> str | None:
    """Where ``given`` and the model's camelCase rendering of it part ways, said plainly."""
    if isinstance(given, Mapping) and isinstance(canonical, Mapping):
        for key in given:
            here = f"{path}.{key}" if path else str(key)
            if key not in canonical:
                if given[key] is None:
                    continue  # an explicit null is the same as absent to the API server
                return f"{here} is not a Kubernetes field name (use the API's camelCase spelling)"
            found = _first_difference(given[key], canonical[key], here)
            if found is not None:
                return found
        return None
    if isinstance(given, list) and isinstance(canonical, list):
        if len(given) != len(canonical):
            return f"{path}: the model kept {len(canonical)} of {len(given)} items"
        for index, (left, right) in enumerate(zip(given, canonical, strict=True)):
            found = _first_difference(left, right, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if type(given) is not type(canonical) or given != canonical:
        return f"{path}: {given!r} would be sent as {canonical!r}"
    return None
