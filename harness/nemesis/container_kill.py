"""Kill the writer container with a chosen signal, through the cluster's runtime.

Not an API delete: the pod object, its uid, its IP and its claim stay; the runtime signals the
container's processes (``kubesim node kill-container`` here, ``crictl`` inside a kind node) and
the kubelet restarts the container by its restart policy. ``KILL`` stops the writer mid-write
with no chance to finish anything; ``TERM`` is the clean shutdown path, where the writer must
answer (or refuse) every in-flight write before it exits. Heal = a new writer serves the
ordinal. Needs the cluster's ``kill-container`` capability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from harness.clusters import base as cluster_base
from harness.kube import stoplog
from harness.nemesis import base, context, serving

CONTAINER_KILL: Final = "container-kill"
SIGNALS: Final = ("KILL", "TERM", "INT", "QUIT", "HUP", "USR1", "USR2")
GRACEFUL_SIGNALS: Final = frozenset({"TERM", "INT"})
#: the writer's container in the StatefulSet's pod template (harness.deploy.manifests)
WRITER_CONTAINER: Final = "writer"


class ContainerKill:
    def __init__(self, ctx: context.SetContext, signal: str) -> None:
        if signal not in SIGNALS:
            raise base.NemesisError(f"{CONTAINER_KILL}: signal {signal!r} is not one of {', '.join(SIGNALS)}")
        self._ctx = ctx
        self._signal = signal
        self.name = f"{CONTAINER_KILL}-{signal.lower()}"
        #: the writer drains on TERM and INT (harness.workload.stopsignal): a graceful stop
        self.graceful = signal in GRACEFUL_SIGNALS
        self._before: dict[int, str | None] = {}
        #: recorded with the heal: when each target's signal was sent (wall clock), the line between
        #: writes in flight at the signal and writes sent after it
        self.notes: dict[str, dict[str, object]] = {}

    def _ordinal(self, target: str) -> int:
        ordinal = self._ctx.ordinal_of_pod(target)
        if ordinal is None or ordinal >= self._ctx.replicas:
            raise base.NemesisError(f"{self.name}: {target!r} is not a pod of {self._ctx.namespace}/"
                                    f"{self._ctx.statefulset} (0..{self._ctx.replicas - 1})")
        return ordinal

    def affected(self, targets: Sequence[str]) -> list[int]:
        return [self._ordinal(t) for t in targets]

    def inject(self, targets: Sequence[str]) -> None:
        hit = self.affected(targets)
        self._before = serving.epochs(self._ctx.endpoints_file, hit)
        signalled: dict[str, object] = {}
        self.notes = {"signalled_at": signalled}  # this fault's only: the nemesis is reused by the schedule
        for target in targets:
            try:
                signalled[target] = self._ctx.cluster.kill_container(self._ctx.namespace, target, WRITER_CONTAINER,
                                                                     self._signal)
            except cluster_base.ClusterError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._ctx.progress(f"sent SIG{self._signal} to {target}/{WRITER_CONTAINER}")

    def heal(self, targets: Sequence[str]) -> None:
        serving.await_new_writers(self.name, self._ctx.endpoints_file, self._before, timeout=self._ctx.heal_timeout_s)
        if self.graceful:
            # the stopped writer's own account of what it held: the shutdown checker judges exactly that
            for target in targets:
                account = stoplog.previous_account(self._ctx.api, self._ctx.namespace, target, WRITER_CONTAINER)
                key = "held_at_stop" if not isinstance(account, str) else "stop_account_missing"
                self.notes.setdefault(key, {})[target] = account
        self._ctx.progress(f"back: {', '.join(targets)} serve from a restarted writer")


def build(ctx: context.SetContext, options: Mapping[str, object]) -> ContainerKill:
    return ContainerKill(ctx, str(options.get("signal", "KILL")).upper())
