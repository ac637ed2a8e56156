"""Create-or-update of whole objects, and their deletion, through the typed client APIs.

No server-side apply: the embedded cluster speaks create/PUT/merge patches, and a PUT carrying
the resourceVersion we read is the optimistic-concurrency update every API server has. An
object whose live state already holds every field we want is left alone, so a re-apply does
not bump resourceVersions or wake controllers.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Literal, cast

import pydantic
from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import models

Action = Literal["created", "updated", "unchanged"]

#: Conflicts (409 on PUT) are other writers racing us; re-read and try again this many times.
MAX_CONFLICT_RETRIES = 5

#: Service fields the API server allocates; a PUT without them would try to clear them.
_SERVICE_ALLOCATED = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy")


class ApplyError(Exception):
    """The API server refused an object; the message is one line with its reason and a hint."""


@dataclasses.dataclass(frozen=True)
class Applied:
    ref: str
    action: Action
    resource_version: str
    generation: int | None


@dataclasses.dataclass(frozen=True)
class _Kind:
    api: Callable[[k8s_client.ApiClient], object]
    suffix: str
    namespaced: bool


_KINDS: dict[tuple[str, str], _Kind] = {
    ("v1", "Namespace"): _Kind(k8s_client.CoreV1Api, "namespace", namespaced=False),
    ("v1", "Service"): _Kind(k8s_client.CoreV1Api, "service", namespaced=True),
    ("v1", "ConfigMap"): _Kind(k8s_client.CoreV1Api, "config_map", namespaced=True),
    ("v1", "PersistentVolumeClaim"): _Kind(k8s_client.CoreV1Api, "persistent_volume_claim", namespaced=True),
    ("apps/v1", "StatefulSet"): _Kind(k8s_client.AppsV1Api, "stateful_set", namespaced=True),
    ("policy/v1", "PodDisruptionBudget"): _Kind(k8s_client.PolicyV1Api, "pod_disruption_budget", namespaced=True),
    ("storage.k8s.io/v1", "StorageClass"): _Kind(k8s_client.StorageV1Api, "storage_class", namespaced=False),
}


@dataclasses.dataclass(frozen=True)
class _Target:
    """One object's endpoint: the bound typed API and its name/namespace."""

    api: object
    kind: _Kind
    model: type[pydantic.BaseModel]
    name: str
    namespace: str | None
    ref: str

    def call(self, verb: str, *args: object, **kwargs: object) -> object:
        method_name = f"{verb}_namespaced_{self.kind.suffix}" if self.kind.namespaced else f"{verb}_{self.kind.suffix}"
        method = cast(Callable[..., object], getattr(self.api, method_name))
        try:
            if verb == "create":
                return method(self.namespace, *args, **kwargs) if self.kind.namespaced else method(*args, **kwargs)
            if self.kind.namespaced:
                return method(self.name, self.namespace, *args, **kwargs)
            return method(self.name, *args, **kwargs)
        except urllib3_exceptions.HTTPError as exc:
            # Connection refused/reset mid-deploy: a line naming the object, not a urllib3 traceback.
            reason = getattr(exc, "reason", None) or exc
            raise ApplyError(f"{self.ref}: {verb} did not reach the API server ({reason})") from None


def _target(api_client: k8s_client.ApiClient, body: Mapping[str, object]) -> _Target:
    api_version, kind = str(body.get("apiVersion")), str(body.get("kind"))
    spec = _KINDS.get((api_version, kind))
    if spec is None:
        raise ApplyError(f"{kind} ({api_version}) is not a kind the harness applies")
    meta = body.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise ApplyError(f"{kind} without metadata.name cannot be applied")
    name = cast(str, meta["name"])
    namespace = meta.get("namespace")
    if spec.namespaced and not isinstance(namespace, str):
        raise ApplyError(f"{kind} {name} needs metadata.namespace")
    ref = f"{kind} {namespace}/{name}" if spec.namespaced else f"{kind} {name}"
    return _Target(
        api=spec.api(api_client),
        kind=spec,
        model=models.MODELS[(api_version, kind)],
        name=name,
        namespace=cast(str, namespace) if spec.namespaced else None,
        ref=ref,
    )


def read(api_client: k8s_client.ApiClient, body: Mapping[str, object]) -> dict[str, object] | None:
    """The live object (camelCase dict) that ``body`` names, or None if it does not exist."""
    target = _target(api_client, body)
    try:
        live = target.call("read")
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise ApplyError(f"{target.ref}: read refused ({describe_api_error(exc)})") from None
    return _to_dict(api_client, live)


def apply(api_client: k8s_client.ApiClient, body: Mapping[str, object]) -> Applied:
    """Create ``body``, or bring the live object to it; validated offline first."""
    try:
        models.validate(body)
    except models.ManifestInvalid as exc:
        raise ApplyError(str(exc)) from None
    target = _target(api_client, body)
    desired = target.model.model_validate(dict(body))
    try:
        created = target.call("create", desired)
        return _applied(api_client, target.ref, "created", created)
    except k8s_exceptions.ApiException as exc:
        if exc.status != 409:
            raise ApplyError(f"{target.ref}: create refused ({describe_api_error(exc)})") from None
    for _attempt in range(MAX_CONFLICT_RETRIES):
        try:
            live = _to_dict(api_client, target.call("read"))
        except k8s_exceptions.ApiException as exc:
            raise ApplyError(f"{target.ref}: read after AlreadyExists refused ({describe_api_error(exc)})") from None
        if contains(live, body):
            return _applied_dict(target.ref, "unchanged", live)
        update = _update_body(body, live, target.kind)
        try:
            replaced = target.call("replace", target.model.model_validate(update))
            return _applied(api_client, target.ref, "updated", replaced)
        except k8s_exceptions.ApiException as exc:
            if exc.status == 409:
                continue  # someone wrote in between: re-read their version and try again
            hint = _update_hint(target, exc)
            raise ApplyError(f"{target.ref}: update refused ({describe_api_error(exc)}){hint}") from None
    raise ApplyError(
        f"{target.ref}: update lost {MAX_CONFLICT_RETRIES} resourceVersion races in a row; "
        "another client keeps writing it — stop it and retry"
    )


def delete(
    api_client: k8s_client.ApiClient, body: Mapping[str, object], *, propagation: str = "Background"
) -> bool:
    """Delete the object ``body`` names; False when it was already gone."""
    target = _target(api_client, body)
    try:
        target.call("delete", propagation_policy=propagation)
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            return False
        raise ApplyError(f"{target.ref}: delete refused ({describe_api_error(exc)})") from None
    return True


def delete_claims(api_client: k8s_client.ApiClient, namespace: str, label_selector: str) -> list[str]:
    """Delete every claim matching the selector (the set's claims); returns their names."""
    core = k8s_client.CoreV1Api(api_client)
    try:
        claims = core.list_namespaced_persistent_volume_claim(namespace, label_selector=label_selector).items
    except k8s_exceptions.ApiException as exc:
        raise ApplyError(f"cannot list claims in {namespace} ({describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise ApplyError(f"cannot list claims in {namespace}: the API server did not answer ({exc})") from None
    deleted: list[str] = []
    for claim in claims:
        name = claim.metadata.name if claim.metadata is not None else None
        if not name:
            continue
        try:
            core.delete_namespaced_persistent_volume_claim(name, namespace)
        except urllib3_exceptions.HTTPError as exc:
            raise ApplyError(
                f"PersistentVolumeClaim {namespace}/{name}: delete did not reach the API server ({exc})"
            ) from None
        except k8s_exceptions.ApiException as exc:
            if exc.status == 404:
                continue
            raise ApplyError(
                f"PersistentVolumeClaim {namespace}/{name}: delete refused ({describe_api_error(exc)})"
            ) from None
        deleted.append(name)
    return sorted(deleted)


def contains(live: object, desired: object) -> bool:
    """True when every field of ``desired`` has the same value in ``live`` (server defaults ignored)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            value is None or (key in live and contains(live[key], value)) for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(left, right) for left, right in zip(live, desired, strict=True))
    return bool(live == desired)


@contextlib.contextmanager
def api_errors(error: type[Exception], refused: str, unreachable: str) -> Iterator[None]:
    """The client's two failures as ``error``, one line each: the API server's answer after
    ``refused``, the transport's failure after ``unreachable`` (no chained traceback)."""
    try:
        yield
    except k8s_exceptions.ApiException as exc:
        raise error(f"{refused} ({describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise error(f"{unreachable} ({exc})") from None


def describe_api_error(exc: k8s_exceptions.ApiException) -> str:
    """``409 AlreadyExists: statefulsets.apps "ckpt" already exists`` from a Status body."""
    status = f"{exc.status} {exc.reason or ''}".strip()
    try:
        payload = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        payload = None
    if isinstance(payload, dict):
        reason = payload.get("reason")
        message = payload.get("message")
        if reason:
            status = f"{exc.status} {reason}"
        if message:
            return f"{status}: {str(message).splitlines()[0]}"
    return status


def _update_body(desired: Mapping[str, object], live: Mapping[str, object], kind: _Kind) -> dict[str, object]:
    """``desired`` as a PUT body: the live resourceVersion, others' labels/annotations kept."""
    update = copy.deepcopy(dict(desired))
    meta = dict(cast(Mapping[str, object], update.get("metadata", {})))
    live_meta = cast(Mapping[str, object], live.get("metadata", {}))
    meta["resourceVersion"] = live_meta.get("resourceVersion")
    for field in ("labels", "annotations"):
        theirs = cast(Mapping[str, str], live_meta.get(field) or {})
        merged = {**theirs, **cast(Mapping[str, str], meta.get(field) or {})}
        if merged:
            meta[field] = merged
    update["metadata"] = meta
    if kind.suffix == "service":
        spec = dict(cast(Mapping[str, object], update.get("spec", {})))
        live_spec = cast(Mapping[str, object], live.get("spec", {}))
        for field in _SERVICE_ALLOCATED:
            if field not in spec and live_spec.get(field) is not None:
                spec[field] = live_spec[field]
        update["spec"] = spec
    return update


def _update_hint(target: _Target, exc: k8s_exceptions.ApiException) -> str:
    if exc.status == 422 and target.kind.suffix == "stateful_set":
        return (
            "; a StatefulSet's selector, serviceName, podManagementPolicy and volumeClaimTemplates "
            "cannot change — run `harness undeploy` first"
        )
    return ""


def _to_dict(api_client: k8s_client.ApiClient, obj: object) -> dict[str, object]:
    return cast(dict[str, object], api_client.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]


def _applied(api_client: k8s_client.ApiClient, ref: str, action: Action, obj: object) -> Applied:
    return _applied_dict(ref, action, _to_dict(api_client, obj))


def _applied_dict(ref: str, action: Action, live: Mapping[str, object]) -> Applied:
    meta = cast(Mapping[str, object], live.get("metadata", {}))
    generation = meta.get("generation")
    return Applied(
        ref=ref,
        action=action,
        resource_version=str(meta.get("resourceVersion", "")),
        generation=generation if isinstance(generation, int) else None,
    )
