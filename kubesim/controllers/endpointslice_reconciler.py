"""The EndpointSlice reconciler as a pure planner: (Service, its pods, its slices) → creates, updates, deletes.

Follows ``staging/src/k8s.io/endpointslice/reconciler.go`` and ``utils.go``:

* one group of slices per address type the Service has (``ipFamilies``; kubesim's pods are IPv4)
  and, within it, per distinct set of ports (a pod whose named ``targetPort`` resolves differently
  lands in another group);
* every pod that should be in the endpoints (``ShouldPodBeInEndpoints`` with terminating pods
  *included*) becomes an endpoint: its addresses of that family, conditions ``serving`` = pod
  Ready, ``terminating`` = being deleted, ``ready`` = serving and not terminating (always true with
  ``publishNotReadyAddresses``), ``targetRef`` to the pod, ``nodeName``, ``zone`` (the node's
  ``topology.kubernetes.io/zone``) and — when the pod's ``subdomain`` names this Service —
  ``hostname`` (what the cluster DNS turns into ``<hostname>.<service>.<ns>.svc``);
* a pod whose node the informer does not know is left out (and the Service retried), unless the
  Service publishes not-ready addresses;
* endpoints are identified by addresses + hostname + pod (``hashEndpoint``): existing slices keep
  the endpoints still wanted (updated in place when conditions/node/zone/targetRef changed), lose
  the rest; slices left empty are deleted; new endpoints fill slices already being updated, then
  the unchanged slice closest to full, then new slices of at most ``maxEndpointsPerSlice`` (100);
  a create paired with a delete of the same address type becomes an update of that slice;
* a Service with no endpoints at all keeps one placeholder slice (no ports, no endpoints);
* labels: the Service's own (minus the reserved ones), ``kubernetes.io/service-name``,
  ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` and
  ``service.kubernetes.io/headless`` for a Service without a ClusterIP; a controller
  ownerReference to the Service; ``generateName: <service>-``.

Topology hints and trafficDistribution are not modelled (kubesim's nodes have no zones).
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
from collections.abc import Callable
from typing import Any

from kubesim.controllers import endpoints_common as common

Obj = dict[str, Any]

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
"""kube-controller-manager --max-endpoints-per-slice default."""
RESERVED_LABELS = frozenset({SERVICE_NAME_LABEL, MANAGED_BY_LABEL, common.HEADLESS_LABEL})


@dataclasses.dataclass
class Plan:
    create: list[Obj] = dataclasses.field(default_factory=list)
    update: list[Obj] = dataclasses.field(default_factory=list)
    delete: list[Obj] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    """Pods skipped for now (their node is unknown): the Service is retried."""

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def address_types(svc: Obj) -> list[str]:
    """getAddressTypesForService: from ipFamilies; else the ClusterIP's family; else both (headless)."""
    found = []
    for family in common.spec(svc).get("ipFamilies") or []:
        if family == "IPv4":
            found.append("IPv4")
        elif family == "IPv6":
            found.append("IPv6")
    if found:
        return found
    if common.is_service_ip_set(svc):
        return ["IPv6" if ":" in str(common.spec(svc)["clusterIP"]) else "IPv4"]
    return ["IPv4", "IPv6"]


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """getEndpointPorts: one per service port whose target the pod has (none for a portless headless Service)."""
    out = []
    for port in common.spec(svc).get("ports") or []:
        number = common.find_port(pod, port)
        if number is None:
            continue
        entry: Obj = {"name": str(port.get("name") or ""), "port": number, "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol") is not None:
            entry["appProtocol"] = port["appProtocol"]
        out.append(entry)
    return out


def _addresses(pod: Obj, address_type: str) -> list[str]:
    out = []
    for ip in common.pod_ips(pod):
        try:
            parsed = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if (parsed.version == 6) == (address_type == "IPv6"):
            out.append(str(parsed))
    return out


def pod_to_endpoint(pod: Obj, node: Obj | None, svc: Obj, address_type: str) -> Obj:
    serving = common.is_pod_ready(pod)
    terminating = bool(common.meta(pod).get("deletionTimestamp"))
    ready = bool(common.spec(svc).get("publishNotReadyAddresses")) or (serving and not terminating)
    pod_meta = common.meta(pod)
    endpoint: Obj = {
        "addresses": _addresses(pod, address_type),
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    if common.should_set_hostname(pod, svc):
        endpoint["hostname"] = common.spec(pod)["hostname"]
    endpoint["targetRef"] = {"kind": "Pod", "namespace": pod_meta.get("namespace"), "name": pod_meta.get("name"),
                             "uid": pod_meta.get("uid")}
    if common.spec(pod).get("nodeName"):
        endpoint["nodeName"] = common.spec(pod)["nodeName"]
    zone = (common.meta(node).get("labels") or {}).get(ZONE_LABEL) if node is not None else None
    if zone:
        endpoint["zone"] = zone
    return endpoint


def endpoint_hash(endpoint: Obj) -> str:
    """hashEndpoint: sorted addresses, hostname and the target pod identify an endpoint."""
    ref = endpoint.get("targetRef") or {}
    return json.dumps([sorted(endpoint.get("addresses") or []), endpoint.get("hostname") or "",
                       ref.get("namespace") or "", ref.get("name") or ""])


def equal_beyond_hash(a: Obj, b: Obj) -> bool:
    """EndpointsEqualBeyondHash: node, zone, the three conditions and targetRef (its resourceVersion aside)."""
    def ref(endpoint: Obj) -> Obj:
        out = dict(endpoint.get("targetRef") or {})
        out.pop("resourceVersion", None)
        return out

    conds_a, conds_b = a.get("conditions") or {}, b.get("conditions") or {}
    return (a.get("nodeName") == b.get("nodeName") and a.get("zone") == b.get("zone")
            and all(conds_a.get(c) == conds_b.get(c) for c in ("ready", "serving", "terminating"))
            and ref(a) == ref(b))


def port_map_key(ports: list[Obj] | None) -> str:
    """NewPortMapKey: the same set of ports in any order is one key."""
    return json.dumps(sorted(json.dumps(p, sort_keys=True) for p in ports or []))


def owned_by(es: Obj, svc: Obj) -> bool:
    uid = common.meta(svc).get("uid")
    return any(r.get("uid") == uid and r.get("kind") == "Service" and r.get("apiVersion") == "v1"
               for r in common.meta(es).get("ownerReferences") or [])


def slice_labels(es: Obj, svc: Obj) -> tuple[dict[str, str], bool]:
    """setEndpointSliceLabels: the new labels, and whether the Service's own labels differ from the slice's."""
    own = {k: v for k, v in (common.meta(es).get("labels") or {}).items() if k not in RESERVED_LABELS}
    wanted = {k: v for k, v in (common.meta(svc).get("labels") or {}).items() if k not in RESERVED_LABELS}
    changed = own != wanted
    if not common.is_service_ip_set(svc):
        wanted[common.HEADLESS_LABEL] = ""
    wanted[SERVICE_NAME_LABEL] = str(common.meta(svc).get("name") or "")
    wanted[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return wanted, changed


def new_slice(svc: Obj, ports: list[Obj], address_type: str) -> Obj:
    svc_meta = common.meta(svc)
    es: Obj = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{svc_meta.get('name')}-", "namespace": svc_meta.get("namespace"),
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc_meta.get("name"),
                                 "uid": svc_meta.get("uid"), "controller": True, "blockOwnerDeletion": True}],
        },
        "addressType": address_type, "endpoints": [], "ports": copy.deepcopy(ports),
    }
    es["metadata"]["labels"], _changed = slice_labels(es, svc)
    return es


def _is_placeholder_of(es: Obj, placeholder: Obj) -> bool:
    """placeholderSliceCompare: namespace, labels, ownerReferences, address type, no ports, no endpoints."""
    a, b = common.meta(es), common.meta(placeholder)
    return (a.get("namespace") == b.get("namespace") and (a.get("labels") or {}) == (b.get("labels") or {})
            and (a.get("ownerReferences") or []) == (b.get("ownerReferences") or [])
            and es.get("addressType") == placeholder.get("addressType")
            and not es.get("ports") and not es.get("endpoints"))


def plan(svc: Obj, pods: list[Obj], existing: list[Obj], node_of: Callable[[str], Obj | None],
         max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """Reconcile: what to write so the Service's slices show exactly its pods."""
    out = Plan()
    types = address_types(svc)
    by_type: dict[str, list[Obj]] = {}
    for es in existing:
        if es.get("addressType") not in types:
            out.delete.append(es)
        else:
            by_type.setdefault(str(es["addressType"]), []).append(es)
    for address_type in types:
        part = _plan_address_type(svc, pods, by_type.get(address_type, []), node_of, address_type=address_type,
                                  max_per_slice=max_per_slice)
        out.create += part.create
        out.update += part.update
        out.delete += part.delete
        out.errors += part.errors
    return out


def _plan_address_type(svc: Obj, pods: list[Obj], existing: list[Obj], node_of: Callable[[str], Obj | None], *,
                       address_type: str, max_per_slice: int) -> Plan:
    out = Plan()
    existing_by_ports: dict[str, list[Obj]] = {}
    for es in existing:
        if owned_by(es, svc):
            existing_by_ports.setdefault(port_map_key(es.get("ports")), []).append(es)
        else:
            out.delete.append(es)
    desired: dict[str, dict[str, Obj]] = {}
    desired_ports: dict[str, list[Obj]] = {}
    publish = bool(common.spec(svc).get("publishNotReadyAddresses"))
    for pod in sorted(pods, key=lambda p: str(common.meta(p).get("name") or "")):
        if not common.should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = endpoint_ports(svc, pod)
        ports_key = port_map_key(ports)
        desired.setdefault(ports_key, {})
        desired_ports.setdefault(ports_key, ports)
        node_name = str(common.spec(pod).get("nodeName") or "")
        node = node_of(node_name)
        if node is None and not publish:
            out.errors.append(f"skipping Pod {common.meta(pod).get('name')} for Service {common.key(svc)}: "
                              f"Node {node_name} Not Found")
            continue
        endpoint = pod_to_endpoint(pod, node, svc, address_type)
        if endpoint["addresses"]:
            desired[ports_key][endpoint_hash(endpoint)] = endpoint
    for ports_key, wanted in desired.items():
        create, update, delete = _plan_ports(svc, existing_by_ports.get(ports_key, []), wanted,
                                             desired_ports[ports_key], address_type=address_type,
                                             max_per_slice=max_per_slice)
        out.create += create
        out.update += update
        out.delete += delete
    for ports_key, slices in existing_by_ports.items():
        if ports_key not in desired:
            out.delete += slices
    if len(existing) == len(out.delete) and not out.create:
        placeholder = new_slice(svc, [], address_type)
        if len(out.delete) == 1 and _is_placeholder_of(out.delete[0], placeholder):
            out.delete = []
        else:
            out.create.append(placeholder)
    _creates_into_updates(out, svc)
    return out


def _plan_ports(svc: Obj, existing: list[Obj], desired: dict[str, Obj], ports: list[Obj], *, address_type: str,
                max_per_slice: int) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """reconcileByPortMapping."""
    by_name: dict[str, Obj] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    to_delete: list[str] = []
    for es in existing:
        name = str(common.meta(es).get("name"))
        by_name[name] = es
        kept: list[Obj] = []
        endpoint_updated = False
        for endpoint in es.get("endpoints") or []:
            got = desired.pop(endpoint_hash(endpoint), None)
            if got is not None:
                kept.append(got)
                if not equal_beyond_hash(got, endpoint):
                    endpoint_updated = True
        labels, labels_changed = slice_labels(es, svc)
        if endpoint_updated or len(es.get("endpoints") or []) != len(kept):
            if not kept:
                to_delete.append(name)
            else:
                changed = copy.deepcopy(es)
                changed["endpoints"] = kept
                changed["metadata"]["labels"] = labels
                by_name[name] = changed
                to_update.append(name)
        elif labels_changed:
            changed = copy.deepcopy(es)
            changed["metadata"]["labels"] = labels
            by_name[name] = changed
            to_update.append(name)
        else:
            unchanged.append(name)
    remaining = list(desired.values())
    if remaining and to_update:
        for name in sorted(to_update, key=lambda n: -len(by_name[n].get("endpoints") or [])):
            es = by_name[name]
            room = max_per_slice - len(es["endpoints"])
            if room > 0:
                es["endpoints"] = es["endpoints"] + remaining[:room]
                remaining = remaining[room:]
    creates: list[Obj] = []
    while remaining:
        target: Obj | None = None
        if len(remaining) < max_per_slice and unchanged:
            target = _slice_to_fill([by_name[n] for n in unchanged], len(remaining), max_per_slice)
        if target is None:
            target = new_slice(svc, ports, address_type)
        else:
            target = copy.deepcopy(target)
            by_name[str(target["metadata"]["name"])] = target
        room = max_per_slice - len(target.get("endpoints") or [])
        target["endpoints"] = list(target.get("endpoints") or []) + remaining[:room]
        remaining = remaining[room:]
        name = str(common.meta(target).get("name") or "")
        if name:
            to_update.append(name)
            unchanged.remove(name)
        else:
            creates.append(target)
    return creates, [by_name[n] for n in to_update], [by_name[n] for n in to_delete]


def _slice_to_fill(slices: list[Obj], count: int, max_per_slice: int) -> Obj | None:
    """getSliceToFill: the slice that is closest to full once ``count`` endpoints are added."""
    best, closest = None, max_per_slice
    for es in slices:
        diff = max_per_slice - (count + len(es.get("endpoints") or []))
        if 0 <= diff < closest:
            best, closest = es, diff
            if diff == 0:
                break
    return best


def _creates_into_updates(out: Plan, svc: Obj) -> None:
    """finalize's first step: a slice about to be deleted is reused for a slice about to be created."""
    i = 0
    while i < len(out.delete) and out.create:
        doomed = out.delete[i]
        fresh = out.create[-1]
        if doomed.get("addressType") == fresh.get("addressType") and owned_by(doomed, svc):
            fresh["metadata"]["name"] = doomed["metadata"]["name"]
            fresh["metadata"].pop("generateName", None)
            out.create.pop()
            out.update.append(fresh)
            out.delete.pop(i)
        else:
            i += 1
