"""The Node object and its heartbeat: registration, status, and the Lease in kube-node-lease.

``pkg/kubelet/kubelet_node_status.go`` (registerWithAPIServer, setNodeStatus) and
``pkg/kubelet/nodelease``: the Lease is renewed every ``node_status_interval`` (upstream: 10 s,
a quarter of the 40 s lease duration); node status is written when it changed, and at least
every 5 minutes otherwise (nodeStatusReportFrequency), so an idle cluster makes few writes.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import platform
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kubesim
from kubesim import client as kclient
from kubesim import timestamps, version
from kubesim.controllers import events

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
        self.capacity = capacity(state_dir)
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
            "allocatable": self.capacity,
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
        old_boot = ((node.get("status") or {}).get("nodeInfo") or {}).get("bootID")
        if old_boot and old_boot != self.boot_id:
            self.recorder.warning(node, "Rebooted", f"Node {self.name} has been rebooted, boot id: {self.boot_id}")
        self.post_status(force=True)
        self.renew_lease()

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
