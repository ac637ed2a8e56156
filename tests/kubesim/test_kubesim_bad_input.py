"""Bad requests get the real status code and a Status body; the server keeps serving (A5, A10)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest


def _status(reply: Any, code: int, reason: str) -> dict[str, Any]:
    assert reply.status == code, reply.body[:300]
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)
    return dict(body)


def test_missing_token_is_401(raw: Any) -> None:
    """A10: no bearer token -> 401 Unauthorized Status."""
    _status(raw.request("GET", "/api/v1/namespaces", auth=False), 401, "Unauthorized")


def test_wrong_token_is_401(raw: Any) -> None:
    """A10: a wrong bearer token -> 401."""
    _status(raw.request("GET", "/api/v1/pods", token="not-the-token"), 401, "Unauthorized")


def test_health_and_version_are_public(raw: Any) -> None:
    """A7, A10: /healthz, /readyz, /version answer anonymous clients, like a real apiserver."""
    assert raw.request("GET", "/readyz", auth=False).status == 200
    assert raw.request("GET", "/version", auth=False).json()["gitVersion"].startswith("v1.")


def test_malformed_json_is_400(raw: Any, namespace: str) -> None:
    """A5: a body that is not JSON."""
    body = _status(raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{not json"), 400,
                   "BadRequest")
    assert body["message"].startswith("the object provided is unrecognized (must be of type ConfigMap): "
                                      "couldn't get version/kind; json parse error: ")
    assert body["message"].endswith("({not json)")


def test_wrong_kind_for_the_url_is_400(raw: Any, namespace: str) -> None:
    """A5: a Service posted to the pods URL."""
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    body = _status(raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json.dumps(doc).encode()), 400,
                   "BadRequest")
    assert body["message"].startswith('Service in version "v1" cannot be handled as a Pod: ')


def test_wrong_api_version_for_the_url_is_400(raw: Any, namespace: str) -> None:
    doc = {"apiVersion": "v1", "kind": "StatefulSet", "metadata": {"name": "x"}}
    body = _status(raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
                               json.dumps(doc).encode()), 400, "BadRequest")
    assert "does not match the expected API version (apps/v1)" in body["message"]


def test_name_mismatch_on_update_is_400(raw: Any, namespace: str) -> None:
    """A5: PUT whose body names another object."""
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}
    raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                json.dumps({"metadata": {"name": "mine"}}).encode())
    body = _status(raw.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps/mine", json.dumps(doc).encode()),
                   400, "BadRequest")
    assert body["message"] == "the name of the object (other) does not match the name on the URL (mine)"


def test_missing_required_fields_are_422_with_causes(raw: Any, namespace: str) -> None:
    """A5, A6: a pod without containers -> 422 Invalid, cause on spec.containers."""
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {}}
    body = _status(raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json.dumps(doc).encode()), 422,
                   "Invalid")
    assert body["details"]["kind"] == "Pod"
    assert "spec.containers" in [c["field"] for c in body["details"]["causes"]]
    assert body["message"].startswith('Pod "empty" is invalid: ')


def test_missing_name_is_422(raw: Any, namespace: str) -> None:
    body = _status(raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", b'{"metadata":{}}'), 422,
                   "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_unknown_resource_is_404_status(raw: Any) -> None:
    """A5: a URL naming no resource."""
    _status(raw.request("GET", "/api/v1/frobnicators"), 404, "NotFound")
    _status(raw.request("GET", "/apis/apps/v1/namespaces/default/deployments"), 404, "NotFound")


def test_wrong_method_is_405(raw: Any, namespace: str) -> None:
    """A5: POST to an object URL, PUT to a collection."""
    _status(raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps/x", b"{}"), 405, "MethodNotAllowed")
    _status(raw.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps", b"{}"), 405, "MethodNotAllowed")


def test_body_over_3_mib_is_413(raw: Any, namespace: str) -> None:
    """A5: upstream's 3 MiB request limit."""
    big = json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * (3 * 1024 * 1024 + 10)}}).encode()
    _status(raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", big), 413, "RequestEntityTooLarge")
    assert raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/big").status == 404


def test_garbage_connections_do_not_hurt_the_server(raw: Any) -> None:
    """A10: plain-text HTTP on the TLS port, a half handshake and a bad request line; then normal service."""
    with socket.create_connection((raw.host, raw.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with contextlib.suppress(OSError):
            sock.recv(100)
    with socket.create_connection((raw.host, raw.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x00")  # a truncated ClientHello, then hang up
    with socket.create_connection((raw.host, raw.port), timeout=5) as plain, \
            raw.context.wrap_socket(plain, server_hostname=raw.host) as tls:
        tls.sendall(b"NONSENSE\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 400")
    assert raw.request("GET", "/api/v1/namespaces/default").status == 200


def test_only_loopback_is_listened_on(raw: Any) -> None:
    """A10: the listening socket is bound to 127.0.0.1, not to a wildcard address (read from /proc/net)."""
    listening: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, port = local.partition(":")
            if state == "0A" and int(port, 16) == raw.port:  # 0A = LISTEN
                listening.append(address)
    if not listening:
        pytest.skip("no /proc/net/tcp on this system")
    assert listening == ["0100007F"], f"listening on {listening}, expected only 127.0.0.1"


def test_tls_is_required(raw: Any) -> None:
    """A10: the port speaks TLS only; a plain HTTP client gets no HTTP answer."""
    with socket.create_connection((raw.host, raw.port), timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(100)
        except (OSError, ssl.SSLError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")
