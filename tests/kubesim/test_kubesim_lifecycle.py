"""Generation, status subresource, deletion, finalizers, eviction, scale and binding (A6, A8, A1 subresources)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _sts(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }


def _pod(name: str, node: str = "", grace: int | None = None, labels: dict[str, str] | None = None,
         finalizers: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    meta: dict[str, Any] = {"name": name, "labels": labels or {"app": "x"}}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta, "spec": spec}


def test_generation_bumps_on_spec_change_only(kubesim_api: Any, namespace: str) -> None:
    """A6: labels and status leave generation alone; a spec change bumps it."""
    apps = client.AppsV1Api(kubesim_api)
    sts = apps.create_namespaced_stateful_set(namespace, _sts("gen"))
    assert sts.metadata.generation == 1
    sts = apps.patch_namespaced_stateful_set("gen", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert sts.metadata.generation == 1
    sts = apps.patch_namespaced_stateful_set_status("gen", namespace, {"status": {"replicas": 2,
                                                                                 "observedGeneration": 1}})
    assert sts.metadata.generation == 1
    sts = apps.patch_namespaced_stateful_set("gen", namespace, {"spec": {"replicas": 3}})
    assert sts.metadata.generation == 2


def test_status_subresource_and_main_resource_ignore_each_others_fields(kubesim_api: Any, namespace: str) -> None:
    """A6: PUT/PATCH on the object ignores status; /status ignores everything but status."""
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_stateful_set(namespace, _sts("st"))
    sts = apps.patch_namespaced_stateful_set("st", namespace, {"status": {"replicas": 5}})
    assert not (sts.status and sts.status.replicas)
    sts = apps.patch_namespaced_stateful_set_status("st", namespace, {"spec": {"replicas": 9},
                                                                     "status": {"replicas": 1}})
    assert sts.spec.replicas == 2
    assert sts.status.replicas == 1
    assert apps.read_namespaced_stateful_set_status("st", namespace).status.replicas == 1


def test_statefulset_defaults_are_applied(kubesim_api: Any, namespace: str) -> None:
    """A6: podManagementPolicy, updateStrategy, revisionHistoryLimit defaults."""
    apps = client.AppsV1Api(kubesim_api)
    body = _sts("defaults")
    del body["spec"]["replicas"]
    sts = apps.create_namespaced_stateful_set(namespace, body)
    assert sts.spec.replicas == 1
    assert sts.spec.pod_management_policy == "OrderedReady"
    assert sts.spec.update_strategy.type == "RollingUpdate"
    assert sts.spec.update_strategy.rolling_update.partition == 0
    assert sts.spec.revision_history_limit == 10


def test_statefulset_forbidden_update_is_invalid(kubesim_api: Any, namespace: str) -> None:
    """A5, A6: only some StatefulSet spec fields may change; 422 with a cause naming the field."""
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_stateful_set(namespace, _sts("frozen"))
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_stateful_set("frozen", namespace, {"spec": {"serviceName": "other"}})
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["kind"] == "StatefulSet"
    assert body["details"]["causes"][0]["field"] == "spec"
    assert body["message"].startswith('StatefulSet.apps "frozen" is invalid: spec: Forbidden')


def test_unscheduled_pod_is_deleted_at_once(kubesim_api: Any, namespace: str) -> None:
    """A8: no nodeName -> grace forced to 0 -> gone immediately."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("free"))
    core.delete_namespaced_pod("free", namespace)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("free", namespace)
    assert err.value.status == 404


def test_scheduled_pod_deletion_is_graceful_and_may_only_shorten(kubesim_api: Any, namespace: str) -> None:
    """A8: deletionTimestamp + grace from the pod; a longer repeat is ignored, a shorter one applies, 0 removes."""
    core = client.CoreV1Api(kubesim_api)
    created = core.create_namespaced_pod(namespace, _pod("graceful", node="n1", grace=40))
    first = core.delete_namespaced_pod("graceful", namespace)
    assert first.metadata.deletion_grace_period_seconds == 40
    assert first.metadata.deletion_timestamp is not None
    assert first.metadata.generation == created.metadata.generation + 1
    longer = core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=100)
    assert longer.metadata.deletion_grace_period_seconds == 40
    shorter = core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=10)
    assert shorter.metadata.deletion_grace_period_seconds == 10
    assert shorter.metadata.deletion_timestamp < first.metadata.deletion_timestamp
    core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("graceful", namespace)
    assert err.value.status == 404


def test_finalizers_block_removal_until_emptied(kubesim_api: Any, namespace: str) -> None:
    """A8: a finalizer keeps a deleted object (Terminating); removing the last one removes it."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("held", namespace)
    held = core.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.deletion_grace_period_seconds == 0
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": ["example.com/new"]}})
    assert err.value.status == 422
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}},
                                     _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("held", namespace)
    assert gone.value.status == 404


def test_propagation_policy_sets_the_garbage_collector_finalizers(kubesim_api: Any, namespace: str) -> None:
    """A8, D6: Foreground -> foregroundDeletion finalizer; Orphan -> orphan finalizer."""
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_stateful_set(namespace, _sts("fg"))
    apps.delete_namespaced_stateful_set("fg", namespace, propagation_policy="Foreground")
    assert apps.read_namespaced_stateful_set("fg", namespace).metadata.finalizers == ["foregroundDeletion"]
    apps.create_namespaced_stateful_set(namespace, _sts("or"))
    apps.delete_namespaced_stateful_set("or", namespace, propagation_policy="Orphan")
    assert apps.read_namespaced_stateful_set("or", namespace).metadata.finalizers == ["orphan"]
    apps.create_namespaced_stateful_set(namespace, _sts("bg"))
    apps.delete_namespaced_stateful_set("bg", namespace, propagation_policy="Background")
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_stateful_set("bg", namespace)
    assert err.value.status == 404


def test_delete_preconditions_are_checked(kubesim_api: Any, namespace: str) -> None:
    """A2: DeleteOptions.preconditions uid / resourceVersion -> 409 when they do not match."""
    core = client.CoreV1Api(kubesim_api)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "pre"}})
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert err.value.status == 409
    assert "Precondition failed: UID in precondition" in json.loads(err.value.body)["message"]
    core.delete_namespaced_config_map("pre", namespace, body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=cm.metadata.uid, resource_version=cm.metadata.resource_version)))


def test_delete_collection_honours_the_label_selector(kubesim_api: Any, namespace: str) -> None:
    """A2: deletecollection."""
    core = client.CoreV1Api(kubesim_api)
    for name, app in (("a", "gone"), ("b", "gone"), ("c", "kept")):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"app": app}}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="app=gone")
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["c"]


def _pdb(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}}}


def _running_ready(core: client.CoreV1Api, name: str, namespace: str) -> None:
    core.patch_namespaced_pod_status(name, namespace, {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def test_eviction_is_refused_with_429_when_the_budget_allows_no_disruption(kubesim_api: Any,
                                                                           namespace: str) -> None:
    """A1, D4: PDB status disruptionsAllowed 0 -> 429 TooManyRequests, DisruptionBudget cause; pod stays."""
    core = client.CoreV1Api(kubesim_api)
    policy = client.PolicyV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("guarded", node="n1", labels={"app": "g"}))
    _running_ready(core, "guarded", namespace)
    policy.create_namespaced_pod_disruption_budget(namespace, _pdb("g-pdb", "g"))
    policy.patch_namespaced_pod_disruption_budget_status("g-pdb", namespace, {"status": {
        "observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
        "expectedPods": 1}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction("guarded", namespace, client.V1Eviction(
            metadata=client.V1ObjectMeta(name="guarded", namespace=namespace)))
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (429, "TooManyRequests")
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget", "message":
                                          "The disruption budget g-pdb needs 1 healthy pods and has 1 currently"}]
    assert core.read_namespaced_pod("guarded", namespace).metadata.deletion_timestamp is None


def test_eviction_within_budget_deletes_the_pod_and_spends_a_disruption(kubesim_api: Any, namespace: str) -> None:
    """A1, D4: 201, DisruptionTarget condition, disruptionsAllowed decremented, pod terminating."""
    core = client.CoreV1Api(kubesim_api)
    policy = client.PolicyV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("evictee", node="n1", labels={"app": "e"}))
    _running_ready(core, "evictee", namespace)
    policy.create_namespaced_pod_disruption_budget(namespace, _pdb("e-pdb", "e"))
    policy.patch_namespaced_pod_disruption_budget_status("e-pdb", namespace, {"status": {
        "observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
        "expectedPods": 2}})
    _data, status, _headers = core.create_namespaced_pod_eviction_with_http_info(
        "evictee", namespace, client.V1Eviction(metadata=client.V1ObjectMeta(name="evictee")))
    assert status == 201
    pod = core.read_namespaced_pod("evictee", namespace)
    assert pod.metadata.deletion_timestamp is not None
    assert "DisruptionTarget" in [c.type for c in pod.status.conditions]
    pdb = policy.read_namespaced_pod_disruption_budget("e-pdb", namespace)
    assert pdb.status.disruptions_allowed == 0
    assert "evictee" in pdb.status.disrupted_pods


def test_scale_subresource_reads_and_writes_replicas(kubesim_api: Any, namespace: str) -> None:
    """A1: statefulsets/scale get / replace / patch (autoscaling/v1 Scale)."""
    apps = client.AppsV1Api(kubesim_api)
    apps.create_namespaced_stateful_set(namespace, _sts("sc", replicas=2))
    scale = apps.read_namespaced_stateful_set_scale("sc", namespace)
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=sc"
    scale.spec.replicas = 4
    assert apps.replace_namespaced_stateful_set_scale("sc", namespace, scale).spec.replicas == 4
    assert apps.patch_namespaced_stateful_set_scale("sc", namespace, {"spec": {"replicas": 1}}).spec.replicas == 1
    assert apps.read_namespaced_stateful_set("sc", namespace).spec.replicas == 1
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_stateful_set_scale("sc", namespace, scale)  # carries a stale resourceVersion
    assert err.value.status == 409


def test_binding_assigns_a_node_once(kubesim_api: Any, namespace: str) -> None:
    """A1: pods/binding sets spec.nodeName and PodScheduled; a second binding conflicts."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("bindme"))
    target = client.V1Binding(metadata=client.V1ObjectMeta(name="bindme"),
                              target=client.V1ObjectReference(kind="Node", name="n2"))
    core.create_namespaced_pod_binding("bindme", namespace, target, _preload_content=False)
    pod = core.read_namespaced_pod("bindme", namespace)
    assert pod.spec.node_name == "n2"
    assert [c.type for c in pod.status.conditions] == ["PodScheduled"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_binding("bindme", namespace, target, _preload_content=False)
    assert err.value.status == 409


def test_pod_log_validates_the_container(kubesim_api: Any, namespace: str) -> None:
    """A1: pods/log — unknown container 400; unscheduled pod -> empty log."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("logs"))
    assert core.read_namespaced_pod_log("logs", namespace) == ""
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("logs", namespace, container="nope")
    assert err.value.status == 400
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("absent", namespace)
    assert missing.value.status == 404


def test_eviction_of_a_pending_pod_ignores_the_budget(kubesim_api: Any, namespace: str) -> None:
    """D4: Pending pods are evicted without consulting the PDB (canIgnorePDB)."""
    core = client.CoreV1Api(kubesim_api)
    policy = client.PolicyV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("pending", labels={"app": "pp"}))
    policy.create_namespaced_pod_disruption_budget(namespace, _pdb("pp-pdb", "pp"))
    _data, status, _headers = core.create_namespaced_pod_eviction_with_http_info(
        "pending", namespace, client.V1Eviction(metadata=client.V1ObjectMeta(name="pending")))
    assert status == 201
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("pending", namespace)
    assert err.value.status == 404


def test_eviction_of_a_missing_pod_is_404(kubesim_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kubesim_api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction("absent", namespace, client.V1Eviction(
            metadata=client.V1ObjectMeta(name="absent")))
    assert err.value.status == 404


def test_namespace_finalizers_change_only_through_finalize(kubesim_api: Any) -> None:
    """A8: PUT on the namespace keeps spec.finalizers; /finalize changes them; without them deletion is immediate."""
    import uuid

    core = client.CoreV1Api(kubesim_api)
    name = f"fin-{uuid.uuid4().hex[:6]}"
    ns = core.create_namespace({"metadata": {"name": name}})
    assert ns.spec.finalizers == ["kubernetes"]
    ns.spec.finalizers = []
    assert core.replace_namespace(name, ns).spec.finalizers == ["kubernetes"]
    current = core.read_namespace(name)
    current.spec.finalizers = []
    assert not core.replace_namespace_finalize(name, current).spec.finalizers
    core.delete_namespace(name)
    with pytest.raises(ApiException) as err:
        core.read_namespace(name)
    assert err.value.status == 404


def test_create_time_admission_defaults_pods_and_claims(kubesim_factory: Any) -> None:
    """A6: create-time plugins — pod tolerations (configurable seconds), service account, QoS class;
    a claim without a class gets the StorageClass annotated as default."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kubesim_factory("--default-toleration-seconds", "7")))
    try:
        core = client.CoreV1Api(api)
        pod = core.create_namespaced_pod("default", _pod("admitted"))
        seconds = {t.key: t.toleration_seconds for t in pod.spec.tolerations}
        assert seconds == {"node.kubernetes.io/not-ready": 7, "node.kubernetes.io/unreachable": 7}
        assert pod.spec.service_account_name == "default"
        assert pod.status.qos_class == "BestEffort"
        client.StorageV1Api(api).create_storage_class({
            "metadata": {"name": "standard",
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"})
        claim = core.create_namespaced_persistent_volume_claim("default", {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        assert claim.spec.storage_class_name == "standard"
        assert claim.status.phase == "Pending"
    finally:
        api.close()
