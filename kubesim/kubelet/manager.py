"""The kubelet process: node agent, the pod source (list + watch by spec.nodeName), pod workers.

A restarted kubelet (same node name) is a rebooted node: it kills whatever a previous process
left in ``containers.json``, adopts its Node object, and lists its pods — each running container
of the previous process is reported as exited (137) and restarted with ``restartCount + 1``;
pods whose deletion was requested meanwhile are finished.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from kubesim import client as kclient
from kubesim import images
from kubesim.controllers import events, settings
from kubesim.kubelet import admission, backoff, containers, lazyvolumes, node, podip, pods

Obj = dict[str, Any]
log = logging.getLogger("kubesim.kubelet")


class Kubelet:
    def __init__(self, api: kclient.Client, state_dir: Path, node_name: str, node_index: int, *, cluster: int,
                 cfg: settings.ControllerSettings, sandbox_mode: str, fast_start: float,
                 stop: threading.Event | None = None) -> None:
        self.api = api
        self.node_name = node_name
        self.node_dir = state_dir / "nodes" / node_name
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self.recorder = events.Recorder(api, "kubelet", node_name)
        host_ip = podip.host_ip(cluster, node_index)
        self.agent = node.NodeAgent(api, self.recorder, node_name, host_ip=host_ip, state_dir=state_dir,
                                    interval=cfg.node_status_interval, lease_duration=cfg.node_lease_duration)
        self.registry = containers.Registry(self.node_dir / "containers.json")
        self.ctx = pods.Context(
            api=api, event=self._event, node=node_name, node_dir=self.node_dir, host_ip=host_ip,
            allocator=podip.Allocator(cluster, node_index), launcher=containers.Launcher(), registry=self.registry,
            crash_backoff=backoff.Backoff(cfg.crashloop_base, cfg.crashloop_max),
            image_backoff=backoff.Backoff(cfg.crashloop_base, cfg.crashloop_max),
            sandbox_mode=sandbox_mode, fast_start=fast_start, allocatable=dict(self.agent.allocatable),
            lazy=lazyvolumes.LazyVolumes(state_dir, self.node_dir, node_name),
            node_images=images.NodeImages(self.node_dir / "images.json"), image_pull_time=cfg.image_pull_time)
        self.workers: dict[str, pods.PodWorker] = {}
        self.lock = threading.Lock()
        self.stop = stop if stop is not None else threading.Event()
        self._stream: kclient.WatchStream | None = None
        self._listed_once = False

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        ref = {"kind": "Pod", "apiVersion": "v1", **obj}
        self.recorder.event(ref, "Warning" if type_ == "Warning" else "Normal", reason, message)

    # ----- pods ---------------------------------------------------------------------------------

    def _done(self, uid: str) -> None:
        with self.lock:
            self.workers.pop(uid, None)

    def upsert(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if (pod.get("spec") or {}).get("nodeName") != self.node_name or not uid:
            return
        with self.lock:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.update(pod)
                return
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") and not meta.get("deletionTimestamp"):
                return  # finished before this kubelet started: nothing to run
            worker = pods.PodWorker(self.ctx, pod, self._done)
            if not (pod.get("status") or {}).get("startTime") and not meta.get("deletionTimestamp"):
                self._admit(worker, pod)  # pods a previous kubelet admitted are not re-judged
            self.workers[uid] = worker
        worker.start()

    def _admit(self, worker: pods.PodWorker, pod: Obj) -> None:
        """Kubelet admission (lifecycle/predicate.go GeneralPredicates): what a manually bound pod can
        get wrong that the scheduler would have caught — node selector, host ports, pod count, requests."""
        admitted = [w.pod for w in self.workers.values() if not w.terminal and w.rejected is None]
        verdict = admission.check(pod, admitted, self.agent.labels(), self.agent.allocatable)
        if verdict is not None:
            worker.rejected = verdict
            self._event(pod, "Warning", verdict[0], verdict[1])

    def remove(self, uid: str) -> None:
        with self.lock:
            worker = self.workers.get(uid)
        if worker is not None:
            worker.remove()

    def _sync_list(self) -> str:
        items, rv = self.api.list("pods", field_selector=f"spec.nodeName={self.node_name}")
        items.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
        seen = set()
        for pod in items:
            seen.add(str((pod.get("metadata") or {}).get("uid")))
            self.upsert(pod)
        with self.lock:
            gone = [uid for uid in self.workers if uid not in seen]
        for uid in gone:
            self.remove(uid)
        if not self._listed_once:
            self._listed_once = True
            self._remove_orphan_dirs(seen)
        return rv

    def _remove_orphan_dirs(self, live_uids: set[str]) -> None:
        """Directories of pods removed while no kubelet ran here (force-deleted during a crash)."""
        pods_dir = self.node_dir / "pods"
        if not pods_dir.is_dir():
            return
        for entry in pods_dir.iterdir():
            uid = entry.name.rsplit("_", 1)[-1]
            if entry.is_dir() and uid not in live_uids:
                log.info("removing the directory of pod uid %s, which no longer exists", uid)
                shutil.rmtree(entry, ignore_errors=True)

    def watch_pods(self) -> None:
        """List, then watch from the list's resourceVersion; re-list on 410 or a broken stream."""
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    rv = self._sync_list()
                stream = self.api.watch("pods", field_selector=f"spec.nodeName={self.node_name}",
                                        resource_version=rv, timeout_seconds=300)
                self._stream = stream
                for etype, obj in stream:
                    if etype == "BOOKMARK":
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        continue
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype in ("ADDED", "MODIFIED"):
                        self.upsert(obj)
                    elif etype == "DELETED":
                        self.remove(str((obj.get("metadata") or {}).get("uid")))
            except kclient.Gone:
                rv = ""
            except kclient.ApiError as exc:
                if self.stop.is_set():
                    return
                log.warning("pod watch: %s; re-listing", exc)
                rv = ""
                self.stop.wait(1.0)

    # ----- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        killed = self.registry.clear_leftovers()
        if killed:
            log.info("killed %d container(s) left by a previous kubelet", killed)
        while not self.stop.is_set():
            try:
                self.agent.register()
                break
            except kclient.ApiError as exc:
                log.warning("waiting for the API server to register node %s: %s", self.node_name, exc)
                self.stop.wait(1.0)
        threading.Thread(target=self.agent.run, name="heartbeat", daemon=True).start()
        threading.Thread(target=self.watch_pods, name="pod-watch", daemon=True).start()

    def shutdown(self) -> None:
        self.stop.set()
        self.agent.stop.set()
        if self._stream is not None:
            self._stream.close()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.kill_now()
        deadline = time.monotonic() + 5
        for w in workers:
            for c in w.cstate.values():
                if c.proc is not None:
                    c.proc.exited.wait(max(0.0, deadline - time.monotonic()))
        self.registry.clear_leftovers()
        if self.ctx.lazy is not None:
            self.ctx.lazy.release_all()  # nothing runs on them now: unmount cleanly (a clean shutdown)
        self.recorder.flush(2.0)
