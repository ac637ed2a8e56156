"""StatefulSet operations as faults: scale down and back, rolling restart, partitioned update.

Targets name the set (a schedule's ``set``); anything else is refused.

* ``scale`` (option ``to``): scale to ``to`` replicas and wait until the removed ordinals' pods
  are gone; heal = scale back and wait for a new writer on every removed ordinal. Whether they
  get their old claims back is the set's ``whenScaled`` policy: Retain keeps them (the identity
  and durability checkers hold them to it), Delete gives fresh volumes (both checkers excuse
  exactly those ordinals, via :attr:`Scale.scaled_down`).
* ``rollout-restart``: ``kubectl rollout restart`` (a new template revision replaces every pod,
  highest ordinal first); heal = the rollout completes and every ordinal has a new writer.
* ``partitioned-update`` (option ``partition``): a restart with ``partition`` set, so only
  ordinals at or above it move; heal = those are updated, then the partition is lowered to 0 and
  the rest follow (the canary-then-everyone path of a real upgrade).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from harness import waiting
from harness.kube import pods as kube_pods
from harness.kube import statefulsets as kube_sets
from harness.nemesis import base, context, serving

SCALE: Final = "scale"
ROLLOUT_RESTART: Final = "rollout-restart"
PARTITIONED_UPDATE: Final = "partitioned-update"


class _SetFault:
    name: str

    def __init__(self, ctx: context.SetContext) -> None:
        self._ctx = ctx
        self._before: dict[int, str | None] = {}

    def _check(self, targets: Sequence[str]) -> None:
        wrong = [t for t in targets if t != self._ctx.statefulset]
        if wrong or not targets:
            raise base.NemesisError(f"{self.name}: targets must name the StatefulSet "
                                    f"{self._ctx.namespace}/{self._ctx.statefulset}, got {list(targets)}")

    def _all(self) -> list[int]:
        return list(range(self._ctx.replicas))

    def _rollout(self) -> None:
        try:
            line = kube_sets.wait_rollout(self._ctx.api, self._ctx.namespace, self._ctx.statefulset,
                                          timeout=self._ctx.heal_timeout_s)
        except kube_sets.StatefulSetError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None
        self._ctx.progress(f"rollout: {line}")


class Scale(_SetFault):
    name = SCALE

    def __init__(self, ctx: context.SetContext, to: int) -> None:
        super().__init__(ctx)
        if not 0 <= to < ctx.replicas:
            raise base.NemesisError(f"{SCALE}: option to={to} must be in 0..{ctx.replicas - 1} "
                                    f"(below the set's {ctx.replicas} replicas)")
        self._to = to
        self._removed: list[int] = []

    @property
    def scaled_down(self) -> Sequence[int]:
        return list(range(self._to, self._ctx.replicas))

    def affected(self, targets: Sequence[str]) -> list[int]:
        self._check(targets)
        return list(self.scaled_down)

    def inject(self, targets: Sequence[str]) -> None:
        self._check(targets)
        self._before = serving.epochs(self._ctx.endpoints_file, self.scaled_down)
        try:
            kube_sets.scale(self._ctx.api, self._ctx.namespace, self._ctx.statefulset, self._to)
        except kube_sets.StatefulSetError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None
        self._ctx.progress(f"scaled {self._ctx.statefulset} {self._ctx.replicas} -> {self._to}")
        for ordinal in self.scaled_down:
            pod = self._ctx.pod(ordinal)

            def gone(pod: str = pod) -> tuple[bool, str]:
                state = kube_pods.read_pod(self._ctx.api, self._ctx.namespace, pod)
                return state is None, "gone" if state is None else state.describe()

            try:
                waiting.until(f"pod {pod} to be removed by the scale-down", gone, timeout=self._ctx.heal_timeout_s,
                              interval=0.2)
            except (waiting.WaitTimeout, kube_pods.PodError) as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None

    def heal(self, targets: Sequence[str]) -> None:
        try:
            kube_sets.scale(self._ctx.api, self._ctx.namespace, self._ctx.statefulset, self._ctx.replicas)
        except kube_sets.StatefulSetError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None
        self._ctx.progress(f"scaled {self._ctx.statefulset} back to {self._ctx.replicas}")
        serving.await_new_writers(self.name, self._ctx.endpoints_file, self._before, timeout=self._ctx.heal_timeout_s)
        self._rollout()


class RolloutRestart(_SetFault):
    name = ROLLOUT_RESTART

    def __init__(self, ctx: context.SetContext, partition: int | None = None) -> None:
        super().__init__(ctx)
        if partition is not None and not 0 < partition < ctx.replicas:
            raise base.NemesisError(f"{PARTITIONED_UPDATE}: option partition={partition} must be in "
                                    f"1..{ctx.replicas - 1} (0 is a plain rollout-restart)")
        self._partition = partition
        if partition is not None:
            self.name = PARTITIONED_UPDATE

    def affected(self, targets: Sequence[str]) -> list[int]:
        self._check(targets)
        return self._all()

    def inject(self, targets: Sequence[str]) -> None:
        self._check(targets)
        self._before = serving.epochs(self._ctx.endpoints_file, self._all())
        try:
            stamp = kube_sets.restart(self._ctx.api, self._ctx.namespace, self._ctx.statefulset,
                                      partition=self._partition)
        except kube_sets.StatefulSetError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None
        where = f" (partition {self._partition})" if self._partition is not None else ""
        self._ctx.progress(f"restarted {self._ctx.statefulset} at {stamp}{where}")
        if self._partition is not None:
            # the canary: only ordinals >= partition move; the lower ones must keep their writers
            self._rollout()
            canary = {o: e for o, e in self._before.items() if o >= self._partition}
            serving.await_new_writers(self.name, self._ctx.endpoints_file, canary, timeout=self._ctx.heal_timeout_s)
            kept = serving.epochs(self._ctx.endpoints_file, range(self._partition))
            moved = [o for o in range(self._partition) if kept[o] != self._before.get(o)]
            if moved:
                raise base.NemesisError(f"{self.name}: ordinals {moved} below partition {self._partition} "
                                        "were replaced before the partition was lowered")

    def heal(self, targets: Sequence[str]) -> None:
        if self._partition is not None:
            try:
                kube_sets.set_partition(self._ctx.api, self._ctx.namespace, self._ctx.statefulset, 0)
            except kube_sets.StatefulSetError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._ctx.progress("partition lowered to 0: the remaining ordinals follow")
        self._rollout()
        serving.await_new_writers(self.name, self._ctx.endpoints_file, self._before, timeout=self._ctx.heal_timeout_s)


def build_scale(ctx: context.SetContext, options: Mapping[str, object]) -> Scale:
    to = options.get("to")
    if not isinstance(to, int):
        raise base.NemesisError(f"{SCALE}: option to (the replicas to scale down to) is required")
    return Scale(ctx, to)


def build_restart(ctx: context.SetContext, options: Mapping[str, object]) -> RolloutRestart:
    del options
    return RolloutRestart(ctx)


def build_partitioned(ctx: context.SetContext, options: Mapping[str, object]) -> RolloutRestart:
    partition = options.get("partition")
    if not isinstance(partition, int):
        raise base.NemesisError(f"{PARTITIONED_UPDATE}: option partition is required")
    return RolloutRestart(ctx, partition)
