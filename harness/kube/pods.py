"""Deleting a StatefulSet's pod and waiting for the controller to bring the ordinal back.

A delete carries a UID precondition, so it can only ever remove the pod we looked at — never
the replacement the controller may have created in between. ``grace_seconds=0`` is a force
delete (what ``kubectl delete --force --grace-period=0`` sends): the object goes at once and
the kubelet kills the container without a drain, so the writer dies mid-write.

"Back" means a pod with the ordinal's name, a UID other than the deleted one, not being
deleted, and Ready — the StatefulSet's own definition of an available replica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions
from urllib3 import exceptions as urllib3_exceptions

from harness.kube import apply as kube_apply
from harness.kube import wait as kube_wait


class PodError(Exception):
    """A pod could not be deleted or did not come back in time; one line naming it."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodState:
    """What the harness needs to know about one pod at one moment."""

    name: str
    uid: str
    ip: str | None
    node: str | None
    phase: str | None
    ready: bool
    deleting: bool

    def describe(self) -> str:
        if self.deleting:
            state = "being deleted"
        else:
            state = "Ready" if self.ready else f"{self.phase or 'no phase'}, not Ready"
        return f"pod {self.name} uid {self.uid[:8]} on {self.node or 'no node'} ip {self.ip or '-'}: {state}"


def pod_state(pod: k8s_client.V1Pod) -> PodState:
    meta, status = pod.metadata, pod.status
    conditions = (status.conditions if status is not None else None) or []
    return PodState(
        name=str(meta.name if meta is not None else ""),
        uid=str((meta.uid if meta is not None else "") or ""),
        ip=status.pod_ip if status is not None else None,
        node=pod.spec.node_name if pod.spec is not None else None,
        phase=status.phase if status is not None else None,
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
        deleting=meta is not None and meta.deletion_timestamp is not None,
    )


def read_pod(api: k8s_client.ApiClient, namespace: str, name: str) -> PodState | None:
    """The pod now, or None when there is none."""
    try:
        return pod_state(k8s_client.CoreV1Api(api).read_namespaced_pod(name, namespace))
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise PodError(f"cannot read pod {namespace}/{name} ({kube_apply.describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise PodError(f"cannot reach the API server to read pod {namespace}/{name} ({exc})") from None


def delete_pod(api: k8s_client.ApiClient, namespace: str, name: str, *, grace_seconds: int | None = None) -> PodState:
    """Delete the pod as it is now (UID precondition); returns what was deleted.

    ``grace_seconds`` None uses the pod's terminationGracePeriodSeconds (a graceful delete);
    0 is a force delete.
    """
    before = read_pod(api, namespace, name)
    if before is None:
        raise PodError(f"pod {namespace}/{name} does not exist; nothing to delete (is the target right?)")
    options = k8s_client.V1DeleteOptions(
        grace_period_seconds=grace_seconds, preconditions=k8s_client.V1Preconditions(uid=before.uid)
    )
    try:
        k8s_client.CoreV1Api(api).delete_namespaced_pod(
            name, namespace, grace_period_seconds=grace_seconds, body=options
        )
    except k8s_exceptions.ApiException as exc:
        if exc.status == 404:
            raise PodError(f"pod {namespace}/{name} vanished before it could be deleted") from None
        if exc.status == 409:
            raise PodError(
                f"pod {namespace}/{name} was replaced between read and delete (uid {before.uid} is gone); "
                "someone else is deleting pods in this namespace"
            ) from None
        raise PodError(f"delete of pod {namespace}/{name} refused ({kube_apply.describe_api_error(exc)})") from None
    except urllib3_exceptions.HTTPError as exc:
        raise PodError(f"cannot reach the API server to delete pod {namespace}/{name} ({exc})") from None
    return before


def replaced_probe(api: k8s_client.ApiClient, namespace: str, name: str, old_uid: str) -> kube_wait.Probe:
    """Done when ``name`` exists with a UID other than ``old_uid``, is not being deleted and is Ready."""
    core = k8s_client.CoreV1Api(api)

    def probe() -> kube_wait.Status:
        try:
            state = pod_state(core.read_namespaced_pod(name, namespace))
        except k8s_exceptions.ApiException as exc:
            if exc.status == 404:
                return kube_wait.Status(False, f"pod {name} not yet recreated by the StatefulSet controller")
            raise
        if state.uid == old_uid:
            return kube_wait.Status(False, f"the deleted pod {name} (uid {old_uid[:8]}) is still there")
        return kube_wait.Status(state.ready and not state.deleting, state.describe())

    return probe


def wait_replaced(
    api: k8s_client.ApiClient,
    namespace: str,
    name: str,
    old_uid: str,
    *,
    timeout: float,
    on_progress: Callable[[str], None] | None = None,
) -> PodState:
    """Wait until the StatefulSet has ``name`` Ready again with a new UID; returns the new pod."""
    what = f"pod {namespace}/{name} to come back Ready with a new uid (deleted uid {old_uid[:8]})"
    try:
        kube_wait.until(what, replaced_probe(api, namespace, name, old_uid), timeout=timeout, interval=0.2,
                        on_progress=on_progress)
    except kube_wait.WaitTimeout as exc:
        raise PodError(str(exc)) from None
    state = read_pod(api, namespace, name)
    if state is None or state.uid == old_uid:
        raise PodError(f"pod {namespace}/{name} was Ready with a new uid, then gone again")
    return state
