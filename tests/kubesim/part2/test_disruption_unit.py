"""D4: PodDisruptionBudget status arithmetic (pure logic, upstream disruption.go semantics)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kubesim.controllers import disruption_logic as dl

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
SET_UID = "set-uid"


def _pod(name: str, ready: bool = True, *, owned: bool = True, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"app": "web"}}
    if owned:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                    "uid": SET_UID, "controller": True}]
    if terminating:
        meta["deletionTimestamp"] = dl.format_time(NOW)
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _pdb(spec: dict[str, Any], status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "budget", "namespace": "ns", "generation": generation},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}, "status": status or {}}


def _scale(replicas: int) -> dl.ScaleFinder:
    def find(ref: dict[str, Any], namespace: str) -> tuple[str, int] | None:
        return (SET_UID, replicas) if ref.get("uid") == SET_UID else None
    return find


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (2, 10, True, 2), ("50%", 3, True, 2), ("50%", 3, False, 1), ("34%", 3, True, 2), ("100%", 7, True, 7),
    ("0%", 5, True, 0), ("1%", 1, True, 1),
])
def test_int_or_percent_scales_like_intstr(value: int | str, total: int, up: bool, expected: int) -> None:
    assert dl.scaled_value(value, total, up) == expected


def test_a_percentage_without_percent_sign_is_refused_with_intstr_message() -> None:
    with pytest.raises(dl.ExpectedCountError, match="string is not a percentage"):
        dl.scaled_value("2", 3, True)
    with pytest.raises(dl.ExpectedCountError, match='invalid value "x%"'):
        dl.scaled_value("x%", 3, True)


def test_integer_min_available_counts_the_matching_pods_themselves() -> None:
    pods = [_pod("web-0"), _pod("web-1", terminating=True), _pod("stray", owned=False)]
    assert dl.expected_pod_count(_pdb({"minAvailable": 2}), pods, _scale(5)) == dl.Expected(3, 2, ())


def test_percent_min_available_and_max_unavailable_scale_against_the_controller_replicas() -> None:
    pods = [_pod("web-0"), _pod("web-1")]
    assert dl.expected_pod_count(_pdb({"minAvailable": "50%"}), pods, _scale(3)) == dl.Expected(3, 2, ())
    assert dl.expected_pod_count(_pdb({"maxUnavailable": "34%"}), pods, _scale(3)) == dl.Expected(3, 1, ())
    assert dl.expected_pod_count(_pdb({"maxUnavailable": 5}), pods, _scale(3)) == dl.Expected(3, 0, ())


def test_unmanaged_pods_are_reported_and_unknown_controllers_fail() -> None:
    pods = [_pod("web-0"), _pod("stray", owned=False)]
    assert dl.expected_pod_count(_pdb({"maxUnavailable": 1}), pods, _scale(1)).unmanaged == ("stray",)
    with pytest.raises(dl.ExpectedCountError, match='found no controllers for pod "web-0"'):
        dl.expected_pod_count(_pdb({"maxUnavailable": 1}), [_pod("web-0")], lambda ref, ns: None)


def test_healthy_excludes_not_ready_terminating_and_recently_disrupted_pods() -> None:
    pods = [_pod("a"), _pod("b", ready=False), _pod("c", terminating=True), _pod("d"), _pod("e")]
    disrupted = {"d": dl.format_time(NOW - datetime.timedelta(seconds=10)),
                 "e": dl.format_time(NOW - datetime.timedelta(minutes=3))}
    assert dl.count_healthy(pods, disrupted, NOW) == 2


def test_disrupted_map_keeps_fresh_entries_and_drops_deleted_or_expired_ones() -> None:
    pods = [_pod("fresh"), _pod("old"), _pod("going", terminating=True)]
    approved = dl.format_time(NOW - datetime.timedelta(seconds=30))
    status = {"disruptedPods": {"fresh": approved, "old": dl.format_time(NOW - datetime.timedelta(minutes=5)),
                                "going": approved, "gone": approved}}
    result = dl.build_disrupted_pods(pods, _pdb({}, status), NOW)
    assert result.pods == {"fresh": approved}
    assert result.recheck_at == NOW + datetime.timedelta(seconds=90)
    assert result.not_deleted == ("old",)


def test_status_allows_current_minus_desired_and_sets_the_condition() -> None:
    pdb = _pdb({"minAvailable": 2}, generation=3)
    new = dl.new_status(pdb, current_healthy=3, desired_healthy=2, expected_count=3, disrupted={}, now=NOW)
    assert new is not None
    status = new["status"]
    assert (status["disruptionsAllowed"], status["currentHealthy"], status["desiredHealthy"],
            status["expectedPods"], status["observedGeneration"]) == (1, 3, 2, 3, 3)
    assert status["conditions"] == [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                                     "message": "", "observedGeneration": 3,
                                     "lastTransitionTime": dl.format_time(NOW)}]
    assert "disruptedPods" not in status
    assert dl.new_status(new, current_healthy=3, desired_healthy=2, expected_count=3, disrupted={}, now=NOW) is None


def test_no_expected_pods_or_too_few_healthy_allow_nothing() -> None:
    pdb = _pdb({"minAvailable": 0})
    empty = dl.new_status(pdb, current_healthy=0, desired_healthy=0, expected_count=0, disrupted={}, now=NOW)
    assert empty is not None
    assert empty["status"]["disruptionsAllowed"] == 0
    assert empty["status"]["conditions"][0]["reason"] == "InsufficientPods"
    short = dl.new_status(pdb, current_healthy=1, desired_healthy=2, expected_count=3, disrupted={}, now=NOW)
    assert short is not None
    assert short["status"]["disruptionsAllowed"] == 0


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    earlier = NOW - datetime.timedelta(minutes=1)
    pdb = _pdb({}, {"conditions": [{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                                    "message": "", "observedGeneration": 1,
                                    "lastTransitionTime": dl.format_time(earlier)}]})
    same = dl.new_status(pdb, current_healthy=1, desired_healthy=2, expected_count=2, disrupted={}, now=NOW)
    assert same is not None
    assert same["status"]["conditions"][0]["lastTransitionTime"] == dl.format_time(earlier)
    flipped = dl.new_status(pdb, current_healthy=3, desired_healthy=2, expected_count=3, disrupted={}, now=NOW)
    assert flipped is not None
    assert flipped["status"]["conditions"][0]["lastTransitionTime"] == dl.format_time(NOW)


def test_fail_safe_allows_no_disruption_and_names_the_error() -> None:
    pdb = _pdb({}, {"disruptionsAllowed": 2, "observedGeneration": 1})
    out = dl.fail_safe_status(pdb, 'found no controllers for pod "x"', NOW)
    assert out["status"]["disruptionsAllowed"] == 0
    cond = out["status"]["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "SyncFailed",
                                                                 'found no controllers for pod "x"')


def test_stale_disruption_target_condition_is_reset_after_two_minutes() -> None:
    pod = _pod("p")
    pod["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                        "lastTransitionTime": dl.format_time(NOW - datetime.timedelta(seconds=30))})
    assert dl.stale_disruption_wait(pod, NOW) == datetime.timedelta(seconds=90)
    pod["metadata"]["deletionTimestamp"] = dl.format_time(NOW)
    assert dl.stale_disruption_wait(pod, NOW) is None
