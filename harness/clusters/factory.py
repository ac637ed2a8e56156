"""Build the session's cluster from the resolved settings (the one place that knows every kind)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from harness import settings
from harness.clusters import base, embedded, existing, kind


def embedded_network(env: Mapping[str, str] = os.environ) -> embedded.Network:
    """The embedded cluster's network: ``private`` unless HARNESS_KUBESIM_NETWORK says ``host``."""
    raw = env.get(embedded.ENV_NETWORK, "private") or "private"
    if raw not in embedded.NETWORKS:
        raise base.ClusterError(f"{embedded.ENV_NETWORK}={raw!r} is not one of {', '.join(embedded.NETWORKS)}")
    return raw


def make(chosen: settings.ClusterSettings, *, state_dir: Path) -> base.Cluster:
    """``state_dir`` holds the embedded cluster's store, volumes and logs (unused by other kinds)."""
    if chosen.kind == "embedded":
        return embedded.EmbeddedCluster(state_dir=state_dir, network=embedded_network())
    if chosen.kind == "kind":
        return kind.KindCluster(name=chosen.kind_name, kind_path=chosen.kind_path, keep=chosen.keep_cluster)
    return existing.ExistingCluster(kubeconfig_path=chosen.kubeconfig, context_name=chosen.context)
