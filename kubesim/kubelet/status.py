"""The pod status a kubelet reports: phase, conditions, container statuses (pure functions).

``pkg/kubelet/kubelet_pods.go`` getPhase / generateAPIPodStatus and ``pkg/kubelet/status``
(GeneratePodReadyCondition, GenerateContainersReadyCondition, ...): conditions keep their
``lastTransitionTime`` while their status is unchanged; conditions the kubelet does not own
(DisruptionTarget, readiness gates set by others) are kept as the API server has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubesim import timestamps

Obj = dict[str, Any]
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


now_iso = timestamps.now


def phase(restart_policy: str, statuses: Sequence[Obj]) -> str:
    """getPhase for pods without init containers."""
    if not statuses:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for cs in statuses:
        state = cs.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if int(state["terminated"].get("exitCode", 1)) == 0:
                succeeded += 1
        elif "waiting" in state:
            if (cs.get("lastState") or {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, previous: Obj | None, reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    out: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since or now_iso()}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def conditions(existing: Sequence[Obj], *, sandbox_ready: bool, statuses: Sequence[Obj], pod_phase: str,
               spec_containers: Sequence[Obj], init_statuses: Sequence[Obj] = (),
               initialized: bool = True) -> list[Obj]:
    prev = {c.get("type"): c for c in existing}
    out = [c for c in existing if c.get("type") not in KUBELET_CONDITIONS]
    out.append(_condition("PodReadyToStartContainers", sandbox_ready, prev.get("PodReadyToStartContainers")))
    if initialized:
        out.append(_condition("Initialized", True, prev.get("Initialized")))
    else:
        incomplete = [str(s.get("name")) for s in init_statuses
                      if int(((s.get("state") or {}).get("terminated") or {}).get("exitCode", 1)) != 0]
        out.append(_condition("Initialized", False, prev.get("Initialized"), "ContainersNotInitialized",
                              f"containers with incomplete status: [{' '.join(incomplete)}]"))
    names = [str(c.get("name")) for c in spec_containers]
    by_name = {cs.get("name"): cs for cs in statuses}
    unready = [n for n in names if not (by_name.get(n) or {}).get("ready")]
    terminal = pod_phase in ("Succeeded", "Failed")
    if terminal:
        ready, reason, message = False, "PodCompleted", ""
    elif unready:
        ready, reason = False, "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(unready)}]"
    else:
        ready, reason, message = True, "", ""
    out.append(_condition("Ready", ready, prev.get("Ready"), reason, message))
    out.append(_condition("ContainersReady", ready, prev.get("ContainersReady"), reason, message))
    out.append(_condition("PodScheduled", True, prev.get("PodScheduled")))
    return out


def qos_class(spec_containers: Sequence[Obj]) -> str:
    """``pkg/apis/core/v1/helper/qos`` for cpu/memory: Guaranteed, Burstable or BestEffort."""
    any_set = False
    guaranteed = True
    for c in spec_containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for name in ("cpu", "memory"):
            if name in req or name in lim:
                any_set = True
            if name not in lim or req.get(name, lim.get(name)) != lim.get(name):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
