"""Build the session's cluster from the resolved settings (the one place that knows every kind)."""

from __future__ import annotations

from pathlib import Path

from harness import settings
from harness.clusters import base, embedded, existing, kind


def make(chosen: settings.ClusterSettings, *, state_dir: Path) -> base.Cluster:
    """``state_dir`` holds the embedded cluster's store, volumes and logs (unused by other kinds)."""
    if chosen.kind == "embedded":
        return embedded.EmbeddedCluster(state_dir=state_dir)
    if chosen.kind == "kind":
        return kind.KindCluster(name=chosen.kind_name, kind_path=chosen.kind_path, keep=chosen.keep_cluster)
    return existing.ExistingCluster(kubeconfig_path=chosen.kubeconfig, context_name=chosen.context)
