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


def embedded_timing(env: Mapping[str, str] = os.environ) -> str:
    """kubesim's timing profile: ``upstream`` unless HARNESS_KUBESIM_TIMING says ``fast``."""
    raw = env.get(embedded.ENV_TIMING, embedded.TIMING) or embedded.TIMING
    if raw not in embedded.TIMINGS:
        raise base.ClusterError(f"{embedded.ENV_TIMING}={raw!r} is not one of {', '.join(embedded.TIMINGS)}")
    return raw


#: optional checkpoint libraries the kind session's writer image is built with (``torch,orbax``)
ENV_WRITER_FORMATS = "HARNESS_WRITER_FORMATS"


def writer_image_formats(env: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The format layers of the writer image a kind session builds (none unless HARNESS_WRITER_FORMATS)."""
    from harness.deploy import image

    try:
        return image.parse_formats(env.get(ENV_WRITER_FORMATS))
    except image.ImageError as exc:
        raise base.ClusterError(f"{ENV_WRITER_FORMATS}: {exc}") from None


def make(chosen: settings.ClusterSettings, *, state_dir: Path) -> base.Cluster:
    """``state_dir`` holds the embedded cluster's store, volumes and logs (unused by other kinds)."""
    if chosen.kind == "embedded":
        return embedded.EmbeddedCluster(state_dir=state_dir, network=embedded_network(),
                                         timing=embedded_timing())
    if chosen.kind == "kind":
        return kind.KindCluster(name=chosen.kind_name, kind_path=chosen.kind_path, keep=chosen.keep_cluster,
                                image_formats=writer_image_formats())
    return existing.ExistingCluster(kubeconfig_path=chosen.kubeconfig, context_name=chosen.context)
