"""The scheduler's decision for one pod: filter plugins, scoring, volume plan and the FailedScheduling text.

Pure functions over plain dicts, so every rule is unit-tested without a cluster. The filters run
per node in upstream's default plugin order (`pkg/scheduler/apis/config/v1/default_plugins.go`):
NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, the kubesim
exclusive-attach rule (where VolumeRestrictions sits), then VolumeBinding; the first one that rejects
a node gives that node's reasons (NodeResourcesFit may give several: "Insufficient cpu" and
"Insufficient memory" both count in the histogram), as the framework stops at the first failing
filter. Reason strings are upstream's current ones: `nodeunschedulable`, `tainttoleration`,
`nodeaffinity`, `nodeports`, and
`volumebinding/binder.go` after kubernetes#129887 (1.33), which renamed "had volume node affinity
conflict" to "didn't match PersistentVolume's node affinity".

NodeResourcesFit (`noderesources/fit.go` fitsRequest): the pod's requests
(`component-helpers/resource` PodRequests: containers summed, sidecars added, the largest init
container if more, plus `overhead`) against the node's `status.allocatable` minus the requests of
the live pods on it (assumed ones included); reasons `Too many pods`, `Insufficient cpu`,
`Insufficient memory`, `Insufficient ephemeral-storage`, `Insufficient <name>`. A node that reports
no allocatable at all (a scripted test kubelet) is not judged. Scoring stays fewest-pods.

What is not modelled: pod (anti-)affinity, topology spread, resource-based scoring, preemption (the
PostFilter text is still produced: every reason we emit is either unresolvable or, for host ports
and resources, has no lower-priority victims because kubesim pods share one priority).
"""

from __future__ import annotations

import dataclasses
import decimal
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubesim.apiserver import selectors
from kubesim.apiserver.admission import quantity
from kubesim.controllers import volumes_common as vc

Obj = Mapping[str, Any]

ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_TAINT = "node(s) had untolerated taint(s)"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_VOLUME_NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
ERR_VOLUME_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_MULTI_ATTACH = ("node(s) can't attach a volume that is already exclusively attached to another node "
                    "(Multi-Attach)")
"""kubesim-specific: upstream schedules the pod and the attach/detach controller then reports
`Multi-Attach error for volume ... Volume is already exclusively attached to one node and can't be
attached to another`; kubesim has no attach step, so the scheduler keeps the pod Pending instead."""
ERR_TOO_MANY_PODS = "Too many pods"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NO_NODES_AVAILABLE = "no nodes available to schedule pods"

PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"
DRA_POSTFILTER_MSG = "no new claims to deallocate"
"""The DynamicResources plugin's PostFilter message (DRA is on by default since 1.34); precedes preemption's."""


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why one node cannot take the pod; `preemptable` = status Unschedulable (not ...AndUnresolvable)."""

    reason: str
    preemptable: bool = False
    more: tuple[str, ...] = ()
    """Further reasons of the same filter (NodeResourcesFit reports every insufficient resource)."""

    @property
    def reasons(self) -> tuple[str, ...]:
        return (self.reason, *self.more)


@dataclasses.dataclass(frozen=True)
class VolumePlan:
    """What must happen to the pod's claims before the pod may be bound to the chosen node.

    `provision`: claims that need `volume.kubernetes.io/selected-node` set to the node (dynamic
    provisioning under WaitForFirstConsumer); `static`: (claim, PV) pairs the scheduler pre-binds
    (AssumePodVolumes/BindPodVolumes); `waiting`: claims already annotated or pre-bound that the
    volume controllers still have to finish.
    """

    provision: tuple[str, ...] = ()
    static: tuple[tuple[str, str], ...] = ()
    waiting: tuple[str, ...] = ()

    @property
    def all_bound(self) -> bool:
        return not (self.provision or self.static or self.waiting)


@dataclasses.dataclass(frozen=True)
class Decision:
    node: str | None
    plan: VolumePlan
    message: str
    """For a failure, the FitError text used for the FailedScheduling event and PodScheduled condition."""


@dataclasses.dataclass(frozen=True)
class ClusterView:
    """The informer caches the scheduler decides from (plus the pods it has assumed but not yet bound)."""

    nodes: Sequence[Obj]
    pods: Sequence[Obj]
    claims: Mapping[tuple[str, str], Obj]
    volumes: Mapping[str, Obj]
    classes: Mapping[str, vc.ClassInfo]
    assumed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """pod key -> node for pods waiting in PreBind (their volumes are being provisioned)."""


# --- taints and tolerations ------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """`Toleration.ToleratesTaint` (core/v1 helpers), without the alpha Gt/Lt operators."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    if operator == "Equal":
        return bool(key) and str(toleration.get("value") or "") == str(taint.get("value") or "")
    return False


def node_ready_status(node: Obj) -> str:
    for cond in vc.status(node).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return str(cond.get("status") or "Unknown")
    return "Unknown"


def effective_taints(node: Obj) -> list[Obj]:
    """The node's taints plus the NoSchedule taint TaintNodesByCondition would add for its Ready state.

    Upstream the node lifecycle controller writes `not-ready`/`unreachable:NoSchedule` (and the
    kubelet registers with `not-ready`); adding it here too means a NotReady node is skipped even
    if no controller has tainted it yet, with the same reason text a real cluster shows.
    """
    taints = [t for t in vc.spec(node).get("taints") or [] if isinstance(t, Mapping)]
    ready = node_ready_status(node)
    if ready != "True":
        key = vc.NOT_READY_TAINT if ready == "False" else vc.UNREACHABLE_TAINT
        if not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def _tolerations(pod: Obj) -> list[Obj]:
    return [t for t in vc.spec(pod).get("tolerations") or [] if isinstance(t, Mapping)]


# --- per-node filters ------------------------------------------------------------------------


def filter_unschedulable(pod: Obj, node: Obj) -> Rejection | None:
    if not vc.spec(node).get("unschedulable"):
        return None
    taint = {"key": vc.UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if any(tolerates(t, taint) for t in _tolerations(pod)):
        return None
    return Rejection(ERR_UNSCHEDULABLE)


def filter_taints(pod: Obj, node: Obj) -> Rejection | None:
    tolerations = _tolerations(pod)
    for taint in effective_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return Rejection(ERR_TAINT)
    return None


def filter_node_affinity(pod: Obj, node: Obj) -> Rejection | None:
    node_labels = vc.labels(node)
    for key, value in (vc.spec(pod).get("nodeSelector") or {}).items():
        if node_labels.get(key) != value:
            return Rejection(ERR_NODE_AFFINITY)
    affinity = (vc.spec(pod).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required, Mapping) and not vc.node_selector_matches(required, node):
        return Rejection(ERR_NODE_AFFINITY)
    return None


def host_ports(pod: Obj) -> set[tuple[str, str, int]]:
    """(protocol, hostIP, hostPort) of every container port that claims a host port."""
    found: set[tuple[str, str, int]] = set()
    pod_spec = vc.spec(pod)
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        for port in (container or {}).get("ports") or []:
            host_port = int((port or {}).get("hostPort") or 0)
            if host_port > 0:
                found.add((str(port.get("protocol") or "TCP"), str(port.get("hostIP") or "0.0.0.0"), host_port))
    return found


def _ports_conflict(wanted: set[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    for proto, ip, port in wanted:
        for uproto, uip, uport in used:
            if proto == uproto and port == uport and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


def filter_ports(pod: Obj, node: Obj, pods_on_node: Sequence[Obj]) -> Rejection | None:
    wanted = host_ports(pod)
    if not wanted:
        return None
    used: set[tuple[str, str, int]] = set()
    for other in pods_on_node:
        used |= host_ports(other)
    return Rejection(ERR_PORTS, preemptable=True) if _ports_conflict(wanted, used) else None


# --- resources (NodeResourcesFit) --------------------------------------------------------------


def resource_amount(raw: Any, resource: str) -> int:
    """A quantity in the scheduler's units: millicores for cpu, else the value rounded up (bytes, counts)."""
    try:
        value = quantity.parse_quantity(raw)
    except (ValueError, TypeError):
        return 0
    if resource == "cpu":
        value *= 1000
    return int(value.to_integral_value(rounding=decimal.ROUND_CEILING))


def _resource_list(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(name): resource_amount(value, str(name)) for name, value in raw.items()}


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        into[name] = into.get(name, 0) + value


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        into[name] = max(into.get(name, 0), value)


def _requests(container: Any) -> dict[str, int]:
    return _resource_list(((container or {}).get("resources") or {}).get("requests"))


def pod_requests(pod: Obj) -> dict[str, int]:
    """`resource.PodRequests`: the pod's effective requests, as the scheduler and kubelet admission count them.

    Regular containers run together (summed); restartable init containers (sidecars) keep running, so
    they add to that sum and to every later init container; a plain init container needs its own
    requests plus the sidecars started before it; the pod needs the larger of the two, plus overhead.
    """
    spec = vc.spec(pod)
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        _add(total, _requests(container))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or []:
        wanted = _requests(container)
        if (container or {}).get("restartPolicy") == "Always":
            _add(total, wanted)
            _add(sidecars, wanted)
            step = dict(sidecars)
        else:
            step = dict(wanted)
            _add(step, sidecars)
        _max(init_peak, step)
    _max(total, init_peak)
    _add(total, _resource_list(spec.get("overhead")))
    return total


def _reason_for(resource: str) -> str:
    return f"Insufficient {resource}"


def insufficient_resources(wanted: Mapping[str, int], allocatable: Mapping[str, int], used: Mapping[str, int],
                           pods_on_node: int) -> list[str]:
    """`fitsRequest`: every resource the node lacks, in upstream's order (pods, cpu, memory, storage, others)."""
    reasons: list[str] = []
    if pods_on_node + 1 > allocatable.get("pods", 0):
        reasons.append(ERR_TOO_MANY_PODS)
    if not any(value for value in wanted.values()):
        return reasons
    ordered: Iterable[str] = ["cpu", "memory", "ephemeral-storage",
                              *sorted(n for n in wanted if n not in ("cpu", "memory", "ephemeral-storage", "pods"))]
    for name in ordered:
        asked = wanted.get(name, 0)
        if asked > 0 and asked > allocatable.get(name, 0) - used.get(name, 0):
            reasons.append(_reason_for(name))
    return reasons


def filter_resources(pod: Obj, node: Obj, pods_on_node: Sequence[Obj]) -> Rejection | None:
    raw = vc.status(node).get("allocatable")
    if not isinstance(raw, Mapping):
        return None  # a node that reports nothing (scripted test kubelets): not judged
    used: dict[str, int] = {}
    for other in pods_on_node:
        _add(used, pod_requests(other))
    reasons = insufficient_resources(pod_requests(pod), _resource_list(raw), used, len(pods_on_node))
    if not reasons:
        return None
    return Rejection(reasons[0], preemptable=True, more=tuple(reasons[1:]))


# --- volumes ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PodClaims:
    """GetPodVolumes: the pod's claims split the way VolumeBinding's PreFilter splits them."""

    bound: tuple[Obj, ...]
    delayed: tuple[Obj, ...]
    error: str | None = None
    """A PreFilter failure message (missing / terminating claim, unbound immediate claim)."""


def is_fully_bound(claim: Obj) -> bool:
    """`isPVCFullyBound`: volumeName set *and* the PV controller finished (bind-completed)."""
    return bool(vc.spec(claim).get("volumeName")) and vc.ANN_BIND_COMPLETED in vc.annotations_of(claim)


def pod_claims(pod: Obj, view: ClusterView) -> PodClaims:
    ns = vc.namespace_of(pod)
    bound: list[Obj] = []
    delayed: list[Obj] = []
    immediate = False
    for name in vc.pod_claim_names(pod):
        claim = view.claims.get((ns, name))
        if claim is None:
            return PodClaims((), (), f'persistentvolumeclaim "{name}" not found')
        if vc.is_deleting(claim):
            return PodClaims((), (), f'persistentvolumeclaim "{name}" is being deleted')
        if is_fully_bound(claim):
            bound.append(claim)
            continue
        klass = view.classes.get(vc.claim_class(claim))
        if klass is not None and klass.wait_for_first_consumer:
            delayed.append(claim)
        else:
            immediate = True
    if immediate:
        return PodClaims((), (), ERR_UNBOUND_IMMEDIATE)
    return PodClaims(tuple(bound), tuple(delayed))


def _claim_selector_matches(claim: Obj, pv: Obj) -> bool:
    raw = vc.spec(claim).get("selector")
    if raw is None:
        return True
    try:
        return selectors.label_selector_from_api(raw).matches(vc.labels(pv))
    except selectors.SelectorError:
        return False


def volume_satisfies_claim(pv: Obj, claim: Obj) -> bool:
    """`checkVolumeSatisfyClaim` + `findMatchingVolume` basics: class, size, modes, volumeMode, selector."""
    if vc.is_deleting(pv) or vc.volume_class(pv) != vc.claim_class(claim):
        return False
    if vc.volume_capacity_bytes(pv) < vc.claim_request_bytes(claim):
        return False
    if not vc.access_modes(claim) <= vc.access_modes(pv):
        return False
    if (vc.spec(pv).get("volumeMode") or "Filesystem") != (vc.spec(claim).get("volumeMode") or "Filesystem"):
        return False
    return _claim_selector_matches(claim, pv)


def find_static_volume(claim: Obj, node: Obj, view: ClusterView, taken: set[str]) -> str | None:
    """The smallest available PV that fits the claim on this node; a PV pre-bound to the claim wins."""
    best: tuple[int, str] | None = None
    for name, pv in sorted(view.volumes.items()):
        if name in taken:
            continue
        ref = vc.spec(pv).get("claimRef")
        prebound = isinstance(ref, Mapping) and vc.claim_ref_matches(pv, claim)
        if ref and not prebound:
            continue
        if not prebound and vc.status(pv).get("phase") not in (None, "Available", "Pending"):
            continue
        if not volume_satisfies_claim(pv, claim) or not vc.volume_node_affinity_matches(pv, node):
            continue
        if prebound:
            return name
        size = vc.volume_capacity_bytes(pv)
        if best is None or size < best[0]:
            best = (size, name)
    return best[1] if best else None


def claim_attached_node(claim: Obj, view: ClusterView, exclude_pod: str) -> str | None:
    """For an exclusive shared-class claim: the node some other live pod using it runs (or is assumed) on.

    A pod counts until its object is gone or it is terminal — that is when upstream's
    attach/detach controller would detach the volume from the old node.
    """
    ns, name = vc.namespace_of(claim), vc.name_of(claim)
    for pod in view.pods:
        key = vc.key_of(pod)
        if key == exclude_pod or vc.namespace_of(pod) != ns or name not in vc.pod_claim_names(pod):
            continue
        if vc.pod_is_terminal(pod):
            continue
        node = vc.pod_node(pod) or view.assumed.get(key, "")
        if node:
            return node
    return None


def _is_shared_exclusive(claim: Obj, view: ClusterView) -> bool:
    klass = view.classes.get(vc.claim_class(claim))
    pv = view.volumes.get(str(vc.spec(claim).get("volumeName") or ""))
    provisioner = klass.provisioner if klass else ""
    if pv is not None and vc.annotations_of(pv).get(vc.ANN_DYNAMICALLY_PROVISIONED):
        provisioner = vc.annotations_of(pv)[vc.ANN_DYNAMICALLY_PROVISIONED]
    return provisioner == vc.SHARED_PROVISIONER and vc.is_exclusive(vc.access_modes(claim))


def filter_exclusive_attach(pod: Obj, node: Obj, claims: PodClaims, view: ClusterView) -> Rejection | None:
    pod_key = vc.key_of(pod)
    for claim in (*claims.bound, *claims.delayed):
        if not _is_shared_exclusive(claim, view):
            continue
        attached = claim_attached_node(claim, view, pod_key)
        if attached and attached != vc.name_of(node):
            return Rejection(ERR_MULTI_ATTACH)
    return None


def filter_volume_binding(node: Obj, claims: PodClaims, view: ClusterView) -> Rejection | None:
    """FindPodVolumes for one node; reports the first reason as the framework shows one per node."""
    for claim in claims.bound:
        pv = view.volumes.get(str(vc.spec(claim).get("volumeName")))
        if pv is None:
            return Rejection(ERR_PV_NOT_EXIST)
        if not vc.volume_node_affinity_matches(pv, node):
            return Rejection(ERR_VOLUME_NODE_CONFLICT)
    taken: set[str] = set()
    for claim in claims.delayed:
        selected = vc.annotations_of(claim).get(vc.ANN_SELECTED_NODE)
        if selected is not None:
            if selected != vc.name_of(node):
                return Rejection(ERR_VOLUME_BIND_CONFLICT)
            continue
        static = find_static_volume(claim, node, view, taken)
        if static is not None:
            taken.add(static)
            continue
        klass = view.classes.get(vc.claim_class(claim))
        if klass is None or klass.provisioner in ("", vc.NO_PROVISIONER):
            return Rejection(ERR_VOLUME_BIND_CONFLICT)
    return None


def volume_plan(node: Obj, claims: PodClaims, view: ClusterView) -> VolumePlan:
    """AssumePodVolumes for the chosen node (filters already passed)."""
    provision: list[str] = []
    static: list[tuple[str, str]] = []
    waiting: list[str] = []
    taken: set[str] = set()
    for claim in claims.delayed:
        name = vc.name_of(claim)
        if vc.ANN_SELECTED_NODE in vc.annotations_of(claim) or vc.spec(claim).get("volumeName"):
            waiting.append(name)
            continue
        pv = find_static_volume(claim, node, view, taken)
        if pv is not None:
            taken.add(pv)
            static.append((name, pv))
        else:
            provision.append(name)
    return VolumePlan(tuple(provision), tuple(static), tuple(waiting))


# --- the whole cycle -------------------------------------------------------------------------


def _pods_by_node(pod: Obj, view: ClusterView) -> dict[str, list[Obj]]:
    """Live pods per node, counting assumed pods on their chosen node (the scheduler cache does too)."""
    by_node: dict[str, list[Obj]] = {}
    me = vc.key_of(pod)
    for other in view.pods:
        key = vc.key_of(other)
        if key == me or vc.pod_is_terminal(other):
            continue
        node = vc.pod_node(other) or view.assumed.get(key, "")
        if node:
            by_node.setdefault(node, []).append(other)
    return by_node


def filter_node(pod: Obj, node: Obj, claims: PodClaims, view: ClusterView,
                pods_on_node: Sequence[Obj]) -> Rejection | None:
    return (filter_unschedulable(pod, node)
            or filter_taints(pod, node)
            or filter_node_affinity(pod, node)
            or filter_ports(pod, node, pods_on_node)
            or filter_resources(pod, node, pods_on_node)
            or filter_exclusive_attach(pod, node, claims, view)
            or filter_volume_binding(node, claims, view))


def _histogram(reasons: Counter[str]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))


def fit_error(num_nodes: int, rejections: Mapping[str, Rejection], prefilter: str | None = None) -> str:
    """`FitError.Error()` followed by the PostFilter (DRA + preemption) messages, as kind 1.34+ prints them."""
    if num_nodes == 0:
        return NO_NODES_AVAILABLE
    message = f"0/{num_nodes} nodes are available:"
    if prefilter is not None:
        message += f" {prefilter}."
        preemption: Counter[str] = Counter({PREEMPTION_NOT_HELPFUL: num_nodes})
    else:
        filtered: Counter[str] = Counter(reason for r in rejections.values() for reason in r.reasons)
        message += f" {_histogram(filtered)}."
        preemption = Counter(PREEMPTION_NO_VICTIMS if r.preemptable else PREEMPTION_NOT_HELPFUL
                             for r in rejections.values())
    return (f"{message} {DRA_POSTFILTER_MSG}, preemption: 0/{num_nodes} nodes are available: "
            f"{_histogram(preemption)}.")


def schedule(pod: Obj, view: ClusterView) -> Decision:
    """One scheduling cycle: PreFilter, Filter, Score (fewest pods, then node name), volume plan."""
    nodes = sorted(view.nodes, key=vc.name_of)
    claims = pod_claims(pod, view)
    if claims.error is not None:
        return Decision(None, VolumePlan(), fit_error(len(nodes), {}, claims.error))
    by_node = _pods_by_node(pod, view)
    rejections: dict[str, Rejection] = {}
    feasible: list[Obj] = []
    for node in nodes:
        name = vc.name_of(node)
        rejection = filter_node(pod, node, claims, view, by_node.get(name, []))
        if rejection is None:
            feasible.append(node)
        else:
            rejections[name] = rejection
    if not feasible:
        return Decision(None, VolumePlan(), fit_error(len(nodes), rejections))
    chosen = min(feasible, key=lambda n: (len(by_node.get(vc.name_of(n), [])), vc.name_of(n)))
    return Decision(vc.name_of(chosen), volume_plan(chosen, claims, view), "")
