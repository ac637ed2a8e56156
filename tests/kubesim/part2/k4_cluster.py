"""Helpers for K4's full-cluster tests (node crash, kubectl drain) on K1's ``kubesim_cluster``.

These scenarios need every part-2 piece at once (StatefulSet controller, scheduler and volumes,
kubelets, K4's controllers); :func:`require_pieces` skips with a printed reason naming what is
missing, so the tests turn on by themselves once all pieces have landed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import k4_support as ks
import pytest

from kubesim import client, controllers

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"
NEEDED_CONTROLLERS = ("statefulset", "scheduler", "persistentvolume-binder", "volume-provisioner", "nodelifecycle",
                      "tainteviction", "disruption")


def require_pieces(needed: tuple[str, ...] = NEEDED_CONTROLLERS) -> None:
    missing = [f"controller {name!r}" for name in needed if name not in {n for n, _ in controllers.CONTROLLERS}]
    if importlib.util.find_spec("kubesim.kubelet.__main__") is None:
        missing.append("kubesim.kubelet.__main__ (K5)")
    if not KUBECTL.exists():
        missing.append(f"kubectl at {KUBECTL}")
    if missing:
        reason = "needs " + ", ".join(missing)
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)


def statefulset(name: str, *, storage_class: str | None, command: list[str] | None = None,
                replicas: int = 1, tolerate_seconds: int | None = None) -> dict[str, Any]:
    """A StatefulSet of busybox (or pause) pods, optionally with a 1Mi claim template of ``storage_class``."""
    container: dict[str, Any] = {"name": "app", "image": "registry.k8s.io/pause:3.9"}
    if command is not None:
        container = {"name": "app", "image": "busybox:1.36", "command": command,
                     "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1, "containers": [container]}
    if tolerate_seconds is not None:
        spec["tolerations"] = [
            {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": tolerate_seconds}
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]
    sts: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
    if storage_class is not None:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        sts["spec"]["volumeClaimTemplates"] = [{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Mi"}}}}]
    return sts


def pod_or_none(api: client.Client, namespace: str, name: str) -> ks.Obj | None:
    try:
        return api.get("pods", name, namespace)
    except client.NotFound:
        return None


def is_ready(pod: ks.Obj | None) -> bool:
    return pod is not None and not pod["metadata"].get("deletionTimestamp") and (
        ks.condition(pod, "Ready") or {}).get("status") == "True"


def await_ready(api: client.Client, namespace: str, name: str, timeout: float = 30) -> ks.Obj:
    pod: ks.Obj = ks.await_value(f"pod {namespace}/{name} Ready", lambda: pod_or_none(api, namespace, name),
                                 is_ready, timeout)
    return pod


def pods_of(api: client.Client, namespace: str, app: str) -> list[ks.Obj]:
    items, _ = api.list("pods", namespace, label_selector=f"app={app}")
    return items


def kubectl(kubeconfig: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def pod_log(api: client.Client, namespace: str, name: str) -> str:
    return api.raw_get(f"/api/v1/namespaces/{namespace}/pods/{name}/log").decode(errors="replace")


@contextlib.contextmanager
def uncordoned_after(cluster: Any, *nodes: str) -> Iterator[None]:
    """Make sure nodes a drain cordoned are schedulable again for the rest of the session."""
    try:
        yield
    finally:
        for node in nodes:
            with contextlib.suppress(client.ApiError):
                cluster.client.patch("nodes", node, {"spec": {"unschedulable": None}})
