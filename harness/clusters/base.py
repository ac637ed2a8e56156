"""What a scenario needs from a cluster, whichever kind it is.

A scenario only ever talks to a cluster through its kubeconfig (the Kubernetes API) and to
pods through their endpoints, so a cluster is little more than "where is the kubeconfig, which
context, which nodes, and how do I reach a pod". Starting and stopping are the cluster's own
business: the embedded cluster runs processes, kind would create containers (pytest-kind), an
existing cluster is neither started nor stopped by us.

Faults only one kind of cluster can deliver (kubesim's ``node crash``, ``docker kill`` of a kind
node) are *capabilities*: a cluster lists the ones it offers and a scenario that needs one
skips, naming it, on a cluster that lacks it — never a silent pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal, Protocol, TypeVar, get_args

ClusterKind = Literal["embedded", "kind", "existing"]
CLUSTER_KINDS: tuple[ClusterKind, ...] = get_args(ClusterKind)

#: How the harness reaches pods (harness.kube.endpoints' modes, spelled out here so this
#: module stays free of the kubernetes client).
Reach = Literal["auto", "pod-ip", "port-forward"]

#: Faults beyond the Kubernetes API, each offered only by clusters that can deliver it for real:
#: ``node-crash`` stops a node's kubelet and everything it runs (restore starts it again),
#: ``kill-container`` sends a chosen signal to a container's processes through the runtime,
#: ``power-loss`` crashes a node *and* drops what its volumes never made durable.
Capability = Literal["node-crash", "kill-container", "power-loss"]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)


class ClusterError(Exception):
    """The cluster cannot be used; the message is one line that says what to fix.

    ``details`` holds what explains it (the tail of the cluster's logs), printed before the line.
    """

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class ClusterUnavailable(ClusterError):
    """This kind of cluster cannot run on this machine as it is (a missing component):
    scenarios skip with this message rather than fail."""


class Cluster(Protocol):
    """One cluster a scenario session runs against.

    ``kubeconfig``/``context`` are valid only after :meth:`start`. ``describe`` is what goes into
    run.json (no secrets: never the token or the kubeconfig's contents).
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> ClusterKind: ...

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def context(self) -> str | None: ...

    @property
    def nodes(self) -> tuple[str, ...]: ...

    @property
    def reach(self) -> Reach: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> Mapping[str, object]: ...

    def collect_logs(self, dest: Path, namespace: str | None) -> None:
        """Copy what ``kind export logs`` would give (control plane, kubelets, the namespace's
        container logs) into ``dest``; never raises for a log it cannot read."""
        ...

    # Capabilities: each raises ClusterUnavailable on a cluster that does not offer it.
    def crash_node(self, node: str) -> None: ...

    def restore_node(self, node: str) -> None: ...

    def kill_container(self, namespace: str, pod: str, container: str, signal: str) -> float:
        """Signal the container through the runtime; returns the wall-clock time the signal was sent,
        or the latest time known to precede it (never a later one: writes invoked before it were
        in flight at the signal if they completed after it)."""
        ...

    def power_loss(self, node: str) -> Mapping[str, int]:
        """Crash ``node`` and drop what its volumes never made durable; returns what was dropped (counts
        summed over its volumes: entries, files with un-durable data, ...). ``restore_node`` reboots it."""
        ...


def kubectl_args(cluster: Cluster) -> list[str]:
    """Arguments that point a kubectl subprocess at the same cluster (port-forwards)."""
    args = ["--kubeconfig", str(cluster.kubeconfig)]
    if cluster.context:
        args += ["--context", cluster.context]
    return args


def not_offered(cluster: Cluster, capability: Capability) -> ClusterUnavailable:
    """The error a capability method raises on a cluster that lacks it (scenarios skip on it)."""
    offered = ", ".join(sorted(cluster.capabilities)) or "none"
    why = missing_reason(cluster, capability)
    return ClusterUnavailable(
        f"the {cluster.kind} cluster {cluster.name} cannot do {capability} (it offers: {offered})"
        + (f": {why}" if why else ""))


def missing_reason(cluster: Cluster, capability: Capability) -> str | None:
    """Why a cluster that could offer ``capability`` does not on this machine (the embedded cluster's
    power-loss without FUSE), from its optional ``missing_reason(capability)``; None when it does not say."""
    why = getattr(cluster, "missing_reason", None)
    said = why(capability) if callable(why) else None
    return str(said) if said else None


def require(cluster: Cluster, capability: Capability) -> None:
    """Refuse (as :class:`ClusterUnavailable`) a scenario step this cluster cannot deliver."""
    if capability not in cluster.capabilities:
        raise not_offered(cluster, capability)


C = TypeVar("C", bound=Cluster)


@contextlib.contextmanager
def running(cluster: C) -> Iterator[C]:
    """Start ``cluster`` and stop it however the block ends (failure, Ctrl-C)."""
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
