"""Bench: port-forward throughput through the API server against a direct TCP connection to the pod.

Subject: a fresh 1-node cluster (``kubesim up --nodes 1``) runs a pod with a small TCP server on its
pod IP; ``kubectl port-forward`` to it, in kubectl's default mode (SPDY tunnelled over WebSocket)
and in its fallback (plain SPDY), then the same transfers through the local port:

* upload: the client sends N MiB and half-closes, the pod answers with the count;
* download: the pod sends N MiB and closes;
* echo: N MiB each way at once (full duplex: what a checkpoint save + load pushes).

Baseline, in the same run: the same transfers on a direct TCP connection to the pod's IP, made
from inside the cluster's network (:func:`kubesim.network.call`; in host mode that is the host).
The ratio is forward/direct. Everything runs on this machine, so kubectl, the API server, the pod
and the client share the CPUs: the figure is what one forward carries on loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubesim import client, network

NODE = "kubesim-worker"
MIB = 1 << 20
SIZE_MIB = 64
ROUNDS = 3

SERVER = """
import os, socket, struct, threading
def serve(conn):
    mode = conn.recv(1)
    if mode == b"U":
        total = 0
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            total += len(data)
        conn.sendall(struct.pack("!Q", total))
    elif mode == b"D":
        want = struct.unpack("!Q", conn.recv(8, socket.MSG_WAITALL))[0]
        block = b"d" * (1 << 20)
        while want > 0:
            conn.sendall(block[:min(want, len(block))])
            want -= min(want, len(block))
    elif mode == b"E":
        while True:
            data = conn.recv(1 << 20)
            if not data:
                break
            conn.sendall(data)
    conn.close()
server = socket.create_server((os.environ["POD_IP"], 7000), backlog=64)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@dataclasses.dataclass(frozen=True)
class Rates:
    """MB/s (10^6 bytes per second), medians of :data:`ROUNDS` rounds."""

    upload: float
    download: float
    echo: float


def _recv_exact(sock: socket.socket, n: int) -> int:
    got = 0
    while got < n:
        data = sock.recv(min(MIB, n - got))
        if not data:
            break
        got += len(data)
    return got


def upload(address: tuple[str, int], size: int) -> float:
    with socket.create_connection(address, timeout=120) as sock:
        block = b"u" * MIB
        started = time.perf_counter()
        sock.sendall(b"U")
        for _ in range(size // MIB):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(8, socket.MSG_WAITALL)
        took = time.perf_counter() - started
    if len(answer) != 8 or struct.unpack("!Q", answer)[0] != size:
        raise RuntimeError(f"upload of {size} bytes: the pod counted {answer!r}")
    return size / took / 1e6


def download(address: tuple[str, int], size: int) -> float:
    with socket.create_connection(address, timeout=120) as sock:
        started = time.perf_counter()
        sock.sendall(b"D" + struct.pack("!Q", size))
        got = _recv_exact(sock, size)
        took = time.perf_counter() - started
    if got != size:
        raise RuntimeError(f"download: {got} of {size} bytes arrived")
    return size / took / 1e6


def echo(address: tuple[str, int], size: int) -> float:
    with socket.create_connection(address, timeout=120) as sock:
        received = [0]
        reader = threading.Thread(target=lambda: received.__setitem__(0, _recv_exact(sock, size)), daemon=True)
        block = b"e" * MIB
        started = time.perf_counter()
        sock.sendall(b"E")
        reader.start()
        for _ in range(size // MIB):
            sock.sendall(block)
        reader.join(120)
        took = time.perf_counter() - started
    if received[0] != size:
        raise RuntimeError(f"echo: {received[0]} of {size} bytes came back")
    return size / took / 1e6


def measure(address: tuple[str, int], size: int = SIZE_MIB * MIB, rounds: int = ROUNDS) -> Rates:
    def median(fn: Callable[[tuple[str, int], int], float]) -> float:
        return statistics.median(fn(address, size) for _ in range(rounds))

    return Rates(median(upload), median(download), median(echo))


def _up(state_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kubesim", "up", "--state", str(state_dir), "--port", "0",
                           "--nodes", "1"], capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubesim up failed: {proc.stdout}{proc.stderr}")


def _down(state_dir: Path) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state_dir)], capture_output=True,
                       text=True, timeout=120, check=False)


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "blast"}, "spec": {
        "nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": "busybox", "command": [sys.executable, "-c", SERVER],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1}}]}}


@contextlib.contextmanager
def _forward(state_dir: Path, *, websockets: bool) -> Iterator[int]:
    """``kubectl port-forward pod/blast :7000`` (its own process group, ended by pid); yields the local port."""
    env = {**os.environ, "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true" if websockets else "false"}
    kubectl = str(Path(sys.executable).with_name("kubectl"))
    proc = subprocess.Popen([kubectl, "--kubeconfig", str(state_dir / "kubeconfig"), "port-forward", "pod/blast",
                             ":7000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        said = b""
        deadline = time.monotonic() + 30
        while (match := re.search(rb"Forwarding from 127\.0\.0\.1:(\d+)", said)) is None:
            left = deadline - time.monotonic()
            ready, _w, _x = select.select([proc.stdout], [], [], max(0.0, left))
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                raise RuntimeError(f"kubectl port-forward did not start: {said!r}")
            said += chunk
        yield int(match.group(1))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@dataclasses.dataclass(frozen=True)
class Figures:
    direct: Rates
    tunnel: Rates
    spdy: Rates


def collect() -> Figures:
    with tempfile.TemporaryDirectory(prefix="kubesim-pf-bench-") as raw:
        state_dir = Path(raw)
        _up(state_dir)
        try:
            api = client.Client.from_state(state_dir)
            api.create("pods", _pod(), "default")

            def ready() -> bool:
                conds = (api.get("pods", "blast", "default").get("status") or {}).get("conditions") or []
                return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

            _wait("pod blast Ready", ready)
            ip = str(api.get("pods", "blast", "default")["status"]["podIP"])
            api.close()
            direct = network.call(state_dir, measure, (ip, 7000))
            with _forward(state_dir, websockets=True) as port:
                tunnel = measure(("127.0.0.1", port))
            with _forward(state_dir, websockets=False) as port:
                spdy = measure(("127.0.0.1", port))
            return Figures(direct, tunnel, spdy)
        finally:
            _down(state_dir)


def run(console: object) -> None:
    """Bench entry: port-forward MB/s (kubectl's two modes) next to a direct connection to the pod."""
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    console.print(f"[bold]kubesim port-forward[/bold] ({SIZE_MIB} MiB per transfer, median of {ROUNDS}, 1 node)")
    figures = collect()
    table = Table("path", "upload MB/s", "download MB/s", "echo MB/s each way", "ratio to direct (up/down/echo)")

    def ratio(subject: Rates) -> str:
        d = figures.direct
        return f"{subject.upload / d.upload:.2f} / {subject.download / d.download:.2f} / {subject.echo / d.echo:.2f}"

    for label, rates in (("direct TCP to the pod IP (baseline)", figures.direct),
                         ("kubectl port-forward, SPDY over WebSocket", figures.tunnel),
                         ("kubectl port-forward, plain SPDY", figures.spdy)):
        table.add_row(label, f"{rates.upload:,.1f}", f"{rates.download:,.1f}", f"{rates.echo:,.1f}",
                      "1.00 / 1.00 / 1.00" if rates is figures.direct else ratio(rates))
    console.print(table)
    worst = min(figures.tunnel.upload, figures.tunnel.download, figures.tunnel.echo)
    verdict = "meets" if worst >= 20 else "MISSES"
    console.print(f"  kubectl's default forward: at least {worst:.1f} MB/s in every direction ({verdict} the "
                  "tens-of-MB/s target)")


if __name__ == "__main__":
    from rich.console import Console

    run(Console())
