"""The kind cluster before anything exists: what it refuses, and the runtime commands it builds.

Everything that needs a cluster runs against the kind/docker stand-ins in
tests/integration/test_kind_standin.py; here nothing is ever created.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.clusters import base, kind

STANDINS = Path(__file__).resolve().parents[2] / "tests" / "standins"


def test_without_kind_on_path_start_is_unavailable_naming_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cluster = kind.KindCluster(work_dir=tmp_path)
    with pytest.raises(base.ClusterUnavailable) as caught, base.running(cluster):
        pytest.fail("the body must not run")
    assert str(caught.value) == ("kind is not installed (no `kind` on PATH): install kind v0.33.0 "
                                 "(https://kind.sigs.k8s.io/docs/user/quick-start/#installation) or pass --kind-path")
    assert not (tmp_path / ".pytest-kind").exists(), "nothing may be created"


def test_without_a_docker_daemon_start_is_unavailable_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([str(STANDINS), str(Path(sys.executable).parent)]))
    monkeypatch.setenv("KIND_STANDIN_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_STANDIN_DAEMON", "down")
    cluster = kind.KindCluster(work_dir=tmp_path)
    with pytest.raises(base.ClusterUnavailable, match=r"^kind runs its nodes in Docker, and the Docker daemon is not "
                                                      r"running or not reachable \(Cannot connect"):
        cluster.start()
    cluster.stop()
    assert not (tmp_path / ".pytest-kind").exists()
    assert not (tmp_path / "state" / "clusters").exists()


def test_kind_offers_node_crash_and_container_kill_but_not_power_loss(tmp_path: Path) -> None:
    cluster = kind.KindCluster(work_dir=tmp_path)
    assert cluster.capabilities == frozenset({"node-crash", "kill-container"})
    assert cluster.reach == "auto"
    assert cluster.context == "kind-ckpt-chaos"
    assert cluster.kubeconfig == (tmp_path / ".pytest-kind" / "ckpt-chaos" / "kubeconfig").resolve()
    with pytest.raises(base.ClusterUnavailable, match="cannot do power-loss"):
        cluster.power_loss("ckpt-chaos-worker")
    with pytest.raises(base.ClusterError, match="not started"):
        cluster.crash_node("ckpt-chaos-worker")


def test_the_container_is_found_by_the_labels_the_kubelet_sets() -> None:
    argv = kind.crictl_ps("ns", "ckpt-1", "uid-1", "writer")
    assert argv[:5] == ["crictl", "ps", "--quiet", "--no-trunc", "--state"]
    labels = [argv[i + 1] for i, word in enumerate(argv) if word == "--label"]
    assert labels == ["io.kubernetes.pod.namespace=ns", "io.kubernetes.pod.name=ckpt-1",
                      "io.kubernetes.pod.uid=uid-1", "io.kubernetes.container.name=writer"]


@pytest.mark.parametrize(("signal", "argv"), [
    ("KILL", ["crictl", "stop", "--timeout", "0", "abc"]),
    ("TERM", ["crictl", "stop", "--timeout", "45", "abc"]),
    ("HUP", ["ctr", "-n", "k8s.io", "task", "kill", "--signal", "SIGHUP", "abc"]),
    ("USR1", ["ctr", "-n", "k8s.io", "task", "kill", "--signal", "SIGUSR1", "abc"]),
])
def test_each_signal_goes_through_the_runtime_command_that_delivers_it(signal: str, argv: list[str]) -> None:
    assert kind.runtime_signal("abc", signal, 45) == argv


def test_collect_logs_writes_down_a_failure_instead_of_raising(tmp_path: Path) -> None:
    cluster = kind.KindCluster(work_dir=tmp_path)
    cluster._kind_bin = str(tmp_path / "no-such-kind")
    cluster.collect_logs(tmp_path / "logs", "chaos-x")
    assert "FileNotFoundError" in (tmp_path / "logs" / "kind-export-logs.failed.txt").read_text()
