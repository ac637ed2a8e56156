"""The port-forward endpoints publisher follows a pod that is replaced: new forward, same volume.

On the embedded cluster's private network the host cannot reach pod IPs (as on kind), so the
publisher reaches each ordinal through ``kubectl port-forward``. A forward dies with its pod; the
replacement (a new UID on the same claim) must get a new forward on a new local port, and the
endpoints file must point there.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest
from kubernetes import client as k8s

from harness import waiting
from harness.clusters import base, embedded
from harness.deploy import direct
from harness.deploy import spec as deploy_spec
from harness.kube import client as kube_client
from harness.kube import endpoints as kube_endpoints
from harness.load import endpoints as endpoints_file

pytestmark = [pytest.mark.slow, pytest.mark.kubesim, pytest.mark.timeout(120)]

NAMESPACE = "endpoints-follow"


def get_identity(url: str) -> tuple[int, dict[str, object]]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", "/identity")
        resp = conn.getresponse()
        return resp.status, dict(json.loads(resp.read() or b"{}"))
    finally:
        conn.close()


def published(path: Path) -> dict[int, str]:
    try:
        return dict(endpoints_file.read(path).urls)
    except endpoints_file.EndpointsError:
        return {}


def test_port_forward_publisher_follows_a_replaced_pod_to_the_same_volume(
    one_node: embedded.EmbeddedCluster, tmp_path: Path
) -> None:
    assert one_node.reach == "port-forward", "the private network must not let the host reach pod IPs"
    spec = deploy_spec.parse({"namespace": NAMESPACE, "replicas": "1", "storage_class": "standard", "pdb": "false"})
    target = direct.Target(one_node.kubeconfig, one_node.context)
    api = kube_client.new_api_client(one_node.kubeconfig, one_node.context)
    core = k8s.CoreV1Api(api)
    path = tmp_path / "endpoints.json"
    publisher = kube_endpoints.EndpointsPublisher(api, NAMESPACE, spec.name, path, mode="port-forward",
                                                  kubectl_args=base.kubectl_args(one_node))
    try:
        direct.deploy(spec, target, wait_timeout=60, progress=lambda _line: None)
        publisher.start()
        waiting.until("the endpoints file to list ordinal 0",
                      lambda: (0 in (u := published(path)), f"{u}"), timeout=30)
        first_url = published(path)[0]
        assert first_url.startswith("http://127.0.0.1:"), first_url
        status, before = get_identity(first_url)
        assert status == 200, before
        assert before["match"] is True, before
        stamp = before["stamp"]
        assert isinstance(stamp, dict), before
        assert stamp["volume_id"], before
        old_uid = core.read_namespaced_pod(f"{spec.name}-0", NAMESPACE).metadata.uid

        core.delete_namespaced_pod(f"{spec.name}-0", NAMESPACE, grace_period_seconds=0)

        def new_pod_answers() -> tuple[bool, str]:
            url = published(path).get(0)
            if url is None or url == first_url:
                return False, f"endpoints file still says {url}"
            try:
                code, body = get_identity(url)
            except OSError as exc:
                return False, f"{url}: {exc!r}"
            return code == 200, f"{url}: HTTP {code} {body}"

        waiting.until("the endpoints file to name a new port-forward that answers /identity",
                      new_pod_answers, timeout=60, interval=0.1)
        second_url = published(path)[0]
        new_uid = core.read_namespaced_pod(f"{spec.name}-0", NAMESPACE).metadata.uid
        assert new_uid != old_uid, "the pod was replaced"
        assert urllib.parse.urlsplit(second_url).port != urllib.parse.urlsplit(first_url).port
        status, after = get_identity(second_url)
        assert status == 200, after
        assert after["match"] is True, after
        assert after["stamp"] == stamp, "the replacement pod must sit on the same volume (same stamp)"
    finally:
        publisher.stop()
        kube_client.close(api)
        direct.undeploy(spec, target, delete_claims=True, delete_namespace=True, wait_timeout=None,
                        progress=lambda _line: None)
