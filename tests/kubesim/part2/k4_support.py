"""Test support for K4's controller tests: K4's controllers in-process against a real kubesim API server.

Why not the full cluster: these tests pin down the controllers' own contract (conditions, taints,
events, PDB status, 429s) with a *scripted* node heartbeat, so they stay fast and deterministic
and do not depend on the kubelet. The full-cluster tests (test_*_cluster.py, test_drain_*.py) use
K1's ``kubesim_cluster`` fixture instead.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any

from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from kubesim import client
from kubesim.controllers import disruption, nodelifecycle, runtime, settings, tainteviction

Obj = dict[str, Any]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def start_manager(api: client.Client, config: settings.ControllerSettings) -> runtime.Manager:
    mgr = runtime.Manager(api, config)
    for ctrl in (nodelifecycle.new(), tainteviction.new(), disruption.new(), disruption.new_stale_pods()):
        mgr.add(ctrl)
    if not mgr.start(sync_timeout=20):
        mgr.stop()
        raise RuntimeError("K4 controllers' informers did not sync within 20s")
    return mgr


class ScriptedKubelet:
    """Registers a Node, posts Ready and renews its Lease until :meth:`crash`; :meth:`restore` resumes."""

    def __init__(self, api: client.Client, name: str, interval: float = 0.3) -> None:
        self.api, self.name, self.interval = api, name, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def register(self) -> None:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name}}}
        self.api.create("nodes", node)
        self.post_ready("True")
        self.api.create("leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro_now()}},
            "kube-node-lease")
        self.restore()

    def post_ready(self, status: str) -> None:
        """What a kubelet's status update does: Ready with a fresh heartbeat (transition kept unless it changes)."""
        for _ in range(5):
            node = self.api.get("nodes", self.name)
            conds = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") != "Ready"]
            old = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
                       None)
            stamp = now()
            transition = old["lastTransitionTime"] if old and old.get("status") == status else stamp
            conds.append({"type": "Ready", "status": status, "reason": "KubeletReady" if status == "True" else
                          "KubeletNotReady", "message": "scripted", "lastHeartbeatTime": stamp,
                          "lastTransitionTime": transition})
            node.setdefault("status", {})["conditions"] = conds
            try:
                self.api.update("nodes", node, subresource="status")
                return
            except client.Conflict:
                continue
        raise RuntimeError(f"could not post Ready={status} for {self.name}: kept conflicting")

    def _renew(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.api.patch("leases", self.name, {"spec": {"renewTime": micro_now()}}, "kube-node-lease")
            except client.ApiError as exc:
                self.errors.append(exc)

    def crash(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def restore(self, ready: bool = True) -> None:
        self._stop = threading.Event()
        if ready:
            self.post_ready("True")
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
        self._thread.start()


def await_value(what: str, probe: Callable[[], Any], accept: Callable[[Any], bool], timeout: float) -> Any:
    """Poll ``probe`` until ``accept`` holds; the failure names what was awaited and the last value seen."""
    seen: list[Any] = [None]

    def sample() -> Any:
        seen[0] = probe()
        return seen[0]

    retrying = Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.1),
                        retry=retry_if_result(lambda value: not accept(value)) | retry_if_exception_type(
                            client.ApiError),
                        retry_error_callback=lambda _state: None)
    retrying(sample)
    if not accept(seen[0]):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {seen[0]!r}")
    return seen[0]


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def taint_keys(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


def events_for(api: client.Client, namespace: str, name: str, uid: str = "") -> list[tuple[str, str, str]]:
    """(type, reason, message) of the events about ``name`` (only that incarnation when ``uid`` is given)."""
    selector = f"involvedObject.name={name}" + (f",involvedObject.uid={uid}" if uid else "")
    items, _ = api.list("events", namespace, field_selector=selector)
    return [(e.get("type", ""), e.get("reason", ""), e.get("message", "")) for e in items]
