"""The one definition of the objects: valid Kubernetes objects for every spec, wired as the writer needs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.deploy import manifests, render, spec
from harness.kube import models

SPECS = {
    "defaults": {},
    "shared-parallel-delete": {
        "storage_class": "shared",
        "pod_management": "Parallel",
        "when_deleted": "Delete",
        "when_scaled": "Delete",
        "pdb_min_available": "50%",
    },
    "ondelete-no-pdb-no-limits": {
        "update_strategy": "OnDelete",
        "pdb": "false",
        "cpu_request": "none",
        "memory_request": "none",
        "memory_limit": "none",
        "replicas": "0",
    },
    "partitioned-custom-names": {
        "name": "llm-trainer",
        "namespace": "chaos-b",
        "claim_template": "ckpt",
        "partition": "2",
        "replicas": "4",
        "volume_size": "500Mi",
        "access_mode": "RWOP",
        "listen_port": "9000",
        "keep_last": "0",
    },
}


def build(name: str) -> manifests.Manifests:
    return manifests.build(spec.parse(SPECS[name]))


def body(obj: manifests.KubeObject | None) -> dict[str, Any]:
    assert obj is not None
    return obj.body  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_object_of_every_spec_is_a_valid_kubernetes_object(name: str) -> None:
    for obj in build(name):
        models.validate(obj.body)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_statefulset_names_a_headless_service_that_is_built_with_it(name: str) -> None:
    built = build(name)
    sts, svc = body(built.statefulset), body(built.service)
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["metadata"]["namespace"] == sts["metadata"]["namespace"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    # The set's selector must select its own pod template.
    template_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= template_labels.items()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_claim_template_is_a_claim_spec_mounted_at_data(name: str) -> None:
    built = build(name)
    parsed = built.spec
    pod_spec = body(built.statefulset)["spec"]["template"]["spec"]
    (template,) = body(built.statefulset)["spec"]["volumeClaimTemplates"]
    assert set(template) == {"metadata", "spec"}  # a template, not a PersistentVolumeClaim object
    assert template["metadata"]["name"] == parsed.claim_template
    assert template["spec"]["accessModes"] == [parsed.access_mode]
    assert template["spec"]["resources"]["requests"]["storage"] == parsed.volume_size
    assert template["spec"].get("storageClassName") == parsed.storage_class
    (container,) = pod_spec["containers"]
    assert container["volumeMounts"] == [{"name": parsed.claim_template, "mountPath": "/data"}]
    assert "volumes" not in pod_spec  # the controller adds the claim volume per pod


def test_writer_container_matches_the_writer_contract() -> None:
    built = build("partitioned-custom-names")
    (container,) = body(built.statefulset)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["harness", "writer", "serve", "--data-dir", "/data"]
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert env["STATEFULSET_NAME"]["value"] == "llm-trainer"
    assert env["CLAIM_TEMPLATE"]["value"] == "ckpt"
    assert env["KEEP_LAST"]["value"] == "0"
    assert env["MAX_CHECKPOINT_BYTES"]["value"] == str(64 * 2**20)
    assert env["LISTEN_PORT"]["value"] == "9000"


def test_writer_reads_the_identity_the_manifest_gives_it() -> None:
    """The env the pod would get, resolved as the kubelet would, yields the identity the writer expects."""
    from harness.workload import config as writer_config

    built = build("partitioned-custom-names")
    (container,) = body(built.statefulset)["spec"]["template"]["spec"]["containers"]
    pod_fields = {
        "metadata.name": "llm-trainer-3",
        "metadata.namespace": "chaos-b",
        "metadata.labels['apps.kubernetes.io/pod-index']": "3",
        "status.podIP": "10.244.2.9",
    }
    env = {
        item["name"]: item["value"] if "value" in item else pod_fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        for item in container["env"]
    }
    identity = writer_config.pod_identity_from_env(env)
    assert identity.statefulset == "llm-trainer"
    assert identity.ordinal == 3
    assert identity.namespace == "chaos-b"
    assert identity.claim == manifests.claim_name(built.spec, 3) == "ckpt-llm-trainer-3"
    assert writer_config.writer_config(env, Path("/data")).host == "10.244.2.9"  # its pod IP, not the wildcard


def test_liveness_is_slower_to_kill_than_readiness_is_to_notice() -> None:
    (container,) = body(build("defaults").statefulset)["spec"]["template"]["spec"]["containers"]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= 5
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_pod_runs_as_the_image_non_root_user() -> None:
    pod_spec = body(build("defaults").statefulset)["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] == manifests.RUN_AS_ID != 0
    assert pod_spec["terminationGracePeriodSeconds"] == 30


def test_spec_choices_land_in_the_statefulset() -> None:
    sts = body(build("shared-parallel-delete").statefulset)["spec"]
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Delete"}
    assert sts["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    partitioned = body(build("partitioned-custom-names").statefulset)["spec"]
    assert partitioned["updateStrategy"]["rollingUpdate"]["partition"] == 2
    assert partitioned["replicas"] == 4
    on_delete = body(build("ondelete-no-pdb-no-limits").statefulset)["spec"]
    assert on_delete["updateStrategy"] == {"type": "OnDelete"}
    assert "resources" not in on_delete["template"]["spec"]["containers"][0]


def test_pdb_follows_the_spec() -> None:
    assert build("ondelete-no-pdb-no-limits").pdb is None
    pdb = body(build("shared-parallel-delete").pdb)
    assert pdb["spec"]["minAvailable"] == "50%"
    assert "maxUnavailable" not in pdb["spec"]
    assert body(build("defaults").pdb)["spec"]["maxUnavailable"] == 1


def test_namespace_carries_the_test_label() -> None:
    ns = body(build("defaults").namespace)
    assert ns["metadata"]["labels"][manifests.TEST_NAMESPACE_LABEL] == manifests.TEST_NAMESPACE_LABEL_VALUE


def test_objects_come_in_creation_order() -> None:
    kinds = [obj.kind for obj in build("defaults")]
    assert kinds == ["Namespace", "Service", "StatefulSet", "PodDisruptionBudget"]


def test_builds_are_independent_copies() -> None:
    first, second = build("defaults"), build("defaults")
    body(first.statefulset)["spec"]["replicas"] = 99
    assert body(second.statefulset)["spec"]["replicas"] == 3


def mutate(path: list[str | int], value: object, *, rename: str | None = None) -> dict[str, Any]:
    obj = copy.deepcopy(body(build("defaults").statefulset))
    node: Any = obj
    for part in path[:-1]:
        node = node[part]
    if rename is not None:
        node[rename] = node.pop(path[-1])
    else:
        node[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        # The seed sample's bug: snake_case is accepted by the models but means nothing to the API.
        (mutate(["spec", "serviceName"], None, rename="service_name"), "spec.service_name is not a Kubernetes field"),
        (mutate(["spec", "bogus"], 1), "spec.bogus: Extra inputs are not permitted"),
        (mutate(["spec", "replicas"], "3"), "spec.replicas: Input should be a valid integer"),
        (mutate(["spec", "replicas"], 3.0), "spec.replicas: Input should be a valid integer"),
        (
            mutate(["spec", "template", "spec", "containers", 0, "ports"], 8080),
            "spec.template.spec.containers[0].ports: Input should be a valid list",
        ),
        (mutate(["kind"], "Deployment"), "no model for apps/v1 Deployment"),
    ],
)
def test_offline_validation_catches_what_the_models_would_let_slip(broken: dict[str, Any], expected: str) -> None:
    with pytest.raises(models.ManifestInvalid) as caught:
        models.validate(broken)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("StatefulSet ckpt-chaos/ckpt") or "Deployment" in str(caught.value)


def test_render_writes_one_yaml_per_object_and_never_overwrites(tmp_path: Any) -> None:
    built = build("defaults")
    paths = render.render(built, tmp_path / "out")
    assert [p.name for p in paths] == [
        "00-namespace-ckpt-chaos.yaml",
        "01-service-ckpt.yaml",
        "02-stateful-set-ckpt.yaml",
        "03-pod-disruption-budget-ckpt.yaml",
    ]
    assert [yaml.safe_load(p.read_text()) for p in paths] == [obj.body for obj in built]
    before = paths[1].read_text()
    with pytest.raises(render.RenderError, match=r"already holds 01-service-ckpt\.yaml"):
        render.render(manifests.build(spec.parse({"namespace": "other"})), tmp_path / "out")
    assert paths[1].read_text() == before
    assert not (tmp_path / "out" / "00-namespace-other.yaml").exists()  # refused before writing anything
