"""Helpers for the streaming-subresource tests: kubectl runs, ``kubectl port-forward`` processes
ended by pid, pods that serve something, and waits with deadlines that name what they waited for.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import tenacity

Obj = dict[str, Any]
T = TypeVar("T")
NODE = "kubesim-worker2"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))

ECHO_SERVER = """
import os, socket, threading
server = socket.create_server((os.environ["POD_IP"], 7000))
def serve(conn):
    while True:
        data = conn.recv(262144)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    conn.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

HTTP_ECHO_SERVER = """
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _answer(self, body, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Method", self.command)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        self._answer(json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode(),
                     "application/json")
    do_HEAD = do_DELETE = do_OPTIONS = do_GET
    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if not size:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(body, "application/octet-stream")
    do_PUT = do_PATCH = do_POST
    def log_message(self, *args):
        pass
ThreadingHTTPServer((os.environ["POD_IP"], 8000), Echo).serve_forever()
"""


def await_(what: str, probe: Callable[[], T], check: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Poll ``probe`` until ``check`` holds; the failure names what was awaited and the last value."""
    last: list[T] = []

    def attempt() -> T:
        value = probe()
        last[:] = [value]
        if not check(value):
            raise AssertionError("not yet")
        return value

    try:
        return tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.1),
                                 reraise=True)(attempt)
    except AssertionError:
        raise AssertionError(f"timed out after {timeout}s awaiting {what}; last seen: {last[:1]!r}") from None


def kubectl(cluster: Any, namespace: str, *args: str, stdin: bytes | None = None, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, *args],
                          input=stdin, capture_output=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def pod(name: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": containers, **spec}}


def writer_pod(name: str) -> Obj:
    """The checkpoint writer, serving HTTP on its pod IP at 8080 (named port ``http``)."""
    container = {"name": "writer", "image": "ckpt-writer:test",
                 "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "LISTEN_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "STATEFULSET_NAME", "value": name.rsplit("-", 1)[0]},
                         {"name": "LISTEN_PORT", "value": "8080"}],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}}
    return pod(name, [container], volumes=[{"name": "data", "emptyDir": {}}], securityContext={"fsGroup": 10001})


def echo_pod(name: str) -> Obj:
    """A TCP echo server on the pod IP, port 7000 (half-closes after echoing everything)."""
    container = {"name": "echo", "image": "busybox",
                 "command": [sys.executable, "-c", ECHO_SERVER],
                 "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "ports": [{"containerPort": 7000}],
                 "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1}}
    return pod(name, [container])


def http_echo_pod(name: str) -> Obj:
    """An HTTP server on the pod IP, port 8000 (named ``web``): GET answers with the path and headers it
    received, POST/PUT/PATCH with the body."""
    container = {"name": "web", "image": "busybox", "command": [sys.executable, "-c", HTTP_ECHO_SERVER],
                 "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "ports": [{"name": "web", "containerPort": 8000}],
                 "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1}}
    return pod(name, [container])


def ready(obj: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def create_ready(cluster: Any, namespace: str, *objs: Obj, timeout: float = 45) -> list[Obj]:
    for obj in objs:
        cluster.client.create("pods", obj, namespace)
    return [await_(f"pod {o['metadata']['name']} Ready", lambda o=o: cluster.client.get(
        "pods", o["metadata"]["name"], namespace), ready, timeout=timeout) for o in objs]


def read_until(proc: subprocess.Popen[bytes], pattern: bytes, what: str, timeout: float = 30.0,
               *, stream: str = "stdout") -> bytes:
    """Read ``proc``'s stdout (or stderr) until ``pattern`` (a regex) appears; fails naming ``what``."""
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    fd = pipe.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s awaiting {what}; {stream} so far: {seen[-2000:]!r}")
        readable, _w, _x = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"{stream} ended before {what} (exit {proc.poll()}); it said: {seen[-2000:]!r}")
            seen += chunk
    return seen


def end(proc: subprocess.Popen[bytes]) -> None:
    """End a process this test started (its own process group, by pid) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@contextlib.contextmanager
def started(cluster: Any, namespace: str, *args: str, env: dict[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running kubectl (port-forward, logs -f, attach) in its own process group, ended by pid."""
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        end(proc)


@contextlib.contextmanager
def port_forward(cluster: Any, namespace: str, target: str, remote: int, *, websockets: bool = True,
                 ) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``kubectl port-forward TARGET :REMOTE``; yields (local port, process) once kubectl listens."""
    env = {} if websockets else {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
    # -v=4: client-go's tunneling dialer says which protocol it negotiated (a failed WebSocket upgrade
    # would otherwise fall back to plain SPDY silently)
    with started(cluster, namespace, "port-forward", "-v=4", target, f":{remote}", env=env) as proc:
        said = read_until(proc, rb"Forwarding from 127\.0\.0\.1:(\d+)", f"kubectl port-forward {target} to listen")
        match = re.search(rb"Forwarding from 127\.0\.0\.1:(\d+)", said)
        assert match is not None
        yield int(match.group(1)), proc
