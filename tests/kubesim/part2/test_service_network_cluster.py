"""Service plumbing on the real 3-node cluster: EndpointSlices, Endpoints, cluster DNS, resolv.conf, kube-proxy.

A StatefulSet behind a headless Service (the shape ``harness deploy`` makes), a ClusterIP Service
and a headless Service that publishes not-ready addresses, all selecting the same pods. Each pod
serves HTTP on its pod IP and is Ready while ``/state/ready`` exists, so a test makes one pod
not-ready with ``kubectl exec`` and watches every consumer follow: the slices (``ready: false``
unless published), the Endpoints (``notReadyAddresses``), DNS (the per-pod name disappears),
the ClusterIP (still answered by the ready pod). Names are resolved INSIDE a pod with Python's
``socket.getaddrinfo`` — the C library reading the pod's own ``/etc/resolv.conf`` — which is what
an application in the pod does. One StatefulSet serves the whole module (pods start in about a
second; the module stays in the low tens of seconds on the shared session cluster).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from streaming_support import await_, kubectl

from kubesim import client, network

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

Obj = dict[str, Any]
WAIT = 30.0
SERVER = "touch /state/ready; exec python3 -m http.server 8080 --bind \"$POD_IP\""
RESOLVE = """
import json, socket, sys, urllib.request
out = {}
for name in sys.argv[1:]:
    if name.startswith("http://"):
        try:
            out[name] = urllib.request.urlopen(name, timeout=5).status
        except OSError as exc:
            out[name] = str(exc)
        continue
    try:
        out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)})
    except socket.gaierror as exc:
        out[name] = exc.errno
print(json.dumps(out))
"""


def _services() -> list[Obj]:
    port = {"name": "http", "port": 8080, "targetPort": "http"}
    selector = {"app": "ckpt"}
    return [
        {"metadata": {"name": "ckpt"}, "spec": {"clusterIP": "None", "selector": selector, "ports": [port]}},
        {"metadata": {"name": "pub"}, "spec": {"clusterIP": "None", "selector": selector, "ports": [port],
                                               "publishNotReadyAddresses": True}},
        {"metadata": {"name": "web"}, "spec": {"selector": selector, "ports": [{**port, "port": 80}]}},
    ]


def _statefulset(replicas: int) -> Obj:
    container = {"name": "c", "image": "busybox", "command": ["sh", "-c", SERVER],
                 "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "volumeMounts": [{"name": "state", "mountPath": "/state"}],
                 "readinessProbe": {"exec": {"command": ["test", "-f", "/state/ready"]}, "periodSeconds": 1,
                                    "failureThreshold": 1}}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ckpt"}, "spec": {
        "replicas": replicas, "serviceName": "ckpt", "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": {"app": "ckpt"}},
        "template": {"metadata": {"labels": {"app": "ckpt"}}, "spec": {
            "terminationGracePeriodSeconds": 1, "containers": [container],
            "volumes": [{"name": "state", "emptyDir": {}}]}}}}


class Deployed:
    """The module's namespace with its Services and two Ready pods."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        self.cluster = cluster
        self.api: client.Client = cluster.client
        self.ns = namespace

    def pod_ip(self, name: str) -> str:
        return str(self.api.get("pods", name, self.ns)["status"]["podIP"])

    def slices(self, service: str) -> list[Obj]:
        return self.api.list("endpointslices", self.ns, label_selector=f"kubernetes.io/service-name={service}")[0]

    def endpoints(self, service: str) -> list[Obj]:
        """(address, pod, ready, serving, terminating, hostname) of every endpoint of the Service's slices."""
        return sorted((a, (e.get("targetRef") or {}).get("name"), e["conditions"].get("ready"),
                       e["conditions"].get("serving"), e["conditions"].get("terminating"), e.get("hostname"))
                      for es in self.slices(service) for e in es.get("endpoints") or [] for a in e["addresses"])

    def exec(self, pod: str, *command: str) -> str:
        done = kubectl(self.cluster, self.ns, "exec", pod, "--", *command)
        assert done.returncode == 0, f"exec {command} in {pod}: {done.stderr.decode()}"
        return done.stdout.decode()

    def resolve(self, pod: str, *names: str) -> dict[str, Any]:
        """Inside ``pod``: each name's IPv4 addresses (getaddrinfo), or its EAI error; each http:// URL's status."""
        return json.loads(self.exec(pod, "python3", "-c", RESOLVE, *names))  # type: ignore[no-any-return]


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def deployed(kubesim_cluster: Any) -> Iterator[Deployed]:
    api: client.Client = kubesim_cluster.client
    namespace = f"svcnet-{uuid.uuid4().hex[:8]}"
    api.create("namespaces", {"metadata": {"name": namespace}})
    try:
        for svc in _services():
            api.create("services", svc, namespace)
        api.create("statefulsets", _statefulset(2), namespace)
        await_("ckpt-0 and ckpt-1 Ready", lambda: api.list("pods", namespace, label_selector="app=ckpt")[0],
               lambda pods: len(pods) == 2 and all(_ready(p) for p in pods), timeout=WAIT)
        yield Deployed(kubesim_cluster, namespace)
    finally:
        api.delete("namespaces", namespace)


def test_slices_and_endpoints_list_the_ready_pods_with_their_hostnames(deployed: Deployed) -> None:
    """G2 G3: EndpointSlice and Endpoints of a StatefulSet's headless Service; kubectl shows them."""
    ip0, ip1 = deployed.pod_ip("ckpt-0"), deployed.pod_ip("ckpt-1")
    want = sorted([(ip0, "ckpt-0", True, True, False, "ckpt-0"), (ip1, "ckpt-1", True, True, False, "ckpt-1")])
    await_("ckpt's slice lists both pods ready", lambda: deployed.endpoints("ckpt"), lambda e: e == want)
    (es,) = deployed.slices("ckpt")
    assert es["addressType"] == "IPv4"
    assert es["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert es["metadata"]["labels"] == {"kubernetes.io/service-name": "ckpt", "service.kubernetes.io/headless": "",
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    owner = es["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Service", "ckpt", True)
    # `pub` is not the pods' subdomain: no hostnames there; `web` has a ClusterIP: no headless label
    assert {e[5] for e in deployed.endpoints("pub")} == {None}
    assert "service.kubernetes.io/headless" not in deployed.slices("web")[0]["metadata"]["labels"]

    ep = deployed.api.get("endpoints", "ckpt", deployed.ns)
    (subset,) = ep["subsets"]
    assert [(a["ip"], a["hostname"], a["targetRef"]["name"]) for a in subset["addresses"]] == sorted(
        [(ip0, "ckpt-0", "ckpt-0"), (ip1, "ckpt-1", "ckpt-1")])
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert ep["metadata"]["labels"]["endpoints.kubernetes.io/managed-by"] == "endpoint-controller"

    table = kubectl(deployed.cluster, deployed.ns, "get", "endpointslices")
    assert table.returncode == 0, table.stderr.decode()
    header, *rows = table.stdout.decode().splitlines()
    assert header.split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    row = next(r.split() for r in rows if r.startswith("ckpt-"))
    assert row[1:3] == ["IPv4", "8080"]
    assert sorted(row[3].split(",")) == sorted([ip0, ip1])
    listed = kubectl(deployed.cluster, deployed.ns, "get", "endpoints", "ckpt", "-o", "name")
    assert listed.stdout.decode().strip() == "endpoints/ckpt"


def test_a_pod_resolves_per_pod_names_services_and_reaches_a_cluster_ip(deployed: Deployed) -> None:
    """G1 G4 G5 G6: cluster DNS from inside a pod (its resolv.conf, getaddrinfo), kube-proxy behind the ClusterIP."""
    ns = deployed.ns
    net = deployed.cluster.net
    dns_ip = f"127.{net.index}.0.10"
    assert deployed.exec("ckpt-0", "cat", "/etc/resolv.conf") == (
        f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
        f"nameserver {dns_ip}\noptions ndots:5\n")
    web_ip = deployed.api.get("services", "web", ns)["spec"]["clusterIP"]
    assert web_ip.startswith(f"127.{net.index}.0."), web_ip
    ip0, ip1 = deployed.pod_ip("ckpt-0"), deployed.pod_ip("ckpt-1")
    answers = deployed.resolve("ckpt-0", f"ckpt-1.ckpt.{ns}.svc.cluster.local", "ckpt-1.ckpt", "ckpt",
                               f"web.{ns}.svc.cluster.local", "web", f"nope.{ns}.svc.cluster.local",
                               "http://web/", "http://ckpt-1.ckpt:8080/")
    assert answers == {
        f"ckpt-1.ckpt.{ns}.svc.cluster.local": [ip1], "ckpt-1.ckpt": [ip1], "ckpt": sorted([ip0, ip1]),
        f"web.{ns}.svc.cluster.local": [web_ip], "web": [web_ip], f"nope.{ns}.svc.cluster.local": -2,  # EAI_NONAME
        "http://web/": 200, "http://ckpt-1.ckpt:8080/": 200,
    }
    # the DNS server and the ClusterIP live in the cluster's network only
    if net.mode == "private":
        probe = network.call(deployed.cluster.state_dir, _tcp_connects, web_ip, 80)
        assert probe is True
        assert _tcp_connects(web_ip, 80) is False, "the host must not reach the cluster's ClusterIPs"


def _tcp_connects(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_a_not_ready_pod_drops_out_of_dns_and_is_marked_in_slices_and_endpoints(deployed: Deployed) -> None:
    """G2 G3 G4: ready=false in the slices (true where published), notReadyAddresses, per-pod name gone; scale-down."""
    ns = deployed.ns
    ip0, ip1 = deployed.pod_ip("ckpt-0"), deployed.pod_ip("ckpt-1")
    deployed.exec("ckpt-1", "rm", "/state/ready")
    await_("ckpt-1 not ready in ckpt's slice", lambda: deployed.endpoints("ckpt"),
           lambda e: (ip1, "ckpt-1", False, False, False, "ckpt-1") in e)
    # each Service's slice is reconciled on its own: "pub" may lag "ckpt" by a sync
    await_("ckpt-1 ready (publishNotReadyAddresses) but not serving in pub's slice", lambda: deployed.endpoints("pub"),
           lambda e: (ip1, "ckpt-1", True, False, False, None) in e)
    subset = await_("ckpt-1 under notReadyAddresses", lambda: deployed.api.get("endpoints", "ckpt", ns)["subsets"],
                    lambda s: len(s) == 1 and [a["ip"] for a in s[0].get("notReadyAddresses") or []] == [ip1])[0]
    assert [a["ip"] for a in subset["addresses"]] == [ip0]
    published = deployed.api.get("endpoints", "pub", ns)["subsets"][0]
    assert sorted(a["ip"] for a in published["addresses"]) == sorted([ip0, ip1])
    assert "notReadyAddresses" not in published
    # cluster DNS follows the slices through its own informer: await it too
    want = {"ckpt-1.ckpt": -2, "ckpt": [ip0], "pub": sorted([ip0, ip1]), "http://web/": 200}
    await_("cluster DNS without ckpt-1's per-pod name",
           lambda: deployed.resolve("ckpt-0", "ckpt-1.ckpt", "ckpt", "pub", "http://web/"), lambda got: got == want)

    deployed.exec("ckpt-1", "touch", "/state/ready")
    await_("ckpt-1 ready again", lambda: deployed.endpoints("ckpt"),
           lambda e: (ip1, "ckpt-1", True, True, False, "ckpt-1") in e)
    deployed.api.patch("statefulsets", "ckpt", {"spec": {"replicas": 1}}, ns)
    await_("ckpt-1 gone from every slice and the Endpoints",
           lambda: (deployed.endpoints("ckpt"), deployed.endpoints("web"),
                    deployed.api.get("endpoints", "ckpt", ns)["subsets"]),
           lambda got: [e[1] for e in got[0]] == ["ckpt-0"] and [e[1] for e in got[1]] == ["ckpt-0"]
           and [a["ip"] for s in got[2] for a in s.get("addresses") or []] == [ip0])
    await_("cluster DNS answering ckpt with ckpt-0 only", lambda: deployed.resolve("ckpt-0", "ckpt")["ckpt"],
           lambda got: got == [ip0])


def test_a_deleted_service_takes_its_slices_and_endpoints_and_its_address_is_free(deployed: Deployed) -> None:
    """G1 G2 G3: slices go with their Service (ownerReference, GC), Endpoints with the controller; the IP is free."""
    ns = deployed.ns
    deployed.api.create("services", {"metadata": {"name": "gone"}, "spec": {
        "selector": {"app": "ckpt"}, "ports": [{"port": 81, "targetPort": 8080}]}}, ns)
    await_("gone's slice and Endpoints", lambda: (deployed.slices("gone"), deployed.api.list("endpoints", ns)[0]),
           lambda got: len(got[0]) == 1 and "gone" in {e["metadata"]["name"] for e in got[1]})
    address = deployed.api.get("services", "gone", ns)["spec"]["clusterIP"]
    url = f"http://{address}:81/"
    await_("kube-proxy forwards gone's ClusterIP", lambda: deployed.resolve("ckpt-0", url)[url], lambda s: s == 200)
    deployed.api.delete("services", "gone", ns)
    await_("gone's slice and Endpoints deleted",
           lambda: (deployed.slices("gone"), {e["metadata"]["name"] for e in deployed.api.list("endpoints", ns)[0]}),
           lambda got: got[0] == [] and "gone" not in got[1])
    await_("gone's ClusterIP refuses connections", lambda: deployed.resolve("ckpt-0", url)[url],
           lambda s: "Connection refused" in str(s))
    again = deployed.api.create("services", {"metadata": {"name": "again"}, "spec": {
        "clusterIP": address, "ports": [{"port": 81}]}}, ns)
    assert again["spec"]["clusterIPs"] == [address]
    with pytest.raises(client.ApiError) as taken:
        deployed.api.create("services", {"metadata": {"name": "twice"}, "spec": {
            "clusterIP": address, "ports": [{"port": 81}]}}, ns)
    assert "provided IP is already allocated" in str(taken.value)
