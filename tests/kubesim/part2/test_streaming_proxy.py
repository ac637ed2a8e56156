"""pods/proxy and services/proxy: HTTP relayed to pods by the API server (A13).

Through the Python client's ``connect_*_proxy_with_path``, ``kubectl get --raw``, ``kubectl proxy``
and a plain HTTPS client (for bodies). The API server reaches the pod's address itself.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import ssl
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from streaming_support import create_ready, http_echo_pod, kubectl, read_until, started, writer_pod

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]


def _https(cluster: Any) -> tuple[http.client.HTTPSConnection, dict[str, str]]:
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    server = cfg["clusters"][0]["cluster"]
    host, _, port = server["server"].removeprefix("https://").partition(":")
    context = ssl.create_default_context(cadata=base64.b64decode(server["certificate-authority-data"]).decode())
    token = cfg["users"][0]["user"]["token"]
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=60), {
        "Authorization": f"Bearer {token}"}


def test_python_client_and_kubectl_reach_a_pod_through_pods_proxy(kubesim_cluster: Any, namespace: str) -> None:
    """A13: [name][:port]/proxy/path, the default (first declared) port, the path and query kept."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, writer_pod("w-0"), http_echo_pod("web"))
    core = k8s.CoreV1Api(cluster.api)
    ready = core.connect_get_namespaced_pod_proxy_with_path("w-0", namespace, "readyz", _preload_content=False)
    assert json.loads(ready.data)["ready"] is True
    identity = core.connect_get_namespaced_pod_proxy_with_path("w-0:8080", namespace, "identity",
                                                               _preload_content=False)
    assert json.loads(identity.data)["expected"]["pod"] == "w-0"
    raw = kubectl(cluster, namespace, "get", "--raw",
                  f"/api/v1/namespaces/{namespace}/pods/web:web/proxy/some/where/?q=1&r=two")
    assert raw.returncode == 0, raw.stderr
    seen = json.loads(raw.stdout)
    assert seen["path"] == "/some/where/?q=1&r=two"  # trailing slash and query preserved
    assert "Authorization" not in seen["headers"]  # the caller's credentials stay with the API server
    assert seen["headers"]["X-Forwarded-For"]


def test_request_and_response_bodies_stream_through_the_proxy(kubesim_cluster: Any, namespace: str) -> None:
    """A13: POST with Content-Length and chunked bodies (several MB) comes back byte for byte."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, http_echo_pod("web"))
    conn, headers = _https(cluster)
    path = f"/api/v1/namespaces/{namespace}/pods/web:8000/proxy/upload"
    body = os.urandom(6 << 20)
    try:
        conn.request("POST", path, body=body, headers={**headers, "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("X-Echo-Method") == "POST"
        assert resp.read() == body
        chunks = [os.urandom(100_000) for _ in range(10)]
        conn.request("PUT", path, body=iter(chunks), headers={**headers, "Transfer-Encoding": "chunked"},
                     encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"".join(chunks)
        conn.request("HEAD", path, headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b""
    finally:
        conn.close()


def test_services_proxy_picks_a_ready_endpoint(kubesim_cluster: Any, namespace: str) -> None:
    """A13: service port by number or name, targetPort by name; upstream's 503s."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, writer_pod("w-0"))
    cluster.client.create("services", {"metadata": {"name": "writers"}, "spec": {
        "selector": {"app": "w-0"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}, namespace)
    cluster.client.create("services", {"metadata": {"name": "nobody"}, "spec": {
        "selector": {"app": "absent"}, "ports": [{"port": 80}]}}, namespace)
    core = k8s.CoreV1Api(cluster.api)
    by_number = core.connect_get_namespaced_service_proxy_with_path("writers:80", namespace, "readyz",
                                                                    _preload_content=False)
    assert json.loads(by_number.data)["ready"] is True
    by_name = kubectl(cluster, namespace, "get", "--raw",
                      f"/api/v1/namespaces/{namespace}/services/writers:http/proxy/readyz")
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout)["ready"] is True
    with pytest.raises(ApiException) as no_port:
        core.connect_get_namespaced_service_proxy_with_path("writers:81", namespace, "readyz")
    assert no_port.value.status == 503
    assert json.loads(no_port.value.body)["message"] == 'no service port 81 found for service "writers"'
    with pytest.raises(ApiException) as nobody:
        core.connect_get_namespaced_service_proxy_with_path("nobody", namespace, "readyz")
    assert nobody.value.status == 503
    assert json.loads(nobody.value.body)["message"] == 'no endpoints available for service "nobody"'


def test_unreachable_pod_port_is_a_503_and_kubectl_proxy_works(kubesim_cluster: Any, namespace: str) -> None:
    """A13: a refused port is upstream's 503; ``kubectl proxy`` relays to pods/proxy (ended by pid)."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, writer_pod("w-0"))
    ip = cluster.client.get("pods", "w-0", namespace)["status"]["podIP"]
    core = k8s.CoreV1Api(cluster.api)
    with pytest.raises(ApiException) as refused:
        core.connect_get_namespaced_pod_proxy_with_path("w-0:9999", namespace, "readyz")
    assert refused.value.status == 503
    assert json.loads(refused.value.body)["message"] == (
        f"error trying to reach service: dial tcp {ip}:9999: connect: connection refused")
    with started(cluster, namespace, "proxy", "--port=0") as proc:
        said = read_until(proc, rb"Starting to serve on 127\.0\.0\.1:(\d+)", "kubectl proxy to listen")
        match = re.search(rb"127\.0\.0\.1:(\d+)", said)
        assert match is not None
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
        try:
            conn.request("GET", f"/api/v1/namespaces/{namespace}/pods/w-0:8080/proxy/readyz")
            resp = conn.getresponse()
            assert resp.status == 200
            assert json.loads(resp.read())["ready"] is True
        finally:
            conn.close()
