"""pods/portforward through real kubectl and the official Python client (A11).

kubectl 1.37 tunnels SPDY/3.1 over WebSocket (``SPDY/3.1+portforward.k8s.io``) and falls back to
plain SPDY (forced here with ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``); the Python client speaks
``v4.channel.k8s.io``. The API server connects to the pod's IP, so none of this needs the test
process to reach pod addresses. Every ``kubectl port-forward`` is ended by pid.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward
from streaming_support import (
    create_ready,
    echo_pod,
    end,
    kubectl,
    pod,
    port_forward,
    read_until,
    started,
    writer_pod,
)

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]


def _get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _echo(sock: socket.socket, size: int) -> tuple[str, str]:
    """Send ``size`` random bytes while reading the echo back; (sha256 sent, sha256 received)."""
    sent, got = hashlib.sha256(), hashlib.sha256()
    received = [0]

    def reader() -> None:
        while received[0] < size:
            data = sock.recv(1 << 20)
            if not data:
                return
            got.update(data)
            received[0] += len(data)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    block = os.urandom(1 << 20)
    for _ in range(size // len(block)):
        sock.sendall(block)
        sent.update(block)
    thread.join(60)
    assert received[0] == size, f"echoed {received[0]} of {size} bytes"
    return sent.hexdigest(), got.hexdigest()


@pytest.mark.parametrize("websockets", [True, False], ids=["spdy-over-websocket", "plain-spdy"])
def test_kubectl_port_forward_carries_http_and_megabytes_both_ways(kubesim_cluster: Any, namespace: str,
                                                                   websockets: bool) -> None:
    """A11: an HTTP request to the writer through the forward; 8 MiB echoed intact; two connections at once."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, writer_pod("pf-0"), echo_pod("echo"))
    with port_forward(cluster, namespace, "pod/pf-0", 8080, websockets=websockets) as (port, proc):
        if websockets:
            read_until(proc, rb'"Negotiation complete" protocol="portforward.k8s.io"',
                       "kubectl to tunnel SPDY over WebSocket", stream="stderr")
        status, body = _get(port, "/readyz")
        assert status == 200
        assert body["ready"] is True
        status, identity = _get(port, "/identity")
        assert status == 200
        assert identity["expected"]["pod"] == "pf-0"
    with port_forward(cluster, namespace, "pod/echo", 7000, websockets=websockets) as (port, _proc):
        first = socket.create_connection(("127.0.0.1", port), timeout=30)
        second = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            sent, got = _echo(first, 8 << 20)
            assert sent == got
            second.sendall(b"ping")
            assert second.recv(4) == b"ping"
            second.shutdown(socket.SHUT_WR)  # the half-close reaches the pod: it echoes the rest and hangs up
            assert second.recv(10) == b""
        finally:
            first.close()
            second.close()


def test_python_client_portforward_reaches_the_writer_and_echoes(kubesim_cluster: Any, namespace: str) -> None:
    """A11: the Python client's portforward() (v4.channel.k8s.io): HTTP and a 4 MiB echo."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, writer_pod("py-0"), echo_pod("echo"))
    core = k8s.CoreV1Api(cluster.api)
    pf = portforward(core.connect_get_namespaced_pod_portforward, "py-0", namespace, ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["ready"] is True
    assert pf.error(8080) is None
    pf = portforward(core.connect_get_namespaced_pod_portforward, "echo", namespace, ports="7000")
    sock = pf.socket(7000)
    sock.setblocking(True)
    try:
        sent, got = _echo(sock, 4 << 20)  # v4 has no half-close: read exactly what was sent
    finally:
        sock.close()
    assert sent == got


def test_port_forward_errors_are_upstreams(kubesim_cluster: Any, namespace: str) -> None:
    """A11: no such pod (404), a pod that is not running (kubectl's check; the server's 500), a closed port
    (the error stream: kubectl reports it and ends with "lost connection to pod")."""
    cluster = kubesim_cluster
    core = k8s.CoreV1Api(cluster.api)
    gone = kubectl(cluster, namespace, "port-forward", "pod/nope", "18080:80")
    assert gone.returncode == 1
    assert b'Error from server (NotFound): pods "nope" not found' in gone.stderr
    with pytest.raises(ApiException) as missing:
        portforward(core.connect_get_namespaced_pod_portforward, "nope", namespace, ports="80")
    assert "Handshake status 404" in str(missing.value.reason)
    assert 'pods \\"nope\\" not found' in str(missing.value.reason)

    cluster.client.create("pods", pod("finished", [{"name": "c", "image": "busybox", "command": ["true"]}],
                                      restartPolicy="Never"), namespace)
    from streaming_support import await_

    await_("pod finished Succeeded", lambda: cluster.client.get("pods", "finished", namespace),
           lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
    done = kubectl(cluster, namespace, "port-forward", "pod/finished", "18080:80")
    assert done.returncode == 1
    assert b"unable to forward port because pod is not running. Current status=Succeeded" in done.stderr
    with pytest.raises(ApiException) as not_running:
        portforward(core.connect_get_namespaced_pod_portforward, "finished", namespace, ports="80")
    assert "Handshake status 500" in str(not_running.value.reason)
    assert "sandbox container is not running" in str(not_running.value.reason)

    create_ready(cluster, namespace, writer_pod("closed-0"))
    ip = cluster.client.get("pods", "closed-0", namespace)["status"]["podIP"]
    pf = portforward(core.connect_get_namespaced_pod_portforward, "closed-0", namespace, ports="9999")
    sock = pf.socket(9999)
    sock.setblocking(True)
    assert sock.recv(10) == b""  # the Python client closes the local socket when the error arrives
    sock.close()
    error = pf.error(9999)
    assert error is not None
    assert error.startswith("error forwarding port 9999 to pod ")
    assert f"dial tcp4 {ip}:9999: connect: connection refused" in error
    with port_forward(cluster, namespace, "pod/closed-0", 9999) as (port, proc):
        conn = socket.create_connection(("127.0.0.1", port), timeout=20)
        assert conn.recv(10) == b""
        conn.close()
        said = read_until(proc, rb"lost connection to pod", "kubectl to give up on the refused port",
                          stream="stderr")
        assert b"An error occurred forwarding" in said
        assert b"connect: connection refused" in said
        assert proc.wait(20) == 1


def test_a_forward_is_a_process_we_can_end_by_pid(kubesim_cluster: Any, namespace: str) -> None:
    """The harness's PortForward model: kubectl keeps forwarding until its pid is signalled."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, echo_pod("echo"))
    with started(cluster, namespace, "port-forward", "pod/echo", ":7000") as proc:
        said = read_until(proc, rb"Forwarding from 127\.0\.0\.1:(\d+)", "kubectl port-forward to listen")
        port = int(said.split(b"127.0.0.1:")[1].split()[0])
        for _ in range(3):  # sequential connections on one forward
            conn = socket.create_connection(("127.0.0.1", port), timeout=20)
            conn.sendall(b"again")
            assert conn.recv(5) == b"again"
            conn.close()
        assert proc.poll() is None
        end(proc)
        assert proc.returncode is not None
