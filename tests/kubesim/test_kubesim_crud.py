"""CRUD through the official Python client on every resource kubesim serves (A1, A2, A5, A6)."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}


def pod_body(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "x"}},
            "spec": POD_SPEC}


def sts_body(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": POD_SPEC},
        },
    }


@dataclasses.dataclass(frozen=True)
class Kind:
    """How to drive one resource through the typed client: api class, method stem, a body builder, a field to edit."""

    api: Callable[[Any], Any]
    stem: str
    namespaced: bool
    body: Callable[[str, str], dict[str, Any]]
    edit: Callable[[Any], None]


def _wait_deleted(lister: Callable[..., Any], name: str, since: str) -> None:
    """Watch until ``name`` is DELETED (the namespace lifecycle finishes namespaces asynchronously)."""
    from kubernetes import watch

    stream = watch.Watch()
    for event in stream.stream(lister, field_selector=f"metadata.name={name}", resource_version=since,
                               timeout_seconds=10):
        if event["type"] == "DELETED":
            stream.stop()
            return
    raise AssertionError(f"{name} was not deleted within 10 s")


def _label(obj: Any) -> None:
    obj.metadata.labels = {**(obj.metadata.labels or {}), "edited": "yes"}


KINDS: dict[str, Kind] = {
    "namespace": Kind(client.CoreV1Api, "namespace", False,
                      lambda n, ns: {"metadata": {"name": n}}, _label),
    "node": Kind(client.CoreV1Api, "node", False,
                 lambda n, ns: {"metadata": {"name": n}, "spec": {}}, _label),
    "pod": Kind(client.CoreV1Api, "namespaced_pod", True, lambda n, ns: pod_body(n), _label),
    "service": Kind(client.CoreV1Api, "namespaced_service", True,
                    lambda n, ns: {"metadata": {"name": n}, "spec": {"clusterIP": "None", "selector": {"app": n},
                                                                   "ports": [{"port": 80, "name": "http"}]}}, _label),
    "endpoints": Kind(client.CoreV1Api, "namespaced_endpoints", True,
                      lambda n, ns: {"metadata": {"name": n}, "subsets": []}, _label),
    "pvc": Kind(client.CoreV1Api, "namespaced_persistent_volume_claim", True,
                lambda n, ns: {"metadata": {"name": n}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                             "resources": {"requests": {"storage": "1Gi"}}}}, _label),
    "pv": Kind(client.CoreV1Api, "persistent_volume", False,
               lambda n, ns: {"metadata": {"name": n}, "spec": {"capacity": {"storage": "1Gi"},
                                                            "accessModes": ["ReadWriteOnce"],
                                                            "hostPath": {"path": f"/tmp/{n}"}}}, _label),
    "event": Kind(client.CoreV1Api, "namespaced_event", True,
                  lambda n, ns: {"metadata": {"name": n}, "involvedObject": {"kind": "Pod", "name": "p",
                                                                             "namespace": ns},
                             "reason": "Tested", "message": "hello", "type": "Normal",
                             "source": {"component": "test"}}, _label),
    "configmap": Kind(client.CoreV1Api, "namespaced_config_map", True,
                      lambda n, ns: {"metadata": {"name": n}, "data": {"k": "v"}}, _label),
    "secret": Kind(client.CoreV1Api, "namespaced_secret", True,
                   lambda n, ns: {"metadata": {"name": n}, "stringData": {"k": "v"}}, _label),
    "serviceaccount": Kind(client.CoreV1Api, "namespaced_service_account", True,
                           lambda n, ns: {"metadata": {"name": n}}, _label),
    "statefulset": Kind(client.AppsV1Api, "namespaced_stateful_set", True, lambda n, ns: sts_body(n), _label),
    "controllerrevision": Kind(client.AppsV1Api, "namespaced_controller_revision", True,
                               lambda n, ns: {"metadata": {"name": n}, "revision": 1, "data": {"a": 1}}, _label),
    "pdb": Kind(client.PolicyV1Api, "namespaced_pod_disruption_budget", True,
                lambda n, ns: {"metadata": {"name": n}, "spec": {"minAvailable": 1,
                                                             "selector": {"matchLabels": {"app": n}}}}, _label),
    "storageclass": Kind(client.StorageV1Api, "storage_class", False,
                         lambda n, ns: {"metadata": {"name": n}, "provisioner": "rancher.io/local-path",
                                    "volumeBindingMode": "WaitForFirstConsumer"}, _label),
    "lease": Kind(client.CoordinationV1Api, "namespaced_lease", True,
                  lambda n, ns: {"metadata": {"name": n}, "spec": {"holderIdentity": "node-a",
                                                               "leaseDurationSeconds": 40}}, _label),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_resource_supports_create_read_list_update_delete(kubesim_api: Any, namespace: str, kind: str) -> None:
    """A1, A2, A6: create / get / list / replace / delete each kind, with server-owned metadata."""
    spec = KINDS[kind]
    api = spec.api(kubesim_api)
    name = _name(kind[:4])
    ns_args: tuple[str, ...] = (namespace,) if spec.namespaced else ()
    create = getattr(api, f"create_{spec.stem}")
    read = getattr(api, f"read_{spec.stem}")
    replace = getattr(api, f"replace_{spec.stem}")
    delete = getattr(api, f"delete_{spec.stem}")
    lister = getattr(api, f"list_{spec.stem}")

    created = create(*ns_args, spec.body(name, namespace))
    assert created.metadata.name == name
    assert created.metadata.uid
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None

    fetched = read(name, *ns_args)
    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.metadata.resource_version == created.metadata.resource_version

    listed = lister(*ns_args)
    assert name in [item.metadata.name for item in listed.items]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    spec.edit(fetched)
    updated = replace(name, *ns_args, fetched)
    assert updated.metadata.labels["edited"] == "yes"
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    assert updated.metadata.uid == created.metadata.uid

    delete(name, *ns_args)
    if kind == "namespace":
        _wait_deleted(api.list_namespace, name, created.metadata.resource_version)
    if kind in ("pv", "pvc"):
        # StorageObjectInUseProtection: the finalizer holds the object (Terminating) until the
        # protection controller — absent from this bare API server — releases it.
        held = read(name, *ns_args)
        assert held.metadata.deletion_timestamp is not None
        assert held.metadata.finalizers == [f"kubernetes.io/{kind}-protection"]
        getattr(api, f"patch_{spec.stem}")(name, *ns_args, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        read(name, *ns_args)
    assert err.value.status == 404


def test_events_are_also_served_under_events_k8s_io(kubesim_api: Any, namespace: str) -> None:
    """A1: one event storage, two API groups (core/v1 message == events.k8s.io/v1 note)."""
    core = client.CoreV1Api(kubesim_api)
    name = _name("ev")
    core.create_namespaced_event(namespace, KINDS["event"].body(name, namespace))
    new = client.EventsV1Api(kubesim_api).read_namespaced_event(name, namespace)
    assert new.note == "hello"
    assert new.regarding.name == "p"
    assert new.reason == "Tested"


def test_not_found_is_a_status_naming_the_group_resource(kubesim_api: Any, namespace: str) -> None:
    """A5: 404 NotFound with upstream's message for a grouped resource."""
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(kubesim_api).read_namespaced_stateful_set("missing", namespace)
    status = err.value
    assert status.status == 404
    import json

    body = json.loads(status.body)
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["message"] == 'statefulsets.apps "missing" not found'
    assert body["details"] == {"name": "missing", "group": "apps", "kind": "statefulsets"}


def test_create_of_an_existing_name_is_already_exists(kubesim_api: Any, namespace: str) -> None:
    """A5: 409 AlreadyExists."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}})
    import json

    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'configmaps "dup" already exists'


def test_update_with_a_stale_resource_version_is_a_conflict(kubesim_api: Any, namespace: str) -> None:
    """A2, A5: optimistic concurrency — PUT with an old resourceVersion gets 409 Conflict."""
    import json

    core = client.CoreV1Api(kubesim_api)
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cc"}, "data": {"v": "1"}})
    second = core.read_namespaced_config_map("cc", namespace)
    second.data = {"v": "2"}
    core.replace_namespaced_config_map("cc", namespace, second)
    first.data = {"v": "3"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cc", namespace, first)
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "cc": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert core.read_namespaced_config_map("cc", namespace).data == {"v": "2"}


def test_generate_name_gets_a_unique_suffix(kubesim_api: Any, namespace: str) -> None:
    """A6: generateName."""
    core = client.CoreV1Api(kubesim_api)
    names = {core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "gen-"}}).metadata.name
             for _ in range(3)}
    assert len(names) == 3
    assert all(n.startswith("gen-") and len(n) == len("gen-") + 5 for n in names)


def test_create_in_a_missing_namespace_is_not_found(kubesim_api: Any) -> None:
    """A5: namespaced creates need the namespace to exist."""
    import json

    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kubesim_api).create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    body = json.loads(err.value.body)
    assert (err.value.status, body["message"]) == (404, 'namespaces "no-such-ns" not found')


def test_terminating_namespace_refuses_new_objects(kubesim_api: Any) -> None:
    """A8: a namespace being deleted forbids creates (NamespaceTerminating)."""
    import json

    core = client.CoreV1Api(kubesim_api)
    ns = _name("gone")
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    core.delete_namespace(ns)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (403, "Forbidden")
    assert "because it is being terminated" in body["message"]
    assert core.read_namespace(ns).status.phase == "Terminating"


def test_namespace_deletion_removes_its_objects_then_the_namespace(kubesim_api: Any) -> None:
    """A8: the namespace lifecycle deletes contents, waits for finalizers, then removes the namespace."""
    core = client.CoreV1Api(kubesim_api)
    ns = _name("del")
    created = core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "plain"}})
    core.create_namespaced_pod(ns, pod_body("unscheduled"))
    before = core.create_namespaced_config_map(ns, {"metadata": {"name": "held",
                                                                  "finalizers": ["example.com/hold"]}})
    core.delete_namespace(ns)
    since = before.metadata.resource_version
    _wait_deleted(functools.partial(core.list_namespaced_config_map, ns), "plain", since)
    _wait_deleted(functools.partial(core.list_namespaced_pod, ns), "unscheduled", since)
    held = core.read_namespaced_config_map("held", ns)
    assert held.metadata.deletion_timestamp is not None
    assert core.read_namespace(ns).status.phase == "Terminating"
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}},
                                     _content_type="application/merge-patch+json")
    _wait_deleted(core.list_namespace, ns, created.metadata.resource_version)


def test_resource_versions_increase_across_kinds(kubesim_api: Any, namespace: str) -> None:
    """A6: one cluster-wide counter."""
    core = client.CoreV1Api(kubesim_api)
    a = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    b = client.AppsV1Api(kubesim_api).create_namespaced_stateful_set(namespace, sts_body("b"))
    c = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    versions = [int(o.metadata.resource_version) for o in (a, b, c)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def test_concurrent_read_modify_write_loses_no_increment(kubesim_api: Any, namespace: str) -> None:
    """A2, A6: optimistic concurrency under contention — every PUT that succeeds was based on the latest version."""
    import threading

    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    per_thread, threads = 15, 4
    conflicts = [0] * threads
    other_errors: list[ApiException] = []

    def bump(index: int) -> None:
        done = 0
        while done < per_thread:
            cm = core.read_namespaced_config_map("counter", namespace)
            cm.data = {"n": str(int(cm.data["n"]) + 1)}
            try:
                core.replace_namespaced_config_map("counter", namespace, cm)
                done += 1
            except ApiException as exc:
                if exc.status != 409:
                    other_errors.append(exc)
                    return
                conflicts[index] += 1

    workers = [threading.Thread(target=bump, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not other_errors
    assert core.read_namespaced_config_map("counter", namespace).data["n"] == str(per_thread * threads)
