"""D2, D3: node health, node-controller taints, disruption mode and taint eviction decisions (pure logic)."""

from __future__ import annotations

import datetime
from typing import Any

from kubesim.controllers import nodelifecycle_logic as nl
from kubesim.controllers import tainteviction_logic as te

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def _stamp(seconds: float) -> str:
    return nl.format_time(T0 + datetime.timedelta(seconds=seconds))


def _node(ready: str | None = "True", heartbeat: float = 0.0, *, taints: list[dict[str, Any]] | None = None,
          unschedulable: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady",
                           "lastHeartbeatTime": _stamp(heartbeat), "lastTransitionTime": _stamp(0)})
        conditions.append({"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": _stamp(heartbeat),
                           "lastTransitionTime": _stamp(0)})
    return {"metadata": {"name": "n1", "creationTimestamp": _stamp(0), "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": conditions}}


def _lease(renew: float) -> dict[str, Any]:
    when = T0 + datetime.timedelta(seconds=renew)
    return {"spec": {"renewTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def _assess(node: dict[str, Any], lease: dict[str, Any] | None, saved: nl.NodeHealth | None,
            at: float) -> nl.HealthAssessment:
    return nl.assess_health(node, lease, saved, now_mono=1000.0 + at, now_wall=T0 + datetime.timedelta(seconds=at),
                            grace=40.0, startup_grace=60.0)


def test_a_node_heard_from_within_the_grace_period_is_left_alone() -> None:
    first = _assess(_node(), None, None, at=1)
    later = _assess(_node(), None, first.health, at=39)
    assert later.conditions_to_write is None
    assert later.deadline == first.health.probe_timestamp + 40.0


def test_a_silent_node_becomes_unknown_with_upstream_reason_and_message() -> None:
    first = _assess(_node(), None, None, at=1)
    silent = _assess(_node(), None, first.health, at=42)
    assert silent.conditions_to_write is not None
    ready = nl.condition(silent.conditions_to_write, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastTransitionTime"] == _stamp(42)
    assert ready["lastHeartbeatTime"] == _stamp(0)
    memory = nl.condition(silent.conditions_to_write, "MemoryPressure")
    assert memory is not None
    assert memory["status"] == "Unknown"
    assert silent.observed_ready["status"] == "True"


def test_lease_renewals_alone_keep_a_node_healthy() -> None:
    first = _assess(_node(), _lease(1), None, at=1)
    renewed = _assess(_node(), _lease(30), first.health, at=30)
    still = _assess(_node(), _lease(60), renewed.health, at=60)
    assert still.conditions_to_write is None
    silent = _assess(_node(), _lease(60), still.health, at=101)
    assert silent.conditions_to_write is not None


def test_a_lease_that_is_not_newer_is_no_heartbeat() -> None:
    first = _assess(_node(), _lease(1), None, at=1)
    same = _assess(_node(), _lease(1), first.health, at=41.5)
    assert same.conditions_to_write is not None


def test_a_new_status_heartbeat_resets_the_clock() -> None:
    first = _assess(_node(heartbeat=0), None, None, at=1)
    beat = _assess(_node(heartbeat=35), None, first.health, at=35)
    assert beat.health.probe_timestamp == 1035.0
    assert _assess(_node(heartbeat=35), None, beat.health, at=70).conditions_to_write is None


def test_a_node_that_never_posted_status_gets_the_startup_grace_from_its_creation() -> None:
    early = _assess(_node(ready=None), None, None, at=59)
    assert early.conditions_to_write is None
    late = _assess(_node(ready=None), None, early.health, at=61)
    assert late.conditions_to_write is not None
    ready = nl.condition(late.conditions_to_write, "Ready")
    assert ready is not None
    assert (ready["reason"], ready["message"]) == ("NodeStatusNeverUpdated", "Kubelet never posted node status.")


def test_an_already_unknown_node_is_not_rewritten() -> None:
    node = _node(ready="Unknown")
    first = _assess(node, None, None, at=1)
    assert _assess(node, None, first.health, at=100).conditions_to_write is None


def test_conditions_map_to_no_schedule_taints_and_cordon_to_unschedulable() -> None:
    node = _node(ready="Unknown", unschedulable=True)
    taints = nl.reconcile_no_schedule_taints(node, T0)
    assert taints is not None
    assert {(t["key"], t["effect"]) for t in taints} == {
        (nl.TAINT_UNREACHABLE, "NoSchedule"), (nl.TAINT_UNSCHEDULABLE, "NoSchedule")}
    assert all(t["timeAdded"] == _stamp(0) for t in taints)
    node["spec"]["taints"] = taints
    assert nl.reconcile_no_schedule_taints(node, T0) is None


def test_uncordon_and_recovery_remove_only_controller_owned_no_schedule_taints() -> None:
    user = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    node = _node(ready="True", taints=[user, {"key": nl.TAINT_UNSCHEDULABLE, "effect": "NoSchedule"},
                                       {"key": nl.TAINT_NOT_READY, "effect": "NoSchedule"}])
    assert nl.reconcile_no_schedule_taints(node, T0) == [user]


def test_unknown_means_unreachable_no_execute_and_false_means_not_ready() -> None:
    add, remove = nl.wanted_no_execute(_node(ready="Unknown"), adding_allowed=True, remove_all=False)
    assert [t["key"] for t in add] == [nl.TAINT_UNREACHABLE]
    assert remove == []
    swapped = _node(ready="False", taints=[{"key": nl.TAINT_UNREACHABLE, "effect": "NoExecute"}])
    add, remove = nl.wanted_no_execute(swapped, adding_allowed=False, remove_all=False)
    assert [t["key"] for t in add] == [nl.TAINT_NOT_READY]
    assert [t["key"] for t in remove] == [nl.TAINT_UNREACHABLE]


def test_a_ready_node_loses_its_no_execute_taints() -> None:
    node = _node(ready="True", taints=[{"key": nl.TAINT_UNREACHABLE, "effect": "NoExecute"}])
    add, remove = nl.wanted_no_execute(node, adding_allowed=True, remove_all=False)
    assert add == []
    assert [t["key"] for t in remove] == [nl.TAINT_UNREACHABLE]


def test_one_silent_node_of_three_is_normal_but_all_silent_is_full_disruption() -> None:
    one_down = [_node("True"), _node("True"), _node("Unknown")]
    modes, all_full = nl.eviction_modes(one_down)
    assert not all_full
    assert modes[""] == nl.EvictionMode(adding_allowed=True, remove_all=False)
    all_down = [_node("Unknown"), _node("False"), _node("Unknown")]
    modes, all_full = nl.eviction_modes(all_down)
    assert all_full
    assert modes[""] == nl.EvictionMode(adding_allowed=False, remove_all=True)


def test_a_small_partially_disrupted_zone_adds_no_no_execute_taints() -> None:
    nodes = [_node("Unknown")] * 3 + [_node("True")]
    assert nl.compute_zone_state([nl.ready_status(n) for n in nodes]) == (3, "PartialDisruption")
    modes, _ = nl.eviction_modes(nodes)
    assert modes[""].adding_allowed is False


def test_marking_a_pod_not_ready_keeps_reason_and_moves_transition_time() -> None:
    pod = {"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": _stamp(0)},
                                     {"type": "PodScheduled", "status": "True"}]}}
    conditions = nl.pod_not_ready_conditions(pod, T0 + datetime.timedelta(seconds=5))
    assert conditions is not None
    ready = nl.condition(conditions, "Ready")
    assert ready == {"type": "Ready", "status": "False", "lastTransitionTime": _stamp(5)}
    pod["status"]["conditions"] = conditions
    assert nl.pod_not_ready_conditions(pod, T0) is None


UNREACHABLE = {"key": nl.TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": _stamp(0)}
DEFAULT_TOLERATIONS = [
    {"key": nl.TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": nl.TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def test_a_pod_that_does_not_tolerate_a_no_execute_taint_is_evicted_at_once() -> None:
    assert te.plan_for_pod([], [UNREACHABLE], None, now=10.0) == te.Plan("evict_now")
    other = [{"key": "other", "operator": "Exists"}]
    assert te.plan_for_pod(other, [UNREACHABLE], None, now=10.0).action == "evict_now"


def test_default_tolerations_schedule_eviction_after_their_seconds_from_first_notice() -> None:
    plan = te.plan_for_pod(DEFAULT_TOLERATIONS, [UNREACHABLE], None, now=10.0)
    assert plan == te.Plan("schedule", te.Scheduled(10.0, 310.0))
    again = te.plan_for_pod(DEFAULT_TOLERATIONS, [UNREACHABLE], plan.scheduled, now=50.0)
    assert again == te.Plan("keep", plan.scheduled)


def test_the_smallest_toleration_seconds_wins_and_forever_cancels() -> None:
    not_ready = {"key": nl.TAINT_NOT_READY, "effect": "NoExecute"}
    tolerations = [{"key": nl.TAINT_NOT_READY, "operator": "Exists", "tolerationSeconds": 30},
                   {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]
    assert te.plan_for_pod(tolerations, [not_ready, UNREACHABLE], None, now=0.0).scheduled == te.Scheduled(0.0, 5.0)
    forever = [{"operator": "Exists"}]
    assert te.plan_for_pod(forever, [UNREACHABLE], te.Scheduled(0.0, 5.0), now=1.0).action == "cancel"
    assert te.plan_for_pod(DEFAULT_TOLERATIONS, [], te.Scheduled(0.0, 5.0), now=1.0).action == "cancel"


def test_zero_or_negative_toleration_seconds_evict_now() -> None:
    tolerations = [{"key": nl.TAINT_UNREACHABLE, "operator": "Exists", "tolerationSeconds": 0}]
    assert te.plan_for_pod(tolerations, [UNREACHABLE], None, now=3.0).action == "evict_now"


def test_toleration_matching_follows_tolerates_taint() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert te.tolerates({"key": "k", "value": "v"}, taint)
    assert te.tolerates({"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}, taint)
    assert not te.tolerates({"key": "k", "value": "w"}, taint)
    assert not te.tolerates({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert te.tolerates({"operator": "Exists"}, taint)
    assert not te.tolerates({"key": "k", "operator": "Lt", "value": "v"}, taint)
