"""Endpoints controller: the core/v1 Endpoints object of every selector Service, as upstream still writes it.

Follows ``pkg/controller/endpoint/endpoints_controller.go`` (``syncService``) and
``pkg/api/v1/endpoints/util.go`` (``RepackSubsets``):

* the Endpoints is named after the Service and carries its labels, plus
  ``endpoints.kubernetes.io/managed-by: endpoint-controller`` and, for a Service without a
  ClusterIP, ``service.kubernetes.io/headless``; ``endpoints.kubernetes.io/last-change-trigger-time``
  says when the oldest change not yet shown happened (a pod's Ready transition, the Service's creation);
* every pod the Service selects that has an IP, is not terminal and — unless the Service publishes
  not-ready addresses — is not being deleted, becomes an address (``ip``, ``nodeName``, ``targetRef``,
  ``hostname`` when its subdomain names the Service): under ``addresses`` when Ready (or published
  regardless), else ``notReadyAddresses``, once per service port whose target the pod has (a
  headless Service without ports lists the addresses with no ports);
* subsets are repacked into upstream's canonical form: addresses grouped by the set of ports they
  serve, not-ready on one port is not-ready for the group, sorted by IP then pod uid;
* nothing is written when the subsets (pod resourceVersions aside) and labels already match;
* the Endpoints of a deleted Service is deleted; Endpoints left without a Service when the
  controller starts are queued once and so deleted (``checkLeftoverEndpoints``); ExternalName and
  selectorless Services are left alone (their Endpoints are the user's).

Not modelled: truncation beyond 1000 addresses (``endpoints.kubernetes.io/over-capacity``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import threading
from typing import Any

from kubesim import client
from kubesim.controllers import endpoints_common as common
from kubesim.controllers import runtime

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.endpoints")

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"
STALE_RETRY = 0.1


def _address(svc: Obj, pod: Obj) -> Obj | None:
    """podToEndpointAddressForService (+ the hostname when ShouldSetHostname)."""
    families = common.spec(svc).get("ipFamilies") or []
    want_v6 = families[0] == "IPv6" if families else ":" in str(common.spec(svc).get("clusterIP") or "")
    ip = next((a for a in common.pod_ips(pod) if (":" in a) == want_v6), None)
    if ip is None:
        return None
    pod_meta = common.meta(pod)
    address: Obj = {"ip": ip}
    if common.should_set_hostname(pod, svc):
        address["hostname"] = common.spec(pod)["hostname"]
    address["nodeName"] = str(common.spec(pod).get("nodeName") or "")
    address["targetRef"] = {"kind": "Pod", "namespace": pod_meta.get("namespace"), "name": pod_meta.get("name"),
                            "uid": pod_meta.get("uid")}
    return address


def _endpoint_port(port: Obj, number: int) -> Obj:
    out: Obj = {}
    if port.get("name"):
        out["name"] = port["name"]
    out["port"] = number
    out["protocol"] = port.get("protocol") or "TCP"
    if port.get("appProtocol") is not None:
        out["appProtocol"] = port["appProtocol"]
    return out


def subsets_for(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """The repacked subsets the Service's Endpoints should have."""
    publish = bool(common.spec(svc).get("publishNotReadyAddresses"))
    ports = common.spec(svc).get("ports") or []
    headless = common.spec(svc).get("clusterIP") == common.CLUSTER_IP_NONE
    subsets: list[Obj] = []
    for pod in pods:
        if not common.should_pod_be_in_endpoints(pod, include_terminating=publish):
            continue
        address = _address(svc, pod)
        if address is None:
            continue
        field = "addresses" if publish or common.is_pod_ready(pod) else "notReadyAddresses"
        if not ports:
            if headless:
                subsets.append({field: [address]})
            continue
        for port in ports:
            number = common.find_port(pod, port)
            if number is not None:
                subsets.append({field: [address], "ports": [_endpoint_port(port, number)]})
    return repack(subsets)


def _address_key(address: Obj) -> tuple[str, str]:
    return str(address.get("ip") or ""), str((address.get("targetRef") or {}).get("uid") or "")


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def repack(subsets: list[Obj]) -> list[Obj]:
    """RepackSubsets: addresses grouped by the exact set of ports they offer; canonical order."""
    addresses: dict[tuple[str, str], Obj] = {}
    by_port: dict[str, dict[tuple[str, str], bool]] = {}
    port_of: dict[str, Obj | None] = {}
    for original in subsets:
        for port in original.get("ports") or [None]:
            port_key = _dumps(port)
            port_of[port_key] = port
            ready_map = by_port.setdefault(port_key, {})
            for field, ready in (("addresses", True), ("notReadyAddresses", False)):
                for address in original.get(field) or []:
                    key = _address_key(address)
                    addresses.setdefault(key, address)
                    if ready_map.get(key, True):  # not ready on a port trumps ready
                        ready_map[key] = ready
    groups: dict[str, tuple[dict[tuple[str, str], bool], list[Obj]]] = {}
    for port_key, ready_map in by_port.items():
        group_key = _dumps(sorted([list(k), r] for k, r in ready_map.items()))
        entry = groups.setdefault(group_key, (ready_map, []))
        port = port_of[port_key]
        if port is not None:
            entry[1].append(port)
    final = []
    for ready_map, ports in groups.values():
        subset: Obj = {}
        ready_keys = sorted((k for k, r in ready_map.items() if r), key=_ip_uid_order)
        not_ready_keys = sorted((k for k, r in ready_map.items() if not r), key=_ip_uid_order)
        if ready_keys:
            subset["addresses"] = [addresses[k] for k in ready_keys]
        if not_ready_keys:
            subset["notReadyAddresses"] = [addresses[k] for k in not_ready_keys]
        if ports:
            subset["ports"] = sorted(ports, key=_dumps)
        final.append(subset)
    return sorted(final, key=_dumps)


def _ip_uid_order(key: tuple[str, str]) -> tuple[bytes, str]:
    return key[0].encode(), key[1]


def _without_ref_versions(subsets: list[Obj]) -> list[Obj]:
    out = copy.deepcopy(subsets)
    for subset in out:
        for field in ("addresses", "notReadyAddresses"):
            for address in subset.get(field) or []:
                (address.get("targetRef") or {}).pop("resourceVersion", None)
    return out


def _rv(obj: Obj) -> int:
    text = str(common.meta(obj).get("resourceVersion") or "0")
    return int(text) if text.isdigit() else 0


class EndpointsController:
    name = "endpoint"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.api = mgr.client
        self.recorder = mgr.recorder.with_component("endpoint-controller")
        self.triggers = common.TriggerTimeTracker()
        self._written: dict[str, int] = {}  # staleEndpointsTracker: the resourceVersion this controller wrote last
        self._lock = threading.Lock()
        self.services = mgr.informer("services")
        self.pods = mgr.informer("pods")
        self.endpoints = mgr.informer("endpoints")
        self.services.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                  on_delete=self._enqueue)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_added)
        self.endpoints.add_handler(on_add=self._leftover, on_delete=self._enqueue)

    def _enqueue(self, obj: Obj) -> None:
        self.mgr.enqueue(self, common.key(obj))

    def _leftover(self, ep: Obj) -> None:
        """checkLeftoverEndpoints: what the first list shows is looked at once (an orphan is deleted)."""
        if not self.endpoints.has_synced():
            self._enqueue(ep)

    def _pod_added(self, pod: Obj) -> None:
        for key in common.pod_added_keys(self.services.list, pod):
            self.mgr.enqueue(self, key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in common.pod_updated_keys(self.services.list, old, new):
            self.mgr.enqueue(self, key)

    def reconcile(self, key: str) -> float | None:
        namespace, name = runtime.split_key(key)
        svc = self.services.get(namespace, name)
        if svc is None:
            with contextlib.suppress(client.NotFound):
                self.api.delete("endpoints", name, namespace)
            self.triggers.forget(key)
            with self._lock:
                self._written.pop(key, None)
            return None
        spec = common.spec(svc)
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return None
        selector = spec["selector"]
        pods = [p for p in self.pods.list(namespace)
                if common.selector_matches(selector, dict(common.meta(p).get("labels") or {}))]
        trigger = self.triggers.compute(svc, pods)
        subsets = subsets_for(svc, pods)
        current = self.endpoints.get(namespace, name)
        with self._lock:
            written = self._written.get(key, 0)
        if current is not None and _rv(current) < written:
            log.debug("endpoints informer cache is out of date for %s; retrying", key)
            return STALE_RETRY
        service_labels = dict(common.meta(svc).get("labels") or {})
        if current is not None:
            compare = {k: v for k, v in (common.meta(current).get("labels") or {}).items()
                       if k not in (common.HEADLESS_LABEL, MANAGED_BY_LABEL)}
            if _without_ref_versions(current.get("subsets") or []) == subsets and compare == service_labels:
                return None
        new: Obj = copy.deepcopy(current) if current is not None else {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace}}
        if subsets:
            new["subsets"] = subsets
        else:
            new.pop("subsets", None)
        labels = dict(service_labels)
        labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
        if common.is_service_ip_set(svc):
            labels.pop(common.HEADLESS_LABEL, None)
        else:
            labels[common.HEADLESS_LABEL] = ""
        new["metadata"]["labels"] = labels
        annotations = dict(common.meta(new).get("annotations") or {})
        if trigger is not None:
            annotations[common.TRIGGER_TIME_ANNOTATION] = common.format_rfc3339nano(trigger)
        else:
            annotations.pop(common.TRIGGER_TIME_ANNOTATION, None)
        if annotations:
            new["metadata"]["annotations"] = annotations
        else:  # upstream's empty map is omitted from the JSON (omitempty)
            new["metadata"].pop("annotations", None)
        try:
            saved = self.api.create("endpoints", new, namespace) if current is None else \
                self.api.update("endpoints", new)
        except client.ApiError as exc:
            if current is None and "NamespaceTerminating" in json.dumps(exc.body):
                return None
            if not isinstance(exc, client.Conflict):
                reason, verb = ("FailedToCreateEndpoint", "create endpoint for service") if current is None \
                    else ("FailedToUpdateEndpoint", "update endpoint")
                self.recorder.warning(new, reason, f"Failed to {verb} {key}: {exc}")
            raise
        with self._lock:
            self._written[key] = _rv(saved)
        return None


def new() -> EndpointsController:
    return EndpointsController()
