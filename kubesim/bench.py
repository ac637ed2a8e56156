"""``python -m kubesim bench``: GET/LIST/watch speed of the API server with 1,000 pods stored.

Starts a fresh server (``kubesim up`` in a temporary state directory, a real process reached
over HTTPS), fills it with 1,000 pods, then measures, each next to a baseline taken in the same
run:

* single-client GET/s of one pod over a keep-alive TLS connection; baseline: GET /healthz on
  the same connection (pure request overhead: TLS, HTTP parsing, auth);
* LIST of all 1,000 pods (ms, median and worst of 20); baseline: one GET, to show per-item cost;
* watch delivery latency from the writer's acknowledgement to each of 8 concurrent watchers
  (p50/p99, clocks in this process), and lost events per watcher (must be 0).

Targets (issue 4): GET >= 1,000/s, LIST < 100 ms, watch p99 < 20 ms, 0 lost.

Then :mod:`kubesim.bench_portforward`: port-forward MB/s through the API server (kubectl's SPDY
over WebSocket and plain SPDY) against a direct TCP connection to the pod, printed as ratios.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import rich.console
import rich.table
import yaml

PODS = 1000
GETS = 3000
LISTS = 20
WATCHERS = 8
WRITES = 300


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    token: str
    context: ssl.SSLContext

    def connect(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


@dataclasses.dataclass(frozen=True)
class Figures:
    healthz_per_s: float
    get_per_s: float
    list_ms_median: float
    list_ms_max: float
    get_ms: float
    watch_p50_ms: float
    watch_p99_ms: float
    watch_max_ms: float
    lost: tuple[int, ...]
    events_per_watcher: int
    writes_per_s: float


def _endpoint(kubeconfig: Path) -> Endpoint:
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    host, _, port = cluster["server"].removeprefix("https://").partition(":")
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    return Endpoint(host, int(port), cfg["users"][0]["user"]["token"], context)


def _call(conn: http.client.HTTPSConnection, ep: Endpoint, method: str, path: str,
          body: object | None = None) -> tuple[int, bytes]:
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=ep.headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def _fill(ep: Endpoint, console: rich.console.Console) -> None:
    conn = ep.connect()
    status, data = _call(conn, ep, "POST", "/api/v1/namespaces", {"metadata": {"name": "bench"}})
    if status != 201:
        raise RuntimeError(f"creating namespace bench failed: {status} {data[:200]!r}")
    with console.status(f"creating {PODS} pods"):
        for i in range(PODS):
            pod = {"metadata": {"name": f"pod-{i:04d}", "labels": {"app": "bench", "shard": str(i % 10)}},
                   "spec": {"nodeName": f"node-{i % 3}",
                            "containers": [{"name": "writer", "image": "ckpt-writer:latest",
                                            "env": [{"name": "ORDINAL", "value": str(i)}],
                                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{i}"}}]}}
            status, data = _call(conn, ep, "POST", "/api/v1/namespaces/bench/pods", pod)
            if status != 201:
                raise RuntimeError(f"creating pod {i} failed: {status} {data[:200]!r}")
    conn.close()


def _rate(conn: http.client.HTTPSConnection, ep: Endpoint, path: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        status, _data = _call(conn, ep, "GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
    return count / (time.perf_counter() - started)


def _watch(ep: Endpoint, rv: str, want: int, seen: dict[str, float], ready: threading.Barrier) -> None:
    conn = ep.connect(timeout=60)
    conn.request("GET", f"/api/v1/namespaces/bench/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=60",
                 headers=ep.headers)
    resp = conn.getresponse()
    ready.wait()
    while len(seen) < want:
        line = resp.readline()
        if not line:
            break
        now = time.perf_counter()
        event = json.loads(line)
        seen[event["object"]["metadata"]["name"]] = now
    conn.close()


def measure(ep: Endpoint, console: rich.console.Console) -> Figures:
    _fill(ep, console)
    conn = ep.connect()
    _rate(conn, ep, "/healthz", 200)  # warm up
    healthz = _rate(conn, ep, "/healthz", GETS)
    gets = _rate(conn, ep, "/api/v1/namespaces/bench/pods/pod-0500", GETS)
    lists: list[float] = []
    for _ in range(LISTS):
        started = time.perf_counter()
        status, data = _call(conn, ep, "GET", "/api/v1/pods")
        items = json.loads(data)["items"]
        lists.append((time.perf_counter() - started) * 1000)
        if status != 200 or len(items) != PODS:
            raise RuntimeError(f"LIST returned {status} with {len(items)} pods, expected {PODS}")
    status, data = _call(conn, ep, "GET", "/api/v1/namespaces/bench")
    rv = json.loads(data)["metadata"]["resourceVersion"]
    status, data = _call(conn, ep, "GET", "/api/v1/namespaces/bench/configmaps")
    rv = json.loads(data)["metadata"]["resourceVersion"]
    received: list[dict[str, float]] = [{} for _ in range(WATCHERS)]
    ready = threading.Barrier(WATCHERS + 1)
    threads = [threading.Thread(target=_watch, args=(ep, rv, WRITES, received[i], ready), daemon=True)
               for i in range(WATCHERS)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=30)
    acked: dict[str, float] = {}
    with console.status(f"{WRITES} writes watched by {WATCHERS} clients"):
        writes_started = time.perf_counter()
        for i in range(WRITES):
            name = f"cm-{i:04d}"
            status, data = _call(conn, ep, "POST", "/api/v1/namespaces/bench/configmaps",
                                 {"metadata": {"name": name}, "data": {"i": str(i)}})
            acked[name] = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"write {i} answered {status}: {data[:200]!r}")
        writes_per_s = WRITES / (time.perf_counter() - writes_started)
        for thread in threads:
            thread.join(timeout=30)
    get_ms = statistics.median(_timed_get(conn, ep) for _ in range(50))
    conn.close()
    latencies = sorted(max(0.0, (seen[name] - acked[name]) * 1000)
                       for seen in received for name in acked if name in seen)
    lost = tuple(WRITES - len(seen) for seen in received)
    return Figures(
        healthz_per_s=healthz, get_per_s=gets, list_ms_median=statistics.median(lists), list_ms_max=max(lists),
        get_ms=get_ms,
        watch_p50_ms=latencies[len(latencies) // 2] if latencies else float("nan"),
        watch_p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
        watch_max_ms=latencies[-1] if latencies else float("nan"),
        lost=lost, events_per_watcher=WRITES, writes_per_s=writes_per_s,
    )


def _timed_get(conn: http.client.HTTPSConnection, ep: Endpoint) -> float:
    started = time.perf_counter()
    _call(conn, ep, "GET", "/api/v1/namespaces/bench/pods/pod-0500")
    return (time.perf_counter() - started) * 1000


def run(console: rich.console.Console) -> None:
    """Bench suite entry point: start a throwaway server, measure, print figures and ratios, stop it."""
    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as tmp:
        state_dir = Path(tmp)
        up = subprocess.run([sys.executable, "-m", "kubesim", "up", "--state", tmp, "--port", "0"],
                            capture_output=True, text=True, timeout=60, check=False)
        if up.returncode != 0:
            raise RuntimeError(f"kubesim up failed: {up.stdout}{up.stderr}")
        try:
            figures = measure(_endpoint(state_dir / "kubeconfig"), console)
        finally:
            subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", tmp],
                           capture_output=True, text=True, timeout=60, check=False)
    table = rich.table.Table(title=f"kubesim API server, {PODS} pods stored")
    for column in ("measure", "value", "baseline", "ratio", "target", "ok"):
        table.add_column(column)

    def row(name: str, value: float, unit: str, *, baseline: str = "", ratio: str = "", target: str = "",
            ok: bool = True) -> None:
        table.add_row(name, f"{value:,.1f} {unit}", baseline, ratio, target, "yes" if ok else "NO")

    row("GET pod, 1 client", figures.get_per_s, "/s", baseline=f"healthz {figures.healthz_per_s:,.0f}/s",
        ratio=f"{figures.get_per_s / figures.healthz_per_s:.2f}x of healthz", target=">= 1,000/s",
        ok=figures.get_per_s >= 1000)
    row("LIST all pods (median)", figures.list_ms_median, "ms", baseline=f"one GET {figures.get_ms:.2f} ms",
        ratio=f"{figures.list_ms_median / figures.get_ms:.0f}x one GET", target="< 100 ms",
        ok=figures.list_ms_median < 100)
    row("LIST all pods (worst of 20)", figures.list_ms_max, "ms")
    row(f"watch delivery p50 ({WATCHERS} watchers)", figures.watch_p50_ms, "ms")
    row(f"watch delivery p99 ({WATCHERS} watchers)", figures.watch_p99_ms, "ms",
        baseline=f"max {figures.watch_max_ms:.1f} ms", target="< 20 ms", ok=figures.watch_p99_ms < 20)
    row(f"creates/s, 1 client ({WATCHERS} watchers attached)", figures.writes_per_s, "/s",
        ratio=f"{figures.writes_per_s / figures.get_per_s:.2f}x of GET")
    row("events lost (all watchers)", float(sum(figures.lost)), "",
        baseline=f"{figures.events_per_watcher} per watcher", target="0", ok=sum(figures.lost) == 0)
    console.print(table)
