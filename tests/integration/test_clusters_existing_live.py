"""An existing cluster (here: a part-1 kubesim API server) through its kubeconfig only."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clusters import base, existing

pytestmark = pytest.mark.kubesim


def test_existing_cluster_answers_and_describes_itself(kubesim_kubeconfig: Path) -> None:
    cluster = existing.ExistingCluster(kubeconfig_path=kubesim_kubeconfig)
    with base.running(cluster):
        described = cluster.describe()
        assert described["kind"] == "existing"
        assert str(described["server"]).startswith("https://127.0.0.1:")
        assert str(described["version"]).startswith("v1.")
        assert cluster.context == existing.current_context(kubesim_kubeconfig) is not None
        assert isinstance(cluster.nodes, tuple)
    assert kubesim_kubeconfig.exists(), "an existing cluster is never torn down by the harness"


def test_existing_cluster_follows_the_kubeconfig_variable(kubesim_kubeconfig: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubesim_kubeconfig))
    cluster = existing.ExistingCluster()
    cluster.start()
    assert cluster.kubeconfig == kubesim_kubeconfig


def test_unknown_context_on_a_live_cluster_is_one_line(kubesim_kubeconfig: Path) -> None:
    with pytest.raises(base.ClusterError, match=r"^context 'kind-ckpt' is not in .*; pass --context NAME$"):
        existing.ExistingCluster(kubeconfig_path=kubesim_kubeconfig, context_name="kind-ckpt").start()
