"""PodDisruptionBudget status arithmetic as pure functions.

Mirrors ``pkg/controller/disruption/disruption.go`` (getExpectedPodCount, getExpectedScale,
countHealthyPods, buildDisruptedPodMap, updatePdbStatus, failSafe),
``k8s.io/apimachinery/pkg/util/intstr`` GetScaledValueFromIntOrPercent and
``k8s.io/component-helpers/apps/poddisruptionbudget`` (UpdateDisruptionAllowedCondition,
ConditionsAreUpToDate) with ``apimeta.SetStatusCondition``:

* ``maxUnavailable`` (checked first) and a percentage ``minAvailable`` scale against the sum of the
  owning controllers' ``spec.replicas``; both percentages round *up*. An integer ``minAvailable``
  counts the matching pods themselves (terminating ones included).
* A pod is healthy when Ready, not terminating and not in ``disruptedPods`` (an eviction the
  apiserver approved but whose deletion the controller has not seen yet, for at most 2 minutes).
* ``disruptionsAllowed = max(0, currentHealthy - desiredHealthy)``, and 0 while no pod is expected.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubesim import timestamps

Obj = dict[str, Any]

DELETION_TIMEOUT = datetime.timedelta(minutes=2)
STALE_POD_DISRUPTION_TIMEOUT = datetime.timedelta(minutes=2)
DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
TERMINATION_BY_KUBELET = "TerminationByKubelet"


class ExpectedCountError(Exception):
    """The expected pod count cannot be computed (bad intstr, pod without a known controller)."""


format_time = timestamps.format_time

parse_time = timestamps.parse_time

_ATOI = re.compile(r"^[+-]?[0-9]+$")


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent, with its error texts."""
    if value is None:
        raise ExpectedCountError("nil value for IntOrString")
    if isinstance(value, bool):
        raise ExpectedCountError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ExpectedCountError("invalid value for IntOrString: invalid type: string is not a percentage")
    digits = value[:-1]
    if not _ATOI.match(digits):
        raise ExpectedCountError(f'invalid value for IntOrString: invalid value "{value}": '
                                 f'strconv.Atoi: parsing "{digits}": invalid syntax')
    percent = int(digits)
    scaled = float(percent) * float(total) / 100
    return int(math.ceil(scaled) if round_up else math.floor(scaled))


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


ScaleFinder = Callable[[Obj, str], tuple[str, int] | None]
"""(controllerRef, namespace) → (controller uid, scale), or None when no such controller is known."""


def expected_scale(pods: Sequence[Obj], find: ScaleFinder) -> tuple[int, list[str]]:
    """getExpectedScale: sum of the scales of the pods' controllers, plus the names of unmanaged pods."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = controller_ref(pod)
        name = str((pod.get("metadata") or {}).get("name"))
        if ref is None:
            unmanaged.append(name)
            continue
        if str(ref.get("uid")) in scales:
            continue
        found = find(ref, str((pod.get("metadata") or {}).get("namespace") or ""))
        if found is None:
            raise ExpectedCountError(f'found no controllers for pod "{name}"')
        scales[found[0]] = found[1]
    return sum(scales.values()), unmanaged


@dataclasses.dataclass(frozen=True)
class Expected:
    expected_count: int
    desired_healthy: int
    unmanaged: tuple[str, ...]


def expected_pod_count(pdb: Obj, pods: Sequence[Obj], find: ScaleFinder) -> Expected:
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        count, unmanaged = expected_scale(pods, find)
        max_unavailable = scaled_value(spec["maxUnavailable"], count, True)
        return Expected(count, max(0, count - max_unavailable), tuple(unmanaged))
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return Expected(len(pods), min_available, ())
    if isinstance(min_available, str):
        count, unmanaged = expected_scale(pods, find)
        return Expected(count, scaled_value(min_available, count, True), tuple(unmanaged))
    return Expected(0, 0, ())


def is_pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


@dataclasses.dataclass(frozen=True)
class DisruptedMap:
    pods: dict[str, str]
    """Pod name → the approval time as written by the eviction handler (kept verbatim)."""
    recheck_at: datetime.datetime | None
    not_deleted: tuple[str, ...]
    """Pods approved for eviction more than DeletionTimeout ago that still are not terminating."""


def build_disrupted_pods(pods: Sequence[Obj], pdb: Obj, now: datetime.datetime) -> DisruptedMap:
    """buildDisruptedPodMap: keep entries for live, not yet terminating pods approved less than 2 minutes ago."""
    listed: Mapping[str, Any] = (pdb.get("status") or {}).get("disruptedPods") or {}
    result: dict[str, str] = {}
    recheck: datetime.datetime | None = None
    expired: list[str] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        name = str(meta.get("name"))
        if name not in listed:
            continue
        approved = parse_time(listed[name])
        if approved is None:
            continue
        expected_deletion = approved + DELETION_TIMEOUT
        if expected_deletion < now:
            expired.append(name)
        else:
            recheck = expected_deletion if recheck is None or expected_deletion < recheck else recheck
            result[name] = str(listed[name])
    return DisruptedMap(result, recheck, tuple(expired))


def count_healthy(pods: Sequence[Obj], disrupted: Mapping[str, str], now: datetime.datetime) -> int:
    healthy = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        approved = parse_time(disrupted.get(str(meta.get("name"))))
        if approved is not None and approved + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def set_condition(conditions: list[Obj], new: Obj, now: datetime.datetime) -> bool:
    """apimeta.SetStatusCondition: lastTransitionTime moves only when the status changes."""
    for cond in conditions:
        if cond.get("type") == new["type"]:
            changed = False
            if cond.get("status") != new["status"]:
                cond["status"] = new["status"]
                cond["lastTransitionTime"] = format_time(now)
                changed = True
            for field in ("reason", "message", "observedGeneration"):
                if cond.get(field) != new.get(field):
                    cond[field] = new.get(field)
                    changed = True
            return changed
    conditions.append({**new, "lastTransitionTime": format_time(now)})
    return True


def update_disruption_allowed_condition(status: Obj, now: datetime.datetime) -> None:
    """UpdateDisruptionAllowedCondition (also what the eviction handler applies when it spends the last one)."""
    conditions: list[Obj] = status.setdefault("conditions", [])
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    set_condition(conditions, {
        "type": DISRUPTION_ALLOWED, "status": "True" if allowed else "False",
        "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS, "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0)}, now)


def conditions_are_up_to_date(pdb: Obj) -> bool:
    status = pdb.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == DISRUPTION_ALLOWED), None)
    if cond is None:
        return False
    if int(status.get("observedGeneration") or 0) != int((pdb.get("metadata") or {}).get("generation") or 0):
        return False
    if int(status.get("disruptionsAllowed") or 0) > 0:
        return bool(cond.get("status") == "True" and cond.get("reason") == SUFFICIENT_PODS)
    return bool(cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT_PODS)


def new_status(pdb: Obj, *, current_healthy: int, desired_healthy: int, expected_count: int,
               disrupted: Mapping[str, str], now: datetime.datetime) -> Obj | None:
    """updatePdbStatus: the PDB with its new status, or None when the stored status is already right."""
    allowed = current_healthy - desired_healthy
    if expected_count <= 0 or allowed <= 0:
        allowed = 0
    status = pdb.get("status") or {}
    generation = int((pdb.get("metadata") or {}).get("generation") or 0)
    if (int(status.get("currentHealthy") or 0) == current_healthy
            and int(status.get("desiredHealthy") or 0) == desired_healthy
            and int(status.get("expectedPods") or 0) == expected_count
            and int(status.get("disruptionsAllowed") or 0) == allowed
            and dict(status.get("disruptedPods") or {}) == dict(disrupted)
            and int(status.get("observedGeneration") or 0) == generation
            and conditions_are_up_to_date(pdb)):
        return None
    updated = copy.deepcopy(pdb)
    fresh: Obj = {
        "currentHealthy": current_healthy, "desiredHealthy": desired_healthy, "expectedPods": expected_count,
        "disruptionsAllowed": allowed, "observedGeneration": generation,
        "conditions": copy.deepcopy(status.get("conditions") or []),
    }
    if disrupted:
        fresh["disruptedPods"] = dict(disrupted)
    update_disruption_allowed_condition(fresh, now)
    updated["status"] = fresh
    return updated


def fail_safe_status(pdb: Obj, message: str, now: datetime.datetime) -> Obj:
    """failSafe: whatever went wrong, allow no disruption and say why in the condition."""
    updated = copy.deepcopy(pdb)
    status = updated.setdefault("status", {})
    status["disruptionsAllowed"] = 0
    conditions: list[Obj] = status.setdefault("conditions", [])
    set_condition(conditions, {"type": DISRUPTION_ALLOWED, "status": "False", "reason": SYNC_FAILED,
                               "message": message,
                               "observedGeneration": int(status.get("observedGeneration") or 0)}, now)
    return updated


def stale_disruption_wait(pod: Obj, now: datetime.datetime) -> datetime.timedelta | None:
    """nonTerminatingPodHasStaleDisruptionCondition: None if not stale-able, else how long until it is stale."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return None
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
    if (cond is None or cond.get("status") != "True" or cond.get("reason") == TERMINATION_BY_KUBELET
            or status.get("phase") in ("Succeeded", "Failed")):
        return None
    since = parse_time(cond.get("lastTransitionTime")) or now
    return max(datetime.timedelta(0), STALE_POD_DISRUPTION_TIMEOUT - (now - since))
