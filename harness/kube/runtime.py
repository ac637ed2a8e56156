"""What faults below the API (a node's container stopped, a container signalled through its
runtime) need to learn from the API: where a pod's container runs, and when a node is back.

A restarted node is back when its kubelet has renewed its Lease since the restart *and* the Node
is Ready. Ready alone can be stale: a node stopped for less than the node-monitor grace period
(50 s upstream) never stops looking Ready, and a kubelet posts its status only every few minutes
when nothing changed; it renews ``kube-node-lease/<node>`` every 10 s and at once when it
starts, with a microsecond ``renewTime``, so a renewal after the restart proves a live kubelet.
"""

from __future__ import annotations

import dataclasses
import datetime

from kubernetes import client as k8s_client
from kubernetes.client import exceptions as k8s_exceptions

from harness.kube import apply as kube_apply
from harness.kube import wait as kube_wait

LEASE_NAMESPACE = "kube-node-lease"
#: Kubernetes' default terminationGracePeriodSeconds
DEFAULT_GRACE_S = 30


class RuntimeTargetError(Exception):
    """The pod cannot be located for a runtime-level fault; one line naming it."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodPlacement:
    node: str
    uid: str
    #: the pod's terminationGracePeriodSeconds: how long a runtime stop waits after SIGTERM
    grace_s: int


def placement(api: k8s_client.ApiClient, namespace: str, pod: str) -> PodPlacement:
    """The node a pod is bound to, its uid and its grace period; refuses a pod on no node."""
    with kube_apply.api_errors(RuntimeTargetError, f"cannot read pod {namespace}/{pod}",
                               f"cannot reach the API server to read pod {namespace}/{pod}"):
        live = k8s_client.CoreV1Api(api).read_namespaced_pod(pod, namespace)
    spec = live.spec
    if spec is None or not spec.node_name:
        raise RuntimeTargetError(f"pod {namespace}/{pod} is not bound to a node (nothing runs it)")
    node, grace = spec.node_name, spec.termination_grace_period_seconds
    return PodPlacement(node=str(node), uid=str(live.metadata.uid if live.metadata is not None else ""),
                        grace_s=DEFAULT_GRACE_S if grace is None else int(grace))


def restarted_probe(api: k8s_client.ApiClient, node: str, since: float) -> kube_wait.Probe:
    """Done when ``node``'s Lease was renewed after ``since`` (epoch seconds) and the Node is Ready."""
    after = datetime.datetime.fromtimestamp(since, tz=datetime.UTC)
    core, coordination = k8s_client.CoreV1Api(api), k8s_client.CoordinationV1Api(api)

    def probe() -> kube_wait.Status:
        try:
            lease = coordination.read_namespaced_lease(node, LEASE_NAMESPACE)
        except k8s_exceptions.ApiException as exc:
            if exc.status == 404:
                return kube_wait.Status(False, f"node {node} has no lease yet")
            raise
        renewed = lease.spec.renew_time if lease.spec is not None else None
        if renewed is None or renewed <= after:
            return kube_wait.Status(False, f"node {node}'s kubelet has not renewed its lease since the restart")
        status = core.read_node(node).status
        conditions = (status.conditions if status is not None else None) or []
        ready = next((c for c in conditions if c.type == "Ready"), None)
        if ready is None or ready.status != "True":
            why = f"{ready.status} ({ready.reason})" if ready is not None else "missing"
            return kube_wait.Status(False, f"node {node}'s kubelet is back, its Ready condition is {why}")
        return kube_wait.Status(True, f"node {node} is Ready (lease renewed {renewed.isoformat()})")

    return probe


def wait_restarted(api: k8s_client.ApiClient, node: str, since: float, *, timeout: float) -> str:
    """Block until :func:`restarted_probe` is done; raises kube_wait.WaitTimeout naming what it last saw."""
    return kube_wait.until(f"node {node} to be Ready after its restart", restarted_probe(api, node, since),
                           timeout=timeout, interval=0.5).message
