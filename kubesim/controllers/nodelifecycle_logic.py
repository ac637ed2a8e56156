"""Node health and node-controller taints as pure decisions (no I/O), so they can be unit-tested.

Mirrors ``pkg/controller/nodelifecycle/node_lifecycle_controller.go``:

* ``tryUpdateNodeHealth``: the controller keeps, per node, the local (monotonic) time it last saw
  a heartbeat — a new ``lastHeartbeatTime`` on the Ready condition or a newer Lease ``renewTime``
  — and never trusts the kubelet's clock for "how long ago". When that probe time is older than
  the grace period (``nodeStartupGracePeriod`` if the kubelet never posted a Ready condition),
  Ready/MemoryPressure/DiskPressure/PIDPressure become ``Unknown`` (reason ``NodeStatusUnknown``,
  message "Kubelet stopped posting node status."), and the status is written only if the Ready
  condition changed.
* ``doNoScheduleTaintingPass`` (TaintNodesByCondition): conditions map to ``NoSchedule`` taints
  (Ready False → not-ready, Unknown → unreachable, pressure conditions → their taints) and
  ``spec.unschedulable`` to ``node.kubernetes.io/unschedulable:NoSchedule``.
* ``processTaintBaseEviction``: Ready False → ``not-ready:NoExecute``, Unknown →
  ``unreachable:NoExecute`` (mutually exclusive), True → neither.
* ``ComputeZoneState`` / ``handleDisruption``: when every zone is fully disrupted (no Ready node)
  the controller assumes its own connectivity is at fault, removes the NoExecute taints and stops
  adding them; a partially disrupted small zone (≤ ``largeClusterThreshold`` nodes) gets eviction
  rate 0, i.e. no new NoExecute taints.
* ``MarkPodsNotReady`` (``pkg/controller/util/node/controller_utils.go``): the pod's Ready
  condition is copied with status False (reason and message kept) — ``UpdatePodCondition`` moves
  ``lastTransitionTime`` only when the status changes.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from kubesim import timestamps

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"

CONDITION_TO_TAINT: Mapping[str, Mapping[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": TAINT_MEMORY_PRESSURE},
    "DiskPressure": {"True": TAINT_DISK_PRESSURE},
    "NetworkUnavailable": {"True": TAINT_NETWORK_UNAVAILABLE},
    "PIDPressure": {"True": TAINT_PID_PRESSURE},
}
"""nodeConditionToTaintKeyStatusMap."""

CONDITION_TAINT_KEYS = frozenset(key for by_status in CONDITION_TO_TAINT.values() for key in by_status.values())
"""taintKeyToNodeConditionMap's keys: the NoSchedule taints this controller owns (besides unschedulable)."""

CONDITIONS_MARKED_UNKNOWN = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
"""NetworkUnavailable is left alone: upstream says it is managed on a control-plane level."""

UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50
EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"

ZoneState = Literal["Normal", "PartialDisruption", "FullDisruption"]


format_time = timestamps.format_time

parse_time = timestamps.parse_time


def condition(conditions: Iterable[Any] | None, type_: str) -> Obj | None:
    for cond in conditions or ():
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def ready_status(node: Obj) -> str | None:
    """The node's Ready condition status ("True"/"False"/"Unknown"), None when the kubelet never posted one."""
    cond = condition((node.get("status") or {}).get("conditions"), "Ready")
    return None if cond is None else str(cond.get("status"))


# --- health -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeHealth:
    """nodeHealthData: what the controller last saw of a node, with *local* monotonic timestamps."""

    probe_timestamp: float
    ready_transition_timestamp: float
    ready_condition: Obj | None
    lease_renew_time: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class HealthAssessment:
    """The outcome of one health check of one node."""

    health: NodeHealth
    observed_ready: Obj
    """The Ready condition as the node carried it before this check (a synthetic Unknown if none)."""
    current_ready: Obj | None
    """The Ready condition after this check (what was written, if anything)."""
    conditions_to_write: list[Obj] | None
    """The node's new ``status.conditions`` when they must be written, else None."""
    deadline: float
    """Monotonic time at which the node is silent for longer than its grace period."""


def assess_health(node: Obj, lease: Obj | None, saved: NodeHealth | None, *, now_mono: float,
                  now_wall: datetime.datetime, grace: float, startup_grace: float) -> HealthAssessment:
    """tryUpdateNodeHealth without the API write: decide the node's health record and new conditions."""
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    conditions: list[Obj] = copy.deepcopy([c for c in status.get("conditions") or [] if isinstance(c, dict)])
    current = condition(conditions, "Ready")
    created = parse_time(meta.get("creationTimestamp")) or now_wall
    created_mono = now_mono - max(0.0, (now_wall - created).total_seconds())
    if current is None:
        observed: Obj = {"type": "Ready", "status": "Unknown", "lastHeartbeatTime": meta.get("creationTimestamp"),
                         "lastTransitionTime": meta.get("creationTimestamp")}
        period = startup_grace
        health = (dataclasses.replace(saved, ready_condition=None) if saved is not None else
                  NodeHealth(created_mono, created_mono, None, None))
    else:
        observed = copy.deepcopy(current)
        period = grace
        health = saved if saved is not None else NodeHealth(now_mono, now_mono, copy.deepcopy(current), None)
        saved_cond = saved.ready_condition if saved is not None else None
        if saved is not None and saved_cond is None:
            health = NodeHealth(now_mono, now_mono, copy.deepcopy(current), None)
        elif saved_cond is not None and saved_cond.get("lastHeartbeatTime") != current.get("lastHeartbeatTime"):
            transition = (now_mono if saved_cond.get("lastTransitionTime") != current.get("lastTransitionTime")
                          else health.ready_transition_timestamp)
            health = NodeHealth(now_mono, transition, copy.deepcopy(current), health.lease_renew_time)
    renewed = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
    if renewed is not None and (health.lease_renew_time is None or health.lease_renew_time < renewed):
        health = dataclasses.replace(health, probe_timestamp=now_mono, lease_renew_time=renewed)
    deadline = health.probe_timestamp + period
    if now_mono <= deadline:
        return HealthAssessment(health, observed, current, None, deadline)
    stamp = format_time(now_wall)
    for type_ in CONDITIONS_MARKED_UNKNOWN:
        cond = condition(conditions, type_)
        if cond is None:
            conditions.append({"type": type_, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": meta.get("creationTimestamp"), "lastTransitionTime": stamp})
        elif cond.get("status") != "Unknown":
            cond.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                         "message": "Kubelet stopped posting node status.", "lastTransitionTime": stamp})
    new_ready = condition(conditions, "Ready")
    if new_ready == observed:
        return HealthAssessment(health, observed, new_ready, None, deadline)
    written = NodeHealth(health.probe_timestamp, now_mono, copy.deepcopy(new_ready), renewed)
    return HealthAssessment(written, observed, new_ready, conditions, deadline)


# --- taints ---------------------------------------------------------------------------------------


def _same_taint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Taint.MatchTaint: key and effect identify a taint."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def _has(taints: Sequence[Mapping[str, Any]], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)


def wanted_no_schedule_taints(node: Obj) -> list[Obj]:
    """doNoScheduleTaintingPass: the condition and unschedulable NoSchedule taints the node should carry."""
    wanted: list[Obj] = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TO_TAINT.get(str(cond.get("type")), {}).get(str(cond.get("status")))
        if key:
            wanted.append({"key": key, "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append({"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"})
    return wanted


def reconcile_no_schedule_taints(node: Obj, now_wall: datetime.datetime) -> list[Obj] | None:
    """The node's full new ``spec.taints`` after the NoSchedule pass, or None when nothing changes."""
    taints: list[Obj] = list((node.get("spec") or {}).get("taints") or [])
    owned = [t for t in taints if t.get("effect") == "NoSchedule"
             and (t.get("key") == TAINT_UNSCHEDULABLE or t.get("key") in CONDITION_TAINT_KEYS)]
    wanted = wanted_no_schedule_taints(node)
    to_add = [t for t in wanted if not any(_same_taint(t, o) for o in owned)]
    to_del = [o for o in owned if not any(_same_taint(o, t) for t in wanted)]
    if not to_add and not to_del:
        return None
    return swap_taints(taints, to_add, to_del, now_wall)


def swap_taints(taints: Sequence[Obj], to_add: Sequence[Obj], to_del: Sequence[Obj],
                now_wall: datetime.datetime) -> list[Obj]:
    """SwapNodeControllerTaint: add (stamping timeAdded, replacing a same key+effect taint) then remove."""
    stamp = format_time(now_wall)
    out = [t for t in taints if not any(_same_taint(t, d) for d in to_del)]
    for add in to_add:
        out = [t for t in out if not _same_taint(t, add)]
        out.append({**add, "timeAdded": stamp})
    return out


def wanted_no_execute(node: Obj, *, adding_allowed: bool, remove_all: bool) -> tuple[list[Obj], list[Obj]]:
    """processTaintBaseEviction (+ disruption mode): NoExecute taints to add and to remove.

    ``remove_all`` is full disruption (markNodeAsReachable for every node); ``adding_allowed`` is
    False while the zone's eviction rate is 0. Swapping not-ready ↔ unreachable is immediate
    upstream (not rate limited), so it happens even when adding is not allowed.
    """
    taints: list[Obj] = list((node.get("spec") or {}).get("taints") or [])
    not_ready = {"key": TAINT_NOT_READY, "effect": "NoExecute"}
    unreachable = {"key": TAINT_UNREACHABLE, "effect": "NoExecute"}
    present = [t for t in (not_ready, unreachable) if _has(taints, t["key"], "NoExecute")]
    status = ready_status(node)
    if remove_all or status not in ("False", "Unknown"):
        return [], present
    add, opposite = (not_ready, unreachable) if status == "False" else (unreachable, not_ready)
    if _has(taints, add["key"], "NoExecute"):
        return [], [t for t in present if t is opposite]
    if _has(taints, opposite["key"], "NoExecute") or adding_allowed:
        return [add], [t for t in present if t is opposite]
    return [], []


# --- disruption mode -------------------------------------------------------------------------------


def zone_key(node: Obj) -> str:
    """nodetopology.GetZoneKey: region and zone labels (stable, then the deprecated beta ones)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone", "")
    return "" if not region and not zone else f"{region}:\x00:{zone}"


def compute_zone_state(ready_statuses: Sequence[str | None],
                       threshold: float = UNHEALTHY_ZONE_THRESHOLD) -> tuple[int, ZoneState]:
    ready = sum(1 for s in ready_statuses if s == "True")
    not_ready = len(ready_statuses) - ready
    if ready == 0 and not_ready > 0:
        return not_ready, "FullDisruption"
    if not_ready > 2 and not_ready / (not_ready + ready) >= threshold:
        return not_ready, "PartialDisruption"
    return not_ready, "Normal"


@dataclasses.dataclass(frozen=True)
class EvictionMode:
    """How NoExecute tainting behaves for one zone right now."""

    adding_allowed: bool
    remove_all: bool


def eviction_modes(nodes: Sequence[Obj]) -> tuple[dict[str, EvictionMode], bool]:
    """Per zone key: may NoExecute taints be added, must they all be removed; and whether all zones are down."""
    zones: dict[str, list[str | None]] = {}
    for node in nodes:
        if EXCLUDE_DISRUPTION_LABEL in ((node.get("metadata") or {}).get("labels") or {}):
            continue
        zones.setdefault(zone_key(node), []).append(ready_status(node))
    states = {zone: compute_zone_state(statuses) for zone, statuses in zones.items()}
    all_full = bool(states) and all(state == "FullDisruption" for _n, state in states.values())
    modes: dict[str, EvictionMode] = {}
    for zone, (_unhealthy, state) in states.items():
        if all_full:
            modes[zone] = EvictionMode(adding_allowed=False, remove_all=True)
        elif state == "PartialDisruption":
            modes[zone] = EvictionMode(adding_allowed=len(zones[zone]) > LARGE_CLUSTER_THRESHOLD, remove_all=False)
        else:
            modes[zone] = EvictionMode(adding_allowed=True, remove_all=False)
    return modes, all_full


# --- pods ------------------------------------------------------------------------------------------


def pod_not_ready_conditions(pod: Obj, now_wall: datetime.datetime) -> list[Obj] | None:
    """MarkPodsNotReady for one pod: its new ``status.conditions``, or None if Ready is absent or already False."""
    conditions: list[Obj] = copy.deepcopy(list((pod.get("status") or {}).get("conditions") or []))
    cond = condition(conditions, "Ready")
    if cond is None or cond.get("status") == "False":
        return None
    cond["status"] = "False"
    cond["lastTransitionTime"] = format_time(now_wall)
    return conditions
