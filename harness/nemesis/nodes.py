"""Node faults: drain, cordon, and a node crash (optionally with its pods force-deleted).

Targets are node names (a schedule's ``node-of:N`` resolves to the node ordinal N runs on).
``affected`` lists the ordinals whose pods are on the node when the fault starts: those are the
ones the scenario expects unavailable, and the ones asked to resume after the heal.

* ``drain``: cordon + evict the run's pods through the Eviction API (PDB 429s retried until the
  deadline, as ``kubectl drain``); heal = uncordon and wait for a new writer on every evicted
  ordinal. A local-path (``standard``) ordinal stays Pending until the uncordon — its PV is
  pinned to the node; a ``shared``-class ordinal moves to another node at once.
* ``cordon``: unschedulable only; nothing is evicted, so nothing may become unavailable.
* ``node-crash`` (cluster capability): the node's kubelet and containers die at once; with
  ``force_delete`` the run's pods on it are then force-deleted (what an operator does to get a
  StatefulSet going again), so a shared-class ordinal comes back elsewhere while a local-path
  one waits for its node. Heal = restore the node and wait for a new writer on every hit ordinal.
* ``power-loss`` (cluster capability): the node crashes as above *and* its volumes drop every
  change never made durable (on the embedded cluster: the ``lazy`` storage class, whose volumes
  are mounted through kubesim's lazy file system). What was dropped is noted with the heal.
  Heal = restore the node (the reboot: its volumes are mounted again) and wait for a new writer
  on every hit ordinal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from harness.clusters import base as cluster_base
from harness.kube import nodes as kube_nodes
from harness.kube import pods as kube_pods
from harness.nemesis import base, context, serving

DRAIN: Final = "drain"
CORDON: Final = "cordon"
NODE_CRASH: Final = "node-crash"
POWER_LOSS: Final = "power-loss"


class _NodeFault:
    name: str

    def __init__(self, ctx: context.SetContext) -> None:
        self._ctx = ctx
        self._selector = f"statefulset.kubernetes.io/pod-name in ({','.join(ctx.pod(o) for o in range(ctx.replicas))})"
        self._hit: dict[str, dict[int, str | None]] = {}
        #: recorded with the heal (harness.nemesis.base.fault): proof of what the fault did
        self.notes: dict[str, object] = {}

    def _on_node(self, node: str) -> list[kube_nodes.PodRef]:
        try:
            if not kube_nodes.exists(self._ctx.api, node):
                raise base.NemesisError(f"{self.name}: no node {node!r} in the cluster")
            return kube_nodes.pods_on_node(self._ctx.api, self._ctx.namespace, node, self._selector)
        except kube_nodes.NodeError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None

    def affected(self, targets: Sequence[str]) -> list[int]:
        ordinals = []
        for node in targets:
            for pod in self._on_node(node):
                ordinal = self._ctx.ordinal_of_pod(pod.name)
                if ordinal is not None:
                    ordinals.append(ordinal)
        return sorted(ordinals)

    def _remember(self, node: str) -> list[int]:
        """The ordinals on ``node`` and their writers' epochs, before the fault."""
        hit = self.affected([node])
        self._hit[node] = serving.epochs(self._ctx.endpoints_file, hit)
        return hit

    def _await_back(self, node: str) -> None:
        before = self._hit.pop(node, {})
        serving.await_new_writers(self.name, self._ctx.endpoints_file, before, timeout=self._ctx.heal_timeout_s)
        if before:
            self._ctx.progress(f"back: ordinals {sorted(before)} after {self.name} of {node}")


class Drain(_NodeFault):
    name = DRAIN

    def affected(self, targets: Sequence[str]) -> list[int]:
        hit = super().affected(targets)
        if not hit:
            raise base.NemesisError(f"{self.name}: node(s) {', '.join(targets)} hold none of "
                                    f"{self._ctx.namespace}/{self._ctx.statefulset}'s pods: nothing to drain")
        return hit

    def inject(self, targets: Sequence[str]) -> None:
        for node in targets:
            self._remember(node)
            try:
                done = kube_nodes.drain(self._ctx.api, self._ctx.namespace, node, self._selector,
                                        timeout=self._ctx.heal_timeout_s, progress=self._ctx.progress)
            except kube_nodes.NodeError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self.notes = {"evicted": [p.name for p in done.evicted], "refused_by_budget": done.refused}
            self._ctx.progress(f"drained {node}: {', '.join(p.name for p in done.evicted) or 'none of our pods'} "
                               f"evicted ({done.refused} evictions refused by the disruption budget first)")

    def heal(self, targets: Sequence[str]) -> None:
        for node in targets:
            self.notes["while_cordoned"] = self._placement(node)
            try:
                kube_nodes.set_unschedulable(self._ctx.api, node, False)
            except kube_nodes.NodeError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._ctx.progress(f"uncordoned {node}")
            self._await_back(node)

    def _placement(self, node: str) -> dict[str, str]:
        """Where each drained ordinal's pod was just before the uncordon: Pending, or which node."""
        seen: dict[str, str] = {}
        for ordinal in self._hit.get(node, {}):
            state = kube_pods.read_pod(self._ctx.api, self._ctx.namespace, self._ctx.pod(ordinal))
            seen[str(ordinal)] = "no pod" if state is None else (state.node or "Pending (unscheduled)")
        return seen


class Cordon(_NodeFault):
    name = CORDON

    def affected(self, targets: Sequence[str]) -> list[int]:
        for node in targets:
            self._on_node(node)  # refuses an unknown node before anything changes
        return []

    def inject(self, targets: Sequence[str]) -> None:
        for node in targets:
            try:
                kube_nodes.set_unschedulable(self._ctx.api, node, True)
            except kube_nodes.NodeError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None

    def heal(self, targets: Sequence[str]) -> None:
        for node in targets:
            try:
                kube_nodes.set_unschedulable(self._ctx.api, node, False)
            except kube_nodes.NodeError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None


class NodeCrash(_NodeFault):
    name = NODE_CRASH

    def __init__(self, ctx: context.SetContext, *, force_delete: bool) -> None:
        super().__init__(ctx)
        self._force_delete = force_delete
        self._crashed: set[str] = set()

    def _take_down(self, node: str) -> tuple[str, str]:
        """Crash ``node``; returns what happened for the progress line: the verb, and what to add after."""
        self._ctx.cluster.crash_node(node)
        return "crashed", ""

    def inject(self, targets: Sequence[str]) -> None:
        for node in targets:
            pods = self._on_node(node)
            self._remember(node)
            try:
                verb, detail = self._take_down(node)
            except cluster_base.ClusterError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._crashed.add(node)
            self._ctx.progress(f"{verb} node {node} ({', '.join(p.name for p in pods) or 'none of our pods'} on it)"
                               f"{detail}")
            if self._force_delete:
                for pod in pods:
                    try:
                        kube_pods.delete_pod(self._ctx.api, self._ctx.namespace, pod.name, grace_seconds=0)
                    except kube_pods.PodError as exc:
                        raise base.NemesisError(f"{self.name}: {exc}") from None
                    self._ctx.progress(f"force-deleted {pod.name} from the crashed node")

    def heal(self, targets: Sequence[str]) -> None:
        for node in targets:
            if node in self._crashed:
                try:
                    self._ctx.cluster.restore_node(node)
                except cluster_base.ClusterError as exc:
                    raise base.NemesisError(f"{self.name}: {exc}") from None
                self._crashed.discard(node)
                self._ctx.progress(f"restored node {node}")
            self._await_back(node)


class PowerLoss(NodeCrash):
    """A node crash that also drops what the node's volumes never made durable (cluster capability
    ``power-loss``); the heal (restore, new writers) is the crash's."""

    name = POWER_LOSS

    def __init__(self, ctx: context.SetContext) -> None:
        super().__init__(ctx, force_delete=False)

    def _take_down(self, node: str) -> tuple[str, str]:
        dropped = {str(k): int(v) for k, v in self._ctx.cluster.power_loss(node).items()}
        self.notes = {"node": node, "dropped": dict(dropped)}  # recorded with this fault's heal
        said = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(dropped.items()) if v) or "nothing"
        return "cut the power of", f"; its volumes dropped what was not durable: {said}"


def build_drain(ctx: context.SetContext, options: Mapping[str, object]) -> Drain:
    del options
    return Drain(ctx)


def build_cordon(ctx: context.SetContext, options: Mapping[str, object]) -> Cordon:
    del options
    return Cordon(ctx)


def build_node_crash(ctx: context.SetContext, options: Mapping[str, object]) -> NodeCrash:
    return NodeCrash(ctx, force_delete=bool(options.get("force_delete", False)))


def build_power_loss(ctx: context.SetContext, options: Mapping[str, object]) -> PowerLoss:
    del options
    return PowerLoss(ctx)
