"""The three patch types through the official client, with strategic-merge semantics (A3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _pod(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": "p"}, "finalizers": ["example.com/a"]},
        "spec": {"containers": [
            {"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "side", "image": "busybox"},
        ]},
    }


def _sts(name: str) -> dict[str, Any]:
    pod = _pod(name)
    return {"metadata": {"name": name}, "spec": {
        "replicas": 1, "serviceName": name, "selector": {"matchLabels": {"app": "p"}},
        "template": {"metadata": {"labels": {"app": "p"}}, "spec": pod["spec"]},
    }}


def _env(spec: Any, container: str) -> dict[str, str]:
    for c in spec.containers:
        if c.name == container:
            return {e.name: e.value for e in c.env or []}
    raise AssertionError(f"no container {container}")


def test_strategic_merge_merges_containers_and_env_by_name(kubesim_api: Any, namespace: str) -> None:
    """A3: a dict body is a strategic merge patch; containers and env merge by name (StatefulSet template)."""
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_stateful_set(namespace, _sts("smp"))
    patched = apps.patch_namespaced_stateful_set("smp", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]},
    ]}}}})
    spec = patched.spec.template.spec
    assert [c.name for c in spec.containers] == ["main", "side"]
    assert _env(spec, "main") == {"A": "1", "B": "two", "C": "3"}
    assert spec.containers[0].image == "busybox"
    assert patched.metadata.generation == 2


def test_strategic_merge_delete_directive_removes_one_env_entry(kubesim_api: Any, namespace: str) -> None:
    """A3: ``$patch: delete`` inside a merge-keyed list."""
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_stateful_set(namespace, _sts("smpdel"))
    patched = apps.patch_namespaced_stateful_set("smpdel", namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "main", "env": [{"name": "A", "$patch": "delete"}]}]}}}})
    assert _env(patched.spec.template.spec, "main") == {"B": "2"}


def test_pod_container_env_is_immutable(kubesim_api: Any, namespace: str) -> None:
    """A5: upstream pod update validation forbids changing env of a running pod spec (422)."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("immut"))
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod("immut", namespace, {"spec": {"containers": [
            {"name": "main", "env": [{"name": "B", "value": "two"}]}]}})
    assert err.value.status == 422


def test_strategic_merge_treats_finalizers_as_a_set(kubesim_api: Any, namespace: str) -> None:
    """A3: finalizers merge as a set (no duplicates, existing kept); $deleteFromPrimitiveList removes."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("fin"))
    patched = core.patch_namespaced_pod("fin", namespace, {"metadata": {"finalizers": ["example.com/b",
                                                                                     "example.com/a"]}})
    assert sorted(patched.metadata.finalizers) == ["example.com/a", "example.com/b"]
    patched = core.patch_namespaced_pod("fin", namespace,
                                        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a",
                                                                                              "example.com/b"]}})
    assert not patched.metadata.finalizers


def test_merge_patch_replaces_lists_wholesale(kubesim_api: Any, namespace: str) -> None:
    """A3: JSON merge patch (RFC 7386): lists are replaced, null deletes a key."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("merge"))
    patched = core.patch_namespaced_pod(
        "merge", namespace, {"metadata": {"labels": {"app": None, "new": "1"}, "finalizers": ["example.com/z"]}},
        _content_type="application/merge-patch+json",
    )
    assert patched.metadata.labels == {"new": "1"}
    assert patched.metadata.finalizers == ["example.com/z"]


def test_json_patch_applies_operations_in_order(kubesim_api: Any, namespace: str) -> None:
    """A3: JSON patch (RFC 6902) add / replace / remove / test."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("jp"))
    patched = core.patch_namespaced_pod("jp", namespace, [
        {"op": "test", "path": "/metadata/labels/app", "value": "p"},
        {"op": "add", "path": "/metadata/labels/extra", "value": "y"},
        {"op": "replace", "path": "/spec/containers/1/image", "value": "alpine"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ])
    assert patched.metadata.labels == {"app": "p", "extra": "y"}
    assert patched.spec.containers[1].image == "alpine"
    assert not patched.metadata.finalizers


def test_failed_json_patch_test_op_changes_nothing(kubesim_api: Any, namespace: str) -> None:
    """A3, A5: a failing ``test`` op rejects the whole patch."""
    core = client.CoreV1Api(kubesim_api)
    before = core.create_namespaced_pod(namespace, _pod("jptest"))
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod("jptest", namespace, [
            {"op": "add", "path": "/metadata/labels/extra", "value": "y"},
            {"op": "test", "path": "/metadata/labels/app", "value": "nope"},
        ])
    assert err.value.status in (422, 500)
    assert json.loads(err.value.body)["kind"] == "Status"
    after = core.read_namespaced_pod("jptest", namespace)
    assert after.metadata.resource_version == before.metadata.resource_version


def test_patch_with_a_stale_resource_version_is_a_conflict(kubesim_api: Any, namespace: str) -> None:
    """A2, A5: a patch carrying metadata.resourceVersion is a precondition."""
    core = client.CoreV1Api(kubesim_api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "pc"}})
    core.patch_namespaced_config_map("pc", namespace, {"data": {"a": "1"}})
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("pc", namespace, {"metadata": {"resourceVersion":
                                                                        first.metadata.resource_version},
                                                           "data": {"a": "2"}})
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"


def test_patch_that_changes_nothing_keeps_the_resource_version(kubesim_api: Any, namespace: str) -> None:
    """A6: a no-op write is not stored (kubectl apply relies on this to be idempotent)."""
    core = client.CoreV1Api(kubesim_api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "noop"}, "data": {"a": "1"}})
    again = core.patch_namespaced_config_map("noop", namespace, {"data": {"a": "1"}})
    assert again.metadata.resource_version == first.metadata.resource_version


def test_unknown_patch_content_type_is_415(raw: Any, kubesim_api: Any, namespace: str) -> None:
    """A5: unsupported media type."""
    client.CoreV1Api(kubesim_api).create_namespaced_config_map(namespace, {"metadata": {"name": "ct"}})
    reply = raw.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/ct", b"{}",
                        headers={"Content-Type": "text/plain"})
    assert reply.status == 415
    assert reply.json()["reason"] == "UnsupportedMediaType"
