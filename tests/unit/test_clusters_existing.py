"""An existing cluster: a wrong kubeconfig or context is one line before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clusters import base, existing

KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: b
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts:
- {name: a, context: {cluster: c, user: u}}
- {name: b, context: {cluster: c, user: u}}
"""


def test_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    cluster = existing.ExistingCluster(kubeconfig_path=tmp_path / "missing")
    with pytest.raises(base.ClusterError, match=r"kubeconfig .*missing does not exist") as caught:
        cluster.start()
    assert "\n" not in str(caught.value)


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    with pytest.raises(base.ClusterError, match=r"context 'kind-x' is not in .* \(contexts: a, b\)"):
        existing.ExistingCluster(kubeconfig_path=path, context_name="kind-x").start()


def test_unreachable_server_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    with pytest.raises(base.ClusterError, match=r"cannot reach the API server at https://127.0.0.1:9"):
        existing.ExistingCluster(kubeconfig_path=path, context_name="a").start()


def test_default_kubeconfig_follows_the_kubeconfig_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'first'}:{tmp_path / 'second'}")
    assert existing.ExistingCluster().kubeconfig == tmp_path / "first"


def test_current_context_is_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    assert existing.current_context(path) == "b"
    path.write_text("contexts: []\n")
    assert existing.current_context(path) is None
    assert existing.current_context(tmp_path / "absent") is None
