"""Delete an ordinal's PersistentVolumeClaim, as a user would by mistake or on purpose.

``delete-claim`` deletes the claim ``<template>-<set>-<ordinal>`` of each target pod (UID
precondition: only the claim we saw). The pod still mounts it, so the claim stays Terminating
(the ``kubernetes.io/pvc-protection`` finalizer) and the writer keeps writing to the old volume.
Heal deletes the pod (its own grace period); the finalizer lets the old claim go, and the
StatefulSet controller recreates the pod *and a new claim* — a new, empty volume. Heal ends
when the ordinal's new claim is bound, its pod is Ready with a new uid, and a new writer serves
it. Notes record, per ordinal, the old and new claim uid and PV.

This loses the ordinal's data by design, so it is refused unless the scenario opts in twice:
the option ``accept_data_loss: true`` (checked before anything is deployed), and the scenario's
expectations declaring that ordinal's volume expected new (``Expectations.new_volumes``, checked
by the scenario model), so the checkers excuse exactly that ordinal's old checkpoints, with the
reason, and hold every other ordinal to its claim.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from harness import waiting
from harness.kube import claims as kube_claims
from harness.kube import identity as kube_identity
from harness.kube import pods as kube_pods
from harness.nemesis import base, context, serving

DELETE_CLAIM: Final = "delete-claim"
ACCEPT: Final = "accept_data_loss"


def check_options(options: Mapping[str, object]) -> None:
    """The opt-in must be an explicit ``true``; anything else is refused with one line."""
    if options.get(ACCEPT) is not True:
        raise base.NemesisError(
            f"{DELETE_CLAIM}: refused: deleting a claim destroys the ordinal's volume; a scenario must set "
            f"{ACCEPT}: true (and declare the ordinal's volume expected new), got {options.get(ACCEPT)!r}")


class _Claim:
    """What one deleted claim was, and what replaced it."""

    def __init__(self, name: str, uid: str, volume: str | None, pod_uid: str, epoch: str | None) -> None:
        self.name, self.uid, self.volume, self.pod_uid, self.epoch = name, uid, volume, pod_uid, epoch


class DeleteClaim:
    """Targets are pod names of the set (``ckpt-1``); anything else is refused."""

    name = DELETE_CLAIM

    def __init__(self, ctx: context.SetContext) -> None:
        self._ctx = ctx
        self._deleted: dict[int, _Claim] = {}
        self.notes: dict[str, object] = {}

    def ordinal(self, target: str) -> int:
        ordinal = self._ctx.ordinal_of_pod(target)
        if ordinal is None or ordinal >= self._ctx.replicas:
            raise base.NemesisError(
                f"{self.name}: {target!r} is not a pod of {self._ctx.namespace}/{self._ctx.statefulset} "
                f"(expected {self._ctx.pod(0)} .. {self._ctx.pod(self._ctx.replicas - 1)})")
        return ordinal

    def affected(self, targets: Sequence[str]) -> list[int]:
        return [self.ordinal(t) for t in targets]

    def inject(self, targets: Sequence[str]) -> None:
        ordinals = self.affected(targets)  # refuse a bad target before deleting anything
        for ordinal in ordinals:
            name = self._claim_name(ordinal)
            claim = self._read_claim(name)
            if claim is None or not claim.uid:
                raise base.NemesisError(f"{self.name}: ordinal {ordinal} has no claim {self._ctx.namespace}/{name}")
            pod = self._read_pod(ordinal)
            if pod is None:
                raise base.NemesisError(f"{self.name}: ordinal {ordinal} has no pod; its claim is not in use")
            uid, volume = claim.uid, claim.volume
            epoch = serving.epochs(self._ctx.endpoints_file, [ordinal]).get(ordinal)
            try:
                kube_claims.delete_claim(self._ctx.api, self._ctx.namespace, name, uid)
            except kube_claims.ClaimError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            self._deleted[ordinal] = _Claim(name, uid, volume, pod.uid, epoch)
            self._wait(f"claim {name} (uid {uid[:8]}) to be Terminating or gone",
                       functools.partial(self._terminating, name, uid))
            self._ctx.progress(f"deleted claim {name} uid {uid[:8]} (PV {volume}); it stays Terminating while "
                               f"pod {pod.name} uses it")

    def heal(self, targets: Sequence[str]) -> None:
        for target in targets:
            ordinal = self._ctx.ordinal_of_pod(target)
            old = self._deleted.pop(ordinal, None) if ordinal is not None else None
            if ordinal is None or old is None:
                continue  # inject failed before this one: its claim was not deleted
            still_terminating = self._terminating(old.name, old.uid)[1].startswith("Terminating")
            pod = self._read_pod(ordinal)
            if pod is not None and pod.uid == old.pod_uid:
                try:
                    kube_pods.delete_pod(self._ctx.api, self._ctx.namespace, pod.name)
                except kube_pods.PodError as exc:
                    raise base.NemesisError(f"{self.name}: {exc}") from None
                self._ctx.progress(f"deleted pod {pod.name} uid {pod.uid[:8]}: the set recreates it with a new claim")
            new_uid, new_volume = "", None

            def fresh(name: str = old.name, uid: str = old.uid) -> tuple[bool, str]:
                nonlocal new_uid, new_volume
                claim = self._read_claim(name)
                if claim is None:
                    return False, f"claim {name} not recreated yet"
                if claim.uid == uid:
                    return False, f"old claim {name} uid {uid[:8]} still there (Terminating)"
                new_uid, new_volume = claim.uid, claim.volume
                return claim.phase == "Bound" and bool(new_volume), f"new claim {name} uid {new_uid[:8]}: {claim.phase}"

            self._wait(f"a new claim {old.name} bound to a new volume", fresh)
            try:
                back = kube_pods.wait_replaced(self._ctx.api, self._ctx.namespace, self._ctx.pod(ordinal),
                                               old.pod_uid, timeout=self._ctx.heal_timeout_s)
            except kube_pods.PodError as exc:
                raise base.NemesisError(f"{self.name}: {exc}") from None
            serving.await_new_writers(self.name, self._ctx.endpoints_file, {ordinal: old.epoch},
                                      timeout=self._ctx.heal_timeout_s)
            self.notes[str(ordinal)] = {
                "claim": old.name, "old_claim_uid": old.uid, "old_volume": old.volume,
                "new_claim_uid": new_uid, "new_volume": new_volume,
                "terminating_until_pod_deleted": still_terminating, "old_epoch": old.epoch,
            }
            self._ctx.progress(f"back: {back.describe()} on new claim uid {new_uid[:8]} (PV {new_volume}; "
                               f"was {old.uid[:8]} / {old.volume})")

    def _claim_name(self, ordinal: int) -> str:
        try:
            template = kube_claims.claim_template(self._ctx.api, self._ctx.namespace, self._ctx.statefulset)
        except kube_claims.ClaimError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None
        return kube_identity.claim_name(template, self._ctx.statefulset, ordinal)

    def _read_claim(self, name: str) -> kube_claims.ClaimState | None:
        try:
            return kube_claims.read_claim(self._ctx.api, self._ctx.namespace, name)
        except kube_claims.ClaimError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None

    def _read_pod(self, ordinal: int) -> kube_pods.PodState | None:
        try:
            return kube_pods.read_pod(self._ctx.api, self._ctx.namespace, self._ctx.pod(ordinal))
        except kube_pods.PodError as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None

    def _terminating(self, name: str, uid: str) -> tuple[bool, str]:
        claim = self._read_claim(name)
        if claim is None or claim.uid != uid:
            return True, "gone"
        if claim.terminating:
            return True, f"Terminating (finalizers {list(claim.finalizers)})"
        return False, "not yet marked for deletion"

    def _wait(self, what: str, probe: Callable[[], tuple[bool, str]]) -> None:
        try:
            waiting.until(what, probe, timeout=self._ctx.heal_timeout_s, interval=0.2)
        except waiting.WaitTimeout as exc:
            raise base.NemesisError(f"{self.name}: {exc}") from None


def build(ctx: context.SetContext, options: Mapping[str, object]) -> DeleteClaim:
    check_options(options)
    return DeleteClaim(ctx)
