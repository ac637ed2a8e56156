"""Deleting an ordinal's pod and waiting for it to come back, against a real API server (no kubelet)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from harness.kube import client as kube_client
from harness.kube import pods

pytestmark = pytest.mark.kubesim


@pytest.fixture
def api_ns(kubesim_kubeconfig: Path) -> Iterator[tuple[kube_client.ApiClient, str]]:
    api = kube_client.new_api_client(kubesim_kubeconfig)
    ns = f"pods-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    try:
        yield api, ns
    finally:
        k8s.CoreV1Api(api).delete_namespace(ns)
        kube_client.close(api)


def make_pod(api: kube_client.ApiClient, ns: str, name: str) -> str:
    made = k8s.CoreV1Api(api).create_namespaced_pod(ns, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "writer", "image": "ckpt-writer:1"}]}})
    return str(made.metadata.uid)


def test_force_delete_removes_exactly_the_pod_that_was_read(api_ns: tuple[kube_client.ApiClient, str]) -> None:
    api, ns = api_ns
    uid = make_pod(api, ns, "ckpt-0")
    deleted = pods.delete_pod(api, ns, "ckpt-0", grace_seconds=0)
    assert deleted.uid == uid
    assert pods.read_pod(api, ns, "ckpt-0") is None


def test_deleting_a_missing_pod_is_one_line(api_ns: tuple[kube_client.ApiClient, str]) -> None:
    api, ns = api_ns
    with pytest.raises(pods.PodError, match=rf"^pod {ns}/ckpt-9 does not exist; nothing to delete"):
        pods.delete_pod(api, ns, "ckpt-9", grace_seconds=0)


def test_waiting_for_a_replacement_that_never_comes_names_what_was_seen(
    api_ns: tuple[kube_client.ApiClient, str]
) -> None:
    api, ns = api_ns
    uid = make_pod(api, ns, "ckpt-1")
    pods.delete_pod(api, ns, "ckpt-1", grace_seconds=0)
    with pytest.raises(pods.PodError, match=r"timed out after 1s waiting for pod .*/ckpt-1 to come back Ready with a "
                                            r"new uid .*last seen: pod ckpt-1 not yet recreated"):
        pods.wait_replaced(api, ns, "ckpt-1", uid, timeout=1)


def test_a_recreated_pod_that_is_not_ready_is_not_back(api_ns: tuple[kube_client.ApiClient, str]) -> None:
    api, ns = api_ns
    old = make_pod(api, ns, "ckpt-2")
    pods.delete_pod(api, ns, "ckpt-2", grace_seconds=0)
    make_pod(api, ns, "ckpt-2")
    with pytest.raises(pods.PodError, match=r"last seen: pod ckpt-2 uid \w+ on no node ip -: Pending, not Ready"):
        pods.wait_replaced(api, ns, "ckpt-2", old, timeout=1)
    k8s.CoreV1Api(api).patch_namespaced_pod_status("ckpt-2", ns, {"status": {
        "phase": "Running", "podIP": "127.9.9.9", "conditions": [{"type": "Ready", "status": "True"}]}})
    back = pods.wait_replaced(api, ns, "ckpt-2", old, timeout=5)
    assert (back.ready, back.ip) == (True, "127.9.9.9")
    assert back.uid != old
