"""Identity and access on the session's 3-node cluster: service accounts, their tokens in pods, RBAC, kubectl auth.

Everything goes through the API (the Python client, kubectl, :class:`kubesim.client.Client` with
another token); the pod test runs the official Python client's in-cluster config inside a pod.
The least-privilege proof of the harness's own Role is tests/integration/test_harness_rbac_kubesim.py.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import tenacity

from kubesim import client

pytestmark = [pytest.mark.kubesim, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
RBAC = "rbac.authorization.k8s.io"
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

IN_POD = f"""
import json, os
from kubernetes import client, config
out = {{"files": sorted(os.listdir("{MOUNT}")), "namespace": open("{MOUNT}/namespace").read(),
        "ca": open("{MOUNT}/ca.crt").read(), "host": os.environ.get("KUBERNETES_SERVICE_HOST")}}
config.load_incluster_config()
api = client.ApiClient()
review = client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
out["whoami"] = review.status.user_info.username
try:
    client.CoreV1Api(api).list_namespaced_pod(out["namespace"])
    out["list"] = "allowed"
except client.ApiException as exc:
    out["list"] = exc.status
    out["message"] = json.loads(exc.body)["message"]
print("RESULT " + json.dumps(out))
"""


def _wait(what: str, check: Any, timeout: float = 60) -> Any:
    """Poll ``check`` until it returns something truthy; the error names ``what`` and the last value."""
    last: list[Any] = [None]

    def attempt() -> Any:
        last[0] = check()
        if not last[0]:
            raise AssertionError(f"{what}: not yet (last: {last[0]!r})")
        return last[0]

    retrying = tenacity.Retrying(stop=tenacity.stop_after_delay(timeout), wait=tenacity.wait_fixed(0.2),
                                 retry=tenacity.retry_if_exception_type((AssertionError, client.NotFound)),
                                 reraise=True)
    return retrying(attempt)


def _kubectl(cluster: Any, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), *(["--token", token] if token else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _token(cluster: Any, namespace: str, account: str, bound_pod: dict[str, Any] | None = None) -> str:
    spec: dict[str, Any] = {"expirationSeconds": 600}
    if bound_pod is not None:
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": bound_pod["metadata"]["name"],
                                  "uid": bound_pod["metadata"]["uid"]}
    answer = cluster.client.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    return str(answer["status"]["token"])


def _as(cluster: Any, token: str) -> client.Client:
    return client.Client(cluster.client.host, cluster.client.port, cluster.state_dir.joinpath("ca.crt").read_bytes(),
                         token)


def test_new_namespace_gets_default_service_account_and_root_ca(kubesim_cluster: Any, namespace: str) -> None:
    sa = _wait("the default ServiceAccount", lambda: kubesim_cluster.client.get("serviceaccounts", "default",
                                                                                  namespace), timeout=10)
    assert sa["metadata"]["name"] == "default"
    cm = _wait("kube-root-ca.crt", lambda: kubesim_cluster.client.get("configmaps", "kube-root-ca.crt", namespace),
               timeout=10)
    assert cm["data"] == {"ca.crt": (kubesim_cluster.state_dir / "ca.crt").read_text()}
    # deleted or edited: put back, as the controllers do
    kubesim_cluster.client.delete("serviceaccounts", "default", namespace)
    kubesim_cluster.client.patch("configmaps", "kube-root-ca.crt", {"data": {"ca.crt": "tampered"}}, namespace)
    _wait("default recreated", lambda: kubesim_cluster.client.get("serviceaccounts", "default", namespace),
          timeout=10)
    _wait("kube-root-ca.crt repaired", lambda: kubesim_cluster.client.get(
        "configmaps", "kube-root-ca.crt", namespace)["data"]["ca.crt"] != "tampered", timeout=10)


def test_pod_token_authenticates_in_cluster_and_is_forbidden_without_a_binding(
        kubesim_cluster: Any, namespace: str) -> None:
    _wait("the default ServiceAccount", lambda: kubesim_cluster.client.get("serviceaccounts", "default", namespace))
    pod = {"metadata": {"name": "incluster"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "ckpt-writer:test", "command": ["python", "-c", IN_POD]}]}}
    created = kubesim_cluster.client.create("pods", pod, namespace)
    [volume] = [v for v in created["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert {"mountPath": MOUNT, "name": volume["name"], "readOnly": True} in \
        created["spec"]["containers"][0]["volumeMounts"]
    phase = _wait("the pod to finish", lambda: kubesim_cluster.client.get("pods", "incluster", namespace)
                  .get("status", {}).get("phase") in ("Succeeded", "Failed") and
                  kubesim_cluster.client.get("pods", "incluster", namespace)["status"]["phase"], timeout=90)
    log = kubesim_cluster.client.raw_get(f"/api/v1/namespaces/{namespace}/pods/incluster/log").decode()
    assert phase == "Succeeded", log
    [line] = [ln for ln in log.splitlines() if ln.startswith("RESULT ")]
    got = json.loads(line.removeprefix("RESULT "))
    assert got["files"] == ["ca.crt", "namespace", "token"]
    assert got["namespace"] == namespace
    assert got["ca"] == (kubesim_cluster.state_dir / "ca.crt").read_text()
    assert got["whoami"] == f"system:serviceaccount:{namespace}:default"
    assert got["list"] == 403
    assert got["message"] == (f'pods is forbidden: User "system:serviceaccount:{namespace}:default" cannot list '
                              f'resource "pods" in API group "" in the namespace "{namespace}"')


def test_rbac_kubectl_auth_and_revoked_tokens(kubesim_cluster: Any, namespace: str) -> None:
    api = kubesim_cluster.client
    api.create("serviceaccounts", {"metadata": {"name": "robot"}}, namespace)
    token = _token(kubesim_cluster, namespace, "robot")
    user = f"system:serviceaccount:{namespace}:robot"

    who = _kubectl(kubesim_cluster, "auth", "whoami", "-o", "json", token=token)
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == user
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]

    def can_i(*args: str) -> str:
        done = _kubectl(kubesim_cluster, "auth", "can-i", *args, "-n", namespace, token=token)
        return done.stdout.strip()

    assert can_i("get", "pods") == "no"
    api.create("roles", {"metadata": {"name": "pod-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]}, namespace)
    api.create("rolebindings", {"metadata": {"name": "robot-reads"},
                                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"},
                                "subjects": [{"kind": "ServiceAccount", "name": "robot"}]}, namespace)
    assert can_i("get", "pods") == "yes"
    assert can_i("get", "pods", "--subresource", "log") == "yes"
    assert can_i("delete", "pods") == "no"
    assert can_i("list", "secrets") == "no"
    admin_says = _kubectl(kubesim_cluster, "auth", "can-i", "list", "pods", "-n", namespace, "--as", user)
    assert admin_says.stdout.strip() == "yes"  # impersonation by the admin

    robot = _as(kubesim_cluster, token)
    try:
        robot.list("pods", namespace)
        with pytest.raises(client.ApiError) as denied:
            robot.list("pods", "default")
        assert denied.value.status == 403
        # no escalation: the robot cannot grant itself more than it holds
        with pytest.raises(client.ApiError) as escalation:
            robot.create("roles", {"metadata": {"name": "more"}, "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}, namespace)
        assert escalation.value.status == 403
    finally:
        robot.close()

    # a token bound to a pod stops working once the pod is gone; any token once its service account is
    pending = api.create("pods", {"metadata": {"name": "unscheduled"}, "spec": {
        "serviceAccountName": "robot", "schedulerName": "nobody",
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}, namespace)
    bound = _token(kubesim_cluster, namespace, "robot", bound_pod=pending)
    assert _kubectl(kubesim_cluster, "get", "pods", "-n", namespace, token=bound).returncode == 0
    api.delete("pods", "unscheduled", namespace, grace_period_seconds=0)
    _wait("the pod to go", lambda: not api.list("pods", namespace, field_selector="metadata.name=unscheduled")[0])
    gone = _kubectl(kubesim_cluster, "get", "pods", "-n", namespace, token=bound)
    assert gone.returncode != 0
    assert "You must be logged in to the server (Unauthorized)" in gone.stderr
    api.delete("serviceaccounts", "robot", namespace)
    revoked = _kubectl(kubesim_cluster, "get", "pods", "-n", namespace, token=token)
    assert "Unauthorized" in revoked.stderr


def test_named_user_from_the_token_file(kubesim_cluster: Any, namespace: str) -> None:
    token = uuid.uuid4().hex
    path = kubesim_cluster.state_dir / "tokens.csv"
    before = path.read_text() if path.exists() else ""
    name = f"user-{namespace}"
    path.write_text(before + f'{token},{name},{namespace},"testers"\n')
    try:
        who = _kubectl(kubesim_cluster, "auth", "whoami", "-o", "json", token=token)
        assert who.returncode == 0, who.stderr
        assert json.loads(who.stdout)["status"]["userInfo"]["groups"] == ["testers", "system:authenticated"]
        kubesim_cluster.client.create("rolebindings", {
            "metadata": {"name": "testers-view"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "testers"}]}, namespace)
        assert _kubectl(kubesim_cluster, "auth", "can-i", "list", "statefulsets.apps", "-n", namespace,
                        token=token).stdout.strip() == "yes"
        assert _kubectl(kubesim_cluster, "auth", "can-i", "create", "pods", "-n", namespace,
                        token=token).stdout.strip() == "no"
        denied = _kubectl(kubesim_cluster, "get", "nodes", token=token)
        assert f'User "{name}" cannot list resource "nodes" in API group "" at the cluster scope' in denied.stderr
    finally:
        path.write_text(before)
