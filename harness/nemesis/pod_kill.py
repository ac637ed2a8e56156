"""Delete a StatefulSet pod mid-write; heal = the ordinal is back, Ready, and reachable.

``pod-kill`` deletes each target pod with grace period 0 (UID precondition: only the pod we
saw): the API object goes at once and the kubelet kills the container without a drain, so the
writer dies in the middle of whatever it was writing. ``pod-delete`` is the graceful delete a
rollout or an operator does: the pod's own grace period, SIGTERM first, so the writer finishes
(or refuses) what is in flight before it exits. The StatefulSet controller then creates
the ordinal again with the same name and the same claim. Heal waits until that replacement (a
new UID) is Ready and the endpoints file — kept current by
:class:`harness.kube.endpoints.EndpointsPublisher` — lists the ordinal at the new pod's address,
so the load and the probe have followed it before the fault period closes.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from harness import waiting
from harness.kube import client as kube_client
from harness.kube import pods as kube_pods
from harness.load import endpoints
from harness.nemesis import base, context

FORCE: Final = "pod-kill"
GRACEFUL: Final = "pod-delete"


class PodKill:
    """Targets are pod names of one StatefulSet (``ckpt-1``); anything else is refused."""

    name = FORCE

    def __init__(
        self,
        api: kube_client.ApiClient,
        namespace: str,
        statefulset: str,
        replicas: int,
        endpoints_file: Path,
        *,
        grace_seconds: int | None = 0,
        heal_timeout_s: float = 90.0,
        progress: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._statefulset = statefulset
        self._replicas = replicas
        self._endpoints_file = endpoints_file
        self._grace = grace_seconds
        self._heal_timeout_s = heal_timeout_s
        self._progress = progress
        #: target → (deleted pod's uid, the ordinal's URL before the kill)
        self._killed: dict[str, tuple[str, str | None]] = {}

    def ordinal(self, target: str) -> int:
        prefix = f"{self._statefulset}-"
        suffix = target[len(prefix):] if target.startswith(prefix) else ""
        if not suffix.isdigit() or int(suffix) >= self._replicas:
            raise base.NemesisError(
                f"{self.name}: {target!r} is not a pod of StatefulSet {self._namespace}/{self._statefulset} "
                f"(expected {prefix}0 .. {prefix}{self._replicas - 1})"
            )
        return int(suffix)

    def affected(self, targets: Sequence[str]) -> list[int]:
        return [self.ordinal(t) for t in targets]

    def inject(self, targets: Sequence[str]) -> None:
        ordinals = [self.ordinal(t) for t in targets]  # refuse a bad target before deleting anything
        for target, ordinal in zip(targets, ordinals, strict=True):
            url = self._url(ordinal)
            try:
                deleted = kube_pods.delete_pod(self._api, self._namespace, target, grace_seconds=self._grace)
            except kube_pods.PodError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._killed[target] = (deleted.uid, url)
            self._progress(f"deleted {deleted.describe()} (grace {self._grace}s)")

    def heal(self, targets: Sequence[str]) -> None:
        for target in targets:
            if target not in self._killed:
                continue  # inject failed before this one: nothing to wait for
            old_uid, old_url = self._killed.pop(target)
            ordinal = self.ordinal(target)
            try:
                fresh = kube_pods.wait_replaced(self._api, self._namespace, target, old_uid,
                                                timeout=self._heal_timeout_s)
            except kube_pods.PodError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._await_endpoint(ordinal, fresh, old_url)
            self._progress(f"back: {fresh.describe()}")

    def _url(self, ordinal: int) -> str | None:
        try:
            return endpoints.read(self._endpoints_file).urls.get(ordinal)
        except endpoints.EndpointsError:
            return None

    def _await_endpoint(self, ordinal: int, fresh: kube_pods.PodState, old_url: str | None) -> None:
        """The endpoints file names the replacement: its pod IP, or (port-forward) a new URL."""

        def probe() -> tuple[bool, str]:
            url = self._url(ordinal)
            if url is None:
                return False, f"ordinal {ordinal} not in {self._endpoints_file}"
            host = urllib.parse.urlsplit(url).hostname
            return (host == fresh.ip or url != old_url), f"ordinal {ordinal} at {url} (new pod ip {fresh.ip})"

        try:
            waiting.until(f"the endpoints file to point ordinal {ordinal} at pod {fresh.name} uid {fresh.uid[:8]}",
                          probe, timeout=self._heal_timeout_s, interval=0.1)
        except waiting.WaitTimeout as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None


def build_force(ctx: context.SetContext, options: Mapping[str, object]) -> PodKill:
    """``pod-kill``: grace 0, no options."""
    del options
    return PodKill(ctx.api, ctx.namespace, ctx.statefulset, ctx.replicas, ctx.endpoints_file, grace_seconds=0,
                   heal_timeout_s=ctx.heal_timeout_s, progress=ctx.progress)


def build_graceful(ctx: context.SetContext, options: Mapping[str, object]) -> PodKill:
    """``pod-delete``: the pod's own grace period, or ``grace_seconds`` (> 0)."""
    grace = options.get("grace_seconds")
    if isinstance(grace, int) and grace < 1:
        raise base.NemesisError(f"{GRACEFUL}: grace_seconds must be >= 1 (0 is pod-kill), got {grace}")
    nemesis = PodKill(ctx.api, ctx.namespace, ctx.statefulset, ctx.replicas, ctx.endpoints_file,
                      grace_seconds=grace if isinstance(grace, int) else None, heal_timeout_s=ctx.heal_timeout_s,
                      progress=ctx.progress)
    nemesis.name = GRACEFUL
    return nemesis
