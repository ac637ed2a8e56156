"""Resolving a StatefulSet's pods to ordinals and ports (the pure part of harness.kube.endpoints)."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

import pytest
from kubernetes import client as k8s

from harness.kube import endpoints


def pod(name: str, *, ip: str | None = "127.0.1.1", phase: str = "Running", labels: dict[str, str] | None = None,
        deleting: bool = False) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name=name, uid=f"uid-{name}", labels=labels,
            deletion_timestamp=datetime.datetime.now(datetime.UTC) if deleting else None,
        ),
        status=k8s.V1PodStatus(pod_ip=ip, phase=phase),
    )


def sts(*ports: k8s.V1ContainerPort) -> k8s.V1StatefulSet:
    return k8s.V1StatefulSet(
        metadata=k8s.V1ObjectMeta(name="ckpt"),
        spec=k8s.V1StatefulSetSpec(
            service_name="ckpt",
            selector=k8s.V1LabelSelector(match_labels={"app": "ckpt"}),
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="w", image="x", ports=list(ports))])
            ),
        ),
    )


def test_ordinal_comes_from_pod_index_label_first_then_name() -> None:
    assert endpoints.pod_ordinal(pod("ckpt-3"), "ckpt") == 3
    assert endpoints.pod_ordinal(pod("ckpt-3", labels={endpoints.POD_INDEX_LABEL: "7"}), "ckpt") == 7
    assert endpoints.pod_ordinal(pod("other-3"), "ckpt") is None
    assert endpoints.pod_ordinal(pod("ckpt-x"), "ckpt") is None
    # a StatefulSet named ckpt must not claim ckpt-big-0's pods
    assert endpoints.pod_ordinal(pod("ckpt-big-0"), "ckpt") is None


def test_serving_port_prefers_the_port_named_http() -> None:
    assert endpoints.serving_port(sts(k8s.V1ContainerPort(container_port=9000, name="metrics"),
                                      k8s.V1ContainerPort(container_port=8080, name="http"))) == 8080
    assert endpoints.serving_port(sts(k8s.V1ContainerPort(container_port=9000))) == 9000


def test_statefulset_without_ports_is_refused_with_a_fix() -> None:
    with pytest.raises(endpoints.KubeEndpointsError, match="declares no containerPort"):
        endpoints.serving_port(sts())


def test_targets_skip_pods_being_deleted_and_foreign_pods() -> None:
    found = endpoints.targets(
        [pod("ckpt-0"), pod("ckpt-1", deleting=True), pod("ckpt-2", ip=None, phase="Pending"), pod("db-0")], "ckpt"
    )
    assert sorted(found) == [0, 2]
    assert found[0].running
    assert found[0].ip == "127.0.1.1"
    assert not found[2].running


def test_tcp_reachable_tells_a_listening_port_from_a_closed_one() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert endpoints.tcp_reachable("127.0.0.1", port)
    assert not endpoints.tcp_reachable("127.0.0.1", port, timeout=0.2)


def fake_kubectl(tmp_path: Path, script: str) -> str:
    path = tmp_path / "kubectl"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_port_forward_reads_the_local_port_kubectl_picked_and_ends_by_pid(tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path, 'echo "Forwarding from 127.0.0.1:43210 -> 8080"\nexec sleep 60\n')
    target = endpoints.PodTarget(ordinal=0, name="ckpt-0", uid="u", ip="10.0.0.1", running=True)
    forward = endpoints.PortForward(target, "default", 8080, ["--context", "kind"], kubectl)
    try:
        assert forward.url == "http://127.0.0.1:43210"
        assert forward.alive()
    finally:
        forward.stop()
    assert not forward.alive()


def test_port_forward_that_fails_says_what_kubectl_said(tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path, 'echo "error: pods \\"ckpt-0\\" not found"\nexit 1\n')
    target = endpoints.PodTarget(ordinal=0, name="ckpt-0", uid="u", ip=None, running=True)
    with pytest.raises(endpoints.KubeEndpointsError, match="not found"):
        endpoints.PortForward(target, "default", 8080, [], kubectl)
