"""The cluster DNS (``coredns``): kubesim's stand-in for kind's CoreDNS Deployment, run by the control plane.

The control plane lives inside the cluster's network (:mod:`kubesim.network`), so the server
this controller starts at set-up — on the cluster DNS address of :mod:`kubesim.servicenet`
(127.<C>.0.10:53, UDP and TCP) — is reachable from every pod and from nothing outside the cluster;
every pod's ``/etc/resolv.conf`` names it (the kubelet's ``clusterDNS``). Answers come from this
controller's informer caches of Namespaces, Services and EndpointSlices
(:mod:`kubesim.dns.records`); until they have synced the server says SERVFAIL. Nothing is ever
forwarded off the machine. Binding port 53 needs root (or CAP_NET_BIND_SERVICE): where it is
refused — a ``--network host`` cluster run by an unprivileged user — the control plane logs one
warning and runs without cluster DNS. There is nothing to reconcile: the caches are the state.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kubesim import servicenet
from kubesim.controllers import runtime
from kubesim.dns import records, server

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.clusterdns")

SERVICE_INDEX = "service"
ADDRESS_INDEX = "address"
CLUSTER_IP_INDEX = "cluster-ip"
PORT_ENV = "KUBESIM_DNS_PORT"
"""Tests bind the server elsewhere than port 53 (default: 53)."""


def _slice_service(es: Obj) -> list[str]:
    meta = es.get("metadata") or {}
    name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
    return [f"{meta.get('namespace') or ''}/{name}"] if name else []


def _slice_addresses(es: Obj) -> list[str]:
    return [str(a) for e in es.get("endpoints") or [] for a in e.get("addresses") or []]


def _cluster_ips(svc: Obj) -> list[str]:
    spec = svc.get("spec") or {}
    return [str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]


class _View:
    def __init__(self, namespaces: runtime.Informer, services: runtime.Informer, slices: runtime.Informer) -> None:
        self.namespaces, self.services, self.slices = namespaces, services, slices

    def namespace_exists(self, namespace: str) -> bool:
        return self.namespaces.get("", namespace) is not None

    def service(self, namespace: str, name: str) -> Obj | None:
        return self.services.get(namespace, name)

    def slices_of(self, namespace: str, service: str) -> list[Obj]:
        return self.slices.by_index(SERVICE_INDEX, f"{namespace}/{service}")

    def services_with_ip(self, ip: str) -> list[Obj]:
        return self.services.by_index(CLUSTER_IP_INDEX, ip)

    def slices_with_address(self, ip: str) -> list[Obj]:
        return self.slices.by_index(ADDRESS_INDEX, ip)


class ClusterDNS:
    name = "coredns"

    def __init__(self, net: servicenet.ServiceNetwork | None = None, port: int | None = None) -> None:
        self.net = net or servicenet.from_env()
        self.port = port if port is not None else int(os.environ.get(PORT_ENV) or servicenet.DNS_PORT)
        self.server: server.DnsServer | None = None

    def setup(self, mgr: runtime.Manager) -> None:
        namespaces = mgr.informer("namespaces")
        services = mgr.informer("services")
        slices = mgr.informer("endpointslices")
        slices.add_index(SERVICE_INDEX, _slice_service)
        slices.add_index(ADDRESS_INDEX, _slice_addresses)
        services.add_index(CLUSTER_IP_INDEX, _cluster_ips)
        informers = (namespaces, services, slices)
        resolver = records.Resolver(_View(namespaces, services, slices), self.net.dns_ip, self.net.domain)
        dns = server.DnsServer(resolver, self.net.dns_ip, self.port,
                               ready=lambda: all(i.has_synced() for i in informers))
        try:
            dns.start()
        except OSError as exc:
            log.warning("cluster DNS not available: cannot serve %s:%d (%s); pods will not resolve Service names",
                        self.net.dns_ip, self.port, exc.strerror)
            return
        self.server = dns
        log.info("cluster DNS serving %s:%d (UDP and TCP) for %s", self.net.dns_ip, dns.port, self.net.domain)

    def reconcile(self, key: str) -> float | None:
        return None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def new() -> ClusterDNS:
    return ClusterDNS()
