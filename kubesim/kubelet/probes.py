"""Readiness, liveness and startup probes: one worker thread per probe of a running container.

``pkg/kubelet/prober``: httpGet (2xx/3xx succeed, ``kube-probe/<version>`` user agent, redirects
not followed off-host, body ignored), tcpSocket (a connect), exec (exit code 0; run in the
container's namespaces through ``nsenter``); ``initialDelaySeconds`` from the container start,
then every ``periodSeconds``, each attempt limited by ``timeoutSeconds``; ``successThreshold`` /
``failureThreshold`` consecutive results flip the outcome. Readiness starts failed, liveness
starts succeeded, startup starts failed and gates the other two (they run once it succeeded).
The host of httpGet/tcpSocket defaults to the pod IP.

Timing is upstream's by default: the first attempt at ``initialDelaySeconds``, then one every
``periodSeconds``, so a pod is Ready up to a full period after its server listens, as on a real
cluster. The ``fast`` timing profile (``kubesim up --timing fast``, ``KUBESIM_PROBE_FAST_START``,
ControllerSettings.probe_fast_start) retries a readiness probe every ``fast_start`` seconds (0.1)
until it first succeeds, without Unhealthy events for the extra attempts: for conformance-style
tests about probe semantics, never for anything timed against a real cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from kubesim import version

Obj = dict[str, Any]
Kind = Literal["readiness", "liveness", "startup"]
USER_AGENT = version.probe_user_agent()
log = logging.getLogger("kubesim.kubelet")

#: runs argv inside the container with a timeout -> (exit code, combined output); raises TimeoutError
ExecFn = Callable[[Sequence[str], float], tuple[int, str]]


@dataclasses.dataclass(frozen=True)
class Settings:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: Obj, kind: Kind) -> Settings:
        success = int(probe.get("successThreshold") or 1)
        if kind != "readiness":
            success = 1  # validation forces 1 for liveness and startup
        return cls(
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=success,
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


class Outcome:
    """The thresholded result of one probe (``pkg/kubelet/prober/worker.go`` resultRun logic)."""

    def __init__(self, kind: Kind, settings: Settings) -> None:
        self.kind = kind
        self.settings = settings
        self.result = kind == "liveness"
        self._run_ok = 0
        self._run_fail = 0

    def record(self, ok: bool) -> bool:
        """Add one attempt; True when the thresholded result changed."""
        if ok:
            self._run_ok += 1
            self._run_fail = 0
            if not self.result and self._run_ok >= self.settings.success_threshold:
                self.result = True
                return True
        else:
            self._run_fail += 1
            self._run_ok = 0
            if self.result and self._run_fail >= self.settings.failure_threshold:
                self.result = False
                return True
        return False

    @property
    def gave_up(self) -> bool:
        """Liveness/startup: failureThreshold consecutive failures, the container must be restarted."""
        return self.kind != "readiness" and self._run_fail >= self.settings.failure_threshold

    @property
    def failures(self) -> int:
        return self._run_fail


def _port(value: Any, container: Obj) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    for port in container.get("ports") or []:
        if port.get("name") == text:
            return int(port["containerPort"])
    raise ValueError(f"unable to find port {text!r} in container's ports")


def http_get(action: Obj, container: Obj, pod_ip: str, timeout: float) -> tuple[bool, str]:
    host = str(action.get("host") or pod_ip)
    try:
        port = _port(action.get("port"), container)
    except ValueError as exc:
        return False, str(exc)
    scheme = str(action.get("scheme") or "HTTP").upper()
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme.lower()}://{host}:{port}{path}"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    for h in action.get("httpHeaders") or []:
        headers[str(h.get("name"))] = str(h.get("value"))
    conn: http.client.HTTPConnection
    if scheme == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(10 * 1024)
        status = resp.status
    except TimeoutError:
        return False, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')
    except ConnectionRefusedError:
        return False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
    except (OSError, http.client.HTTPException) as exc:
        return False, f'Get "{url}": {exc}'
    finally:
        conn.close()
    if 200 <= status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {status}"


def tcp_socket(action: Obj, container: Obj, pod_ip: str, timeout: float) -> tuple[bool, str]:
    host = str(action.get("host") or pod_ip)
    try:
        port = _port(action.get("port"), container)
    except ValueError as exc:
        return False, str(exc)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except ConnectionRefusedError:
        return False, f"dial tcp {host}:{port}: connect: connection refused"
    except OSError as exc:
        return False, f"dial tcp {host}:{port}: {exc}"


def run_exec(action: Obj, exec_fn: ExecFn, timeout: float) -> tuple[bool, str]:
    command = [str(c) for c in action.get("command") or []]
    if not command:
        return False, "exec probe has no command"
    try:
        code, output = exec_fn(command, timeout)
    except TimeoutError:
        return False, f"command {' '.join(repr(c) for c in command)} timed out"
    if code == 0:
        return True, ""
    return False, output.strip() or f"command {command!r} exited with {code}"


def run_once(probe: Obj, container: Obj, pod_ip: str, exec_fn: ExecFn, timeout: float) -> tuple[bool, str]:
    if probe.get("httpGet"):
        return http_get(probe["httpGet"], container, pod_ip, timeout)
    if probe.get("tcpSocket"):
        return tcp_socket(probe["tcpSocket"], container, pod_ip, timeout)
    if probe.get("exec"):
        return run_exec(probe["exec"], exec_fn, timeout)
    if probe.get("grpc"):
        return False, "grpc probes are not supported by kubesim"
    return False, "probe has no handler"


def nsenter_exec(init_pid: int, env: dict[str, str], uid: int | None, gid: int | None,
                 userns: bool) -> ExecFn:
    """An ExecFn that runs a command in the container's mount/pid/uts namespaces and root."""

    def run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        cmd = ["nsenter", "-t", str(init_pid), "-m", "-p", "-u", "-r", "-w"]
        if userns:
            cmd.insert(3, "-U")
            cmd.append("--preserve-credentials")
        elif uid is not None:
            cmd += ["-S", str(uid), "-G", str(gid if gid is not None else 0)]
        cmd += ["--", *argv]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        except OSError as exc:
            return 126, f"cannot run {cmd[0]} to enter the container: {exc}"
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            import os
            import signal as sig
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig.SIGKILL)
            proc.communicate()
            raise TimeoutError from None
        return proc.returncode, out.decode(errors="replace")

    return run


class Worker(threading.Thread):
    """Probes one container periodically; reports changes and failures through callbacks."""

    def __init__(self, kind: Kind, probe: Obj, container: Obj, pod_ip: str, started_at: float, *,
                 exec_fn: ExecFn, on_change: Callable[[Kind, bool], None],
                 on_failure: Callable[[Kind, str], None], gate: threading.Event | None,
                 fast_start: float) -> None:
        super().__init__(name=f"probe-{kind}-{container.get('name')}", daemon=True)
        self.kind = kind
        self.probe = probe
        self.container = container
        self.pod_ip = pod_ip
        self.started_at = started_at
        self.exec_fn = exec_fn
        self.on_change = on_change
        self.on_failure = on_failure
        self.gate = gate
        self.fast_start = fast_start if kind == "readiness" else 0.0
        self.settings = Settings.of(probe, kind)
        self.outcome = Outcome(kind, self.settings)
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        try:
            self._loop()
        except Exception:  # a probe must never die silently: report it as a failure and stop
            log.exception("probe %s of container %s crashed", self.kind, self.container.get("name"))
            self.on_failure(self.kind, "kubesim probe worker crashed; see kubelet.log")

    def _loop(self) -> None:
        if self.gate is not None:
            while not self.gate.wait(0.2):
                if self.stopped.is_set():
                    return
        delay = self.started_at + self.settings.initial_delay - time.monotonic()
        if delay > 0 and self.stopped.wait(delay):
            return
        next_regular = time.monotonic()
        ever_succeeded = False
        while not self.stopped.is_set():
            now = time.monotonic()
            regular = now >= next_regular - 1e-3
            ok, message = run_once(self.probe, self.container, self.pod_ip, self.exec_fn, self.settings.timeout)
            if self.stopped.is_set():
                return
            ever_succeeded = ever_succeeded or ok
            if not ok and (regular or ever_succeeded):
                self.on_failure(self.kind, message)
            if ok or regular or ever_succeeded:
                changed = self.outcome.record(ok)
                if self.outcome.gave_up:
                    self.on_change(self.kind, False)
                    return
                if changed:
                    self.on_change(self.kind, self.outcome.result)
            if self.kind == "startup" and self.outcome.result:
                return  # a startup probe stops once it succeeded
            if regular:
                next_regular = now + self.settings.period
            wait = next_regular - time.monotonic()
            if self.fast_start > 0 and not ever_succeeded:
                wait = min(wait, self.fast_start)
            if self.stopped.wait(max(wait, 0.0)):
                return
