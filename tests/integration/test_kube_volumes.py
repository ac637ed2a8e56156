"""Reading volumes back through verifier pods: the pod, the log parsing, and a real round trip."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest
from kubernetes import client as k8s

from harness.clusters import embedded
from harness.deploy import direct, manifests
from harness.deploy import spec as deploy_spec
from harness.kube import client as kube_client
from harness.kube import endpoints as kube_endpoints
from harness.kube import volumes


def test_verifier_pod_mounts_the_claim_read_only_and_runs_the_verifier() -> None:
    body = volumes.verifier_pod("ns", "data-ckpt-2", 2, image="ckpt-writer:0.1.0", run_as=10001, run_id="r1")
    pod = k8s.V1Pod.model_validate(body)  # strict model: an unknown or misspelt field fails here
    assert k8s.ApiClient().sanitize_for_serialization(pod) == body
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "data-ckpt-2"
    assert pod.spec.volumes[0].persistent_volume_claim.read_only is True
    assert pod.spec.containers[0].volume_mounts[0].read_only is True
    assert pod.spec.containers[0].command == ["harness", "verify", "/data", "--json", "--ordinal", "2"]
    assert pod.spec.node_name is None
    assert pod.spec.affinity is None
    assert pod.metadata.labels[volumes.RUN_LABEL] == "r1"


def test_verifier_pod_name_stays_a_dns_label() -> None:
    name = volumes.verifier_pod_name("d" * 80)
    assert len(name) <= 63
    assert not name.endswith("-")


def test_log_with_warnings_before_the_json_parses() -> None:
    report = {"ordinal": 1, "checkpoints": [{"ordinal": 1, "step": 4, "name": "step-00000004", "valid": False,
                                             "problem": "shard-0 size 10 != 20"}],
              "stamp": None, "temp_dirs": 1, "temp_bytes": 10, "latest_valid_step": None}
    log = "warning: /data: not a checkpoint or temp dir; ignored\n" + json.dumps(report) + "\n"
    found = volumes.parse_verifier_log(log, "data-ckpt-1")
    assert found.ordinal == 1
    assert found.checkpoints[0].problem == "shard-0 size 10 != 20"
    assert found.temp_dirs == 1


def test_log_without_facts_is_one_line_with_its_end() -> None:
    with pytest.raises(volumes.VolumeReadError, match=r"^verifier of claim data-ckpt-0 printed no VolumeFacts JSON; "
                                                       r"log ends: error: /data is not a directory"):
        volumes.parse_verifier_log("error: /data is not a directory\n", "data-ckpt-0")
    with pytest.raises(volumes.VolumeReadError, match="malformed VolumeFacts"):
        volumes.parse_verifier_log('{"ordinal": "one"}', "data-ckpt-0")


def test_exit_code_is_read_from_the_verify_container() -> None:
    terminated = k8s.V1ContainerStatus(name="verify", image="i", image_id="", ready=False, restart_count=0,
                                       state=k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(
                                           exit_code=1)))
    assert volumes.exit_code(k8s.V1Pod(status=k8s.V1PodStatus(container_statuses=[terminated]))) == 1
    assert volumes.exit_code(k8s.V1Pod(status=k8s.V1PodStatus())) is None


def post_checkpoint(url: str, step: int) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/checkpoints", json.dumps({"bytes": 4096, "shards": 2, "step": step}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200, body
    return dict(body)


@pytest.mark.slow
@pytest.mark.kubesim
@pytest.mark.timeout(120)
def test_acknowledged_checkpoints_are_read_back_through_verifier_pods(one_node: embedded.EmbeddedCluster) -> None:
    spec = deploy_spec.parse({"namespace": "volumes-read", "replicas": "1", "storage_class": "standard",
                              "keep_last": "0", "pdb": "false"})
    target = direct.Target(one_node.kubeconfig, None)
    api = kube_client.new_api_client(one_node.kubeconfig)
    try:
        direct.deploy(spec, target, wait_timeout=60, progress=lambda _line: None)
        pod = k8s.CoreV1Api(api).read_namespaced_pod("ckpt-0", "volumes-read")
        # the way the harness reaches pods where the host cannot (kubesim's private network, kind)
        forward = kube_endpoints.PortForward(
            kube_endpoints.PodTarget(ordinal=0, name="ckpt-0", uid=str(pod.metadata.uid), ip=pod.status.pod_ip,
                                     running=True),
            "volumes-read", spec.writer.listen_port, ["--kubeconfig", str(one_node.kubeconfig)])
        try:
            acked = [post_checkpoint(forward.url, step)["digest"] for step in (1, 2)]
        finally:
            forward.stop()
        selector = ",".join(f"{k}={v}" for k, v in manifests.selector_labels(spec).items())
        lines: list[str] = []
        found = volumes.read_volumes(api, "volumes-read", "ckpt", {0: "data-ckpt-0"}, image=spec.image,
                                     run_as=manifests.RUN_AS_ID, pod_selector=selector, timeout=60,
                                     restore_replicas=1, progress=lines.append)
        assert len(found) == 1
        assert [(c.step, c.valid, c.digest) for c in found[0].checkpoints] == [(1, True, acked[0]), (2, True, acked[1])]
        assert found[0].stamp is not None
        assert found[0].stamp.claim == "data-ckpt-0"
        assert any("verifiers finished" in line for line in lines), lines
        left = k8s.CoreV1Api(api).list_namespaced_pod("volumes-read", label_selector=volumes.RUN_LABEL).items
        assert left == [], "verifier pods must be deleted"
        assert k8s.AppsV1Api(api).read_namespaced_stateful_set("ckpt", "volumes-read").spec.replicas == 1
    finally:
        kube_client.close(api)
        direct.undeploy(spec, target, delete_claims=True, delete_namespace=True, wait_timeout=None,
                        progress=lambda _line: None)


@pytest.mark.slow
@pytest.mark.kubesim
@pytest.mark.timeout(120)
def test_unknown_image_fails_the_read_with_the_pull_error(one_node: embedded.EmbeddedCluster) -> None:
    api = kube_client.new_api_client(one_node.kubeconfig)
    core = k8s.CoreV1Api(api)
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="volumes-bad-image")))
        k8s.AppsV1Api(api).create_namespaced_stateful_set("volumes-bad-image", {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ckpt"},
            "spec": {"serviceName": "ckpt", "replicas": 0, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "ckpt-writer:1"}]}}}})
        core.create_namespaced_persistent_volume_claim("volumes-bad-image", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-ckpt-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "storageClassName": "standard"}})
        with pytest.raises(volumes.VolumeReadError, match=r"timed out after 5s waiting for the verifier pods.*"
                                                          r"verify-data-ckpt-0: (ErrImagePull|ImagePullBackOff)"):
            volumes.read_volumes(api, "volumes-bad-image", "ckpt", {0: "data-ckpt-0"}, image="no-such-image:1",
                                 run_as=10001, pod_selector="app=x", timeout=5)
        assert core.list_namespaced_pod("volumes-bad-image", label_selector=volumes.RUN_LABEL).items == []
    finally:
        core.delete_namespace("volumes-bad-image")
        kube_client.close(api)
