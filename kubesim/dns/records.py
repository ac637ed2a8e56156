"""What the cluster DNS answers: CoreDNS's ``kubernetes`` plugin over Services and EndpointSlices.

Follows ``plugin/kubernetes`` of coredns/coredns (``parse.go``, ``kubernetes.go`` ``findServices`` /
``findPods``, ``reverse.go``, ``object/endpoint.go``) and ``plugin/backend_lookup.go`` (A, SRV), as
kind's (kubeadm's) Corefile configures it: ``kubernetes cluster.local in-addr.arpa ip6.arpa { pods
insecure; fallthrough in-addr.arpa ip6.arpa; ttl 30 }``.

* ``<svc>.<ns>.svc.cluster.local`` A: the ClusterIP; for a headless Service the addresses of its
  ready endpoints (endpoints whose ``ready`` condition is false are left out, as CoreDNS leaves
  them out), NXDOMAIN while it has none.
* ``<endpoint>.<svc>.<ns>.svc.cluster.local`` A: the endpoint whose ``hostname`` — else its
  dashed address (``127-10-1-2``) — is ``<endpoint>``: a StatefulSet pod's
  ``ckpt-1.ckpt.<ns>.svc.cluster.local``.
* SRV for ``[_<port>._<proto>.]<svc>.<ns>.svc.cluster.local``: one per (endpoint, port) of a headless
  Service (target ``<endpoint>.<svc>.<ns>.svc.cluster.local``), one per port of a ClusterIP Service
  (target ``<svc>.<ns>.svc.cluster.local``); priority 0, weight ⌊100/n⌋; the targets' A records
  as additional answers.
* ``a-b-c-d.<ns>.pod.cluster.local`` A: ``a.b.c.d`` (``pods insecure``) in an existing namespace.
* PTR for ``d.c.b.a.in-addr.arpa``: a ClusterIP's Service name, else the endpoint names of that
  address.
* ``dns-version.cluster.local`` TXT ``1.1.0`` (the DNS schema version); the zone's SOA and NS.
* A name that exists with no record of the asked type (AAAA: kubesim is IPv4 only) is NODATA
  (NOERROR, SOA in the authority section); a name in the zone that does not exist is NXDOMAIN.
* Names outside the zone (and reverse names it does not know) are NOT forwarded anywhere — kind's
  CoreDNS would forward them to the node's resolver, kubesim's cluster network has nowhere to send
  them: NXDOMAIN.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import time
from collections.abc import Iterable
from typing import Any, Protocol

from kubesim.dns import wire

Obj = dict[str, Any]

TTL = 30
"""kubeadm's Corefile: ``ttl 30``."""
SCHEMA_VERSION = "1.1.0"
HOSTMASTER = "hostmaster"
NS_NAME = "ns.dns"


class ClusterView(Protocol):
    """What the resolver reads (the DNS controller's informer caches)."""

    def namespace_exists(self, namespace: str) -> bool: ...
    def service(self, namespace: str, name: str) -> Obj | None: ...
    def slices_of(self, namespace: str, service: str) -> list[Obj]: ...
    def services_with_ip(self, ip: str) -> list[Obj]: ...
    def slices_with_address(self, ip: str) -> list[Obj]: ...


@dataclasses.dataclass(frozen=True)
class Result:
    rcode: int
    answers: list[wire.Record] = dataclasses.field(default_factory=list)
    authority: list[wire.Record] = dataclasses.field(default_factory=list)
    additional: list[wire.Record] = dataclasses.field(default_factory=list)
    authoritative: bool = True


@dataclasses.dataclass(frozen=True)
class _Target:
    """CoreDNS's msg.Service: an address (or -1-port sentinel) under a name."""

    host: str
    port: int
    name: str


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def endpoint_name(address: str, hostname: str) -> str:
    """endpointHostname: the endpoint's hostname, else its address with dashes."""
    if hostname:
        return hostname
    if "." in address:
        return address.replace(".", "-")
    dashed = address.replace(":", "-")
    return dashed + "0" if dashed.endswith("-") else dashed


def _ready_addresses(es: Obj) -> Iterable[tuple[str, str]]:
    """(address, hostname) of the endpoints CoreDNS serves (``ready`` unset or true)."""
    for endpoint in es.get("endpoints") or []:
        if (endpoint.get("conditions") or {}).get("ready") is False:
            continue
        for address in endpoint.get("addresses") or []:
            yield str(address), str(endpoint.get("hostname") or "")


def _slice_ports(es: Obj) -> list[tuple[int, str, str]]:
    ports = es.get("ports") or []
    if not ports:
        return [(-1, "", "")]
    return [(int(p["port"]) if p.get("port") is not None else -1, str(p.get("name") or ""),
             str(p.get("protocol") or "")) for p in ports]


def _match(wanted: str, actual: str) -> bool:
    return not wanted or wanted.lower() == actual.lower()


class Resolver:
    def __init__(self, view: ClusterView, dns_ip: str, zone: str = "cluster.local") -> None:
        self.view = view
        self.dns_ip = dns_ip
        self.zone = zone.strip(".").lower()

    # ----- records ------------------------------------------------------------------------------

    def soa(self) -> wire.Record:
        return wire.Record(self.zone, wire.SOA, TTL, (f"{NS_NAME}.{self.zone}", f"{HOSTMASTER}.{self.zone}",
                                                      _serial(), 7200, 1800, 86400, TTL))

    def _nodata(self) -> Result:
        return Result(wire.NOERROR, authority=[self.soa()])

    def _nxdomain(self) -> Result:
        return Result(wire.NXDOMAIN, authority=[self.soa()])

    # ----- entry point --------------------------------------------------------------------------

    def resolve(self, name: str, qtype: int) -> Result:
        name = name.strip(".").lower()
        if name.endswith(".in-addr.arpa") or name.endswith(".ip6.arpa"):
            return self._reverse(name, qtype)
        if name != self.zone and not name.endswith("." + self.zone):
            return Result(wire.NXDOMAIN, authoritative=False)  # would be forwarded; there is nowhere to forward to
        base = name[:-len(self.zone)].rstrip(".")
        if base == "":
            return self._apex(qtype)
        if base == "dns-version":
            if qtype in (wire.TXT, wire.ANY):
                return Result(wire.NOERROR, [wire.Record(name, wire.TXT, TTL, SCHEMA_VERSION)])
            return self._nodata()
        if base == NS_NAME:
            if qtype in (wire.A, wire.ANY):
                return Result(wire.NOERROR, [wire.Record(name, wire.A, TTL, self.dns_ip)])
            return self._nodata()
        return self._kubernetes(name, base.split("."), qtype)

    def _apex(self, qtype: int) -> Result:
        if qtype == wire.SOA:
            return Result(wire.NOERROR, [self.soa()])
        if qtype == wire.NS:
            ns = f"{NS_NAME}.{self.zone}"
            return Result(wire.NOERROR, [wire.Record(self.zone, wire.NS, TTL, ns)],
                          additional=[wire.Record(ns, wire.A, TTL, self.dns_ip)])
        return self._nodata()

    def _kubernetes(self, name: str, segs: list[str], qtype: int) -> Result:
        """parseRequest + Records: [[port proto | endpoint] service] namespace (svc|pod)."""
        kind = segs[-1]
        if kind not in ("svc", "pod") or len(segs) > 5:
            return self._nxdomain()
        rest = segs[:-1]
        if not rest:
            return self._nodata()
        namespace = rest[-1]
        if not self.view.namespace_exists(namespace):
            return self._nxdomain()
        if len(rest) == 1:
            return self._nodata()
        service = rest[-2]
        extra = rest[:-2]
        if kind == "pod":
            if extra:
                return self._nxdomain()
            return self._pod(name, service, qtype)
        endpoint = port = protocol = ""
        if len(extra) == 1:
            endpoint = extra[0]
        elif len(extra) == 2:
            port, protocol = extra[0].removeprefix("_"), extra[1].removeprefix("_")
        targets = self._find_services(namespace, service, endpoint, port, protocol)
        if targets is None:
            return self._nxdomain()
        return self._answer(name, qtype, targets)

    def _pod(self, name: str, label: str, qtype: int) -> Result:
        if label.count("-") == 3 and "--" not in label:
            text = label.replace("-", ".")
        else:
            text = label.replace("-", ":")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return self._nxdomain()
        if address.version == 4 and qtype in (wire.A, wire.ANY):
            return Result(wire.NOERROR, [wire.Record(name, wire.A, TTL, str(address))])
        if address.version == 6 and qtype in (wire.AAAA, wire.ANY):
            return Result(wire.NOERROR, [wire.Record(name, wire.AAAA, TTL, str(address))])
        return self._nodata()

    def _find_services(self, namespace: str, name: str, endpoint: str, port: str,
                       protocol: str) -> list[_Target] | None:
        """findServices: the targets of a Service name (None: NXDOMAIN)."""
        svc = self.view.service(namespace, name)
        if svc is None:
            return None
        spec = _spec(svc)
        if spec.get("type") == "ExternalName":
            return None  # a CNAME to somewhere the cluster cannot reach: not served
        domain = f"{name}.{namespace}.svc.{self.zone}"
        headless = spec.get("clusterIP") == "None" or not spec.get("clusterIP")
        found: list[_Target] = []
        if headless or endpoint:
            matched = False
            for es in self.view.slices_of(namespace, name):
                for address, hostname in _ready_addresses(es):
                    label = endpoint_name(address, hostname)
                    if endpoint and endpoint != label.lower():
                        continue
                    for number, port_name, port_protocol in _slice_ports(es):
                        if not (_match(port, port_name) and _match(protocol, port_protocol)):
                            continue
                        matched = True
                        found.append(_Target(address, number, f"{label}.{domain}"))
            return found if matched else None
        ips = [str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
        matched = False
        for svc_port in spec.get("ports") or []:
            if not (_match(port, str(svc_port.get("name") or "")) and
                    _match(protocol, str(svc_port.get("protocol") or "TCP"))):
                continue
            matched = True
            found += [_Target(ip, int(svc_port.get("port") or 0), domain) for ip in ips]
        return found if matched else None

    def _answer(self, name: str, qtype: int, targets: list[_Target]) -> Result:
        if qtype == wire.SRV:
            return self._srv(name, targets)
        if qtype in (wire.A, wire.ANY):
            seen: list[str] = []
            for target in targets:
                if ":" not in target.host and target.host not in seen:
                    seen.append(target.host)
            if seen:
                return Result(wire.NOERROR, [wire.Record(name, wire.A, TTL, ip) for ip in seen])
        return self._nodata()

    def _srv(self, name: str, targets: list[_Target]) -> Result:
        usable = [t for t in targets if t.port != -1]
        if not usable:
            return self._nodata()
        weight = max(1, math.floor(100.0 / len(targets)))
        answers: list[wire.Record] = []
        additional: list[wire.Record] = []
        seen_srv: set[tuple[str, int]] = set()
        seen_a: set[tuple[str, str]] = set()
        for target in usable:
            if (target.name, target.port) not in seen_srv:
                seen_srv.add((target.name, target.port))
                answers.append(wire.Record(name, wire.SRV, TTL, (0, weight, target.port, target.name)))
            if (target.name, target.host) not in seen_a:
                seen_a.add((target.name, target.host))
                additional.append(wire.Record(target.name, wire.A, TTL, target.host))
        return Result(wire.NOERROR, answers, additional=additional)

    def _reverse(self, name: str, qtype: int) -> Result:
        """reverse.go: a ClusterIP names its Service; an endpoint address names its endpoint(s)."""
        address = _address_from_reverse(name)
        names: list[str] = []
        if address is not None:
            for svc in self.view.services_with_ip(address):
                names = [f"{_meta(svc).get('name')}.{_meta(svc).get('namespace')}.svc.{self.zone}"]
                break
            if not names:
                for es in self.view.slices_with_address(address):
                    service = (_meta(es).get("labels") or {}).get("kubernetes.io/service-name")
                    for ip, hostname in _ready_addresses(es):
                        if ip == address and service:
                            names.append(f"{endpoint_name(ip, hostname)}.{service}.{_meta(es).get('namespace')}"
                                         f".svc.{self.zone}")
        if not names:
            return Result(wire.NXDOMAIN, authoritative=False)  # fallthrough in-addr.arpa: forwarded upstream
        if qtype not in (wire.PTR, wire.ANY):
            return self._nodata()
        return Result(wire.NOERROR, [wire.Record(name, wire.PTR, TTL, n) for n in dict.fromkeys(names)])


def _address_from_reverse(name: str) -> str | None:
    if name.endswith(".in-addr.arpa"):
        parts = name.removesuffix(".in-addr.arpa").split(".")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            return None
        return ".".join(reversed(parts))
    nibbles = name.removesuffix(".ip6.arpa").split(".")
    if len(nibbles) != 32:
        return None
    text = "".join(reversed(nibbles))
    try:
        return str(ipaddress.IPv6Address(int(text, 16)))
    except ValueError:
        return None


def _serial() -> int:
    return int(time.time())
