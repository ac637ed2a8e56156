"""Checks against the live cluster that must pass before anything is created.

Refusing here, with one line that says how to fix it, is what keeps a typo from leaving half a
deployment behind: a claim with an unknown storage class stays Pending forever, and a namespace
that is not marked for tests is somebody's real workload (design rule 1).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply

#: Marks the cluster's default class (kubernetes pkg/apis/storage/util/helpers.go); the beta
#: spelling is still honoured by the admission plugin.
DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)

NamespaceState = Literal["missing", "labelled"]


class PreflightError(Exception):
    """The cluster is not ready for this deployment; the message is one actionable line."""


@dataclasses.dataclass(frozen=True)
class StorageClassInfo:
    name: str
    provisioner: str
    volume_binding_mode: str
    is_default: bool


def namespace_state(api_client: k8s_client.ApiClient, name: str, label: str, value: str) -> NamespaceState:
    """"missing" (create it labelled) or "labelled"; refuses an existing unlabelled one."""
    core = k8s_client.CoreV1Api(api_client)
    try:
        ns = core.read_namespace(name)
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            return "missing"
        raise PreflightError(f"cannot read namespace {name} ({kube_apply.describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise PreflightError(f"cannot read namespace {name}: the API server did not answer ({exc})") from None
    labels = (ns.metadata.labels if ns.metadata is not None else None) or {}
    if labels.get(label) != value:
        raise PreflightError(
            f"namespace {name} exists but is not labelled {label}={value}, so the harness will not touch it; "
            f"label it (kubectl label namespace {name} {label}={value}) or pick another --namespace"
        )
    if ns.status is not None and ns.status.phase == "Terminating":
        raise PreflightError(f"namespace {name} is being deleted; wait until it is gone or pick another --namespace")
    return "labelled"


def storage_classes(api_client: k8s_client.ApiClient) -> list[StorageClassInfo]:
    storage = k8s_client.StorageV1Api(api_client)
    try:
        items = storage.list_storage_class().items
    except k8s_exceptions.ApiException as exc:
        raise PreflightError(f"cannot list storage classes ({kube_apply.describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise PreflightError(f"cannot list storage classes: the API server did not answer ({exc})") from None
    out = []
    for item in items:
        annotations = (item.metadata.annotations if item.metadata is not None else None) or {}
        out.append(
            StorageClassInfo(
                name=(item.metadata.name if item.metadata is not None else None) or "?",
                provisioner=item.provisioner,
                volume_binding_mode=item.volume_binding_mode or "Immediate",
                is_default=any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS),
            )
        )
    return sorted(out, key=lambda info: info.name)


def check_storage_class(api_client: k8s_client.ApiClient, name: str | None) -> StorageClassInfo:
    """The class the claims will get: ``name``, or the cluster default when ``name`` is None."""
    classes = storage_classes(api_client)
    listing = ", ".join(f"{c.name} (default)" if c.is_default else c.name for c in classes) or "none"
    if name is None:
        defaults = [c for c in classes if c.is_default]
        if not defaults:
            raise PreflightError(
                f"the cluster has no default storage class, so the claims would stay Pending "
                f"(classes: {listing}); pass --storage-class NAME"
            )
        return defaults[0]
    for info in classes:
        if info.name == name:
            return info
    raise PreflightError(
        f"storage class {name!r} does not exist on this cluster (classes: {listing}); "
        "pass one of those to --storage-class, or omit it for the default"
    )
