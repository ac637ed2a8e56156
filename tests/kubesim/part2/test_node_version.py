"""Nodes and the API server report one version, as kubectl shows them (A7, D2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

KUBECTL = Path(sys.executable).parent / "kubectl"


def _kubectl(cluster: Any, *args: str) -> str:
    proc = subprocess.run([str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), *args],
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def test_kubectl_shows_the_server_version_on_every_node(kubesim_cluster: Any) -> None:
    """D2: kubectl version's server gitVersion is every node's kubeletVersion (the VERSION column)."""
    server = json.loads(_kubectl(kubesim_cluster, "version", "-o", "json"))["serverVersion"]["gitVersion"]
    nodes = json.loads(_kubectl(kubesim_cluster, "get", "nodes", "-o", "json"))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(kubesim_cluster.nodes)
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {server}
    assert {n["status"]["nodeInfo"]["kubeProxyVersion"] for n in nodes} == {""}
    table = _kubectl(kubesim_cluster, "get", "nodes", "--no-headers")  # the server's Table: NAME ... VERSION
    assert {line.split()[-1] for line in table.splitlines()} == {server}
