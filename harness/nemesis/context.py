"""What a nemesis aimed at a StatefulSet may use: the API, the cluster's capabilities, the set.

One frozen value handed to every nemesis factory, so a nemesis never reaches for anything the
scenario did not give it (and tests can build one without a cluster).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from harness.clusters import base as cluster_base
from harness.kube import client as kube_client


@dataclasses.dataclass(frozen=True)
class SetContext:
    api: kube_client.ApiClient
    cluster: cluster_base.Cluster
    namespace: str
    statefulset: str
    replicas: int
    #: the file the load and probe follow; a heal is complete only once it names the new pod
    endpoints_file: Path
    #: every wait of a heal ends by this deadline, with a message naming what it waited for
    heal_timeout_s: float = 180.0
    progress: Callable[[str], None] = lambda _line: None

    def pod(self, ordinal: int) -> str:
        return f"{self.statefulset}-{ordinal}"

    def ordinal_of_pod(self, name: str) -> int | None:
        prefix = f"{self.statefulset}-"
        suffix = name[len(prefix):] if name.startswith(prefix) else ""
        return int(suffix) if suffix.isdigit() and suffix == str(int(suffix)) else None
