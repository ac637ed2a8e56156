"""NoExecute taint eviction as pure decisions: which pods go, and when.

Mirrors ``pkg/controller/tainteviction/taint_eviction.go`` and the toleration helpers it uses
(``k8s.io/api/core/v1/toleration.go`` ToleratesTaint, ``pkg/apis/core/v1/helper``
GetMatchingTolerations):

* every NoExecute taint must be matched by some toleration (the first matching one is "used");
  otherwise the pod is deleted at once;
* the eviction time is *when the controller noticed* plus the smallest ``tolerationSeconds`` among
  the used tolerations (≤ 0 means now; none set means never) — not the taint's ``timeAdded``, so a
  restarted controller starts the clock again, as upstream;
* a pod that already has a scheduled eviction keeps it (processPodOnNode returns early when the
  existing work fires no later than a new one would);
* when the taints go away or become tolerated forever, the scheduled eviction is cancelled (with
  a "Cancelling deletion" event when there was one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Obj = dict[str, Any]

EVICTION_REASON = "TaintManagerEviction"
DISRUPTION_REASON = "DeletionByTaintManager"
DISRUPTION_MESSAGE = "Taint manager: deleting due to NoExecute taint"


def no_execute_taints(node: Obj | None) -> list[Obj]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Toleration.ToleratesTaint: effect and key match when set; Equal compares values, Exists does not."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def matching_tolerations(taints: Sequence[Mapping[str, Any]],
                         tolerations: Sequence[Mapping[str, Any]]) -> tuple[bool, list[Mapping[str, Any]]]:
    """GetMatchingTolerations: (all taints tolerated, the first toleration matching each taint)."""
    if not taints:
        return True, []
    used: list[Mapping[str, Any]] = []
    for taint in taints:
        match = next((tol for tol in tolerations if tolerates(tol, taint)), None)
        if match is None:
            return False, []
        used.append(match)
    return True, used


def min_toleration_seconds(used: Sequence[Mapping[str, Any]]) -> float:
    """getMinTolerationTime: 0 for none/expired, -1 for "forever", else the smallest tolerationSeconds."""
    if not used:
        return 0.0
    smallest: float | None = None
    for tol in used:
        seconds = tol.get("tolerationSeconds")
        if seconds is None:
            continue
        if int(seconds) <= 0:
            return 0.0
        smallest = float(seconds) if smallest is None else min(smallest, float(seconds))
    return -1.0 if smallest is None else smallest


@dataclasses.dataclass(frozen=True)
class Scheduled:
    """A pending eviction: when the controller first decided it (created_at) and when it fires."""

    created_at: float
    fire_at: float


Action = Literal["cancel", "evict_now", "keep", "schedule"]


@dataclasses.dataclass(frozen=True)
class Plan:
    action: Action
    scheduled: Scheduled | None = None


def plan_for_pod(tolerations: Sequence[Mapping[str, Any]], taints: Sequence[Mapping[str, Any]],
                 existing: Scheduled | None, now: float) -> Plan:
    """processPodOnNode: what to do about one pod on a node with these NoExecute taints."""
    if not taints:
        return Plan("cancel")
    all_tolerated, used = matching_tolerations(taints, tolerations)
    if not all_tolerated:
        return Plan("evict_now")
    minimum = min_toleration_seconds(used)
    if minimum < 0:
        return Plan("cancel")
    trigger = now + minimum
    if existing is not None and existing.created_at + minimum < trigger:
        return Plan("keep", existing)
    if minimum == 0:
        return Plan("evict_now")
    return Plan("schedule", Scheduled(now if existing is None else existing.created_at, trigger))
