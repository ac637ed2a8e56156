"""Defaults, create-time mutations, validation and quantities (docs/kubesim.md A5, A6, D2, C1)."""

from __future__ import annotations

import copy
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubesim.apiserver import admission
from kubesim.apiserver import fielderrors as fe
from kubesim.apiserver.admission import meta, mutations
from kubesim.apiserver.fielderrors import FieldError


def statefulset(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "writer", "image": "writer:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }
    base["spec"].update(spec)
    return base


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    base["spec"].update(spec)
    return base


def pvc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": "data-web-0", "namespace": "default"},
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    base["spec"].update(spec)
    return base


def create_errors(kind: str, obj: dict[str, Any]) -> list[FieldError]:
    return admission.validate_create(kind, admission.apply_defaults(kind, obj))


def errors_at(errs: list[FieldError]) -> list[tuple[str, str]]:
    return [(e.type, e.field) for e in errs]


# =============================================================================================
# Defaults
# =============================================================================================


def test_statefulset_defaults_match_apps_v1() -> None:
    spec = admission.apply_defaults("StatefulSet", statefulset())["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    template = spec["template"]["spec"]
    assert template["restartPolicy"] == "Always"
    assert template["terminationGracePeriodSeconds"] == 30
    assert template["dnsPolicy"] == "ClusterFirst"
    assert template["schedulerName"] == "default-scheduler"
    assert template["securityContext"] == {}
    assert "enableServiceLinks" not in template  # SetDefaults_Pod only, not templates
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")


def test_explicit_rolling_update_without_parameters_gets_no_partition_like_upstream() -> None:
    spec = admission.apply_defaults("StatefulSet", statefulset(updateStrategy={"type": "RollingUpdate"}))["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    on_delete = admission.apply_defaults("StatefulSet", statefulset(updateStrategy={"type": "OnDelete"}))["spec"]
    assert on_delete["updateStrategy"] == {"type": "OnDelete"}


def test_statefulset_explicit_values_are_kept() -> None:
    spec = admission.apply_defaults("StatefulSet", statefulset(
        replicas=0, podManagementPolicy="Parallel", revisionHistoryLimit=0,
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))["spec"]
    assert spec["replicas"] == 0
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["revisionHistoryLimit"] == 0
    assert spec["updateStrategy"]["rollingUpdate"] == {"partition": 2, "maxUnavailable": 1}


@pytest.mark.parametrize(
    ("image", "policy"),
    [("busybox", "Always"), ("busybox:latest", "Always"), ("busybox:1.36", "IfNotPresent"),
     ("localhost:5000/writer", "Always"), ("localhost:5000/writer:v2", "IfNotPresent"),
     ("writer@sha256:" + "a" * 64, "IfNotPresent"), ("writer:1@sha256:" + "a" * 64, "IfNotPresent")],
)
def test_image_pull_policy_defaults_by_tag(image: str, policy: str) -> None:
    out = admission.apply_defaults("Pod", pod(containers=[{"name": "c", "image": image}]))
    assert out["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_defaults_cover_containers_probes_ports_and_volumes() -> None:
    out = admission.apply_defaults("Pod", pod(
        containers=[{
            "name": "c", "image": "w:1",
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": 8080}},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        }],
        volumes=[{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "x"}}],
    ))
    spec = out["spec"]
    ctr = spec["containers"][0]
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "File"
    assert ctr["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert ctr["readinessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                     "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert ctr["livenessProbe"]["periodSeconds"] == 2
    assert ctr["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}  # limits fill missing requests
    assert ctr["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["volumes"][0] == {"name": "scratch", "emptyDir": {}}
    assert spec["volumes"][1]["configMap"]["defaultMode"] == 420
    assert spec["enableServiceLinks"] is True
    assert spec["restartPolicy"] == "Always"


def test_service_defaults() -> None:
    out = admission.apply_defaults("Service", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert out["spec"] == {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "sessionAffinity": "None",
                           "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}


@pytest.mark.parametrize(
    ("kind", "obj", "path", "expected"),
    [
        ("PersistentVolumeClaim", {"spec": {}}, ("spec", "volumeMode"), "Filesystem"),
        ("PersistentVolumeClaim", {"spec": {}}, ("status", "phase"), "Pending"),
        ("PersistentVolume", {"spec": {}}, ("spec", "persistentVolumeReclaimPolicy"), "Retain"),
        ("PersistentVolume", {"spec": {}}, ("spec", "volumeMode"), "Filesystem"),
        ("Namespace", {"metadata": {"name": "team"}}, ("metadata", "labels", "kubernetes.io/metadata.name"), "team"),
        ("Namespace", {"metadata": {"name": "team"}}, ("status", "phase"), "Active"),
        ("StorageClass", {"provisioner": "x"}, ("reclaimPolicy",), "Delete"),
        ("StorageClass", {"provisioner": "x"}, ("volumeBindingMode",), "Immediate"),
        ("Secret", {}, ("type",), "Opaque"),
        ("Node", {"status": {"capacity": {"cpu": "2"}}}, ("status", "allocatable"), {"cpu": "2"}),
    ],
)
def test_kind_defaults(kind: str, obj: dict[str, Any], path: tuple[str, ...], expected: object) -> None:
    value: Any = admission.apply_defaults(kind, obj)
    for key in path:
        value = value[key]
    assert value == expected


NAMES = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    containers = []
    for name in names:
        ctr: dict[str, Any] = {"name": name, "image": draw(st.sampled_from(["a", "a:1", "r:5000/a", "a:latest"]))}
        if draw(st.booleans()):
            ctr["ports"] = [{"containerPort": draw(st.integers(1, 65535))}]
        if draw(st.booleans()):
            ctr["readinessProbe"] = {"httpGet": {"port": 80}}
        if draw(st.booleans()):
            ctr["resources"] = {"limits": {"memory": draw(st.sampled_from(["1Gi", "128Mi"]))}}
        containers.append(ctr)
    spec: dict[str, Any] = {"containers": containers}
    if draw(st.booleans()):
        spec["restartPolicy"] = draw(st.sampled_from(["Always", "OnFailure", "Never"]))
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "v"}]
    return {"metadata": {"name": draw(NAMES), "namespace": "default"}, "spec": spec}


@settings(max_examples=100, deadline=None)
@given(pods())
def test_defaulting_is_idempotent_and_pure(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    once = admission.apply_defaults("Pod", obj)
    assert obj == before
    assert admission.apply_defaults("Pod", once) == once


@settings(max_examples=100, deadline=None)
@given(pods())
def test_generated_valid_pods_pass_the_full_create_pipeline(obj: dict[str, Any]) -> None:
    created = admission.apply_admission_mutations("Pod", admission.apply_create_status(
        "Pod", admission.apply_defaults("Pod", obj)))
    assert admission.validate_create("Pod", created) == []


@settings(max_examples=100, deadline=None)
@given(pods(), st.data())
def test_dropping_any_container_image_is_reported_at_its_index(obj: dict[str, Any], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(obj["spec"]["containers"]) - 1))
    del obj["spec"]["containers"][index]["image"]
    errs = create_errors("Pod", obj)
    assert errors_at(errs) == [("FieldValueRequired", f"spec.containers[{index}].image")]


# =============================================================================================
# Create status and admission plugins
# =============================================================================================


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "100m"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
        ({"limits": {"memory": "1Gi"}}, "Burstable"),
    ],
)
def test_created_pod_is_pending_with_its_qos_class(resources: dict[str, Any], qos: str) -> None:
    obj = admission.apply_defaults("Pod", pod(containers=[{"name": "c", "image": "a:1", "resources": resources}]))
    assert admission.apply_create_status("Pod", obj)["status"] == {"phase": "Pending", "qosClass": qos}


def test_created_pod_status_ignores_client_supplied_status() -> None:
    obj = pod()
    obj["status"] = {"phase": "Running", "podIP": "1.2.3.4"}
    assert admission.apply_create_status("Pod", obj)["status"]["phase"] == "Pending"


def test_created_namespace_gets_the_kubernetes_finalizer_once() -> None:
    ns = {"metadata": {"name": "t"}, "spec": {"finalizers": ["kubernetes"]}}
    out = admission.apply_create_status("Namespace", ns)
    assert out["spec"]["finalizers"] == ["kubernetes"]
    assert out["status"] == {"phase": "Active"}
    bare = admission.apply_create_status("Namespace", {"metadata": {"name": "t"}})
    assert bare["spec"]["finalizers"] == ["kubernetes"]


def test_pods_get_default_not_ready_and_unreachable_tolerations() -> None:
    out = admission.apply_admission_mutations("Pod", pod())
    tolerations = out["spec"]["tolerations"]
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in tolerations
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300} in tolerations
    assert out["spec"]["serviceAccountName"] == "default"
    assert out["spec"]["serviceAccount"] == "default"
    assert out["spec"]["priority"] == 0
    assert out["spec"]["preemptionPolicy"] == "PreemptLowerPriority"


def test_toleration_seconds_are_configurable_and_existing_tolerations_win() -> None:
    config = admission.AdmissionConfig(not_ready_toleration_seconds=5, unreachable_toleration_seconds=7)
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}
    out = admission.apply_admission_mutations("Pod", pod(tolerations=[own]), config)
    assert out["spec"]["tolerations"] == [own, {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                "effect": "NoExecute", "tolerationSeconds": 5}]
    tolerate_all = admission.apply_admission_mutations("Pod", pod(tolerations=[{"operator": "Exists"}]))
    assert tolerate_all["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_claims_without_a_class_get_the_default_storage_class() -> None:
    config = admission.AdmissionConfig(default_storage_class="standard")
    assert admission.apply_admission_mutations("PersistentVolumeClaim", pvc(), config)["spec"]["storageClassName"] \
        == "standard"
    explicit_none = admission.apply_admission_mutations("PersistentVolumeClaim", pvc(storageClassName=""), config)
    assert explicit_none["spec"]["storageClassName"] == ""
    no_default = admission.apply_admission_mutations("PersistentVolumeClaim", pvc())
    assert "storageClassName" not in no_default["spec"]


def test_generated_names_follow_the_simple_name_generator() -> None:
    name = admission.generate_name("x" * 70 + "-", random.Random(1))
    assert len(name) == 63
    assert name.startswith("x" * 58)
    assert set(name[58:]) <= set("bcdfghjklmnpqrstvwxz2456789")


# =============================================================================================
# Validation: pods
# =============================================================================================


def test_missing_container_image_is_required_at_its_path() -> None:
    errs = create_errors("Pod", pod(containers=[{"name": "c"}]))
    assert errors_at(errs) == [("FieldValueRequired", "spec.containers[0].image")]
    assert fe.invalid_message("Pod", "", "p", errs) == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    status = fe.invalid_status("Pod", "", "p", errs)
    assert status["code"] == 422
    assert status["details"] == {"name": "p", "group": "", "kind": "Pod", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}]}


def test_pod_without_containers_is_refused() -> None:
    assert errors_at(create_errors("Pod", pod(containers=[]))) == [("FieldValueRequired", "spec.containers")]


def test_duplicate_container_names_are_reported() -> None:
    errs = create_errors("Pod", pod(containers=[{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]))
    assert errors_at(errs) == [("FieldValueDuplicate", "spec.containers[1].name")]
    assert str(errs[0]) == 'spec.containers[1].name: Duplicate value: "c"'


def test_unsupported_restart_policy_lists_the_supported_values() -> None:
    errs = create_errors("Pod", pod(restartPolicy="Sometimes"))
    assert str(errs[0]) == ('spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                            '"Always", "OnFailure", "Never"')


def test_mount_of_an_undeclared_volume_is_not_found() -> None:
    errs = create_errors("Pod", pod(containers=[{"name": "c", "image": "a", "volumeMounts": [
        {"name": "data", "mountPath": "/data"}]}]))
    assert errors_at(errs) == [("FieldValueNotFound", "spec.containers[0].volumeMounts[0].name")]
    assert str(errs[0]) == 'spec.containers[0].volumeMounts[0].name: Not found: "data"'


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"name": "C_1", "image": "a"}, ("FieldValueInvalid", "spec.containers[0].name")),
        ({"name": "c", "image": "a", "ports": [{"containerPort": 70000}]},
         ("FieldValueInvalid", "spec.containers[0].ports[0].containerPort")),
        ({"name": "c", "image": "a", "ports": [{"containerPort": 80, "protocol": "HTTP"}]},
         ("FieldValueNotSupported", "spec.containers[0].ports[0].protocol")),
        ({"name": "c", "image": "a", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
         ("FieldValueInvalid", "spec.containers[0].resources.requests[cpu]")),
        ({"name": "c", "image": "a", "resources": {"requests": {"memory": "lots"}}},
         ("FieldValueInvalid", "spec.containers[0].resources.requests[memory]")),
        ({"name": "c", "image": "a", "readinessProbe": {"periodSeconds": 1}},
         ("FieldValueRequired", "spec.containers[0].readinessProbe")),
        ({"name": "c", "image": " a"}, ("FieldValueInvalid", "spec.containers[0].image")),
    ],
)
def test_container_errors_point_at_the_field(container: dict[str, Any], expected: tuple[str, str]) -> None:
    assert errors_at(create_errors("Pod", pod(containers=[container]))) == [expected]


def test_bad_pod_name_gets_the_dns_subdomain_message() -> None:
    obj = pod()
    obj["metadata"]["name"] = "Bad_Name"
    errs = create_errors("Pod", obj)
    assert errors_at(errs) == [("FieldValueInvalid", "metadata.name")]
    assert str(errs[0]).startswith('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must')


def test_metadata_name_namespace_and_scope_rules() -> None:
    nameless = pod()
    nameless["metadata"] = {"namespace": "default"}
    assert str(create_errors("Pod", nameless)[0]) == "metadata.name: Required value: name or generateName is required"
    generated = pod()
    generated["metadata"] = {"generateName": "web-", "namespace": "default"}
    assert errors_at(create_errors("Pod", generated)) == [("FieldValueRequired", "metadata.name")]
    no_ns = pod()
    del no_ns["metadata"]["namespace"]
    assert errors_at(create_errors("Pod", no_ns)) == [("FieldValueRequired", "metadata.namespace")]
    node = {"metadata": {"name": "n1", "namespace": "default"}}
    errs = create_errors("Node", node)
    assert errors_at(errs) == [("FieldValueForbidden", "metadata.namespace")]
    assert str(errs[0]) == "metadata.namespace: Forbidden: not allowed on this type"


def test_namespace_statefulset_and_service_names_use_their_own_rules() -> None:
    dotted = create_errors("Namespace", {"metadata": {"name": "a.b"}})
    assert errors_at(dotted) == [("FieldValueInvalid", "metadata.name")]
    sts = statefulset()
    sts["metadata"]["name"] = "web.v2"  # a subdomain but not a DNS label
    assert errors_at(create_errors("StatefulSet", sts)) == [("FieldValueInvalid", "metadata.name")]
    svc = {"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}
    errs = create_errors("Service", svc)
    assert errors_at(errs) == [("FieldValueInvalid", "metadata.name")]
    assert "DNS-1035 label" in str(errs[0])


def test_invalid_labels_and_two_controller_owners_are_refused() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"app": "bad value"}
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "b", "uid": "2", "controller": True},
    ]
    errs = create_errors("Pod", obj)
    assert errors_at(errs) == [("FieldValueInvalid", "metadata.labels"),
                               ("FieldValueInvalid", "metadata.ownerReferences")]
    assert "Only one reference can have Controller set to true" in errs[1].detail


# =============================================================================================
# Validation: StatefulSets
# =============================================================================================


def test_valid_statefulset_passes() -> None:
    assert create_errors("StatefulSet", statefulset()) == []


def test_service_name_is_not_required_by_apps_v1_validation() -> None:
    obj = statefulset()
    del obj["spec"]["serviceName"]
    assert create_errors("StatefulSet", obj) == []


@pytest.mark.parametrize(
    ("change", "expected", "message"),
    [
        ({"selector": None}, ("FieldValueRequired", "spec.selector"), "spec.selector: Required value"),
        ({"selector": {}}, ("FieldValueInvalid", "spec.selector"), "empty selector is invalid for statefulset"),
        ({"selector": {"matchLabels": {"app": "db"}}}, ("FieldValueInvalid", "spec.template.metadata.labels"),
         "`selector` does not match template `labels`"),
        ({"replicas": -1}, ("FieldValueInvalid", "spec.replicas"),
         "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        ({"podManagementPolicy": "Random"}, ("FieldValueInvalid", "spec.podManagementPolicy"),
         "must be 'OrderedReady' or 'Parallel'"),
        ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
         ("FieldValueInvalid", "spec.updateStrategy.rollingUpdate"), "only allowed for updateStrategy 'RollingUpdate'"),
        ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -2}}},
         ("FieldValueInvalid", "spec.updateStrategy.rollingUpdate.partition"), "must be greater than or equal to 0"),
        ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}},
         ("FieldValueInvalid", "spec.updateStrategy.rollingUpdate.maxUnavailable"), "cannot be 0"),
        ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep", "whenScaled": "Retain"}},
         ("FieldValueNotSupported", "spec.persistentVolumeClaimRetentionPolicy.whenDeleted"), 'supported values'),
        ({"ordinals": {"start": -1}}, ("FieldValueInvalid", "spec.ordinals.start"), "greater than or equal to 0"),
    ],
)
def test_statefulset_spec_errors(change: dict[str, Any], expected: tuple[str, str], message: str) -> None:
    obj = statefulset(**change)
    errs = create_errors("StatefulSet", obj)
    assert expected in errors_at(errs)
    assert any(message in str(e) for e in errs)


def test_statefulset_template_must_restart_always_and_has_no_deadline() -> None:
    obj = statefulset()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 10
    errs = create_errors("StatefulSet", obj)
    assert errors_at(errs) == [("FieldValueNotSupported", "spec.template.spec.restartPolicy"),
                               ("FieldValueForbidden", "spec.template.spec.activeDeadlineSeconds")]
    assert str(errs[0]) == 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'


def test_statefulset_template_pod_spec_is_not_deeply_validated_like_upstream() -> None:
    obj = statefulset()
    obj["spec"]["template"]["spec"]["containers"] = [{"name": "writer"}]  # no image
    assert create_errors("StatefulSet", obj) == []


def defaulted_sts(**spec: Any) -> dict[str, Any]:
    obj = admission.apply_defaults("StatefulSet", statefulset(**spec))
    obj["metadata"].update({"uid": "u1", "resourceVersion": "5", "creationTimestamp": "2026-01-01T00:00:00Z"})
    return obj


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(replicas=5),
        lambda s: s.update(minReadySeconds=3),
        lambda s: s.update(ordinals={"start": 2}),
        lambda s: s.update(revisionHistoryLimit=2),
        lambda s: s.update(updateStrategy={"type": "OnDelete"}),
        lambda s: s.update(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"}),
        lambda s: s["template"]["spec"]["containers"][0].update(image="writer:2"),
    ],
)
def test_statefulset_mutable_fields_may_change(mutate: Any) -> None:
    old = defaulted_sts()
    new = copy.deepcopy(old)
    mutate(new["spec"])
    assert admission.validate_update("StatefulSet", old, admission.apply_defaults("StatefulSet", new)) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(serviceName="other"),
        lambda s: s.update(podManagementPolicy="Parallel"),
        lambda s: s["volumeClaimTemplates"][0]["spec"]["resources"]["requests"].update(storage="2Gi"),
        lambda s: s["selector"]["matchLabels"].update(tier="x"),
    ],
)
def test_statefulset_immutable_fields_are_forbidden_with_upstream_message(mutate: Any) -> None:
    old = defaulted_sts()
    new = copy.deepcopy(old)
    mutate(new["spec"])
    if "tier" in new["spec"]["selector"]["matchLabels"]:
        new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    errs = admission.validate_update("StatefulSet", old, new)
    assert errors_at(errs) == [("FieldValueForbidden", "spec")]
    assert fe.invalid_message("StatefulSet", "apps", "web", errs) == (
        'StatefulSet.apps "web" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
        "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def test_metadata_identity_is_immutable_on_update() -> None:
    old = defaulted_sts()
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "other"
    new["metadata"]["uid"] = "u2"
    errs = admission.validate_update("StatefulSet", old, new)
    assert errors_at(errs) == [("FieldValueInvalid", "metadata.name"), ("FieldValueInvalid", "metadata.uid")]
    assert str(errs[0]) == 'metadata.name: Invalid value: "other": field is immutable'


def test_no_finalizer_may_be_added_while_deleting() -> None:
    old = defaulted_sts()
    old["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:01Z"
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["example.com/hold"]
    errs = admission.validate_update("StatefulSet", old, new)
    assert errors_at(errs) == [("FieldValueForbidden", "metadata.finalizers")]
    removed = copy.deepcopy(old)
    assert admission.validate_update("StatefulSet", new, removed) == []


# =============================================================================================
# Validation: pod updates
# =============================================================================================


def created_pod(**spec: Any) -> dict[str, Any]:
    obj = admission.apply_admission_mutations("Pod", admission.apply_defaults("Pod", pod(**spec)))
    obj["metadata"]["uid"] = "u"
    return obj


def test_pod_image_change_and_added_toleration_are_allowed() -> None:
    old = created_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.37"
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists", "effect": "NoSchedule"})
    assert admission.validate_update("Pod", old, new) == []


def test_pod_other_spec_changes_are_forbidden() -> None:
    old = created_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["command"] = ["sleep"]
    new["spec"]["tolerations"] = []
    errs = admission.validate_update("Pod", old, new)
    assert errors_at(errs) == [("FieldValueForbidden", "spec")]
    assert errs[0].detail.startswith("pod updates may not change fields other than `spec.containers[*].image`,")
    assert "spec.containers" in errs[0].detail
    assert "spec.tolerations" in errs[0].detail


def test_active_deadline_may_only_shrink() -> None:
    old = created_pod(activeDeadlineSeconds=100)
    longer = copy.deepcopy(old)
    longer["spec"]["activeDeadlineSeconds"] = 200
    assert errors_at(admission.validate_update("Pod", old, longer)) == [
        ("FieldValueInvalid", "spec.activeDeadlineSeconds")]
    shorter = copy.deepcopy(old)
    shorter["spec"]["activeDeadlineSeconds"] = 50
    assert admission.validate_update("Pod", old, shorter) == []


# =============================================================================================
# Validation: claims, volumes and the rest
# =============================================================================================


@pytest.mark.parametrize(
    ("spec", "expected", "text"),
    [
        ({"accessModes": []}, ("FieldValueRequired", "spec.accessModes"),
         "spec.accessModes: Required value: at least 1 access mode is required"),
        ({"accessModes": ["ReadWriteSometimes"]}, ("FieldValueNotSupported", "spec.accessModes"), "supported values"),
        ({"resources": {}}, ("FieldValueRequired", "spec.resources[storage]"),
         "spec.resources[storage]: Required value"),
        ({"resources": {"requests": {"storage": "0"}}}, ("FieldValueInvalid", "spec.resources[storage]"),
         'spec.resources[storage]: Invalid value: "0": must be greater than zero'),
        ({"resources": {"requests": {"storage": "1 GB"}}}, ("FieldValueInvalid", "spec.resources[storage]"),
         "quantities must match the regular expression"),
        ({"storageClassName": "Fast_Disk"}, ("FieldValueInvalid", "spec.storageClassName"), "RFC 1123 subdomain"),
    ],
)
def test_claim_spec_errors(spec: dict[str, Any], expected: tuple[str, str], text: str) -> None:
    errs = create_errors("PersistentVolumeClaim", pvc(**spec))
    assert errors_at(errs) == [expected]
    assert text in str(errs[0])


def bound_claim(**status: Any) -> dict[str, Any]:
    obj = admission.apply_defaults("PersistentVolumeClaim", pvc())
    obj["metadata"]["uid"] = "c1"
    obj["status"] = {"phase": "Pending", **status}
    return obj


def test_binder_may_set_volume_name_once() -> None:
    old = bound_claim()
    new = copy.deepcopy(old)
    new["spec"]["volumeName"] = "pvc-c1"
    assert admission.validate_update("PersistentVolumeClaim", old, new) == []
    again = copy.deepcopy(new)
    again["spec"]["volumeName"] = "pvc-other"
    errs = admission.validate_update("PersistentVolumeClaim", new, again)
    assert errors_at(errs) == [("FieldValueForbidden", "spec")]
    assert errs[0].detail.startswith("spec is immutable after creation except resources.requests")


def test_only_bound_claims_may_grow_and_never_below_capacity() -> None:
    pending = bound_claim()
    grown = copy.deepcopy(pending)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert errors_at(admission.validate_update("PersistentVolumeClaim", pending, grown)) == [("FieldValueForbidden",
                                                                                             "spec")]
    bound = bound_claim(phase="Bound", capacity={"storage": "1Gi"})
    grown_bound = copy.deepcopy(bound)
    grown_bound["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert admission.validate_update("PersistentVolumeClaim", bound, grown_bound) == []
    shrunk = copy.deepcopy(bound)
    shrunk["spec"]["resources"]["requests"]["storage"] = "512Mi"
    assert errors_at(admission.validate_update("PersistentVolumeClaim", bound, shrunk)) == [
        ("FieldValueForbidden", "spec.resources.requests.storage")]
    # recovering from a failed expansion: back down, but still above the recorded capacity
    recovered = copy.deepcopy(grown_bound)
    recovered["spec"]["resources"]["requests"]["storage"] = "1536Mi"
    assert admission.validate_update("PersistentVolumeClaim", grown_bound, recovered) == []
    to_capacity = copy.deepcopy(grown_bound)
    to_capacity["spec"]["resources"]["requests"]["storage"] = "1Gi"
    assert errors_at(admission.validate_update("PersistentVolumeClaim", grown_bound, to_capacity)) == [
        ("FieldValueForbidden", "spec.resources.requests.storage")]


def local_pv(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"metadata": {"name": "pvc-1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/var/kubesim/n1/pvc-1"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}},
        "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard"}}
    base["spec"].update(spec)
    return base


def test_local_pv_is_valid_and_needs_node_affinity() -> None:
    assert create_errors("PersistentVolume", local_pv()) == []
    errs = create_errors("PersistentVolume", local_pv(nodeAffinity=None))
    assert str(errs[0]) == "spec.nodeAffinity: Required value: Local volume requires node affinity"


def test_pv_source_and_node_affinity_are_immutable_but_claim_ref_is_not() -> None:
    old = admission.apply_defaults("PersistentVolume", local_pv())
    claimed = copy.deepcopy(old)
    claimed["spec"]["claimRef"] = {"namespace": "default", "name": "data-web-0", "uid": "c1"}
    assert admission.validate_update("PersistentVolume", old, claimed) == []
    moved = copy.deepcopy(old)
    moved["spec"]["local"]["path"] = "/elsewhere"
    moved["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = ["n2"]
    assert errors_at(admission.validate_update("PersistentVolume", old, moved)) == [
        ("FieldValueForbidden", "spec.persistentvolumesource"), ("FieldValueInvalid", "spec.nodeAffinity")]


def test_storage_class_reclaim_policy_is_immutable() -> None:
    old = admission.apply_defaults("StorageClass", {"metadata": {"name": "standard"},
                                                    "provisioner": "rancher.io/local-path",
                                                    "volumeBindingMode": "WaitForFirstConsumer"})
    assert admission.validate_create("StorageClass", old) == []
    new = copy.deepcopy(old)
    new["reclaimPolicy"] = "Retain"
    assert str(admission.validate_update("StorageClass", old, new)[0]) == \
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."


def test_node_cordon_is_allowed_but_other_spec_changes_are_not() -> None:
    old = {"metadata": {"name": "n1", "uid": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    cordoned = copy.deepcopy(old)
    cordoned["spec"]["unschedulable"] = True
    cordoned["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    assert admission.validate_update("Node", old, cordoned) == []
    moved = copy.deepcopy(old)
    moved["spec"]["podCIDR"] = "10.0.1.0/24"
    assert errors_at(admission.validate_update("Node", old, moved)) == [("FieldValueForbidden", "")]


def test_event_namespace_must_match_its_involved_object() -> None:
    event = {"metadata": {"name": "w-0.1", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": "w-0", "namespace": "other"}}
    assert errors_at(admission.validate_create("Event", event)) == [("FieldValueInvalid", "involvedObject.namespace")]
    node_event = {"metadata": {"name": "n1.1", "namespace": "default"},
                  "involvedObject": {"kind": "Node", "name": "n1"}}
    assert admission.validate_create("Event", node_event) == []


def test_pdb_min_and_max_are_exclusive() -> None:
    pdb = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"minAvailable": 1, "maxUnavailable": "10%", "selector": {"matchLabels": {"app": "web"}}}}
    assert errors_at(admission.validate_create("PodDisruptionBudget", pdb)) == [("FieldValueInvalid", "spec")]


def test_immutable_config_map_data_cannot_change() -> None:
    old = {"metadata": {"name": "cfg", "namespace": "default", "uid": "x"}, "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert errors_at(admission.validate_update("ConfigMap", old, new)) == [("FieldValueForbidden", "data")]
    bad_key = {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"a/b": "1"}}
    assert errors_at(admission.validate_create("ConfigMap", bad_key)) == [("FieldValueInvalid", "data[a/b]")]


def test_scale_replicas_must_not_be_negative() -> None:
    assert errors_at(admission.validate_create("Scale", {"spec": {"replicas": -1}})) == [
        ("FieldValueInvalid", "spec.replicas")]


# =============================================================================================
# Field errors and quantities
# =============================================================================================


def test_field_error_bodies_render_like_apimachinery() -> None:
    assert fe.required("spec.x").body() == "Required value"
    assert fe.forbidden("spec", "no").body() == "Forbidden: no"
    assert fe.invalid("spec.n", 3, "too big").body() == "Invalid value: 3: too big"
    assert fe.invalid("spec.b", True, "nope").body() == "Invalid value: true: nope"
    assert fe.invalid("spec.s", None, "gone").body() == "Invalid value: null: gone"
    assert fe.invalid("spec.l", {"b": "2", "a": "1"}, "m").body() == \
        'Invalid value: map[string]string{"a":"1", "b":"2"}: m'
    assert fe.not_supported("spec.p", "X", ["A", "B"]).body() == 'Unsupported value: "X": supported values: "A", "B"'
    assert fe.aggregate([fe.required("a"), fe.required("b")]) == "[a: Required value, b: Required value]"
    assert fe.invalid_message("StatefulSet", "apps", "w", []) == 'StatefulSet.apps "w" is invalid'


@pytest.mark.parametrize(
    ("text", "value"),
    [("1Gi", Decimal(2**30)), ("500Mi", Decimal(500 * 2**20)), ("10G", Decimal(10**10)),
     ("1.5Gi", Decimal(3 * 2**29)), ("100m", Decimal("0.1")), ("1e3", Decimal(1000)), ("2", Decimal(2)),
     (3, Decimal(3)), ("0.5", Decimal("0.5")), ("5n", Decimal("5e-9")), ("+1k", Decimal(1000)), ("-1", Decimal(-1))],
)
def test_quantities_parse_to_exact_values(text: object, value: Decimal) -> None:
    assert admission.parse_quantity(text) == value


@pytest.mark.parametrize("junk", ["", "abc", "1Qi", "1..2", " 1Gi", "1 Gi", "Gi", True, None, "1ee3"])
def test_junk_quantities_raise_value_error(junk: object) -> None:
    with pytest.raises(ValueError, match="quantit"):
        admission.parse_quantity(junk)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["", "k", "M", "G", "Ki", "Mi", "Gi", "Ti"]))
def test_quantity_suffixes_scale_integers_exactly(number: int, suffix: str) -> None:
    scale = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[suffix]
    assert admission.parse_quantity(f"{number}{suffix}") == number * scale
    assert admission.quantity_bytes(f"{number}{suffix}") == number * scale


def test_quantity_bytes_round_up_fractions() -> None:
    assert admission.quantity_bytes("100m") == 1
    assert admission.quantity_bytes("1.5Ki") == 1536


def test_validation_module_exposes_name_rules_for_other_layers() -> None:
    assert meta.name_validator("Service") is meta.name_is_dns1035_label
    assert meta.name_is_dns_subdomain("web-", True) == []
    assert meta.name_is_dns_subdomain("web-", False) != []
    assert mutations.pod_qos_class({"spec": {}}) == "BestEffort"
