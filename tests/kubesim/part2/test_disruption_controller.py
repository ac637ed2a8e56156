"""D4: the disruption controller keeps PDB status current and the eviction subresource spends it atomically."""

from __future__ import annotations

import json
import re
from typing import Any

import k4_support as ks
import pytest
from k4_fixtures import ControlPlane, force_delete_all_pods, k4_controlplane, k4_namespace, running_pod

from kubesim import client

__all__ = ["k4_controlplane", "k4_namespace"]

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def _statefulset(api: client.Client, namespace: str, replicas: int) -> dict[str, Any]:
    """A StatefulSet object only (its pods are created by the test: no StatefulSet controller runs here)."""
    sts = api.create("statefulsets", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": replicas, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}}},
        namespace)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": sts["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _pdb(api: client.Client, namespace: str, **spec: Any) -> None:
    api.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "budget", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}, namespace)


def _status(api: client.Client, namespace: str) -> dict[str, Any]:
    return api.get("poddisruptionbudgets", "budget", namespace).get("status") or {}


def _evict(api: client.Client, namespace: str, name: str) -> dict[str, Any]:
    return api.post_subresource("pods", name, namespace, "eviction", {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}})


def _summary(status: dict[str, Any]) -> tuple[Any, ...]:
    cond = next((c for c in status.get("conditions") or [] if c["type"] == "DisruptionAllowed"), {})
    return (status.get("expectedPods"), status.get("desiredHealthy"), status.get("currentHealthy"),
            status.get("disruptionsAllowed"), cond.get("reason"))


def test_budget_status_tracks_pods_and_a_second_quick_eviction_is_refused_with_the_real_429(
        k4_controlplane: ControlPlane, k4_namespace: str) -> None:
    """D4: maxUnavailable 1 of 3 → 1 allowed; evict one (201), the next at once gets 429 + DisruptionBudget cause;
    the controller then sees the terminating pod; a Ready replacement allows one again."""
    api = k4_controlplane.api
    node = k4_controlplane.kubelets[0].name
    owner = _statefulset(api, k4_namespace, 3)
    for i in range(3):
        running_pod(api, k4_namespace, f"web-{i}", node, labels={"app": "web"}, owner=owner)
    _pdb(api, k4_namespace, maxUnavailable=1)
    status = ks.await_value("budget status", lambda: _status(api, k4_namespace),
                            lambda s: _summary(s) == (3, 2, 3, 1, "SufficientPods"), timeout=5)
    assert status["observedGeneration"] == 1

    _evict(api, k4_namespace, "web-0")
    with pytest.raises(client.TooManyRequests) as refused:
        _evict(api, k4_namespace, "web-1")
    body = refused.value.body or {}
    assert body.get("message") == VIOLATION
    causes = (body.get("details") or {}).get("causes") or []
    assert len(causes) == 1
    assert causes[0]["reason"] == "DisruptionBudget"
    assert re.fullmatch(r"The disruption budget budget needs 2 healthy pods and has [23] currently",
                        causes[0]["message"]), causes
    assert api.get("pods", "web-0", k4_namespace)["metadata"].get("deletionTimestamp")
    assert not api.get("pods", "web-1", k4_namespace)["metadata"].get("deletionTimestamp")

    ks.await_value("controller counts the evicted pod out", lambda: _status(api, k4_namespace),
                   lambda s: _summary(s) == (3, 2, 2, 0, "InsufficientPods") and not s.get("disruptedPods"),
                   timeout=5)
    api.delete("pods", "web-0", k4_namespace, grace_period_seconds=0)
    running_pod(api, k4_namespace, "web-0", node, labels={"app": "web"}, owner=owner)
    ks.await_value("a Ready replacement allows one disruption again", lambda: _status(api, k4_namespace),
                   lambda s: _summary(s) == (3, 2, 3, 1, "SufficientPods"), timeout=5)
    force_delete_all_pods(api, k4_namespace)


def test_percent_min_available_scales_with_the_statefulset_replicas(k4_controlplane: ControlPlane,
                                                                     k4_namespace: str) -> None:
    """D4: minAvailable 50% of a 3-replica set rounds up to 2; scaling the set to 4 makes it 2 of 4."""
    api = k4_controlplane.api
    node = k4_controlplane.kubelets[0].name
    owner = _statefulset(api, k4_namespace, 3)
    for i in range(3):
        running_pod(api, k4_namespace, f"web-{i}", node, labels={"app": "web"}, owner=owner)
    _pdb(api, k4_namespace, minAvailable="50%")
    ks.await_value("50% of 3", lambda: _status(api, k4_namespace),
                   lambda s: _summary(s) == (3, 2, 3, 1, "SufficientPods"), timeout=5)
    api.patch("statefulsets", "web", {"spec": {"replicas": 4}}, k4_namespace)
    ks.await_value("50% of 4", lambda: _status(api, k4_namespace),
                   lambda s: _summary(s) == (4, 2, 3, 1, "SufficientPods"), timeout=5)
    force_delete_all_pods(api, k4_namespace)


def test_unmanaged_pods_make_a_percentage_budget_fail_safe(k4_controlplane: ControlPlane, k4_namespace: str) -> None:
    """D4: a pod with an owner no finder knows → failSafe: 0 allowed, DisruptionAllowed False / SyncFailed."""
    api = k4_controlplane.api
    node = k4_controlplane.kubelets[0].name
    running_pod(api, k4_namespace, "odd", node, labels={"app": "web"}, owner={
        "apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "0000", "controller": True})
    _pdb(api, k4_namespace, maxUnavailable="50%")
    status = ks.await_value("fail-safe status", lambda: _status(api, k4_namespace),
                            lambda s: any(c.get("reason") == "SyncFailed" for c in s.get("conditions") or []),
                            timeout=5)
    assert status.get("disruptionsAllowed", 0) == 0
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert cond["status"] == "False"
    assert cond["message"] == 'found no controllers for pod "odd"'
    with pytest.raises(client.TooManyRequests):
        _evict(api, k4_namespace, "odd")
    force_delete_all_pods(api, k4_namespace)


def test_an_empty_selector_budget_guards_nothing_at_eviction(k4_controlplane: ControlPlane, k4_namespace: str) -> None:
    """D4 (getPodDisruptionBudgets): a budget with selector {} never blocks an eviction."""
    api = k4_controlplane.api
    node = k4_controlplane.kubelets[0].name
    running_pod(api, k4_namespace, "free", node, labels={"app": "web"})
    api.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "all", "namespace": k4_namespace},
        "spec": {"selector": {}, "minAvailable": 5}}, k4_namespace)
    _evict(api, k4_namespace, "free")
    assert api.get("pods", "free", k4_namespace)["metadata"].get("deletionTimestamp")
    force_delete_all_pods(api, k4_namespace)


def test_a_budget_not_yet_observed_answers_429_with_a_retry_hint(k4_controlplane: ControlPlane,
                                                                 k4_namespace: str) -> None:
    """D4 (createTooManyRequestsError): observedGeneration behind → 429, 'still being processed', retry 10 s."""
    api = k4_controlplane.api
    node = k4_controlplane.kubelets[0].name
    owner = _statefulset(api, k4_namespace, 1)
    running_pod(api, k4_namespace, "web-0", node, labels={"app": "web"}, owner=owner)
    _pdb(api, k4_namespace, maxUnavailable=1)
    ks.await_value("budget observed", lambda: _status(api, k4_namespace),
                   lambda s: s.get("observedGeneration") == 1, timeout=5)
    k4_controlplane.mgr.stop()  # freeze the controller so the new generation stays unobserved
    try:
        api.patch("poddisruptionbudgets", "budget", {"spec": {"maxUnavailable": 2}}, k4_namespace)
        with pytest.raises(client.TooManyRequests) as refused:
            _evict(api, k4_namespace, "web-0")
        details = (refused.value.body or {}).get("details") or {}
        assert details.get("retryAfterSeconds") == 10, json.dumps(details)
        assert details["causes"][0]["message"] == "The disruption budget budget is still being processed by the server."
    finally:
        k4_controlplane.mgr = ks.start_manager(api, k4_controlplane.mgr.settings)
    force_delete_all_pods(api, k4_namespace)
