"""The ordinal → pod → claim → PV → node map, from hand-built objects and through a real API server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from harness import facts
from harness.kube import client as kube_client
from harness.kube import identity


def pod(name: str, *, uid: str, node: str | None, index: str | None = None, deleting: bool = False) -> k8s.V1Pod:
    labels = {"apps.kubernetes.io/pod-index": index} if index is not None else {}
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, uid=uid, labels=labels,
                                  deletion_timestamp="2026-01-01T00:00:00Z" if deleting else None),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="writer")], node_name=node),
    )


def claim(name: str, *, uid: str, volume: str | None) -> k8s.V1PersistentVolumeClaim:
    return k8s.V1PersistentVolumeClaim(metadata=k8s.V1ObjectMeta(name=name, uid=uid),
                                       spec=k8s.V1PersistentVolumeClaimSpec(volume_name=volume))


def test_each_ordinal_maps_to_its_pod_claim_volume_node_and_stamp() -> None:
    got = identity.identity_from_objects(
        "ckpt", "data", ordinals=range(3),
        pods=[pod("ckpt-0", uid="p0", node="w1", index="0"), pod("ckpt-1", uid="p1", node="w2"),
              pod("other-0", uid="x", node="w3")],
        claims=[claim("data-ckpt-0", uid="c0", volume="pv-a"), claim("data-ckpt-1", uid="c1", volume=None)],
        volume_ids={0: "vid-0"},
    )
    assert got == (
        facts.OrdinalIdentity(0, "ckpt-0", "data-ckpt-0", "c0", "pv-a", "w1", "vid-0"),
        facts.OrdinalIdentity(1, "ckpt-1", "data-ckpt-1", "c1", None, "w2", None),
        facts.OrdinalIdentity(2, "ckpt-2", "data-ckpt-2", "", None, None, None),
    )


def test_a_live_replacement_wins_over_the_pod_being_deleted() -> None:
    for order in ([0, 1], [1, 0]):
        pods = [pod("ckpt-0", uid="old", node="w1", deleting=True), pod("ckpt-0", uid="new", node="w2")]
        got = identity.identity_from_objects("ckpt", "data", ordinals=[0], pods=[pods[i] for i in order], claims=[])
        assert got[0].node == "w2"


def test_stamp_volume_id_comes_from_the_writer_answer_even_on_a_mismatch() -> None:
    assert identity.stamp_volume_id({"match": False, "stamp": {"volume_id": "abc", "ordinal": 2}}) == "abc"
    assert identity.stamp_volume_id({"error": "identity not checked yet", "match": None}) is None
    assert identity.stamp_volume_id({"stamp": {"volume_id": ""}}) is None


class IdentityServer(http.server.ThreadingHTTPServer):
    body: dict[str, Any] = {}
    status = 200


class Handler(http.server.BaseHTTPRequestHandler):
    server: IdentityServer

    def do_GET(self) -> None:
        payload = json.dumps(self.server.body).encode() if self.path == "/identity" else b"{}"
        self.send_response(self.server.status if self.path == "/identity" else 404)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def writer_url() -> Iterator[tuple[str, IdentityServer]]:
    server = IdentityServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def test_volume_id_is_read_from_a_swapped_volume_too(writer_url: tuple[str, IdentityServer]) -> None:
    url, server = writer_url
    server.status, server.body = 409, {"match": False, "stamp": {"volume_id": "vid-of-ordinal-2"}}
    assert identity.fetch_volume_id(url) == "vid-of-ordinal-2"
    assert identity.fetch_volume_id("http://127.0.0.1:9", timeout_s=0.5) is None


@pytest.mark.kubesim
def test_read_identity_goes_through_the_api(kubesim_kubeconfig: Path, writer_url: tuple[str, IdentityServer]) -> None:
    url, server = writer_url
    server.status, server.body = 200, {"match": True, "stamp": {"volume_id": "vid-0"}}
    api = kube_client.new_api_client(kubesim_kubeconfig)
    ns = "identity-read"
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
        apps.create_namespaced_stateful_set(ns, {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ckpt"},
            "spec": {"serviceName": "ckpt", "replicas": 2, "selector": {"matchLabels": {"app": "ckpt"}},
                     "template": {"metadata": {"labels": {"app": "ckpt"}},
                                  "spec": {"containers": [{"name": "writer", "image": "ckpt-writer"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
        })
        core.create_namespaced_pod(ns, {"apiVersion": "v1", "kind": "Pod",
                                        "metadata": {"name": "ckpt-0", "labels": {"app": "ckpt"}},
                                        "spec": {"nodeName": "node-a",
                                                 "containers": [{"name": "writer", "image": "ckpt-writer"}]}})
        made = core.create_namespaced_persistent_volume_claim(ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-ckpt-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "volumeName": "pv-0"}})
        got = identity.read_identity(api, ns, "ckpt", urls={0: url})
        assert got == (
            facts.OrdinalIdentity(0, "ckpt-0", "data-ckpt-0", made.metadata.uid, "pv-0", "node-a", "vid-0"),
            facts.OrdinalIdentity(1, "ckpt-1", "data-ckpt-1", "", None, None, None),
        )
        with pytest.raises(identity.IdentityError, match=r"cannot read the identity map of identity-read/nope \(404"):
            identity.read_identity(api, ns, "nope")
    finally:
        core.delete_namespace(ns)
        kube_client.close(api)
