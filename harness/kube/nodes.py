"""Nodes as a scenario breaks them through the API: cordon, uncordon, evict, drain.

Drain follows ``kubectl drain`` (k8s.io/kubectl/pkg/drain): cordon, then evict each pod
through the Eviction API, retrying a PodDisruptionBudget's 429 until a deadline, then wait for
each evicted pod to be gone (404, or a new uid under the same name — a StatefulSet recreates
it at once). One deliberate difference: only pods of the run's own namespace are evicted.
``kubectl drain`` would evict every pod on the node, other teams' included; the harness never
touches a namespace not labelled for its tests (house rule 1), and daemonset or mirror pods
are never ours anyway.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply
from harness.kube import wait as kube_wait

#: kubectl drain waits this long between evictions a disruption budget refused
PDB_RETRY_S = 5.0


class NodeError(Exception):
    """A node operation failed or did not finish in time; one line naming it."""


def _api_error(what: str, exc: Exception) -> NodeError:
    if isinstance(exc, k8s_exceptions.ApiException):
        return NodeError(f"cannot {what} ({kube_apply.describe_api_error(exc)})")
    return NodeError(f"cannot reach the API server to {what} ({exc})")


def set_unschedulable(api: k8s_client.ApiClient, node: str, unschedulable: bool) -> None:
    """Cordon (True) or uncordon (False), as ``kubectl cordon`` does: a patch of spec.unschedulable."""
    what = f"{'cordon' if unschedulable else 'uncordon'} node {node}"
    try:
        k8s_client.CoreV1Api(api).patch_node(node, {"spec": {"unschedulable": unschedulable or None}})
    except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError) as exc:
        raise _api_error(what, exc) from None


def exists(api: k8s_client.ApiClient, node: str) -> bool:
    try:
        k8s_client.CoreV1Api(api).read_node(node)
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            return False
        raise _api_error(f"read node {node}", exc) from None
    except urllib3_exceptions.HTTPError as exc:
        raise _api_error(f"read node {node}", exc) from None
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class PodRef:
    name: str
    uid: str


def pods_on_node(api: k8s_client.ApiClient, namespace: str, node: str, label_selector: str) -> list[PodRef]:
    """The namespace's pods matching the selector that are bound to ``node`` and not terminating."""
    try:
        items = k8s_client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=label_selector, field_selector=f"spec.nodeName={node}").items
    except (k8s_exceptions.ApiException, urllib3_exceptions.HTTPError) as exc:
        raise _api_error(f"list the pods of {namespace} on node {node}", exc) from None
    return [PodRef(str(p.metadata.name), str(p.metadata.uid)) for p in items
            if p.metadata is not None and p.metadata.deletion_timestamp is None]


def evict(api: k8s_client.ApiClient, namespace: str, pod: PodRef, *, deadline: float,
          progress: Callable[[str], None]) -> int:
    """Evict ``pod`` (uid precondition), retrying a disruption budget's 429 until ``deadline``;
    returns how many times the budget refused it.

    A pod already gone (404) or replaced (uid mismatch → 409) counts as evicted.
    """
    body = k8s_client.V1Eviction(
        metadata=k8s_client.V1ObjectMeta(name=pod.name, namespace=namespace),
        delete_options=k8s_client.V1DeleteOptions(preconditions=k8s_client.V1Preconditions(uid=pod.uid)),
    )
    pause = threading.Event()  # never set: waiting on it is the budget's retry interval, not a guess
    refused = 0
    while True:
        try:
            k8s_client.CoreV1Api(api).create_namespaced_pod_eviction(pod.name, namespace, body)
            return refused
        except k8s_exceptions.ApiException as exc:
            if exc.status in (404, 409):
                return refused
            if exc.status != 429:
                raise _api_error(f"evict pod {namespace}/{pod.name}", exc) from None
            reason = kube_apply.describe_api_error(exc)
            if time.monotonic() + PDB_RETRY_S > deadline:
                raise NodeError(f"eviction of pod {namespace}/{pod.name} still refused at the deadline: {reason}"
                                ) from None
            refused += 1
            progress(f"  eviction of {pod.name} refused ({reason}); retrying in {PDB_RETRY_S:g}s as kubectl drain does")
            pause.wait(PDB_RETRY_S)
        except urllib3_exceptions.HTTPError as exc:
            raise _api_error(f"evict pod {namespace}/{pod.name}", exc) from None


def gone_probe(api: k8s_client.ApiClient, namespace: str, pod: PodRef) -> kube_wait.Probe:
    """Done when the evicted pod object is gone: 404, or the name now carries another uid."""
    core = k8s_client.CoreV1Api(api)

    def probe() -> kube_wait.Status:
        try:
            live = core.read_namespaced_pod(pod.name, namespace)
        except k8s_exceptions.ApiException as exc:
            if exc.status == 404:
                return kube_wait.Status(True, f"pod {pod.name} is gone")
            raise
        uid = live.metadata.uid if live.metadata is not None else None
        if uid != pod.uid:
            return kube_wait.Status(True, f"pod {pod.name} was replaced (uid {str(uid)[:8]})")
        return kube_wait.Status(False, f"pod {pod.name} (uid {pod.uid[:8]}) is still terminating")

    return probe


@dataclasses.dataclass(frozen=True, slots=True)
class Drained:
    evicted: tuple[PodRef, ...]
    #: evictions a disruption budget refused (429) before they went through
    refused: int


def drain(api: k8s_client.ApiClient, namespace: str, node: str, label_selector: str, *, timeout: float,
          progress: Callable[[str], None]) -> Drained:
    """Cordon ``node`` and evict the namespace's pods on it; returns once the evicted pods are gone."""
    deadline = time.monotonic() + timeout
    set_unschedulable(api, node, True)
    progress(f"cordoned {node}")
    evicted = pods_on_node(api, namespace, node, label_selector)
    refused = 0
    for pod in evicted:
        refused += evict(api, namespace, pod, deadline=deadline, progress=progress)
        progress(f"evicted {pod.name} (uid {pod.uid[:8]}) from {node}")
    for pod in evicted:
        try:
            kube_wait.until(f"evicted pod {namespace}/{pod.name} to be gone", gone_probe(api, namespace, pod),
                            timeout=max(1.0, deadline - time.monotonic()), interval=0.2)
        except kube_wait.WaitTimeout as exc:
            raise NodeError(str(exc)) from None
    return Drained(tuple(evicted), refused)
