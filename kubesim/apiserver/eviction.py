"""POST pods/<name>/eviction: delete a pod unless its PodDisruptionBudget forbids it.

Follows ``pkg/registry/core/pod/storage/eviction.go``: pods that are terminal, Pending or
already terminating skip the budget; more than one matching budget is a 500; a budget whose
status is stale (observedGeneration behind generation) or allows no disruptions answers 429
TooManyRequests with a ``DisruptionBudget`` cause; otherwise the budget's
``disruptionsAllowed`` is decremented and the pod recorded in ``disruptedPods`` in the same
write lock before the pod is deleted. The decision reads only the stored budget *status*: the
disruption controller (kubesim part 2) keeps it current, exactly as upstream.

:data:`budget_check` is the seam for that controller: replace it to change how a budget is
consulted without touching the HTTP plumbing.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

from kubesim.apiserver import deletion, errors, resources, rest, selectors, store
from kubesim.controllers import disruption_logic

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000
_PDBS = "policy/poddisruptionbudgets"


def _ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _selects(pdb: dict[str, Any], pod: dict[str, Any]) -> bool:
    """getPodDisruptionBudgets: a nil or empty selector matches nothing here (unlike in the PDB controller)."""
    try:
        sel = selectors.label_selector_from_api((pdb.get("spec") or {}).get("selector"))
    except selectors.SelectorError:
        return False
    return not sel.empty and sel.matches((pod.get("metadata") or {}).get("labels") or {})


def _violation(message: str, retry_after_seconds: int = 0) -> errors.ApiError:
    err = errors.too_many_requests(VIOLATION, [{"reason": "DisruptionBudget", "message": message}])
    if retry_after_seconds and err.details is not None:
        err.details["retryAfterSeconds"] = retry_after_seconds  # createTooManyRequestsError suggests 10 s
    return err


def check_budget(api: rest.Api, pod: dict[str, Any]) -> None:
    """Raise if the pod's budget forbids evicting it; otherwise spend one allowed disruption.

    Caller holds the store's write lock, so check-and-decrement is atomic against other evictions.
    """
    ns = pod["metadata"].get("namespace", "")
    items, _rv = api.store.scan(_PDBS, ns)
    matching = [entry for _key, entry in items if _selects(entry.obj, pod)]
    if not matching:
        return
    if len(matching) > 1:
        raise errors.internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        )
    entry = matching[0]
    pdb = entry.obj
    name = pdb["metadata"]["name"]
    status = pdb.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 0):
        raise _violation(f"The disruption budget {name} is still being processed by the server.", 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    current = int(status.get("currentHealthy") or 0)
    desired = int(status.get("desiredHealthy") or 0)
    if not _ready(pod):
        policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if policy == "AlwaysAllow" or (current >= desired > 0):
            return
    if allowed < 0:
        raise errors.forbidden("policy", "poddisruptionbudgets", name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.forbidden("policy", "poddisruptionbudgets", name,
                               "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise _violation(f"The disruption budget {name} needs {desired} healthy pods and has {current} currently")
    updated: dict[str, Any] = json.loads(entry.raw)
    new_status = updated.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:  # checkAndDecrement: the budget is spent, say so before the controller catches up
        disruption_logic.update_disruption_allowed_condition(new_status, datetime.datetime.now(datetime.UTC))
    disrupted = new_status.setdefault("disruptedPods", {})
    disrupted[pod["metadata"]["name"]] = rest.now()
    api.store.put(_PDBS, updated, entry)


#: The budget consultation used by :func:`evict` (replaceable by part 2's disruption logic).
budget_check: Callable[[rest.Api, dict[str, Any]], None] = check_budget


def _can_ignore_budget(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def _mark_disruption_target(api: rest.Api, t: rest.Target, entry: store.Entry) -> store.Entry:
    pod: dict[str, Any] = json.loads(entry.raw)
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    conditions.append({
        "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
        "lastTransitionTime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    status["conditions"] = conditions
    return api.store.put(t.rkey, pod, entry)


def evict(api: rest.Api, t: rest.Target, body: bytes) -> tuple[int, bytes]:
    eviction = rest.decode(body)
    rest.check_type(eviction, "policy/v1", "Eviction")
    name = (eviction.get("metadata") or {}).get("name")
    if name and name != t.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    raw_options = eviction.get("deleteOptions")
    options = deletion.parse_options(store.dumps(raw_options) if raw_options else b"", {})
    pods = dataclasses.replace(t, subresource="")
    assert pods.resource == resources.by_gvr("", "v1", "pods")
    with api.store.write_lock:
        entry = api.lookup(pods)
        if options.precondition_rv and options.precondition_rv != entry.obj["metadata"].get("resourceVersion"):
            deletion.delete_entry(api, pods, entry, options)  # raises the precondition Conflict
        options = dataclasses.replace(options, precondition_rv=None)
        if not _can_ignore_budget(entry.obj):
            budget_check(api, entry.obj)
            if entry.obj.get("spec", {}).get("nodeName"):
                entry = _mark_disruption_target(api, pods, entry)
        deletion.delete_entry(api, pods, entry, options)
    return 201, store.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
