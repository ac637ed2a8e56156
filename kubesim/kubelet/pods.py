"""Pod workers: one thread per pod bound to this node, driving its containers toward the spec.

Mirrors the kubelet's pod worker + ``kuberuntime_manager.SyncPod`` for what kubesim supports:
admission (host ports), the "sandbox" (pod IP and directory), volumes, then per container:
pull (the image table), create and start through the shim, restart per ``restartPolicy`` with
CrashLoopBackOff, probes, and on ``deletionTimestamp`` SIGTERM → grace period → SIGKILL, a
final terminal status, and the grace-0 delete (uid precondition) the API server waits for.
Upstream wording is kept for events and waiting reasons because users and tools match on it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesim import client as kclient
from kubesim import images
from kubesim.kubelet import backoff, containers, dns, envvars, lazyvolumes, podip, probes, projected, status, volumes

Obj = dict[str, Any]
log = logging.getLogger("kubesim.kubelet")
MIN_GRACE = 2.0  # kubelet minimumGracePeriodInSeconds


@dataclasses.dataclass
class Context:
    """What every pod worker of this kubelet shares."""

    api: kclient.Client
    event: Callable[[Obj, str, str, str], None]
    node: str
    node_dir: Path
    host_ip: str
    allocator: podip.Allocator
    launcher: containers.Launcher
    registry: containers.Registry
    crash_backoff: backoff.Backoff
    image_backoff: backoff.Backoff
    sandbox_mode: str
    fast_start: float
    allocatable: dict[str, str]
    #: the `lazy` class's node plugin (lazyfs mounts); None: such volumes fail to mount
    lazy: lazyvolumes.LazyVolumes | None = None
    #: the images this node has pulled and its pull queue; None: every image is present (no pulls)
    node_images: images.NodeImages | None = None
    #: seconds a pull takes (the cluster's --image-pull-time; 0: pulls are instant)
    image_pull_time: float = 0.0


def iso(ts: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(ts if ts is not None else time.time(), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_pod(pod: Obj) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('name')}_{m.get('namespace')}({m.get('uid')})"


@dataclasses.dataclass
class CState:
    """What the kubelet knows about one container name of the pod."""

    name: str
    restart_count: int = 0
    instances: int = 0  # instances created (or inherited from a previous kubelet) for this name
    proc: containers.Process | None = None
    started_at: str = ""
    container_id: str = ""
    image: str = ""
    image_id: str = ""
    waiting: tuple[str, str] = ("ContainerCreating", "")
    terminated: Obj | None = None  # current state when not restarting
    last_terminated: Obj | None = None
    prev_terminated: Obj | None = None
    finished_mono: float = 0.0
    ready: bool = False
    started: bool = False
    workers: list[probes.Worker] = dataclasses.field(default_factory=list)
    startup_done: threading.Event = dataclasses.field(default_factory=threading.Event)
    kill_reason: str = ""
    backoff_event_at: float = 0.0
    pull_started: float = 0.0  # monotonic: when the pull in progress was asked for (0: none)
    pull_until: float = 0.0  # monotonic: when it completes
    spec: Obj = dataclasses.field(default_factory=dict)  # the container spec the running instance started from
    exec_fn: probes.ExecFn | None = None

    def state(self) -> Obj:
        if self.proc is not None and not self.proc.exited.is_set():
            return {"running": {"startedAt": self.started_at}}
        if self.terminated is not None:
            return {"terminated": dict(self.terminated)}
        reason, message = self.waiting
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message
        return {"waiting": waiting}


class PodWorker(threading.Thread):
    def __init__(self, ctx: Context, pod: Obj, on_done: Callable[[str], None]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta.get('namespace')}/{meta.get('name')}", daemon=True)
        self.ctx = ctx
        self.uid = str(meta["uid"])
        self.namespace = str(meta.get("namespace") or "default")
        self.pod_name = str(meta["name"])
        self.pod = pod
        self.on_done = on_done
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.removed = False
        self.rejected: tuple[str, str] | None = None
        self.terminal = False
        self.pod_ip = ""
        self.sandbox_ready = False
        self.vols: dict[str, volumes.Volume] | None = None
        self.mount_event_at = 0.0
        self.last_pushed: Obj | None = None
        self.start_time = str((pod.get("status") or {}).get("startTime") or "")
        self.dir = ctx.node_dir / "pods" / f"{self.namespace}_{self.pod_name}_{self.uid}"
        self.cstate: dict[str, CState] = {}
        self.istate: dict[str, CState] = {}  # init containers (and sidecars: init with restartPolicy Always)
        self.initialized = not (pod.get("spec") or {}).get("initContainers")
        self.init_failed = False
        self.stopping = threading.Event()
        self._inherit(pod)

    # ----- inputs ---------------------------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        with self.lock:
            self.pod = pod
        self.wake.set()

    def remove(self) -> None:
        """The pod object is gone from the API (force delete): stop its containers at once."""
        self.removed = True
        self.wake.set()

    def _inherit(self, pod: Obj) -> None:
        """Adopt what a previous kubelet of this node reported: restart counts and the pod IP."""
        st = pod.get("status") or {}
        ip = str(st.get("podIP") or "")
        if ip and self.ctx.allocator.claim(self.uid, ip):
            self.pod_ip = ip
        for key, target in (("containerStatuses", self.cstate), ("initContainerStatuses", self.istate)):
            for cs in st.get(key) or []:
                target[str(cs.get("name"))] = self._inherited(cs)

    @staticmethod
    def _inherited(cs: Obj) -> CState:
        """A container a previous kubelet ran: whatever was running died with it (reported as 137)."""
        if True:
            c = CState(name=str(cs.get("name")))
            c.restart_count = int(cs.get("restartCount") or 0)
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated")
            c.container_id = str(cs.get("containerID") or "")
            c.image, c.image_id = str(cs.get("image") or ""), str(cs.get("imageID") or "")
            if "running" in state:
                c.instances = 1
                c.last_terminated = {"exitCode": 137, "reason": "Error", "startedAt": state["running"].get("startedAt"),
                                     "finishedAt": iso(), "containerID": c.container_id}
                c.prev_terminated = last
                c.finished_mono = time.monotonic()
            elif "terminated" in state:
                c.instances = 1
                c.last_terminated = state["terminated"]
                c.prev_terminated = last
                c.finished_mono = time.monotonic()
            elif last:
                c.instances = 1
                c.last_terminated = last
                c.finished_mono = time.monotonic()
        return c

    def all_states(self) -> list[CState]:
        return [*self.istate.values(), *self.cstate.values()]

    # ----- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        due: float | None = 0.0
        while True:
            if due is None:
                self.wake.wait()
            elif due > 0:
                self.wake.wait(due)
            self.wake.clear()
            try:
                due = self.sync()
            except Exception:  # a bug or bad input must never take the kubelet down
                log.exception("pod %s/%s: sync failed", self.namespace, self.pod_name)
                due = 1.0
            if self.stopping.is_set():
                self.on_done(self.uid)
                return

    def sync(self) -> float | None:
        with self.lock:
            pod = self.pod
        spec = pod.get("spec") or {}
        meta = pod.get("metadata") or {}
        if self.removed:
            self._terminate(pod, MIN_GRACE)
            self._cleanup()
            return None
        if meta.get("deletionTimestamp"):
            self._terminate(pod, None)
            self._finish_deletion(pod)
            return None
        if self.terminal:
            return None
        if self.rejected is not None:
            reason, message = self.rejected
            if not self._push(pod, {"phase": "Failed", "reason": reason, "message": f"Pod was rejected: {message}"},
                              rejected=True):
                return 1.0
            self.terminal = True
            return None
        if not self.start_time:
            self.start_time = iso()
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            left = _parse_iso(self.start_time) + float(deadline) - time.time()
            if left <= 0:
                return self._deadline_exceeded(pod)
        if not self.pod_ip:
            self.pod_ip = self.ctx.allocator.allocate(self.uid)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sandbox_ready = True
        for c in spec.get("containers") or []:
            self.cstate.setdefault(str(c.get("name")), CState(name=str(c.get("name"))))
        for c in spec.get("initContainers") or []:
            self.istate.setdefault(str(c.get("name")), CState(name=str(c.get("name")), waiting=("PodInitializing", "")))
        dues: list[float] = []
        if self.vols is None:
            # As upstream's SyncPod: the status (every container waiting in ContainerCreating) is set before
            # the volumes are waited for. Events go out on another thread, so a FailedMount sent first could be
            # seen by a client while the pod still had no containerStatuses at all.
            self._push(pod)
            retry = self._setup_volumes(pod)
            if retry is not None:
                self._push(pod)
                return retry
        policy = str(spec.get("restartPolicy") or "Always")
        init_policy = "Never" if policy == "Never" else "OnFailure"
        for container in spec.get("initContainers") or []:
            sidecar = container.get("restartPolicy") == "Always"
            c = self.istate[str(container.get("name"))]
            if self.initialized and not sidecar:
                continue
            due = self._sync_container(pod, container, c, "Always" if sidecar else init_policy)
            if due is not None:
                dues.append(due)
            if self.initialized:
                continue
            running = c.proc is not None and not c.proc.exited.is_set()
            if sidecar and running and c.started:
                continue
            if not sidecar and c.terminated is not None and int(c.terminated.get("exitCode", 1)) == 0:
                continue
            if not sidecar and c.terminated is not None and init_policy == "Never":
                self.init_failed = True
            for main in self.cstate.values():
                main.waiting = ("PodInitializing", "")
            break
        else:
            self.initialized = True
        if self.initialized:
            for container in spec.get("containers") or []:
                due = self._sync_container(pod, container, self.cstate[str(container.get("name"))], policy)
                if due is not None:
                    dues.append(due)
        if not self._push(pod):
            dues.append(1.0)  # the API server is away (restarting?): try the status again soon
        if deadline is not None:
            dues.append(max(0.01, _parse_iso(self.start_time) + float(deadline) - time.time()))
        if self._is_terminal(pod):
            self.terminal = True
            self._stop_all_probes()
            return None
        return min(dues) if dues else None

    # ----- volumes --------------------------------------------------------------------------------

    def _getter(self, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.ctx.api.get(plural, name, namespace)
        except kclient.NotFound:
            return None

    def _setup_volumes(self, pod: Obj) -> float | None:
        try:
            self.vols = volumes.setup(pod, self.dir, self._getter, pod_ip=self.pod_ip, host_ip=self.ctx.host_ip,
                                      csi=self._publish_csi, token=self._request_token)
            return None
        except volumes.MountError as exc:
            now = time.monotonic()
            if now - self.mount_event_at > 10:
                self.mount_event_at = now
                self.ctx.event(pod, "Warning", "FailedMount", str(exc))
            for c in self.all_states():
                if c.proc is None and c.terminated is None:
                    c.waiting = ("ContainerCreating", "")
            return 10.0 if isinstance(exc, volumes.Unsupported) else 1.0
        except kclient.ApiError as exc:
            log.warning("pod %s/%s: volumes: %s", self.namespace, self.pod_name, exc)
            return 1.0

    def _request_token(self, namespace: str, account: str, request: Obj) -> str:
        """A projected volume's service account token: TokenRequest bound to this pod (the token manager's)."""
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
        answer = self.ctx.api.request("POST", path, request)
        return str((answer.get("status") or {}).get("token") or "")

    def _publish_csi(self, pv: Obj) -> Path:
        """A csi PV's node plugin: only the `lazy` class's (lazyfs) is registered on kubesim's nodes."""
        driver = ((pv.get("spec") or {}).get("csi") or {}).get("driver")
        if not lazyvolumes.is_lazy(pv) or self.ctx.lazy is None:
            raise volumes.Unsupported(
                f'MountVolume.MountDevice failed for volume "{(pv.get("metadata") or {}).get("name")}" : '
                f"kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: driver name {driver} "
                "not found in the list of registered CSI drivers")
        try:
            return self.ctx.lazy.publish(self.uid, pv)
        except lazyvolumes.LazyMountError as exc:
            raise (volumes.Unsupported if exc.permanent else volumes.MountError)(str(exc)) from None

    # ----- containers -----------------------------------------------------------------------------

    def _sync_container(self, pod: Obj, container: Obj, c: CState, policy: str) -> float | None:
        changed = False
        if c.proc is not None:
            if not c.proc.exited.is_set():
                changed = c.spec.get("image") != container.get("image")
                if changed:  # the only container field a pod update may change (validation)
                    grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
                    self._kill(pod, container, c, grace, "",
                               message=f"Container {c.name} definition changed, will be restarted")
                elif not c.kill_reason:
                    return None
                else:
                    self._kill(pod, container, c, self._probe_grace(pod, container, c.kill_reason), c.kill_reason)
            self._exited(c)
        if c.instances == 0 or changed:
            return self._start(pod, container, c)
        last_code = int((c.last_terminated or {}).get("exitCode", 0))
        if policy == "Never" or (policy == "OnFailure" and last_code == 0):
            if c.terminated is None and c.last_terminated is not None:
                c.terminated = c.last_terminated
                c.last_terminated = c.prev_terminated
            return None
        key = f"{self.uid}/{c.name}"
        now = time.monotonic()
        if c.pull_until or c.waiting[0] in ("CreateContainerConfigError", "CreateContainerError", "ErrImagePull",
                                            "ImagePullBackOff", "InvalidImageName"):
            return self._start(pod, container, c)
        if self.ctx.crash_backoff.in_backoff_since(key, c.finished_mono, now):
            delay = self.ctx.crash_backoff.delay(key, now)
            if c.waiting[0] != "CrashLoopBackOff" or now - c.backoff_event_at > delay:
                c.backoff_event_at = now
                self.ctx.event(pod, "Warning", "BackOff",
                               f"Back-off restarting failed container {c.name} in pod {format_pod(pod)}")
            c.waiting = ("CrashLoopBackOff", f"back-off {backoff.go_duration(delay)} restarting failed "
                                             f"container={c.name} pod={format_pod(pod)}")
            return max(0.01, c.finished_mono + delay - now)
        self.ctx.crash_backoff.next(key, now)
        return self._start(pod, container, c)

    def _exited(self, c: CState) -> None:
        proc = c.proc
        assert proc is not None
        proc.exited.wait()
        code = proc.exit_code
        c.prev_terminated = c.last_terminated
        reason = "OOMKilled" if proc.oom_killed else "Completed" if code == 0 else "Error"  # containerd's order
        c.last_terminated = {"exitCode": code, "reason": reason,
                             "startedAt": c.started_at, "finishedAt": iso(), "containerID": c.container_id}
        c.finished_mono = time.monotonic()
        c.proc = None
        c.ready = c.started = False
        c.kill_reason = ""
        c.waiting = ("", "")
        self._stop_probes(c)
        self.ctx.registry.remove(self._key(c.name), proc)
        log.info("pod %s/%s container %s exited with %d", self.namespace, self.pod_name, c.name, code)

    def _key(self, name: str) -> str:
        return f"{self.namespace}/{self.pod_name}/{name}"

    def _pull(self, pod: Obj, container: Obj, c: CState) -> images.Image | float:
        ref = str(container.get("image") or "")
        policy = str(container.get("imagePullPolicy") or "IfNotPresent")
        key = f"{self.uid}_{ref}"
        try:
            image = images.resolve(ref)
        except images.InvalidImageName as exc:
            c.waiting = ("InvalidImageName", str(exc))
            self.ctx.event(pod, "Warning", "InspectFailed", str(exc))
            return 30.0
        except images.PullError as exc:
            c.image = ref
            if policy == "Never":
                msg = f'Container image "{ref}" is not present with pull policy of Never'
                c.waiting = ("ErrImageNeverPull", msg)
                self.ctx.event(pod, "Warning", "ErrImageNeverPull", msg)
                return 30.0
            now = time.monotonic()
            left = self.ctx.image_backoff.in_backoff_since_update(key, now)
            if left > 0:
                if c.waiting[0] != "ImagePullBackOff":
                    self.ctx.event(pod, "Normal", "BackOff", f'Back-off pulling image "{ref}"')
                c.waiting = ("ImagePullBackOff", f'Back-off pulling image "{ref}"')
                return left
            self.ctx.event(pod, "Normal", "Pulling", f'Pulling image "{ref}"')
            self.ctx.event(pod, "Warning", "Failed", f'Failed to pull image "{ref}": {exc}')
            self.ctx.event(pod, "Warning", "Failed", "Error: ErrImagePull")
            delay = self.ctx.image_backoff.next(key, now)
            c.waiting = ("ErrImagePull", str(exc))
            return min(1.0, delay)
        store = self.ctx.node_images
        if policy == "Always" or (policy != "Never" and store is not None and not store.present(ref)):
            pending = self._pulling(pod, ref, c)
            if pending is not None:
                return pending
        else:
            self.ctx.event(pod, "Normal", "Pulled", f'Container image "{ref}" already present on machine')
        self.ctx.image_backoff.reset(key)
        return image

    def _pulling(self, pod: Obj, ref: str, c: CState) -> float | None:
        """Drive one pull: Pulling, ContainerCreating for the pull time, then Pulled (upstream's wording).

        Seconds until the pull completes (the worker's next pass), or None once it has.
        """
        now = time.monotonic()
        if not c.pull_until:
            self.ctx.event(pod, "Normal", "Pulling", f'Pulling image "{ref}"')
            c.pull_started = now
            store = self.ctx.node_images
            c.pull_until = store.schedule(ref, now, self.ctx.image_pull_time) if store is not None else now
        if now < c.pull_until:
            if c.waiting[0] != "PodInitializing":
                c.waiting = ("ContainerCreating", "")
            return max(0.01, c.pull_until - now)
        took = min(self.ctx.image_pull_time, c.pull_until - c.pull_started)
        waited = c.pull_until - c.pull_started
        c.pull_started = c.pull_until = 0.0
        if self.ctx.node_images is not None:
            self.ctx.node_images.pulled(ref)
        self.ctx.event(pod, "Normal", "Pulled",
                       f'Successfully pulled image "{ref}" in {backoff.go_duration(took)} '
                       f"({backoff.go_duration(waited)} including waiting). Image size: 0 bytes.")
        return None

    def _start(self, pod: Obj, container: Obj, c: CState) -> float | None:
        pulled = self._pull(pod, container, c)
        if isinstance(pulled, float):
            return pulled
        image = pulled
        c.image, c.image_id = image.ref, image.image_id
        cfg = image.config
        try:
            launch = self._launch_spec(pod, container, cfg)
        except (envvars.EnvError, volumes.MountError, ValueError) as exc:
            c.waiting = ("CreateContainerConfigError", str(exc))
            self.ctx.event(pod, "Warning", "Failed", f"Error: {exc}")
            return max(self.ctx.crash_backoff.base, 1.0)
        index = c.restart_count + 1 if c.instances > 0 else c.restart_count
        log_path = self.dir / c.name / f"{index}.log"
        started = self.ctx.launcher.launch(launch, log_path)
        if isinstance(started, containers.StartFailure):
            self.ctx.event(pod, "Warning", "Failed", f"Error: {started.message}")
            if started.stage == "create":
                c.waiting = ("CreateContainerError", started.message)
                return max(self.ctx.crash_backoff.base, 1.0)
            c.instances += 1
            c.restart_count = index
            c.prev_terminated = c.last_terminated
            c.container_id = f"kubesim://{containers.new_container_id()}"
            c.last_terminated = {"exitCode": 128, "reason": "StartError", "message": started.message,
                                 "startedAt": "1970-01-01T00:00:00Z", "finishedAt": iso(),
                                 "containerID": c.container_id}
            c.finished_mono = time.monotonic()
            c.waiting = ("RunContainerError", started.message)
            self.wake.set()  # the next pass applies the restart policy and back-off
            return None
        self.ctx.event(pod, "Normal", "Created", f"Created container: {c.name}")
        proc = started
        c.instances += 1
        c.restart_count = index
        c.proc = proc
        c.spec = container
        c.terminated = None
        c.container_id = f"kubesim://{proc.container_id}"
        c.started_at = iso()
        c.waiting = ("", "")
        self.ctx.registry.add(self._key(c.name), proc, self.uid)
        threading.Thread(target=self._watch_exit, args=(proc,), name=f"wait-{c.name}", daemon=True).start()
        self.ctx.event(pod, "Normal", "Started", f"Started container {c.name}")
        log.info("pod %s/%s container %s started (pid %d, %s sandbox, restart %d)", self.namespace, self.pod_name,
                 c.name, proc.init_pid, proc.mode, index)
        self._start_probes(pod, container, c, proc, launch)
        self._post_start(pod, container, c, proc)
        return None

    def _post_start(self, pod: Obj, container: Obj, c: CState, proc: containers.Process) -> None:
        """lifecycle.postStart right after the start; a failure kills the container (restart policy applies)."""
        hook = (container.get("lifecycle") or {}).get("postStart") or {}
        if not hook:
            return
        grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        ok, message = True, ""
        if hook.get("exec") and c.exec_fn is not None:
            ok, message = probes.run_exec(hook["exec"], c.exec_fn, max(grace, MIN_GRACE))
        elif hook.get("httpGet"):
            ok, message = probes.http_get(hook["httpGet"], container, self.pod_ip, max(grace, MIN_GRACE))
        elif hook.get("sleep"):
            proc.exited.wait(float(hook["sleep"].get("seconds") or 0))
        if ok or proc.exited.is_set():
            return
        log.info("pod %s/%s container %s: postStart hook failed: %s", self.namespace, self.pod_name, c.name, message)
        self.ctx.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook failed: {message}")
        self._kill(pod, container, c, grace, "")

    def _watch_exit(self, proc: containers.Process) -> None:
        proc.wait()
        self.wake.set()

    def _launch_spec(self, pod: Obj, container: Obj, cfg: images.ImageConfig) -> containers.LaunchSpec:
        spec = pod.get("spec") or {}
        env = dict(cfg.env)
        hostname = str(spec.get("hostname") or self.pod_name)
        env["HOSTNAME"] = hostname
        env.update(projected.master_service_env(self.ctx.api.host, self.ctx.api.port))  # in-cluster config
        env.update(envvars.build(pod, container, pod_ip=self.pod_ip, host_ip=self.ctx.host_ip,
                                 lookup=self._getter, node_allocatable=self.ctx.allocatable))
        command = [envvars.expand(str(a), env) for a in container.get("command") or []]
        args = [envvars.expand(str(a), env) for a in container.get("args") or []]
        argv = images.command_line(cfg, command or None, args or None)
        if not argv and not cfg.pause:
            raise ValueError("no command specified")
        psc = spec.get("securityContext") or {}
        csc = container.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        if uid is None:
            uid = cfg.user
            if gid is None:
                gid = cfg.group
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) and not uid:
            raise ValueError(f'container has runAsNonRoot and image will run as root (pod: "{format_pod(pod)}", '
                             f"container: {container.get('name')})")
        groups = [int(g) for g in psc.get("supplementalGroups") or []]
        if psc.get("fsGroup") is not None:
            groups.insert(0, int(psc["fsGroup"]))
        assert self.vols is not None
        mounts = volumes.mounts_for(container, self.vols)
        working = str(container.get("workingDir") or cfg.workdir or "/")
        makedirs = list(cfg.dirs)
        if container.get("workingDir"):
            makedirs.append(str(container["workingDir"]))
        rootfs = self.dir / str(container.get("name")) / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        mounts.append({"source": str(self._etc_hosts(hostname)), "target": "/etc/hosts", "readOnly": False,
                       "optional": True})
        mounts.append({"source": str(dns.write_resolv_conf(self.dir, self.pod, self.ctx.allocator.cluster)),
                       "target": "/etc/resolv.conf", "readOnly": False, "optional": True})
        return containers.LaunchSpec(
            argv=argv, env=env, cwd=working, rootfs=str(rootfs), mounts=mounts, makedirs=makedirs,
            uid=int(uid) if uid is not None else None, gid=int(gid) if gid is not None else None, groups=groups,
            hostname=hostname, pause=cfg.pause and not container.get("command"), mode=self.ctx.sandbox_mode,
            traverse=list(cfg.traverse), resources=dict(container.get("resources") or {}),
            node_dir=str(self.ctx.node_dir))

    def _etc_hosts(self, hostname: str) -> Path:
        """The kubelet-managed /etc/hosts: the machine's entries plus this pod's IP and hostname."""
        path = self.dir / "etc-hosts"
        try:
            base = Path("/etc/hosts").read_text()
        except OSError:
            base = "127.0.0.1\tlocalhost\n"
        subdomain = str((self.pod.get("spec") or {}).get("subdomain") or "")
        names = hostname
        if subdomain:
            names = f"{hostname}.{subdomain}.{self.namespace}.svc.cluster.local\t{hostname}"
        text = f"# Kubernetes-managed hosts file (kubesim).\n{base.rstrip()}\n{self.pod_ip}\t{names}\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return path

    # ----- probes ---------------------------------------------------------------------------------

    def _start_probes(self, pod: Obj, container: Obj, c: CState, proc: containers.Process,
                      launch: containers.LaunchSpec) -> None:
        c.startup_done = threading.Event()
        exec_fn = probes.nsenter_exec(proc.init_pid, launch.env, launch.uid, launch.gid, proc.mode == "userns")
        if proc.mode == "none":
            exec_fn = _plain_exec(launch.env)
        c.exec_fn = exec_fn
        if not container.get("startupProbe"):
            c.startup_done.set()
            c.started = True
        if not container.get("readinessProbe"):
            c.ready = c.started

        def on_change(kind: probes.Kind, ok: bool) -> None:
            if c.proc is not proc:
                return
            if kind == "startup" and ok:
                c.started = True
                c.startup_done.set()
                if not container.get("readinessProbe"):
                    c.ready = True
            elif kind == "readiness":
                c.ready = ok and c.started
            elif kind in ("liveness", "startup") and not ok:
                c.kill_reason = kind
            self.wake.set()

        def on_failure(kind: probes.Kind, message: str) -> None:
            label = {"readiness": "Readiness", "liveness": "Liveness", "startup": "Startup"}[kind]
            self.ctx.event(pod, "Warning", "Unhealthy", f"{label} probe failed: {message}")

        for kind, field in (("startup", "startupProbe"), ("readiness", "readinessProbe"),
                            ("liveness", "livenessProbe")):
            spec = container.get(field)
            if not spec:
                continue
            gate = None if kind == "startup" else c.startup_done
            worker = probes.Worker(kind, spec, container, self.pod_ip, proc.started_mono,  # type: ignore[arg-type]
                                   exec_fn=exec_fn, on_change=on_change, on_failure=on_failure, gate=gate,
                                   fast_start=self.ctx.fast_start)
            c.workers.append(worker)
            worker.start()

    def _stop_probes(self, c: CState) -> None:
        for w in c.workers:
            w.stop()
        c.workers = []

    def _stop_all_probes(self) -> None:
        for c in self.all_states():
            self._stop_probes(c)

    def _probe_grace(self, pod: Obj, container: Obj, kind: str) -> float:
        probe = container.get(f"{kind}Probe") or {}
        grace = probe.get("terminationGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return float(grace)

    # ----- stopping -------------------------------------------------------------------------------

    def _kill(self, pod: Obj, container: Obj, c: CState, grace: float, why: str, *, message: str = "") -> None:
        proc = c.proc
        if proc is None or proc.exited.is_set():
            return
        message = message or f"Stopping container {c.name}"
        if why:
            message = f"Container {c.name} failed {why} probe, will be restarted"
        self.ctx.event(pod, "Normal", "Killing", message)
        deadline = time.monotonic() + max(grace, MIN_GRACE)
        self._pre_stop(pod, c, deadline)
        proc.signal_main(signal.SIGTERM)
        if not proc.exited.wait(max(0.0, deadline - time.monotonic())):
            proc.kill()
        proc.exited.wait(10)
        del container

    def _terminate(self, pod: Obj, grace: float | None) -> None:
        """SIGTERM every running container, SIGKILL what is left when the grace period ends."""
        running = [c for c in self.all_states() if c.proc is not None and not c.proc.exited.is_set()]
        self._stop_all_probes()
        start = time.monotonic()
        meta = pod.get("metadata") or {}
        first = grace if grace is not None else float(meta.get("deletionGracePeriodSeconds") or 0)
        for c in running:
            assert c.proc is not None
            self.ctx.event(pod, "Normal", "Killing", f"Stopping container {c.name}")
            threading.Thread(target=self._pre_stop_then_term, args=(pod, c, start + max(first, MIN_GRACE)),
                             name=f"stop-{c.name}", daemon=True).start()
        while running:
            with self.lock:
                current = self.pod
            g = grace
            if g is None:
                g = float((current.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0)
            if self.removed:  # force-deleted meanwhile: the kubelet's minimum grace, no more
                g = 0.0
            deadline = start + max(g, MIN_GRACE)
            running = [c for c in running if c.proc is not None and not c.proc.exited.is_set()]
            left = deadline - time.monotonic()
            if left <= 0:
                for c in running:
                    assert c.proc is not None
                    c.proc.kill()
                for c in running:
                    assert c.proc is not None
                    c.proc.exited.wait(10)
                break
            if running:
                assert running[0].proc is not None
                running[0].proc.exited.wait(min(left, 0.2))
        for c in self.all_states():
            if c.proc is not None:
                self._exited(c)
                c.terminated = c.last_terminated
                c.last_terminated = c.prev_terminated

    def _deadline_exceeded(self, pod: Obj) -> float | None:
        """activeDeadlineSeconds ran out (``pkg/kubelet/active_deadline.go``): stop everything, phase Failed."""
        message = "Pod was active on the node longer than the specified deadline"
        if any(c.proc is not None for c in self.all_states()):
            self.ctx.event(pod, "Normal", "DeadlineExceeded", message)
            self._terminate(pod, float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))
        if not self._push(pod, {"phase": "Failed", "reason": "DeadlineExceeded", "message": message}):
            return 1.0
        self.terminal = True
        return None

    def _pre_stop_then_term(self, pod: Obj, c: CState, deadline: float) -> None:
        proc = c.proc
        self._pre_stop(pod, c, deadline)
        if proc is not None:
            proc.signal_main(signal.SIGTERM)

    def _pre_stop(self, pod: Obj, c: CState, deadline: float) -> None:
        """Run the container's preStop hook (exec, httpGet or sleep) within what is left of the grace period."""
        hook = (c.spec.get("lifecycle") or {}).get("preStop") or {}
        proc = c.proc
        left = deadline - time.monotonic()
        if not hook or proc is None or left <= 0:
            return
        ok, message = True, ""
        if hook.get("exec") and c.exec_fn is not None:
            ok, message = probes.run_exec(hook["exec"], c.exec_fn, left)
        elif hook.get("httpGet"):
            ok, message = probes.http_get(hook["httpGet"], c.spec, self.pod_ip, left)
        elif hook.get("sleep"):
            proc.exited.wait(min(float(hook["sleep"].get("seconds") or 0), left))
        if not ok:
            log.info("pod %s/%s container %s: preStop hook failed: %s", self.namespace, self.pod_name, c.name,
                     message)
            self.ctx.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {message}")

    def _finish_deletion(self, pod: Obj) -> None:
        final_phase = "Failed"
        codes = [int((c.terminated or {}).get("exitCode", 1)) for c in self.cstate.values() if c.terminated]
        if codes and all(code == 0 for code in codes) and len(codes) == len(self.cstate):
            final_phase = "Succeeded"
        if not self.terminal:
            self._push(pod, {"phase": final_phase})
        meta = pod.get("metadata") or {}
        try:
            self.ctx.api.delete("pods", self.pod_name, self.namespace, grace_period_seconds=0,
                                preconditions={"uid": self.uid})
        except kclient.NotFound:
            pass
        except kclient.Conflict:
            log.info("pod %s/%s: replaced before deletion finished (uid %s)", self.namespace, self.pod_name,
                     meta.get("uid"))
        except kclient.ApiError as exc:
            log.warning("pod %s/%s: delete failed, retrying: %s", self.namespace, self.pod_name, exc)
            time.sleep(1.0)
            self.wake.set()
            return
        self._cleanup()

    def _cleanup(self) -> None:
        self._stop_all_probes()
        if self.ctx.lazy is not None:
            self.ctx.lazy.release(self.uid)  # its lazy volumes, unless another pod here uses them
        self.ctx.allocator.release(self.uid)
        for c in self.all_states():
            self.ctx.crash_backoff.reset(f"{self.uid}/{c.name}")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.stopping.set()

    def kill_now(self) -> None:
        """Kubelet shutdown: SIGKILL everything this pod runs."""
        for c in self.all_states():
            if c.proc is not None:
                c.proc.kill()

    # ----- status ---------------------------------------------------------------------------------

    def _is_terminal(self, pod: Obj) -> bool:
        return bool(self.last_pushed and self.last_pushed.get("phase") in ("Succeeded", "Failed"))

    def container_statuses(self, pod: Obj, field: str = "containers") -> list[Obj]:
        out: list[Obj] = []
        states = self.cstate if field == "containers" else self.istate
        for container in (pod.get("spec") or {}).get(field) or []:
            c = states.get(str(container.get("name"))) or CState(name=str(container.get("name")))
            state = c.state()
            last = c.prev_terminated if "terminated" in state else c.last_terminated
            entry: Obj = {
                "name": c.name,
                "image": c.image or str(container.get("image") or ""),
                "imageID": c.image_id,
                "ready": bool(c.ready and "running" in state),
                "started": bool(c.started and "running" in state),
                "restartCount": c.restart_count,
                "state": state,
                "lastState": {"terminated": dict(last)} if last else {},
            }
            if c.container_id:
                entry["containerID"] = c.container_id
            out.append(entry)
        return out

    def _push(self, pod: Obj, override: Obj | None = None, *, rejected: bool = False) -> bool:
        """Send the status if it changed; False when the API server did not take it."""
        spec = pod.get("spec") or {}
        current = pod.get("status") or {}
        if rejected:
            new: Obj = {"phase": "Failed", "qosClass": current.get("qosClass") or status.qos_class(
                spec.get("containers") or [])}
            new.update(override or {})
            new.setdefault("reason", None)
            new.setdefault("message", None)
        else:
            statuses = self.container_statuses(pod)
            init_statuses = self.container_statuses(pod, "initContainers")
            phase = status.phase(str(spec.get("restartPolicy") or "Always"), statuses)
            if not self.initialized:
                phase = "Failed" if self.init_failed else "Pending"
            if override and "phase" in override:
                phase = override["phase"]
            new = {
                "phase": phase,
                "conditions": status.conditions(current.get("conditions") or [], sandbox_ready=self.sandbox_ready,
                                                statuses=statuses, pod_phase=phase,
                                                spec_containers=spec.get("containers") or [],
                                                init_statuses=init_statuses, initialized=self.initialized),
                "hostIP": self.ctx.host_ip,
                "hostIPs": [{"ip": self.ctx.host_ip}],
                "podIP": self.pod_ip or None,
                "podIPs": [{"ip": self.pod_ip}] if self.pod_ip else None,
                "startTime": self.start_time or None,
                "containerStatuses": statuses,
                "initContainerStatuses": init_statuses or None,
                "qosClass": current.get("qosClass") or status.qos_class(spec.get("containers") or []),
                "reason": None,
                "message": None,
            }
            for key in ("reason", "message"):
                if override and key in override:
                    new[key] = override[key]
        comparable = _comparable(new)
        # skip only when we sent this already AND the API server still has it: another writer (node
        # lifecycle marking pods not Ready) is overwritten, as the kubelet's status manager does
        in_api = _comparable({k: current.get(k) for k in new})
        if comparable == self.last_pushed and comparable == in_api:
            return True
        try:
            self.ctx.api.patch("pods", self.pod_name, {"status": new}, self.namespace, subresource="status")
        except kclient.NotFound:
            return True
        except kclient.ApiError as exc:
            log.warning("pod %s/%s: status update failed: %s", self.namespace, self.pod_name, exc)
            self.last_pushed = None
            return False
        self.last_pushed = comparable
        return True


def _parse_iso(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _comparable(st: Obj) -> Obj:
    """A status without what may differ harmlessly (nulls = absent, condition transition times)."""
    out: Obj = _strip_nulls(st)
    out["conditions"] = [{k: v for k, v in cond.items() if k != "lastTransitionTime"}
                         for cond in out.get("conditions") or []]
    return out


def _plain_exec(env: dict[str, str]) -> probes.ExecFn:
    import subprocess

    def run(argv: Any, timeout: float) -> tuple[int, str]:
        try:
            done = subprocess.run(list(argv), capture_output=True, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TimeoutError from None
        except OSError as exc:
            return 126, str(exc)
        return done.returncode, (done.stdout + done.stderr).decode(errors="replace")

    return run
