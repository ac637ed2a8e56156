"""The embedded cluster started and stopped through kubesim's CLI: nodes come up, nothing outlives stop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.clusters import base, embedded
from harness.kube import client as kube_client

pytestmark = [pytest.mark.slow, pytest.mark.kubesim, pytest.mark.timeout(120)]


def recorded_pids(state_dir: Path) -> list[int]:
    data = json.loads((state_dir / "state.json").read_text())
    return [int(c["pid"]) for c in data["components"].values()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_embedded_cluster_comes_up_with_its_nodes_and_stop_ends_every_process(tmp_path: Path) -> None:
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path / "state", node_count=2)
    try:
        with base.running(cluster):
            assert len(cluster.nodes) == 2
            pids = recorded_pids(cluster.state_dir)
            assert len(pids) == 4, "control plane, two kubelets and the network's holder"
            assert all(alive(p) for p in pids)
            assert (cluster.network, cluster.reach) == ("private", "port-forward")
            api = kube_client.new_api_client(cluster.kubeconfig)
            try:
                assert kube_client.server_version(api).startswith("v1.")
            finally:
                kube_client.close(api)
            assert cluster.describe()["periods"] == dict(embedded.DEFAULT_PERIODS)
    except base.ClusterUnavailable as exc:
        pytest.skip(str(exc))
    assert not [p for p in pids if alive(p)], "kubesim processes outlived stop()"
