"""The Node object and its heartbeat: registration, status, and the Lease in kube-node-lease.

``pkg/kubelet/kubelet_node_status.go`` (registerWithAPIServer, setNodeStatus) and
``pkg/kubelet/nodelease``: the Lease is renewed every ``node_status_interval`` (upstream: 10 s,
a quarter of the 40 s lease duration); node status is written when it changed, and at least
every 5 minutes otherwise (nodeStatusReportFrequency), so an idle cluster makes few writes.

Capacity and allocatable (:func:`node_resources`) as the kubelet's ``pkg/kubelet/cm``
``GetNodeAllocatableReservation``: capacity is this machine unless configured, allocatable =
capacity - reserved (kind reserves nothing, so by default both are the machine). A node can be
given a size of its own — ``KUBESIM_NODE_CAPACITY`` / ``KUBESIM_NODE_ALLOCATABLE`` /
``KUBESIM_SYSTEM_RESERVED`` (``cpu=2,memory=4Gi``; every node of the cluster) or per node in
``DIR/nodes/<node>/node-config.json`` (``{"allocatable": {"cpu": "2"}}``, same three keys,
beating the environment resource by resource) — so scheduling against small nodes can be tested
on one machine. Both are read when the kubelet starts.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import json
import logging
import os
import platform
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubesim
from kubesim import client as kclient
from kubesim import timestamps, version
from kubesim.apiserver.admission import quantity
from kubesim.controllers import events
from kubesim.kubelet import cgroups

Obj = dict[str, Any]
log = logging.getLogger("kubesim.kubelet")
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = version.GIT_VERSION
"""What ``/version`` says too (one constant, :mod:`kubesim.version`), as one upstream build reports both."""
REPORT_EVERY = 300.0


def _micro(ts: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(ts if ts is not None else time.time(), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_now = timestamps.now


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def capacity(state_dir: Path) -> dict[str, str]:
    """This machine as a node: its CPUs, memory, the state directory's disk, 110 pods (the kubelet's maxPods)."""
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    disk = shutil.disk_usage(state_dir)
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki", "pods": "110",
            "ephemeral-storage": f"{disk.total // 1024}Ki", "hugepages-2Mi": "0", "hugepages-1Gi": "0"}


NODE_CONFIG = "node-config.json"
CONFIG_ENV = {"capacity": "KUBESIM_NODE_CAPACITY", "allocatable": "KUBESIM_NODE_ALLOCATABLE",
              "systemReserved": "KUBESIM_SYSTEM_RESERVED"}


class NodeConfigError(ValueError):
    """A node size setting that is not ``name=quantity,...``; the kubelet refuses to start with it."""


def parse_resource_list(text: str, where: str) -> dict[str, str]:
    """``cpu=2,memory=4Gi`` → {"cpu": "2", "memory": "4Gi"} (quantities checked)."""
    out: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or _amount(value.strip()) is None:
            raise NodeConfigError(f"{where}: {item!r} is not name=quantity (e.g. cpu=2,memory=4Gi)")
        out[name.strip()] = value.strip()
    return out


def _amount(raw: object) -> decimal.Decimal | None:
    try:
        value = quantity.parse_quantity(raw)
    except (ValueError, TypeError):
        return None
    return value if value >= 0 else None


def _format(resource: str, value: decimal.Decimal) -> str:
    """A quantity the way the kubelet writes it: whole CPUs or millicores, memory/storage in Ki when exact."""
    if resource == "cpu":
        milli = int((value * 1000).to_integral_value(rounding=decimal.ROUND_FLOOR))
        return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
    whole = int(value.to_integral_value(rounding=decimal.ROUND_FLOOR))
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return f"{whole // 1024}Ki" if whole % 1024 == 0 and whole else str(whole)
    return str(whole)


def node_config(state_dir: Path, name: str, environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The node's configured capacity / allocatable / systemReserved: the environment, then its node-config.json."""
    env = os.environ if environ is None else environ
    config: dict[str, dict[str, str]] = {key: parse_resource_list(env.get(var, ""), var)
                                         for key, var in CONFIG_ENV.items()}
    path = state_dir / "nodes" / name / NODE_CONFIG
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return config
    except (OSError, ValueError) as exc:
        raise NodeConfigError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise NodeConfigError(f"{path}: expected an object with capacity/allocatable/systemReserved")
    for key in CONFIG_ENV:
        given = doc.get(key) or {}
        if not isinstance(given, dict):
            raise NodeConfigError(f"{path}: {key} must be an object of quantities")
        text = ",".join(f"{k}={v}" for k, v in given.items())
        config[key].update(parse_resource_list(text, f"{path} {key}"))
    return config


def node_resources(state_dir: Path, name: str,
                   environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable): allocatable = capacity - systemReserved, or as configured outright.

    An allocatable set outright above the machine raises capacity to it (a node never offers more than
    it has), so ``cpu=16`` simulates a bigger node than the machine running it.
    """
    config = node_config(state_dir, name, environ)
    cap = {**capacity(state_dir), **config["capacity"]}
    allocatable: dict[str, str] = {}
    for resource, raw in cap.items():
        total = _amount(raw) or decimal.Decimal(0)
        if resource in config["allocatable"]:
            wanted = _amount(config["allocatable"][resource]) or decimal.Decimal(0)
            if wanted > total:
                cap[resource] = config["allocatable"][resource]
            allocatable[resource] = config["allocatable"][resource]
            continue
        reserved = _amount(config["systemReserved"].get(resource, "0")) or decimal.Decimal(0)
        allocatable[resource] = raw if not reserved else _format(resource, max(decimal.Decimal(0), total - reserved))
    for resource, raw in config["allocatable"].items():  # e.g. an extended resource only allocatable names
        allocatable.setdefault(resource, raw)
        cap.setdefault(resource, raw)
    return cap, allocatable


class NodeAgent:
    def __init__(self, api: kclient.Client, recorder: events.Recorder, name: str, *, host_ip: str,
                 state_dir: Path, interval: float, lease_duration: float) -> None:
        self.api = api
        self.recorder = recorder
        self.name = name
        self.host_ip = host_ip
        self.state_dir = state_dir
        self.interval = interval
        self.lease_duration = lease_duration
        self.boot_id = str(uuid.uuid4())
        self.capacity, self.allocatable = node_resources(state_dir, name)
        self.cgroups = cgroups.for_node(state_dir / "nodes" / name)
        self._said_cgroups = False
        self.uid = ""
        self._reported = 0.0
        self._last_status: Obj | None = None
        self.stop = threading.Event()

    def labels(self) -> dict[str, str]:
        return {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": _arch(),
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": _arch()}

    def _conditions(self, previous: list[Obj]) -> list[Obj]:
        prev = {c.get("type"): c for c in previous}
        now = _now()
        rows = [("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
        out = []
        for kind, st, reason, message in rows:
            old = prev.get(kind) or {}
            since = old.get("lastTransitionTime") if old.get("status") == st else None
            out.append({"type": kind, "status": st, "reason": reason, "message": message,
                        "lastHeartbeatTime": now, "lastTransitionTime": since or now})
        return out

    def status(self, previous: Obj) -> Obj:
        return {
            "capacity": self.capacity,
            "allocatable": self.allocatable,
            "conditions": self._conditions(previous.get("conditions") or []),
            "addresses": [{"type": "InternalIP", "address": self.host_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.name).hex, "systemUUID": str(uuid.uuid5(
                    uuid.NAMESPACE_URL, self.name)), "bootID": self.boot_id,
                "kernelVersion": platform.release(), "osImage": "kubesim", "containerRuntimeVersion":
                    f"kubesim://{kubesim.__version__}", "kubeletVersion": KUBELET_VERSION,
                # Empty, as upstream since DisableNodeKubeProxyVersion became default-on (v1.33): the
                # kubelet no longer claims a kube-proxy version it cannot know (kubesim runs no kube-proxy).
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": _arch(),
            },
        }

    def register(self) -> None:
        """Create the Node (or adopt the one a previous kubelet of this name made) and post status."""
        body: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.name, "labels": self.labels(),
                                  "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                                  "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                     "spec": {}}
        try:
            node = self.api.create("nodes", body)
            log.info("registered node %s", self.name)
        except kclient.AlreadyExists:
            node = self.api.patch("nodes", self.name, {"metadata": {"labels": self.labels()}})
            log.info("node %s already registered; adopting it", self.name)
        self.uid = str(node["metadata"]["uid"])
        self.recorder.normal(node, "Starting", "Starting kubelet.")
        self._say_cgroups(node)
        old_boot = ((node.get("status") or {}).get("nodeInfo") or {}).get("bootID")
        if old_boot and old_boot != self.boot_id:
            self.recorder.warning(node, "Rebooted", f"Node {self.name} has been rebooted, boot id: {self.boot_id}")
        self.post_status(force=True)
        self.renew_lease()

    def _say_cgroups(self, node: Obj) -> None:
        """Once per kubelet: whether container limits are enforced here, in the log and as a Node event.

        Enforced: upstream's ``NodeAllocatableEnforced``. Not (or only partly): a Warning naming why,
        so nobody reads a passing memory-limit scenario as proof where nothing was enforced.
        """
        if self._said_cgroups:
            return
        self._said_cgroups = True
        cg = self.cgroups
        if cg.problem:
            log.warning("node %s: %s", self.name, cg.problem)
            self.recorder.warning(node, "ResourceLimitsNotEnforced", f"kubesim: {cg.problem}")
        if cg.enforced:
            log.info("node %s: container limits enforced with cgroup v%d", self.name, cg.driver.version)
            self.recorder.normal(node, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")

    def post_status(self, *, force: bool = False) -> None:
        node = self.api.get("nodes", self.name)
        current = node.get("status") or {}
        ready: Obj = next((c for c in current.get("conditions") or [] if c.get("type") == "Ready"), {})
        stale = time.monotonic() - self._reported >= REPORT_EVERY
        if not force and not stale and ready.get("status") == "True" and current.get("addresses"):
            return
        new = self.status(current)
        self.api.patch("nodes", self.name, {"status": new}, subresource="status")
        self._reported = time.monotonic()
        if ready.get("status") != "True":
            self.recorder.normal(node, "NodeReady", f"Node {self.name} status is now: NodeReady")

    def renew_lease(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "renewTime": _micro()}
        try:
            lease = self.api.get("leases", self.name, LEASE_NAMESPACE)
        except kclient.NotFound:
            self._ensure_namespace()
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE, "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}]},
                    "spec": spec}
            try:
                self.api.create("leases", body, LEASE_NAMESPACE)
                return
            except kclient.AlreadyExists:
                lease = self.api.get("leases", self.name, LEASE_NAMESPACE)
        lease["spec"] = {**(lease.get("spec") or {}), **spec}
        self.api.update("leases", lease)

    def _ensure_namespace(self) -> None:
        with contextlib.suppress(kclient.AlreadyExists):
            self.api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": LEASE_NAMESPACE}})

    def run(self) -> None:
        """Heartbeat until stopped; an unreachable API server is retried, never fatal."""
        while not self.stop.wait(self.interval):
            try:
                self.renew_lease()
                self.post_status()
            except kclient.NotFound:
                log.warning("node %s was deleted; registering again", self.name)
                try:
                    self.register()
                except kclient.ApiError as exc:
                    log.warning("re-registration failed: %s", exc)
            except kclient.ApiError as exc:
                log.warning("heartbeat failed (will retry): %s", exc)
