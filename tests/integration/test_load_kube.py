"""Load a StatefulSet through the Kubernetes API (the embedded cluster's API server).

Only kubesim's API server is used: the StatefulSet and its pods are created through the
API with their status (phase, podIP) patched in, the way a kubelet would report them, and
the writers run as local processes listening on those pod IPs. That exercises exactly what
the harness does on any cluster: resolve ordinals through the API, follow pod changes with
a watch, rewrite the endpoints file, and load what it points at.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity
from kubernetes import client as k8s

from harness import checkers, history, ops, store
from harness.kube import client
from harness.kube import endpoints as kube_endpoints
from harness.load import endpoints, local

pytestmark = [pytest.mark.slow, pytest.mark.kubesim, pytest.mark.timeout(120)]

NS = "default"


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "kubesim"
    up = subprocess.run(
        [sys.executable, "-m", "kubesim", "up", "--state", str(state), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    try:
        if up.returncode != 0:
            pytest.skip(f"the embedded cluster's API server does not start here: {up.stderr.strip()[-300:]}")
        yield state / "kubeconfig"
    finally:
        subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state)],
                       capture_output=True, timeout=60, check=False)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def create_statefulset(api: k8s.ApiClient, port: int, pod_ips: dict[int, str]) -> None:
    k8s.AppsV1Api(api).create_namespaced_stateful_set(NS, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ckpt"},
        "spec": {
            "serviceName": "ckpt", "replicas": len(pod_ips), "selector": {"matchLabels": {"app": "ckpt"}},
            "template": {
                "metadata": {"labels": {"app": "ckpt"}},
                "spec": {"containers": [{"name": "writer", "image": "ckpt-writer",
                                         "ports": [{"containerPort": port, "name": "http"}]}]},
            },
        },
    })
    core = k8s.CoreV1Api(api)
    for ordinal, ip in pod_ips.items():
        core.create_namespaced_pod(NS, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"ckpt-{ordinal}", "labels": {"app": "ckpt"}},
            "spec": {"containers": [{"name": "writer", "image": "ckpt-writer"}]},
        })
        set_pod_ip(api, ordinal, ip)


def set_pod_ip(api: k8s.ApiClient, ordinal: int, ip: str) -> None:
    k8s.CoreV1Api(api).patch_namespaced_pod_status(
        f"ckpt-{ordinal}", NS, {"status": {"phase": "Running", "podIP": ip}}
    )


def await_endpoints(path: Path, expected: dict[int, str]) -> None:
    last: list[object] = [None]

    def matches() -> bool:
        try:
            last[0] = dict(endpoints.read(path).urls)
        except endpoints.EndpointsError as exc:
            last[0] = exc
        return last[0] == expected

    def give_up(state: tenacity.RetryCallState) -> None:
        raise AssertionError(f"endpoints file never became {expected}; last: {last[0]}")

    tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda ok: not ok), wait=tenacity.wait_fixed(0.05),
        stop=tenacity.stop_before_delay(10), retry_error_callback=give_up,
    )(matches)


def test_endpoints_file_follows_pod_ip_changes_and_deletions(tmp_path: Path, kubeconfig: Path) -> None:
    api = client.new_api_client(kubeconfig)
    create_statefulset(api, 8080, {0: "127.0.9.1", 1: "127.0.9.2"})
    path = tmp_path / "endpoints.json"
    with kube_endpoints.EndpointsPublisher(api, NS, "ckpt", path, mode="pod-ip"):
        await_endpoints(path, {0: "http://127.0.9.1:8080", 1: "http://127.0.9.2:8080"})
        set_pod_ip(api, 1, "127.0.9.7")
        await_endpoints(path, {0: "http://127.0.9.1:8080", 1: "http://127.0.9.7:8080"})
        k8s.CoreV1Api(api).delete_namespaced_pod("ckpt-0", NS, grace_period_seconds=0)
        await_endpoints(path, {1: "http://127.0.9.7:8080"})


def test_harness_load_on_a_statefulset_records_a_checkable_run(tmp_path: Path, kubeconfig: Path) -> None:
    ips = {0: "127.0.9.1", 1: "127.0.9.2"}
    port = free_port(ips[0])
    writers = [
        local.LocalWriter(tmp_path / f"data-{o}", o, host=ip, port=port, log_dir=tmp_path / "logs")
        for o, ip in ips.items()
    ]
    try:
        for w in writers:
            w.start()
        create_statefulset(client.new_api_client(kubeconfig), port, ips)
        volumes = ",".join(f"{w.ordinal}={w.data_dir}" for w in writers)
        done = subprocess.run(
            [sys.executable, "-m", "harness", "load", "--statefulset", "ckpt", "-n", NS, "--kubeconfig",
             str(kubeconfig), "--users", "2", "--duration", "2s", "--size", "16KiB", "--volumes", volumes,
             "--keep-last", "0", "--out", str(tmp_path / "reports")],
            capture_output=True, text=True, timeout=90, check=False,
        )
    finally:
        for w in writers:
            w.stop()
    assert done.returncode == 0, done.stderr + done.stdout
    run = store.open_run(tmp_path / "reports" / "latest")
    assert run.info.cluster_kind == "existing"
    ops_ = run.history()
    pairs = history.pair(op for op in ops_ if op.f == ops.WRITE)
    assert {p.invoke.value["ordinal"] for p in pairs if p.outcome == "ok"} == {0, 1}  # type: ignore[index,call-overload]
    assert {p.invoke.value["url"] for p in pairs} == {f"http://{ip}:{port}" for ip in ips.values()}  # type: ignore[index,call-overload]
    verdict = checkers.check_durability(ops_, run.facts(), checkers.Expectations())
    assert verdict.valid is True, verdict.summary
