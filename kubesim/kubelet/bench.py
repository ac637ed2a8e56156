"""Bench: how long a pod takes from create to Ready on a kubesim node, against the bare process.

Subject: on a fresh 1-node cluster (``kubesim up --nodes 1``), create a pod bound to the node and
time until its Ready condition is True, for a pause pod and for a ckpt-writer pod with an
emptyDir at /data and its readiness probe. Baseline, in the same run: the same work without the
kubelet and API — the pause shim launched directly, and ``harness writer serve`` started as a
plain process polled on /readyz. The ratio is what the kubelet (watch, status writes, namespaces,
probes) costs per pod start.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from kubesim import client, images
from kubesim.kubelet import containers

ROUNDS = 5
NODE = "kubesim-worker"


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def _ready(api: client.Client, ns: str, name: str) -> bool:
    pod = api.get("pods", name, ns)
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _gone(api: client.Client, ns: str, name: str) -> bool:
    try:
        api.get("pods", name, ns)
    except client.NotFound:
        return True
    return False


def _writer_container() -> dict[str, Any]:
    return {"name": "writer", "image": "ckpt-writer:bench", "imagePullPolicy": "IfNotPresent",
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "LISTEN_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "STATEFULSET_NAME", "value": "bench"}, {"name": "LISTEN_PORT", "value": "8080"}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2}}


def _pod_latency(api: client.Client, ns: str, name: str, container: dict[str, Any]) -> float:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2, "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "securityContext": {"fsGroup": 10001}}}
    start = time.monotonic()
    api.create("pods", pod, ns)
    _wait(f"pod {name} Ready", lambda: _ready(api, ns, name))
    took = time.monotonic() - start
    api.delete("pods", name, ns)
    _wait(f"pod {name} gone", lambda: _gone(api, ns, name))
    return took


def _bare_pause(tmp: Path, launcher: containers.Launcher) -> float:
    (tmp / "rootfs").mkdir(exist_ok=True)
    spec = containers.LaunchSpec(argv=[], env={"PATH": images.DEFAULT_PATH}, cwd="/", rootfs=str(tmp / "rootfs"),
                                 mounts=[], makedirs=[], uid=65535, gid=65535, groups=[], hostname="bench",
                                 pause=True, mode="auto")
    start = time.monotonic()
    proc = launcher.launch(spec, tmp / "pause.log")
    took = time.monotonic() - start
    if isinstance(proc, containers.Process):
        proc.kill()
        proc.wait()
    return took


def _bare_writer(tmp: Path, port: int) -> float:
    data = tmp / f"data-{port}"
    data.mkdir()
    env = {"PATH": f"{images.venv_bin()}:{images.DEFAULT_PATH}", "POD_NAME": "bench-0", "STATEFULSET_NAME": "bench",
           "LISTEN_HOST": "127.0.0.1", "LISTEN_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    proc = subprocess.Popen([str(Path(images.venv_bin()) / "harness"), "writer", "serve", "--data-dir", str(data)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    try:
        _wait("bare writer /readyz", ready)
        return time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(10)


def run(console: Console) -> None:
    with tempfile.TemporaryDirectory(prefix="kubesim-kubelet-bench-") as raw:
        tmp = Path(raw)
        state = tmp / "state"
        console.print(f"[bold]kubelet pod start[/bold]: starting a 1-node cluster in {state} …")
        up = subprocess.run([sys.executable, "-m", "kubesim", "up", "--state", str(state), "--port", "0",
                             "--nodes", "1"], capture_output=True, text=True, timeout=120, check=False)
        try:
            if up.returncode != 0:
                console.print(f"kubesim up failed: {up.stdout}{up.stderr}")
                return
            api = client.Client.from_state(state)
            api.create("namespaces", {"metadata": {"name": "bench"}})
            pause = [_pod_latency(api, "bench", f"pause-{i}", {"name": "c", "image": "registry.k8s.io/pause:3.10"})
                     for i in range(ROUNDS)]
            writer = [_pod_latency(api, "bench", f"writer-{i}", _writer_container()) for i in range(ROUNDS)]
            launcher = containers.Launcher()
            bare_pause = [_bare_pause(tmp, launcher) for _ in range(ROUNDS)]
            bare_writer = [_bare_writer(tmp, 18950 + i) for i in range(ROUNDS)]
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state)],
                               capture_output=True, text=True, timeout=120, check=False)
        for label, subject, base in (("pause pod", pause, bare_pause), ("writer pod", writer, bare_writer)):
            s, b = statistics.median(subject), statistics.median(base)
            console.print(f"  {label}: create → Ready median {s * 1000:.0f} ms (max {max(subject) * 1000:.0f} ms) "
                          f"vs bare start {b * 1000:.0f} ms — x{s / b:.1f}")
