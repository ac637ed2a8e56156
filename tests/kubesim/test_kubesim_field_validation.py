"""Unknown fields are never stored: Strict refuses, Warn (default) drops with a Warning header (A5, A6)."""

from __future__ import annotations

import json
from typing import Any

import yaml


def _sts(extra_spec: dict[str, Any]) -> bytes:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "fv", "bogusMeta": 1},
        "spec": {"replicas": 1, "serviceName": "fv", "selector": {"matchLabels": {"app": "fv"}},
                 "template": {"metadata": {"labels": {"app": "fv"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox", "imagePolicy": "x"}]}},
                 **extra_spec},
    }).encode()


def test_strict_field_validation_rejects_unknown_fields(raw: Any, namespace: str) -> None:
    reply = raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/statefulsets?fieldValidation=Strict",
                        _sts({"replica": 3}))
    assert reply.status == 400
    body = reply.json()
    assert body["reason"] == "BadRequest"
    assert body["message"].startswith('StatefulSet in version "v1" cannot be handled as a StatefulSet: '
                                      "strict decoding error: ")
    for field in ("metadata.bogusMeta", "spec.replica", "spec.template.spec.containers[0].imagePolicy"):
        assert f'unknown field "{field}"' in body["message"]
    assert raw.request("GET", f"/apis/apps/v1/namespaces/{namespace}/statefulsets/fv").status == 404


def test_default_warn_mode_drops_unknown_fields_and_says_so(raw: Any, namespace: str) -> None:
    reply = raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/statefulsets", _sts({"replica": 3}))
    assert reply.status == 201
    assert 'unknown field \\"spec.replica\\"' in reply.headers.get("warning", "")
    stored = reply.json()
    assert "replica" not in stored["spec"]
    assert "bogusMeta" not in stored["metadata"]
    assert "imagePolicy" not in stored["spec"]["template"]["spec"]["containers"][0]


def test_kubectl_apply_reports_unknown_fields_like_a_real_cluster(kubesim_kubeconfig: Any, namespace: str,
                                                                  tmp_path: Any) -> None:
    """kubectl sends fieldValidation=Strict (OpenAPI v3 says the server validates), so a typo fails."""
    import subprocess
    import sys
    from pathlib import Path

    kubectl = Path(sys.executable).parent / "kubectl"
    manifest = yaml.safe_dump(json.loads(_sts({"replica": 3})))
    proc = subprocess.run([str(kubectl), "--kubeconfig", str(kubesim_kubeconfig), "--cache-dir",
                           str(tmp_path / "cache"), "-n", namespace, "apply", "-f", "-"],
                          input=manifest, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert 'strict decoding error: unknown field "metadata.bogusMeta"' in proc.stderr


def test_server_written_fields_are_all_known_to_the_schema(raw: Any, namespace: str) -> None:
    """Defaults and create-time mutations only add real fields: a later patch warns about nothing."""
    bodies = {
        f"/api/v1/namespaces/{namespace}/pods": {"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}],
            "volumes": [{"name": "v", "emptyDir": {}}]}},
        f"/apis/apps/v1/namespaces/{namespace}/statefulsets": json.loads(_sts({})),
        f"/api/v1/namespaces/{namespace}/services": {"metadata": {"name": "s"}, "spec": {
            "ports": [{"port": 80}], "selector": {"a": "b"}}},
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims": {"metadata": {"name": "c"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets": {"metadata": {"name": "b"}, "spec": {
            "maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}}},
    }
    for path, body in bodies.items():
        if "bogusMeta" in json.dumps(body):
            body["metadata"].pop("bogusMeta")
            body["spec"]["template"]["spec"]["containers"][0].pop("imagePolicy")
        created = raw.request("POST", path, json.dumps(body).encode())
        assert created.status == 201, created.body
        assert "warning" not in created.headers, created.headers["warning"]
        name = created.json()["metadata"]["name"]
        patched = raw.request("PATCH", f"{path}/{name}", b'{"metadata":{"labels":{"x":"y"}}}',
                              headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status == 200, patched.body
        assert "warning" not in patched.headers, (path, patched.headers["warning"])
