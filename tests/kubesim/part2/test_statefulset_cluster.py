"""StatefulSets on the real 3-node kubesim cluster (control plane + kubelet processes), API only.

What the controller-level tests cannot show: real containers see their identity (hostname) and
their claim's data at /data, that data outlives the pods (scale to 0 and back, Retain) or not
(whenScaled=Delete: claims deleted by the garbage collector and recreated empty), and a pod the
kubelet rejects is replaced until it can run. Each pod writes a random token into /data once and
logs `host=<hostname> token=<token>`, so logs tell which claim a pod got.

Skipped, with the reason printed, while the kubelet is not available (the `kubesim_cluster` fixture).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cluster_waits
import pytest

from kubesim import client, state

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

WAIT = 30.0
Obj = dict[str, Any]
SCRIPT = ("[ -f /data/token ] || cat /proc/sys/kernel/random/uuid > /data/token; "
          "echo \"host=$(hostname) token=$(cat /data/token)\"; exec sleep 3600")
_LINE = re.compile(r"host=(\S+) token=(\S+)")


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `probe` until truthy; a timeout names what was awaited and the last value seen."""
    return cluster_waits.until_truthy(what, probe, timeout)


@pytest.fixture
def api(kubesim_cluster: Any) -> client.Client:
    return kubesim_cluster.client  # type: ignore[no-any-return]


def token_set(name: str, replicas: int, **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": {
        "replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", SCRIPT],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "readinessProbe": {"exec": {"command": ["test", "-s", "/data/token"]},
                                               "periodSeconds": 1}}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}],
        **spec}}


def ready(api: client.Client, ns: str, name: str, replicas: int) -> Obj:
    def probe() -> Obj | None:
        sts = api.get("statefulsets", name, ns)
        status = sts.get("status") or {}
        pods = api.list("pods", ns, label_selector=f"app={name}")[0]
        ok = (status.get("observedGeneration") == sts["metadata"]["generation"]
              and status.get("readyReplicas", 0) == replicas and status.get("replicas", 0) == replicas
              and len(pods) == replicas)
        return status if ok else None
    return wait_for(f"statefulset {name}: {replicas} ready pods", probe)  # type: ignore[no-any-return]


def tokens(api: client.Client, ns: str, name: str, replicas: int) -> dict[int, tuple[str, str]]:
    """Ordinal → (hostname, token) from each pod's log."""
    out: dict[int, tuple[str, str]] = {}
    for ordinal in range(replicas):
        pod = f"{name}-{ordinal}"
        line = wait_for(f"{pod} logs its token", lambda p=pod: _LINE.search(
            api.raw_get(f"/api/v1/namespaces/{ns}/pods/{p}/log").decode()))
        out[ordinal] = (line.group(1), line.group(2))
    return out


def scale(api: client.Client, ns: str, name: str, replicas: int) -> None:
    api.patch("statefulsets", name, {"spec": {"replicas": replicas}}, ns)


def no_pods(api: client.Client, ns: str, name: str) -> bool:
    return api.list("pods", ns, label_selector=f"app={name}")[0] == []


def claim_uids(api: client.Client, ns: str) -> dict[str, str]:
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in api.list("persistentvolumeclaims", ns)[0]}


def test_pods_keep_hostname_and_data_through_scale_to_zero_and_a_rolling_update(api: client.Client,
                                                                                namespace: str) -> None:
    """B1 B2 B3 B5 C1 (F: basic identity, data survives scale to 0 and back; rolling update with PVCs)."""
    api.create("statefulsets", token_set("id", 3), namespace)
    ready(api, namespace, "id", 3)
    first = tokens(api, namespace, "id", 3)
    assert {o: host for o, (host, _) in first.items()} == {0: "id-0", 1: "id-1", 2: "id-2"}
    assert len({token for _, token in first.values()}) == 3
    claims = claim_uids(api, namespace)
    assert sorted(claims) == ["data-id-0", "data-id-1", "data-id-2"]

    scale(api, namespace, "id", 0)
    wait_for("all id pods gone", lambda: no_pods(api, namespace, "id"))
    assert claim_uids(api, namespace) == claims, "Retain keeps every claim"
    scale(api, namespace, "id", 3)
    ready(api, namespace, "id", 3)
    assert tokens(api, namespace, "id", 3) == first, "each ordinal found its own data again"

    api.patch("statefulsets", "id", {"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}}, namespace)

    def rolled_out() -> Obj | None:
        sts = api.get("statefulsets", "id", namespace)
        s = sts.get("status") or {}
        done = (s.get("observedGeneration") == sts["metadata"]["generation"] and s.get("updatedReplicas") == 3
                and s.get("currentRevision") == s.get("updateRevision") and s.get("readyReplicas") == 3)
        return s if done else None

    status = wait_for("rolling update done", rolled_out)
    pods = api.list("pods", namespace, label_selector="app=id")[0]
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {status["updateRevision"]}
    assert tokens(api, namespace, "id", 3) == first, "a rolling update keeps each pod's claim"


def test_when_scaled_delete_gives_scaled_back_ordinals_fresh_claims(api: client.Client, namespace: str) -> None:
    """B6 D6 (F: PVC retention WhenScaled / WhenDeleted): 2→1→2 recreates ordinal 1's claim empty."""
    policy = {"whenScaled": "Delete", "whenDeleted": "Delete"}
    api.create("statefulsets", token_set("ret", 2, persistentVolumeClaimRetentionPolicy=policy), namespace)
    ready(api, namespace, "ret", 2)
    before = tokens(api, namespace, "ret", 2)
    claims = claim_uids(api, namespace)
    scale(api, namespace, "ret", 1)
    wait_for("data-ret-1 deleted by the garbage collector",
             lambda: "data-ret-1" not in claim_uids(api, namespace))
    assert claim_uids(api, namespace) == {"data-ret-0": claims["data-ret-0"]}
    scale(api, namespace, "ret", 2)
    ready(api, namespace, "ret", 2)
    after = tokens(api, namespace, "ret", 2)
    assert after[0] == before[0]
    assert after[1][1] != before[1][1], "ordinal 1 must start from an empty claim"
    assert claim_uids(api, namespace)["data-ret-1"] != claims["data-ret-1"]

    api.delete("statefulsets", "ret", namespace)
    wait_for("claims deleted with the set (whenDeleted=Delete)", lambda: claim_uids(api, namespace) == {})


def test_a_pod_the_kubelet_rejects_is_replaced_until_it_can_run(api: client.Client, namespace: str,
                                                               kubesim_cluster: Any) -> None:
    """B4 (F: recreate a pod that the kubelet rejected): hostPort taken → Failed → deleted → recreated."""
    node = kubesim_cluster.nodes[0]
    port = {"containerPort": 21017, "hostPort": 21017, "protocol": "TCP"}
    api.create("pods", {"metadata": {"name": "conflict"}, "spec": {
        "nodeName": node, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "ports": [port]}]}}, namespace)
    wait_for("conflict pod Running", lambda: (api.get("pods", "conflict", namespace).get("status") or {}).get(
        "phase") == "Running")
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ss"}, "spec": {
        "replicas": 1, "serviceName": "ss", "selector": {"matchLabels": {"app": "ss"}},
        "template": {"metadata": {"labels": {"app": "ss"}}, "spec": {
            "nodeName": node, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "ports": [port]}]}}}}
    _, rv = api.list("pods", namespace)
    stream = api.watch("pods", namespace, resource_version=rv, timeout_seconds=int(WAIT))
    api.create("statefulsets", body, namespace)
    failed_uid = None
    for etype, pod in stream:
        if pod["metadata"]["name"] == "ss-0" and etype == "MODIFIED" and (pod.get("status") or {}).get(
                "phase") == "Failed":
            failed_uid = pod["metadata"]["uid"]
            break
    stream.close()
    assert failed_uid is not None, "ss-0 was never rejected (Failed) while the host port was taken"
    api.delete("pods", "conflict", namespace)

    def running_replacement() -> bool:
        try:
            pod = api.get("pods", "ss-0", namespace)
        except client.NotFound:
            return False
        return pod["metadata"]["uid"] != failed_uid and (pod.get("status") or {}).get("phase") == "Running"

    wait_for("ss-0 recreated and Running once the port is free", running_replacement)


def _node_of(api: client.Client, ns: str, pod: str) -> str:
    def probe() -> str | None:
        obj = api.get("pods", pod, ns)
        return str(obj["spec"]["nodeName"]) if (obj.get("status") or {}).get("phase") == "Running" else None
    return str(wait_for(f"{pod} Running", probe))


def test_a_claim_deleted_while_its_pod_is_pending_is_recreated_and_the_pod_runs_on_its_node(
        api: client.Client, namespace: str, kubesim_cluster: Any) -> None:
    """B2 C5 (F: a PVC deleted while its pod is Pending is recreated and the pod lands on the same node)."""
    api.create("statefulsets", token_set("pend", 1), namespace)
    ready(api, namespace, "pend", 1)
    node = _node_of(api, namespace, "pend-0")
    api.patch("statefulsets", "pend", {"spec": {"template": {"spec": {
        "nodeSelector": {"kubernetes.io/hostname": node}}}}}, namespace)
    ready(api, namespace, "pend", 1)
    old_claim = claim_uids(api, namespace)["data-pend-0"]
    api.patch("nodes", node, {"spec": {"unschedulable": True}})
    try:
        old_pod = api.get("pods", "pend-0", namespace)["metadata"]["uid"]
        api.delete("pods", "pend-0", namespace)

        def pending_replacement() -> bool:
            try:
                pod = api.get("pods", "pend-0", namespace)
            except client.NotFound:
                return False
            return pod["metadata"]["uid"] != old_pod and (pod.get("status") or {}).get("phase") == "Pending"

        wait_for("pend-0 recreated and Pending on the cordoned node", pending_replacement)
        api.delete("persistentvolumeclaims", "data-pend-0", namespace)
        wait_for("data-pend-0 recreated for the Pending pod",
                 lambda: claim_uids(api, namespace).get("data-pend-0") not in (None, old_claim))
    finally:
        api.patch("nodes", node, {"spec": {"unschedulable": None}})
    assert _node_of(api, namespace, "pend-0") == node
    ready(api, namespace, "pend", 1)


def test_a_pod_on_a_crashed_node_is_never_duplicated_and_is_replaced_only_after_a_force_delete(
        api: client.Client, namespace: str, kubesim_cluster: Any) -> None:
    """B4 D2 (node crash: stays Terminating after the toleration runs out, never duplicated; force delete lets
    the StatefulSet recreate the pod elsewhere)."""
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "nc"}, "spec": {
        "replicas": 2, "serviceName": "nc", "selector": {"matchLabels": {"app": "nc"}},
        "podManagementPolicy": "Parallel",
        "template": {"metadata": {"labels": {"app": "nc"}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 1}],
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}
    api.create("statefulsets", body, namespace)
    ready(api, namespace, "nc", 2)
    node = _node_of(api, namespace, "nc-1")
    old_uid = api.get("pods", "nc-1", namespace)["metadata"]["uid"]
    crashed = kubesim_cluster.run("node", "crash", node)
    try:
        wait_for(f"nc-1 Terminating after the unreachable toleration (`kubesim node crash {node}` printed "
                 f"{crashed.stdout.strip()!r})", lambda: bool(
            api.get("pods", "nc-1", namespace)["metadata"].get("deletionTimestamp")), timeout=40)
        # currentReplicas stops counting a terminating pod: the controller has seen it and must not replace it
        wait_for("the controller to observe the terminating pod", lambda: (
            api.get("statefulsets", "nc", namespace).get("status") or {}).get("currentReplicas") == 1)
        sts = api.get("statefulsets", "nc", namespace)
        pods = api.list("pods", namespace, label_selector="app=nc")[0]
        assert sorted(p["metadata"]["name"] for p in pods) == ["nc-0", "nc-1"], "never two pods for nc-1"
        assert api.get("pods", "nc-1", namespace)["metadata"]["uid"] == old_uid
        assert sts["spec"]["replicas"] == 2
        api.delete("pods", "nc-1", namespace, grace_period_seconds=0)

        def replaced_elsewhere() -> str | None:
            try:
                pod = api.get("pods", "nc-1", namespace)
            except client.NotFound:
                return None
            running = (pod.get("status") or {}).get("phase") == "Running"
            return pod["spec"].get("nodeName") if pod["metadata"]["uid"] != old_uid and running else None

        assert wait_for("nc-1 recreated and Running on another node", replaced_elsewhere) != node
    finally:
        kubesim_cluster.run("node", "restore", node)


def test_a_rollout_survives_a_control_plane_sigkill(tmp_path: Path, kubesim_cluster: Any) -> None:
    """A9 B5 (issue: control plane SIGKILLed and restarted during a rollout completes, nothing duplicated or lost).

    A cluster of its own (one node), so the shared one keeps its address. Each new pod turns Ready
    only after 1 s, so the SIGKILL lands mid-rollout, right after the first old pod was deleted.
    """
    state_dir = tmp_path / "rollout"

    def kubesim_cli(*args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "kubesim", *args, "--state", str(state_dir)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"kubesim {' '.join(args)}: {proc.stdout}{proc.stderr}"

    kubesim_cli("up", "--port", "0", "--nodes", "1", "--node-monitor-grace", "4s")
    try:
        api = client.Client.from_state(state_dir)
        api.create("namespaces", {"metadata": {"name": "roll"}})
        body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "r"}, "spec": {
            "replicas": 3, "serviceName": "r", "selector": {"matchLabels": {"app": "r"}},
            "podManagementPolicy": "Parallel",  # quick start; the rolling update is one pod at a time regardless
            "template": {"metadata": {"labels": {"app": "r"}}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                "readinessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 1,
                                                   "periodSeconds": 1}}]}}}}
        api.create("statefulsets", body, "roll")
        first = ready(api, "roll", "r", 3)
        _, rv = api.list("pods", "roll")
        stream = api.watch("pods", "roll", resource_version=rv, timeout_seconds=int(WAIT))
        api.patch("statefulsets", "r", {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}, "roll")
        deleted = next((pod["metadata"]["name"] for etype, pod in stream if etype == "DELETED"), None)
        stream.close()
        assert deleted == "r-2", "the rollout starts with the highest ordinal"
        control_plane = int(state.read_state(state.Layout(state_dir))["components"]["apiserver"]["pid"])
        os.kill(control_plane, signal.SIGKILL)
        kubesim_cli("up")
        api = client.Client.from_state(state_dir)

        def rolled_out() -> Obj | None:
            sts = api.get("statefulsets", "r", "roll")
            s = sts.get("status") or {}
            done = (s.get("observedGeneration") == sts["metadata"]["generation"] and s.get("updatedReplicas") == 3
                    and s.get("readyReplicas") == 3 and s.get("currentRevision") == s.get("updateRevision"))
            return s if done else None

        status = wait_for("the rollout to finish after the restart", rolled_out, timeout=60)
        assert status["updateRevision"] != first["currentRevision"]
        pods = api.list("pods", "roll")[0]
        assert sorted(p["metadata"]["name"] for p in pods) == ["r-0", "r-1", "r-2"]
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {status["updateRevision"]}
        revisions = sorted(r["metadata"]["name"] for r in api.list("controllerrevisions", "roll")[0])
        assert revisions == sorted([first["currentRevision"], status["updateRevision"]])
    finally:
        subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state_dir), "--grace", "5"],
                       capture_output=True, text=True, timeout=120, check=False)
