"""infra/kind/cluster.yaml, checked offline against kind's v1alpha4 config schema.

kind decodes its config strictly (an unknown field is an error), so the allowed keys below are
the yaml tags of sigs.k8s.io/kind pkg/apis/config/v1alpha4/types.go. kind itself cannot run
here (no Docker), so this is as far as the file can be checked without a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "infra" / "kind" / "cluster.yaml"

CLUSTER_KEYS = {
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
NODE_KEYS = {
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "gpus",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
MOUNT_KEYS = {"containerPath", "hostPath", "readOnly", "selinuxRelabel", "propagation"}
PINNED_IMAGE = re.compile(r"kindest/node:v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)@sha256:[0-9a-f]{64}")


def load() -> dict[str, Any]:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert isinstance(config, dict)
    return config


def test_kind_config_uses_only_fields_kind_knows() -> None:
    config = load()
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert set(config) <= CLUSTER_KEYS
    for node in config["nodes"]:
        assert set(node) <= NODE_KEYS, node
        assert node["role"] in ("control-plane", "worker")
        for mount in node.get("extraMounts", []):
            assert set(mount) <= MOUNT_KEYS
            assert Path(mount["hostPath"]).is_absolute()
        for key, value in node.get("labels", {}).items():
            assert isinstance(key, str)
            assert isinstance(value, str), f"label {key} must be a string for kind's map[string]string"


def test_one_control_plane_and_three_workers() -> None:
    roles = [node["role"] for node in load()["nodes"]]
    assert roles.count("control-plane") == 1
    assert roles.count("worker") == 3


def test_every_node_image_is_pinned_by_digest_to_one_recent_kubernetes() -> None:
    images = {node["image"] for node in load()["nodes"]}
    assert len(images) == 1, "all nodes run the same Kubernetes"
    (image,) = images
    match = PINNED_IMAGE.fullmatch(image)
    assert match is not None, f"{image} is not kindest/node:vX.Y.Z@sha256:<digest>"
    # persistentVolumeClaimRetentionPolicy and the pod-index label are GA from 1.32
    assert (int(match["major"]), int(match["minor"])) >= (1, 32)


def _patch(kind: str) -> dict[str, Any]:
    """The cluster-wide kubeadm config patch of ``kind`` (ClusterConfiguration, KubeletConfiguration)."""
    found = [doc for doc in (yaml.safe_load(text) for text in load().get("kubeadmConfigPatches", []))
             if isinstance(doc, dict) and doc.get("kind") == kind]
    assert len(found) == 1, f"want exactly one {kind} patch in {CLUSTER_YAML}"
    return found[0]


def _args(component: dict[str, Any]) -> dict[str, str]:
    """kubeadm v1beta4 extraArgs (a list of name/value pairs) as a dict; a repeated name is an error."""
    pairs = [(str(a["name"]), str(a["value"])) for a in component.get("extraArgs", [])]
    assert len({n for n, _ in pairs}) == len(pairs), pairs
    return dict(pairs)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    assert match is not None, f"{text!r} is not a duration"
    return float(match[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match[2]]


def test_kind_runs_with_the_embedded_clusters_periods() -> None:
    """One set of periods for both clusters: what kubesim runs scenarios with, kind is configured with."""
    from harness.clusters import embedded

    periods = {flag: _seconds(value) for flag, value in embedded.DEFAULT_PERIODS.items()}
    cluster = _patch("ClusterConfiguration")
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4", "extraArgs below are v1beta4 name/value lists"
    manager, apiserver = _args(cluster["controllerManager"]), _args(cluster["apiServer"])
    kubelet = _patch("KubeletConfiguration")
    assert kubelet["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    grace = _seconds(manager["node-monitor-grace-period"])
    assert grace == periods["--node-monitor-grace"]
    assert _seconds(manager["node-monitor-period"]) == periods["--node-monitor-period"]
    assert _seconds(kubelet["nodeStatusUpdateFrequency"]) == periods["--node-status-interval"]
    assert kubelet["nodeLeaseDurationSeconds"] == grace, "kubesim's lease lasts the grace period"
    tolerations = {int(apiserver["default-not-ready-toleration-seconds"]),
                   int(apiserver["default-unreachable-toleration-seconds"])}
    assert tolerations == {int(periods["--toleration-seconds"])}
    # kind can only cap the back-off (KubeletCrashLoopBackOffMax); a cap below upstream's initial 10s
    # lowers the initial to the cap, so kubesim's base must be min(10s, cap)
    cap = _seconds(kubelet["crashLoopBackOff"]["maxContainerRestartPeriod"])
    assert 1 <= cap <= 300, "the kubelet accepts 1s..300s"
    assert cap == periods["--crashloop-max"]
    assert periods["--crashloop-base"] == min(10.0, cap)
    assert set(embedded.DEFAULT_PERIODS) == {"--node-monitor-grace", "--node-monitor-period", "--node-status-interval",
                                             "--toleration-seconds", "--crashloop-base", "--crashloop-max"}, \
        "a new period needs its kind counterpart here"
    assert "featureGates" not in load(), "no alpha gates: the kind cluster must stay one nightly CI can create"
