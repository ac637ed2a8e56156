"""Volumes as pods see them, on the real 3-node cluster (control plane + kubelets), through the API only.

IDs: C1 (local-path data stays on its node), C2 (shared class: the pod moves to another node with
its data once the old pod is gone), C4 (pvc-protection holds a claim until its pod is gone), D3
(cordon). Skipped, with the reason printed, while the kubelet is not available (the
`kubesim_cluster` fixture decides).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import cluster_waits
import pytest

from kubesim import client

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

WAIT = 20.0
Obj = dict[str, Any]


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `probe` until truthy; a timeout names what was awaited and the last value seen."""
    return cluster_waits.until_truthy(what, probe, timeout)


@pytest.fixture
def api(kubesim_cluster: Any) -> client.Client:
    return kubesim_cluster.client  # type: ignore[no-any-return]


@pytest.fixture
def uncordon_after(api: client.Client, kubesim_cluster: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for node in kubesim_cluster.nodes:
            api.patch("nodes", node, {"spec": {"unschedulable": None}})


def cordon(api: client.Client, node: str) -> None:
    api.patch("nodes", node, {"spec": {"unschedulable": True}})


def claim(api: client.Client, ns: str, name: str, klass: str) -> None:
    api.create("persistentvolumeclaims", {"metadata": {"name": name}, "spec": {
        "storageClassName": klass, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        ns)


def shell_pod(api: client.Client, ns: str, name: str, claim_name: str, script: str) -> None:
    api.create("pods", {"metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}}, ns)


def running_on(api: client.Client, ns: str, name: str) -> str:
    def probe() -> str | None:
        pod = api.get("pods", name, ns)
        if (pod.get("status") or {}).get("phase") != "Running":
            return None
        return str(pod["spec"]["nodeName"])
    return str(wait_for(f"pod {ns}/{name} Running", probe))


def log_of(api: client.Client, ns: str, name: str) -> str:
    return api.raw_get(f"/api/v1/namespaces/{ns}/pods/{name}/log").decode()


def gone(api: client.Client, plural: str, name: str, ns: str) -> bool:
    try:
        api.get(plural, name, ns)
    except client.NotFound:
        return True
    return False


@pytest.mark.usefixtures("uncordon_after")
def test_shared_volume_pod_moves_to_another_node_with_its_data(api: client.Client, namespace: str) -> None:
    claim(api, namespace, "data", "shared")
    shell_pod(api, namespace, "writer", "data", "echo checkpoint-7 > /data/latest; sleep 3600")
    first = running_on(api, namespace, "writer")
    cordon(api, first)
    api.delete("pods", "writer", namespace)
    shell_pod(api, namespace, "reader", "data", "cat /data/latest; sleep 3600")
    wait_for("writer pod gone", lambda: gone(api, "pods", "writer", namespace))
    second = running_on(api, namespace, "reader")
    assert second != first
    assert wait_for("reader's log to show the data", lambda: "checkpoint-7" in log_of(api, namespace, "reader"))


@pytest.mark.usefixtures("uncordon_after")
def test_local_path_pod_waits_for_its_cordoned_node_and_keeps_its_data(api: client.Client, namespace: str) -> None:
    claim(api, namespace, "data", "standard")
    shell_pod(api, namespace, "writer", "data", "echo local-3 > /data/latest; sleep 3600")
    node = running_on(api, namespace, "writer")
    cordon(api, node)
    api.delete("pods", "writer", namespace)
    wait_for("writer pod gone", lambda: gone(api, "pods", "writer", namespace))
    shell_pod(api, namespace, "reader", "data", "cat /data/latest; sleep 3600")

    def failed_scheduling() -> list[str]:
        items, _ = api.list("events", namespace, field_selector="involvedObject.name=reader,reason=FailedScheduling")
        return [str(e["message"]) for e in items]

    message = wait_for("FailedScheduling for the reader", failed_scheduling)[-1]
    assert "node(s) didn't match PersistentVolume's node affinity" in message
    assert "1 node(s) were unschedulable" in message
    api.patch("nodes", node, {"spec": {"unschedulable": None}})
    assert running_on(api, namespace, "reader") == node
    assert wait_for("reader's log to show the data", lambda: "local-3" in log_of(api, namespace, "reader"))


def test_claim_in_use_is_removed_only_after_its_pod_is_gone(api: client.Client, namespace: str) -> None:
    claim(api, namespace, "data", "standard")
    shell_pod(api, namespace, "user", "data", "sleep 3600")
    running_on(api, namespace, "user")
    api.delete("persistentvolumeclaims", "data", namespace)
    terminating = api.get("persistentvolumeclaims", "data", namespace)
    assert terminating["metadata"].get("deletionTimestamp")
    assert "kubernetes.io/pvc-protection" in terminating["metadata"]["finalizers"]
    with contextlib.suppress(client.NotFound):
        api.delete("pods", "user", namespace)
    wait_for("the claim to be removed after its pod", lambda: gone(api, "persistentvolumeclaims", "data", namespace))
