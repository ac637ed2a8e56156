"""Fixtures for K4's controller tests (imported by those test modules; see k4_support for why in-process)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import k4_support
import pytest

from kubesim import client
from kubesim.controllers import runtime, settings

TOLERATION_SECONDS = 2
SETTINGS = settings.ControllerSettings(node_monitor_period=0.5, node_monitor_grace=1.5, node_startup_grace=3.0,
                                       node_status_interval=0.3, toleration_seconds=TOLERATION_SECONDS)


class ControlPlane:
    def __init__(self, api: client.Client, mgr: runtime.Manager) -> None:
        self.api = api
        self.mgr = mgr
        self.kubelets: list[k4_support.ScriptedKubelet] = []

    def node(self) -> k4_support.ScriptedKubelet:
        kubelet = k4_support.ScriptedKubelet(self.api, f"k4-node-{uuid.uuid4().hex[:6]}", SETTINGS.node_status_interval)
        kubelet.register()
        self.kubelets.append(kubelet)
        return kubelet


@pytest.fixture(scope="module")
def k4_controlplane(kubesim_factory: Callable[..., Path]) -> Iterator[ControlPlane]:
    """A fresh API server (default tolerations 2 s) with K4's controllers and one always-healthy node."""
    kubeconfig = kubesim_factory("--default-toleration-seconds", str(TOLERATION_SECONDS), "--controllers", "none")
    api = client.Client.from_kubeconfig(kubeconfig)
    mgr = k4_support.start_manager(api, SETTINGS)
    plane = ControlPlane(api, mgr)
    try:
        plane.node()  # keeps the cluster out of full-disruption mode when a test silences its own node
        yield plane
    finally:
        for kubelet in plane.kubelets:
            kubelet.crash()
        plane.mgr.stop()
        api.close()


@pytest.fixture
def k4_namespace(k4_controlplane: ControlPlane) -> Iterator[str]:
    name = f"k4-{uuid.uuid4().hex[:8]}"
    k4_controlplane.api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        force_delete_all_pods(k4_controlplane.api, name)


def running_pod(api: client.Client, namespace: str, name: str, node: str, *, labels: dict[str, str] | None = None,
                owner: dict[str, Any] | None = None, tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A pod bound to ``node`` and reported Running and Ready (what a kubelet would post)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    spec: dict[str, Any] = {"nodeName": node, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    pod = api.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}, namespace)
    stamp = k4_support.now()
    pod["status"] = {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": stamp}]}
    return api.update("pods", pod, subresource="status")


def force_delete_all_pods(api: client.Client, namespace: str) -> None:
    items, _ = api.list("pods", namespace)
    for pod in items:
        with contextlib.suppress(client.NotFound):
            api.delete("pods", pod["metadata"]["name"], namespace, grace_period_seconds=0)
