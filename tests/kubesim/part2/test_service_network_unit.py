"""Service plumbing without a cluster: slice planning, Endpoints repacking, ClusterIPs, DNS answers, resolv.conf.

Pure functions and one loopback DNS server, so the upstream rules are checked in milliseconds; the
cluster test (test_service_network_cluster.py) shows the same behaviour end to end."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import pytest

from kubesim import servicenet
from kubesim.apiserver import admission, errors, serviceips, tables_discovery
from kubesim.controllers import endpoints as endpoints_ctrl
from kubesim.controllers import endpoints_common as common
from kubesim.controllers import endpointslice_reconciler as rec
from kubesim.controllers import serviceproxy
from kubesim.dns import records, server, wire
from kubesim.kubelet import dns as kubelet_dns

Obj = dict[str, Any]
NET = servicenet.ServiceNetwork(10)


def svc(name: str = "ckpt", *, headless: bool = True, ports: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080,
                                                       "protocol": "TCP"}] if ports is None else ports,
                 "ipFamilies": ["IPv4"], **spec}
    body["clusterIP"] = "None" if headless else body.get("clusterIP", "127.10.0.50")
    return {"apiVersion": "v1", "kind": "Service", "spec": body,
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"team": "a"},
                         "creationTimestamp": "2026-01-01T00:00:00Z"}}


def pod(name: str, ip: str, *, ready: bool = True, subdomain: str = "ckpt", deleting: bool = False,
        phase: str = "Running", node: str = "kubesim-worker") -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "ckpt"},
                 "resourceVersion": "1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return {"metadata": meta,
            "spec": {"hostname": name, "subdomain": subdomain, "nodeName": node,
                     "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": "2026-01-01T00:00:30Z"}]}}


NODES = {"kubesim-worker": {"metadata": {"name": "kubesim-worker", "labels": {}}}}


def node_of(name: str) -> Obj | None:
    return NODES.get(name)


def saved(es: Obj, name: str, rv: int = 5) -> Obj:
    out = dict(es)
    out["metadata"] = {**es["metadata"], "name": name, "uid": f"uid-{name}", "resourceVersion": str(rv)}
    out["metadata"].pop("generateName", None)
    return out


# ----- G2: the EndpointSlice reconciler -------------------------------------------------------------


def test_a_headless_service_gets_one_slice_with_hostnames_conditions_and_upstreams_labels() -> None:
    """G2: endpoints carry addresses, ready/serving/terminating, hostname (subdomain = service), node, targetRef."""
    plan = rec.plan(svc(), [pod("ckpt-0", "127.10.1.2"), pod("ckpt-1", "127.10.2.2", ready=False),
                            pod("ckpt-2", "127.10.1.3", deleting=True), pod("done", "127.10.1.4", phase="Succeeded")],
                    [], node_of)
    assert not plan.update
    assert not plan.delete
    assert len(plan.create) == 1
    es = plan.create[0]
    assert es["metadata"]["generateName"] == "ckpt-"
    assert es["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "ckpt",
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                        "service.kubernetes.io/headless": ""}
    assert es["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "ckpt",
                                                  "uid": "uid-ckpt", "controller": True, "blockOwnerDeletion": True}]
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_pod = {e["targetRef"]["name"]: e for e in es["endpoints"]}
    assert set(by_pod) == {"ckpt-0", "ckpt-1", "ckpt-2"}  # terminal pods are out, terminating ones in
    assert by_pod["ckpt-0"] == {"addresses": ["127.10.1.2"], "hostname": "ckpt-0", "nodeName": "kubesim-worker",
                                "conditions": {"ready": True, "serving": True, "terminating": False},
                                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "ckpt-0", "uid": "uid-ckpt-0"}}
    assert by_pod["ckpt-1"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert by_pod["ckpt-2"]["conditions"] == {"ready": False, "serving": True, "terminating": True}


def test_publish_not_ready_addresses_marks_every_endpoint_ready_and_other_subdomains_get_no_hostname() -> None:
    """G2: publishNotReadyAddresses; ShouldSetHostname needs subdomain == service name."""
    plan = rec.plan(svc(publishNotReadyAddresses=True), [pod("ckpt-1", "127.10.2.2", ready=False, subdomain="x")],
                    [], node_of)
    (endpoint,) = plan.create[0]["endpoints"]
    assert endpoint["conditions"]["ready"] is True
    assert "hostname" not in endpoint


def test_slices_follow_changes_in_place_and_an_empty_service_keeps_one_placeholder() -> None:
    """G2: an existing slice is updated (not recreated); without endpoints one placeholder slice remains."""
    first = saved(rec.plan(svc(), [pod("ckpt-0", "127.10.1.2")], [], node_of).create[0], "ckpt-abcde")
    assert rec.plan(svc(), [pod("ckpt-0", "127.10.1.2")], [first], node_of).empty
    flipped = rec.plan(svc(), [pod("ckpt-0", "127.10.1.2", ready=False)], [first], node_of)
    assert [s["metadata"]["name"] for s in flipped.update] == ["ckpt-abcde"]
    assert not flipped.create
    assert flipped.update[0]["endpoints"][0]["conditions"]["ready"] is False
    emptied = rec.plan(svc(), [], [first], node_of)  # the delete of the last slice turns into the placeholder
    assert not emptied.create
    assert not emptied.delete
    (placeholder,) = emptied.update
    assert placeholder["metadata"]["name"] == "ckpt-abcde"
    assert placeholder["endpoints"] == []
    assert placeholder["ports"] == []
    assert rec.plan(svc(), [], [saved(placeholder, "ckpt-abcde")], node_of).empty


def test_many_pods_fill_slices_of_at_most_the_maximum_and_unknown_nodes_are_retried() -> None:
    """G2: maxEndpointsPerSlice; a pod on a node the cache does not know is skipped (retry)."""
    pods = [pod(f"p{i}", f"127.10.1.{i + 2}") for i in range(5)]
    plan = rec.plan(svc(), pods, [], node_of, max_per_slice=2)
    assert sorted(len(s["endpoints"]) for s in plan.create) == [1, 2, 2]
    lost = rec.plan(svc(), [pod("x", "127.10.3.2", node="gone")], [], node_of)
    assert lost.errors
    assert lost.create[0]["endpoints"] == []


# ----- G3: the Endpoints controller's subsets ------------------------------------------------------


def test_endpoints_subsets_are_repacked_with_not_ready_addresses_and_hostnames() -> None:
    """G3: RepackSubsets; terminating pods are out unless published; portless headless services keep addresses."""
    pods = [pod("ckpt-1", "127.10.2.2"), pod("ckpt-0", "127.10.1.2", ready=False),
            pod("ckpt-2", "127.10.1.3", deleting=True)]
    (subset,) = endpoints_ctrl.subsets_for(svc(), pods)
    assert [a["ip"] for a in subset["addresses"]] == ["127.10.2.2"]
    assert subset["addresses"][0]["hostname"] == "ckpt-1"
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["127.10.1.2"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    (portless,) = endpoints_ctrl.subsets_for(svc(ports=[]), pods[:1])
    assert portless == {"addresses": [portless["addresses"][0]]}
    assert portless["addresses"][0]["ip"] == "127.10.2.2"


def test_trigger_time_is_the_service_creation_first_then_the_oldest_unseen_ready_transition() -> None:
    """G2/G3: endpoints.kubernetes.io/last-change-trigger-time as TriggerTimeTracker computes it."""
    tracker = common.TriggerTimeTracker()
    first = tracker.compute(svc(), [pod("a", "127.10.1.2")])
    assert first is not None
    assert common.format_rfc3339nano(first) == "2026-01-01T00:00:00Z"
    assert tracker.compute(svc(), [pod("a", "127.10.1.2")]) is None
    later = pod("a", "127.10.1.2")
    later["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:05:00.250Z"
    moment = tracker.compute(svc(), [later])
    assert moment is not None
    assert common.format_rfc3339nano(moment) == "2026-01-01T00:05:00.25Z"


# ----- G1: ClusterIPs ------------------------------------------------------------------------------


def test_cluster_ips_come_from_the_clusters_range_and_are_unique() -> None:
    """G1: allocation, headless, requested addresses, upstream's errors, kept on update."""
    alloc = serviceips.Allocator(NET.service_cidr, reserved=(NET.kubernetes_ip, NET.dns_ip), rng=random.Random(1))
    used: set[str] = set()
    for i in range(30):
        body = admission.apply_defaults("Service", {"metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80}]}})
        alloc.prepare_create(body, used)
        ip = body["spec"]["clusterIP"]
        assert ip.startswith("127.10.0.")
        assert ip not in used
        assert ip not in (NET.kubernetes_ip, NET.dns_ip)
        assert body["spec"]["clusterIPs"] == [ip]
        assert (body["spec"]["ipFamilies"], body["spec"]["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
        used.add(ip)
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}}
    alloc.prepare_create(headless, used)
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilies"] == ["IPv4"]
    taken = {"metadata": {"name": "t"}, "spec": {"clusterIP": sorted(used)[0], "ports": [{"port": 80}]}}
    with pytest.raises(errors.ApiError) as dup:
        alloc.prepare_create(taken, used)
    assert "provided IP is already allocated" in dup.value.message
    outside = {"metadata": {"name": "o"}, "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}}
    with pytest.raises(errors.ApiError) as off:
        alloc.prepare_create(outside, used)
    assert "The range of valid IPs is 127.10.0.0/24" in off.value.message
    replaced = {"spec": {"ports": [{"port": 81}]}}
    serviceips.prepare_update(replaced, {"spec": {"clusterIP": "127.10.0.99", "clusterIPs": ["127.10.0.99"],
                                                  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}})
    assert replaced["spec"]["clusterIP"] == "127.10.0.99"
    assert replaced["spec"]["ipFamilyPolicy"] == "SingleStack"


def test_endpointslices_are_defaulted_and_validated_and_tabled_as_upstream() -> None:
    """G2: discovery/v1 defaults (port name "", protocol TCP), validation, and kubectl's table cells."""
    meta = {"name": "s", "namespace": "ns"}
    es = admission.apply_defaults("EndpointSlice", {"metadata": meta, "addressType": "IPv4", "ports": [{"port": 80}],
                                                    "endpoints": [{"addresses": ["127.10.1.2"]}]})
    assert es["ports"] == [{"name": "", "port": 80, "protocol": "TCP"}]
    assert admission.validate_create("EndpointSlice", es) == []
    bad = {"metadata": meta, "addressType": "IPv4",
           "ports": [{"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "ICMP"}],
           "endpoints": [{"addresses": ["::1"], "hostname": "Not_A_Label"}, {"addresses": []}]}
    fields = sorted(e.field for e in admission.validate_create("EndpointSlice", bad))
    assert fields == ["endpoints[0].addresses[0]", "endpoints[0].hostname", "endpoints[1].addresses",
                      "ports[1].name", "ports[1].protocol"]
    changed = {**es, "addressType": "FQDN"}
    assert [e.field for e in admission.validate_update("EndpointSlice", es, changed)] == ["addressType"]
    many = {"ports": [{"port": 8080}, {"name": "x"}],
            "endpoints": [{"addresses": [f"127.10.1.{i}"]} for i in range(2, 7)]}
    assert tables_discovery.slice_ports(many) == "8080,x"
    assert tables_discovery.slice_endpoints(many) == "127.10.1.2,127.10.1.3,127.10.1.4 + 2 more..."
    assert tables_discovery.slice_endpoints({}) == "<unset>"
    ep = {"subsets": [{"addresses": [{"ip": "127.10.1.2"}], "ports": [{"port": 80}, {"port": 81}]}]}
    assert tables_discovery.endpoints(ep) == "127.10.1.2:80,127.10.1.2:81"
    assert tables_discovery.endpoints({}) == "<none>"


# ----- G4: DNS answers -----------------------------------------------------------------------------


class View:
    def __init__(self, services: list[Obj], slices: list[Obj]) -> None:
        self.services, self.slices = services, slices

    def namespace_exists(self, namespace: str) -> bool:
        return namespace == "ns"

    def service(self, namespace: str, name: str) -> Obj | None:
        return next((s for s in self.services if s["metadata"]["name"] == name), None)

    def slices_of(self, namespace: str, service: str) -> list[Obj]:
        return [s for s in self.slices if s["metadata"]["labels"]["kubernetes.io/service-name"] == service]

    def services_with_ip(self, ip: str) -> list[Obj]:
        return [s for s in self.services if s["spec"]["clusterIP"] == ip]

    def slices_with_address(self, ip: str) -> list[Obj]:
        return [s for s in self.slices if any(ip in e["addresses"] for e in s["endpoints"])]


def resolver() -> records.Resolver:
    headless = svc()
    web = svc("web", headless=False, clusterIP="127.10.0.50")
    pods = [pod("ckpt-0", "127.10.1.2"), pod("ckpt-1", "127.10.2.2"), pod("ckpt-2", "127.10.1.3", ready=False)]
    slices = [saved(rec.plan(headless, pods, [], node_of).create[0], "ckpt-x"),
              saved(rec.plan(web, pods, [], node_of).create[0], "web-x")]
    return records.Resolver(View([headless, web], slices), NET.dns_ip)


def ask(name: str, qtype: int) -> wire.Answer:
    """Through the wire format both ways, as a client sees it."""
    reply = server.answer(resolver(), wire.build_query(7, name, qtype), udp=True, ready=lambda: True)
    assert reply is not None
    return wire.parse_answer(reply)


def test_dns_answers_services_headless_endpoints_and_per_pod_names_as_coredns() -> None:
    """G4: A for ClusterIP / headless (ready endpoints only), hostname.svc names, dashed-IP names, pods insecure."""
    assert ask("web.ns.svc.cluster.local", wire.A).records == [("web.ns.svc.cluster.local", wire.A, "127.10.0.50")]
    headless = ask("ckpt.ns.svc.cluster.local", wire.A)
    assert sorted(r[2] for r in headless.records) == ["127.10.1.2", "127.10.2.2"]
    assert headless.authoritative
    assert ask("ckpt-1.ckpt.ns.svc.cluster.local", wire.A).records[0][2] == "127.10.2.2"
    assert ask("127-10-2-2.web.ns.svc.cluster.local.", wire.A).records[0][2] == "127.10.2.2"
    assert ask("127-10-9-9.ns.pod.cluster.local", wire.A).records[0][2] == "127.10.9.9"
    assert ask("dns-version.cluster.local", wire.TXT).records[0][2] == "1.1.0"


def test_dns_nxdomain_nodata_srv_ptr_and_no_forwarding() -> None:
    """G4: NXDOMAIN for unknown names (also outside the zone), NODATA for AAAA, SRV with weights, PTR."""
    for name in ("nope.ns.svc.cluster.local", "ckpt-2.ckpt.ns.svc.cluster.local", "web.other.svc.cluster.local",
                 "example.com"):
        assert ask(name, wire.A).rcode == wire.NXDOMAIN, name
    nodata = ask("web.ns.svc.cluster.local", wire.AAAA)
    assert (nodata.rcode, nodata.records, nodata.authority[0][1]) == (wire.NOERROR, [], wire.SOA)
    srv = ask("_http._tcp.ckpt.ns.svc.cluster.local", wire.SRV)
    assert sorted(r[2] for r in srv.records) == [(0, 50, 8080, "ckpt-0.ckpt.ns.svc.cluster.local"),
                                                 (0, 50, 8080, "ckpt-1.ckpt.ns.svc.cluster.local")]
    assert sorted(r[2] for r in srv.additional) == ["127.10.1.2", "127.10.2.2"]
    assert ask("_http._tcp.web.ns.svc.cluster.local", wire.SRV).records == [
        ("_http._tcp.web.ns.svc.cluster.local", wire.SRV, (0, 100, 8080, "web.ns.svc.cluster.local"))]
    assert ask("50.0.10.127.in-addr.arpa", wire.PTR).records[0][2] == "web.ns.svc.cluster.local"
    assert ask("2.2.10.127.in-addr.arpa", wire.PTR).records[0][2] in ("ckpt-1.ckpt.ns.svc.cluster.local",
                                                                     "127-10-2-2.web.ns.svc.cluster.local")


def test_dns_server_says_servfail_until_synced_formerr_for_garbage_and_truncates_big_udp_answers() -> None:
    """G4: SERVFAIL before the caches sync; FORMERR; TC over UDP when the answer does not fit 512 bytes."""
    query = wire.build_query(9, "web.ns.svc.cluster.local", wire.A)
    reply = server.answer(resolver(), query, udp=True, ready=lambda: False)
    assert reply is not None
    assert wire.parse_answer(reply).rcode == wire.SERVFAIL
    bad = server.answer(resolver(), struct.pack("!6H", 3, 0, 1, 0, 0, 0) + b"\x05ab", udp=True, ready=lambda: True)
    assert bad is not None
    assert wire.parse_answer(bad).rcode == wire.FORMERR
    many = [saved(rec.plan(svc(), [pod(f"p{i}", f"127.10.1.{i + 2}") for i in range(60)], [], node_of).create[0],
                  "ckpt-x")]
    big = records.Resolver(View([svc()], many), NET.dns_ip)
    udp = server.answer(big, wire.build_query(1, "ckpt.ns.svc.cluster.local", wire.A), udp=True, ready=lambda: True)
    tcp = server.answer(big, wire.build_query(1, "ckpt.ns.svc.cluster.local", wire.A), udp=False, ready=lambda: True)
    assert udp is not None
    assert tcp is not None
    assert wire.parse_answer(udp).truncated
    assert len(udp) <= 512
    assert len(wire.parse_answer(tcp).records) == 60


def test_dns_server_serves_udp_and_tcp() -> None:
    """G4: the asyncio server over real sockets (a free port on loopback)."""
    dns = server.DnsServer(resolver(), "127.0.0.1", 0, ready=lambda: True)
    dns.start()
    try:
        query = wire.build_query(11, "web.ns.svc.cluster.local", wire.A)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(query, ("127.0.0.1", dns.port))
            assert wire.parse_answer(udp.recv(4096)).records[0][2] == "127.10.0.50"
        with socket.create_connection(("127.0.0.1", dns.port), timeout=5) as tcp:
            tcp.sendall(struct.pack("!H", len(query)) + query)
            size = struct.unpack("!H", tcp.recv(2))[0]
            data = b""
            while len(data) < size:
                data += tcp.recv(size - len(data))
            assert wire.parse_answer(data).id == 11
    finally:
        dns.stop()


# ----- G5: resolv.conf; G6: proxy backends -----------------------------------------------------------


def test_resolv_conf_follows_the_pods_dns_policy_and_config() -> None:
    """G5: ClusterFirst (default), Default, None, dnsConfig merging, as dns.go forms them."""
    host = "nameserver 10.255.255.53\nsearch corp.example.\noptions timeout:2\n"
    first = kubelet_dns.render(*kubelet_dns.pod_dns({"metadata": {"namespace": "ns"}, "spec": {}}, NET, host))
    assert first == ("search ns.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                     "nameserver 127.10.0.10\noptions ndots:5\n")
    default = kubelet_dns.pod_dns({"metadata": {"namespace": "ns"}, "spec": {"dnsPolicy": "Default"}}, NET, host)
    assert default == (["10.255.255.53"], ["corp.example"], ["timeout:2"])
    custom = kubelet_dns.pod_dns({"metadata": {"namespace": "ns"}, "spec": {
        "dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.b"],
                                           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}},
        NET, host)
    assert custom == (["1.1.1.1"], ["a.b"], ["ndots:2", "edns0"])


def test_proxy_backends_are_ready_endpoints_else_serving_terminating_ones() -> None:
    """G6: kube-proxy's choice of endpoints for a service port (by port name)."""
    pods = [pod("a", "127.10.1.2"), pod("b", "127.10.1.3", ready=False), pod("c", "127.10.1.4", deleting=True)]
    slices = rec.plan(svc(headless=False), pods, [], node_of).create
    assert serviceproxy.backends(slices, "http", "TCP") == [("127.10.1.2", 8080)]
    terminating = rec.plan(svc(headless=False), pods[1:], [], node_of).create
    assert serviceproxy.backends(terminating, "http", "TCP") == [("127.10.1.4", 8080)]
    assert serviceproxy.backends(slices, "other", "TCP") == []
