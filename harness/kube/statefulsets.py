"""The StatefulSet-level operations scenarios perform: scale, rolling restart, partitioned update.

Each is the request the matching ``kubectl`` command sends, so a scenario exercises the path an
operator does: ``kubectl scale`` patches the ``/scale`` subresource; ``kubectl rollout restart``
sets the pod template annotation ``kubectl.kubernetes.io/restartedAt`` (a new template, hence a
new revision rolled out by the controller); a partitioned update sets
``updateStrategy.rollingUpdate.partition`` so only ordinals at or above it move to the new
revision.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply
from harness.kube import wait as kube_wait

RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"


class StatefulSetError(Exception):
    """A StatefulSet operation failed; one line naming it."""


def _fail(what: str, exc: Exception) -> StatefulSetError:
    if isinstance(exc, k8s_exceptions.ApiException):
        return StatefulSetError(f"cannot {what} ({kube_apply.describe_api_error(exc)})")
    return StatefulSetError(f"cannot reach the API server to {what} ({exc})")


def replicas(api: k8s_client.ApiClient, namespace: str, name: str) -> int:
    try:
        scale = k8s_client.AppsV1Api(api).read_namespaced_stateful_set_scale(name, namespace)
    except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError) as exc:
        raise _fail(f"read the scale of {namespace}/{name}", exc) from None
    return int(scale.spec.replicas if scale.spec is not None and scale.spec.replicas is not None else 0)


def scale(api: k8s_client.ApiClient, namespace: str, name: str, count: int) -> None:
    if count < 0:
        raise StatefulSetError(f"cannot scale {namespace}/{name} to {count}: replicas must be >= 0")
    try:
        k8s_client.AppsV1Api(api).patch_namespaced_stateful_set_scale(name, namespace, {"spec": {"replicas": count}})
    except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError) as exc:
        raise _fail(f"scale {namespace}/{name} to {count}", exc) from None


def restart(api: k8s_client.ApiClient, namespace: str, name: str, *, partition: int | None = None) -> str:
    """``kubectl rollout restart`` (optionally with a partition); returns the annotation's value."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch: dict[str, object] = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    if partition is not None:
        patch["spec"] = {**patch["spec"],  # type: ignore[dict-item]
                         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}
    try:
        k8s_client.AppsV1Api(api).patch_namespaced_stateful_set(name, namespace, patch)
    except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError) as exc:
        raise _fail(f"restart {namespace}/{name}", exc) from None
    return stamp


def set_partition(api: k8s_client.ApiClient, namespace: str, name: str, partition: int) -> None:
    patch = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}}
    try:
        k8s_client.AppsV1Api(api).patch_namespaced_stateful_set(name, namespace, patch)
    except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError) as exc:
        raise _fail(f"set the partition of {namespace}/{name} to {partition}", exc) from None


def wait_rollout(api: k8s_client.ApiClient, namespace: str, name: str, *, timeout: float) -> str:
    """kubectl's rollout rules (partition honoured); returns the final status line."""
    try:
        return kube_wait.until(f"statefulset {namespace}/{name} rollout",
                               kube_wait.statefulset_rollout(api, name, namespace), timeout=timeout,
                               interval=0.5).message
    except kube_wait.WaitTimeout as exc:
        raise StatefulSetError(str(exc)) from None
