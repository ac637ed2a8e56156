"""Fixtures for kubesim's conformance tests: a fresh namespace per test, raw HTTPS access.

Everything goes through HTTP (the official client, kubectl, or :class:`RawClient` for bytes a
well-behaved client would never send); no test calls server internals.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import ssl
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawClient:
    """One keep-alive HTTPS connection to kubesim that sends exactly what a test asks for."""

    def __init__(self, host: str, port: int, ca_pem: bytes, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as fh:
            fh.write(ca_pem)
        self.context = ssl.create_default_context(cafile=fh.name)
        Path(fh.name).unlink()
        self.conn = http.client.HTTPSConnection(host, port, context=self.context, timeout=30)

    @classmethod
    def from_kubeconfig(cls, path: Path) -> RawClient:
        cfg = yaml.safe_load(path.read_text())
        cluster = cfg["clusters"][0]["cluster"]
        server = cluster["server"].removeprefix("https://")
        host, _, port = server.partition(":")
        ca = base64.b64decode(cluster["certificate-authority-data"])
        return cls(host, int(port), ca, cfg["users"][0]["user"]["token"])

    def request(self, method: str, path: str, body: bytes | None = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, auth: bool = True) -> Reply:
        sent = dict(headers or {})
        if auth:
            sent["Authorization"] = f"Bearer {token if token is not None else self.token}"
        if body is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=body, headers=sent)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
            self.conn.request(method, path, body=body, headers=sent)
            resp = self.conn.getresponse()
        data = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def namespace(kubesim_api: Any) -> str:
    """A namespace of its own for one test (names are unique, so tests never see each other's objects)."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(kubesim_api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def raw(kubesim_kubeconfig: Path) -> Iterator[RawClient]:
    conn = RawClient.from_kubeconfig(kubesim_kubeconfig)
    try:
        yield conn
    finally:
        conn.close()
