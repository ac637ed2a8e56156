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
