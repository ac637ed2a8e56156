"""Pod admission on the node (``pkg/kubelet/lifecycle/predicate.go``, scheduler AdmissionCheck).

A pod bound by hand (``spec.nodeName`` set, no scheduler) can ask for what the node cannot give;
the kubelet then rejects it: phase Failed, ``reason`` the predicate (``NodeAffinity``,
``NodePorts``, ``OutOfpods``, ``OutOfcpu``, ``OutOfmemory``) and ``message`` "Pod was rejected:
<why>". Checked in upstream's order: node selector, ports, then resources (first failure wins).
Resources are judged only for pods bound by hand: kubesim's scheduler has no resource fit, and a
pod it placed that the kubelet then rejected would be recreated and rejected forever.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from typing import Any

from kubesim.apiserver.admission import quantity

Obj = dict[str, Any]
Port = tuple[str, str, int]


def host_ports(pod: Obj) -> set[Port]:
    out: set[Port] = set()
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.add((str(p.get("hostIP") or "0.0.0.0"), str(p.get("protocol") or "TCP"), int(p["hostPort"])))
    return out


def ports_conflict(want: set[Port], used: set[Port]) -> bool:
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


def _amount(raw: Any, resource: str) -> int:
    try:
        value = quantity.parse_quantity(raw)
    except ValueError:
        return 0
    if resource == "cpu":
        value *= 1000  # millicores, as the scheduler counts
    return int(value.to_integral_value(rounding=decimal.ROUND_CEILING))


def requests(pod: Obj, resource: str) -> int:
    """Effective request: the sum over containers, or the largest init container if that is more."""
    spec = pod.get("spec") or {}

    def req(c: Obj) -> int:
        res = c.get("resources") or {}
        raw = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource))
        return _amount(raw, resource) if raw is not None else 0

    total = sum(req(c) for c in spec.get("containers") or [])
    init = max((req(c) for c in spec.get("initContainers") or []), default=0)
    return max(total, init)


def _scheduled(pod: Obj) -> bool:
    """Bound through the scheduler (pods/binding sets PodScheduled=True), not by hand."""
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def check(pod: Obj, admitted: Sequence[Obj], node_labels: Mapping[str, str],
          allocatable: Mapping[str, str]) -> tuple[str, str] | None:
    """(reason, message) when the pod must be rejected, else None."""
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(node_labels.get(k) != v for k, v in selector.items()):
        return "NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
    want = host_ports(pod)
    if want:
        used: set[Port] = set()
        for other in admitted:
            used |= host_ports(other)
        if ports_conflict(want, used):
            return ("NodePorts",
                    "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports")
    if _scheduled(pod):
        return None  # kubesim's scheduler does not fit resources yet: judging them here would loop forever
    max_pods = _amount(allocatable.get("pods", "110"), "pods")
    if len(admitted) + 1 > max_pods:
        return "OutOfpods", (f"Node didn't have enough resource: pods, requested: 1, used: {len(admitted)}, "
                             f"capacity: {max_pods}")
    for resource in ("cpu", "memory"):
        asked = requests(pod, resource)
        if not asked:
            continue
        capacity = _amount(allocatable.get(resource, "0"), resource)
        used_amount = sum(requests(other, resource) for other in admitted)
        if used_amount + asked > capacity:
            return f"OutOf{resource}", (f"Node didn't have enough resource: {resource}, requested: {asked}, "
                                        f"used: {used_amount}, capacity: {capacity}")
    return None
