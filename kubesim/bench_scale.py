"""Bench (issue 13, "Scale"): 64 writer replicas on 8 nodes against 3 on 3, on this machine's cores.

Why: every other suite runs 1-3 nodes and a handful of pods, so nothing says whether kubesim
still behaves like a cluster at the size a real checkpointing job has — whether the control
plane, the scheduler or the kubelets cost grows with the pod count faster than the pods
themselves, or whether the API answers slowly once 64 pods, their claims and their probes are
in the store. One run measures the same three figures on two clusters and prints them side by
side with the ratio 64/3 (the 3-replica cluster is the baseline, started by this same run):

* **rollout**: ``kubesim up --nodes N`` (default private network), the harness's own manifests
  (``python -m harness deploy --render --replicas N``: namespace, headless Service, the writer
  StatefulSet with its default ``OrderedReady`` policy, PDB), created through the API; the
  clock runs from the StatefulSet's create to the watch event that shows ``readyReplicas == N``.
  The writers are the real ``harness writer serve`` processes (:mod:`kubesim.images`). If the
  rollout does not finish within :data:`ROLLOUT_TIMEOUT` the suite says what is pending (every
  pod not Ready: phase, node, conditions, waiting reasons; the StatefulSet's status) instead of
  hanging.
* **idle CPU** (percent of one core over :data:`IDLE_S` s, after :data:`SETTLE_S` s for the
  rollout's last bursts): utime + stime from ``/proc/<pid>/stat`` of the processes ``up``
  recorded in ``state.json`` (the control plane: API server, controllers and scheduler in one
  process; the network holder; each kubelet) and, separately, of their descendants found by a
  ``/proc`` walk from those pids only: the per-container shims (``sandbox.py``) and the
  containers (the writers). Nothing else on the machine is counted.
* **API latency under load** (p50/p99, ms): one client on the host, through the published API
  port, repeating GET one pod / LIST the namespace's pods / merge-PATCH an annotation of one pod
  for :data:`LATENCY_S` s, while a load runs. The load is NOT ``harness load`` (locust, its
  history files and its port-forwards would add a process tree this suite cannot separate from
  what it measures); it is the same wire traffic with ``harness load``'s defaults — 4 users,
  1 MiB single-shard checkpoints as fast as each answer comes back, ordinals spread over the
  users — sent by one small process started inside the cluster's network namespace
  (:func:`kubesim.network.popen`) straight to the pod IPs, as ``--reach pod-ip`` would. The
  same load runs against both clusters; its checkpoints/s are printed so the load can be
  compared too.

Everything (clusters, the load process, temporary directories) is stopped and removed on the
way out, Ctrl-C included; ``kubesim down`` runs in a session of its own so the same Ctrl-C
cannot cut it short. About 3 minutes on 2 cores, mostly the 64-pod ordered rollout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from kubesim import client, network, state

TICKS = os.sysconf("SC_CLK_TCK")
NAMESPACE = "ckpt-chaos"
SET = "ckpt"
PORT = 8080
#: (replicas, nodes): the baseline first, then the subject
SIZES: tuple[tuple[int, int], ...] = ((3, 3), (64, 8))
#: seconds from the StatefulSet's create to all replicas Ready before the suite gives up (ordered
#: rollout: about 1.6 s a pod on 2 idle cores)
ROLLOUT_TIMEOUT = {3: 60.0, 64: 200.0}
SETTLE_S = 3.0
IDLE_S = 10.0
LATENCY_S = 10.0
LOAD_USERS = 4
LOAD_BYTES = 1 << 20
LOAD_START_TIMEOUT = 60.0

#: The load, run inside the cluster's network: argv[1] = JSON [[ip, port], ...] by ordinal.
#: Prints "started" after the first acknowledged checkpoint; every line on stdin restarts the
#: counters (the bench's window starts); EOF stops it and it prints its counts as one JSON line.
LOAD = r"""
import http.client, json, sys, threading, time, uuid
targets = [tuple(t) for t in json.loads(sys.argv[1])]
users, size = int(sys.argv[2]), int(sys.argv[3])
stop, first, lock = threading.Event(), threading.Event(), threading.Lock()
counts = {"ok": 0, "failed": 0, "lat": [], "since": time.perf_counter(), "error": ""}
def user(k):
    mine = targets[k::users] or [targets[k % len(targets)]]
    conns, turn = {}, 0
    while not stop.is_set():
        ip, port = mine[turn % len(mine)]
        turn += 1
        body = json.dumps({"bytes": size, "shards": 1, "request_id": uuid.uuid4().hex}).encode()
        started = time.perf_counter()
        error = ""
        try:
            conn = conns.get(ip)
            if conn is None:
                conn = conns[ip] = http.client.HTTPConnection(ip, port, timeout=60)
            conn.request("POST", "/checkpoints", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status != 200:
                error = f"{ip}: HTTP {resp.status} {answer[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{ip}: {exc!r}"
            dead = conns.pop(ip, None)
            if dead is not None:
                dead.close()
        took = time.perf_counter() - started
        with lock:
            if error:
                counts["failed"] += 1
                counts["error"] = error
            else:
                counts["ok"] += 1
                counts["lat"].append(took)
                first.set()
threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(users)]
for t in threads:
    t.start()
if first.wait(float(sys.argv[4])):
    print("started", flush=True)
else:
    print("no checkpoint acknowledged: " + counts["error"], flush=True)
for _line in sys.stdin:
    with lock:
        counts.update(ok=0, failed=0, lat=[], since=time.perf_counter())
stop.set()
with lock:
    span = time.perf_counter() - counts["since"]
    lat = sorted(counts["lat"])
    print(json.dumps({"ok": counts["ok"], "failed": counts["failed"], "span": span, "error": counts["error"],
                      "p50": lat[len(lat) // 2] if lat else None}), flush=True)
"""


class RolloutStuck(RuntimeError):
    """The StatefulSet did not become Ready in time; the message says what is pending and why."""


@dataclasses.dataclass(frozen=True)
class Latency:
    samples: int
    p50_ms: float
    p99_ms: float


@dataclasses.dataclass(frozen=True)
class Load:
    ok_per_s: float
    failed: int
    post_p50_ms: float


@dataclasses.dataclass(frozen=True)
class Figures:
    replicas: int
    nodes: int
    rollout_s: float
    cpu: dict[str, float]
    """Percent of one core per group (see :func:`_group`)."""
    latency: dict[str, Latency]
    load: Load


# ----- the cluster ------------------------------------------------------------------------------


def _kubesim(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m kubesim ARGS`` in a session of its own (a Ctrl-C aimed at the bench does not cut it short)."""
    return subprocess.run([sys.executable, "-m", "kubesim", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, start_new_session=True)


def _up(state_dir: Path, nodes: int) -> None:
    proc = _kubesim("up", "--state", str(state_dir), "--port", "0", "--nodes", str(nodes), timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"kubesim up --nodes {nodes} failed: {proc.stdout}{proc.stderr}")


def _down(state_dir: Path) -> bool:
    """Stop everything ``state_dir`` recorded; False (and say why) if ``down`` did not confirm it."""
    try:
        proc = _kubesim("down", "--state", str(state_dir), "--grace", "5", timeout=120)
    except subprocess.TimeoutExpired:
        print(f"kubesim down --state {state_dir} timed out; the directory is kept", file=sys.stderr)
        return False
    if proc.returncode != 0:
        print(f"kubesim down --state {state_dir} failed (directory kept): {proc.stdout}{proc.stderr}",
              file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def _cluster(nodes: int) -> Iterator[Path]:
    """A fresh ``kubesim up --nodes N`` in a temporary state directory; stopped and removed on the way out."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"kubesim-scale-{nodes}n-"))
    try:
        _up(state_dir, nodes)
        yield state_dir
    finally:
        if _down(state_dir):
            shutil.rmtree(state_dir, ignore_errors=True)


_PLURALS = {"Namespace": "namespaces", "Service": "services", "StatefulSet": "statefulsets",
            "PodDisruptionBudget": "poddisruptionbudgets"}


def _manifests(replicas: int, into: Path) -> list[dict[str, Any]]:
    """The harness's own objects for ``replicas`` writers (``harness deploy --render``), in apply order."""
    proc = subprocess.run([sys.executable, "-m", "harness", "deploy", "--render", str(into), "--replicas",
                           str(replicas), "--namespace", NAMESPACE, "--name", SET], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"harness deploy --render failed: {proc.stdout}{proc.stderr}")
    docs = [doc for path in sorted(into.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    unknown = sorted({str(d.get("kind")) for d in docs} - set(_PLURALS))
    if unknown:
        raise RuntimeError(f"harness deploy --render produced kinds this bench does not create: {unknown}")
    return docs


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pending(api: client.Client, replicas: int) -> str:
    """What keeps the rollout from finishing: the set's status and every pod that is not Ready."""
    lines: list[str] = []
    with contextlib.suppress(client.ApiError):
        status = api.get("statefulsets", SET, NAMESPACE).get("status") or {}
        lines.append(f"statefulset {SET}: replicas {status.get('replicas')}, ready {status.get('readyReplicas')}, "
                     f"wanted {replicas}")
    pods, _rv = api.list("pods", NAMESPACE)
    present = {p["metadata"]["name"] for p in pods}
    missing = [f"{SET}-{i}" for i in range(replicas) if f"{SET}-{i}" not in present]
    if missing:
        lines.append(f"{len(missing)} pod(s) not created yet (OrderedReady creates one after the previous is "
                     f"Ready): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if _ready(pod):
            continue
        status = pod.get("status") or {}
        conds = "; ".join(f"{c.get('type')}={c.get('status')}"
                          + (f" ({c.get('reason')}: {c.get('message')})" if c.get("reason") else "")
                          for c in status.get("conditions") or [])
        waiting = "; ".join(f"{cs.get('name')}: {k} {v.get('reason', '')} {v.get('message', '')}".strip()
                            for cs in status.get("containerStatuses") or []
                            for k, v in (cs.get("state") or {}).items() if k != "running")
        lines.append(f"pod {pod['metadata']['name']}: phase {status.get('phase')}, node "
                     f"{(pod.get('spec') or {}).get('nodeName') or '-'}, {conds or 'no conditions'}"
                     + (f", {waiting}" if waiting else ""))
    return "\n  ".join(lines)


def _rollout(api: client.Client, docs: list[dict[str, Any]], replicas: int) -> float:
    """Create the objects; seconds from the StatefulSet's create to the event showing all replicas Ready."""
    started = 0.0
    rv = ""
    for doc in docs:
        if doc["kind"] == "StatefulSet":
            _items, rv = api.list("statefulsets", NAMESPACE)
            started = time.monotonic()
        api.create(_PLURALS[doc["kind"]], doc, NAMESPACE if doc["kind"] != "Namespace" else "")
    timeout = ROLLOUT_TIMEOUT.get(replicas, 60.0 + 3.0 * replicas)
    deadline = started + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            for etype, obj in api.watch("statefulsets", NAMESPACE, resource_version=rv,
                                        field_selector=f"metadata.name={SET}", timeout_seconds=max(1, int(left))):
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if etype in ("ADDED", "MODIFIED") and (obj.get("status") or {}).get("readyReplicas") == replicas:
                    return time.monotonic() - started
        except client.Gone:
            obj = api.get("statefulsets", SET, NAMESPACE)
            if (obj.get("status") or {}).get("readyReplicas") == replicas:
                return time.monotonic() - started
            rv = str(obj["metadata"]["resourceVersion"])
    raise RolloutStuck(f"{replicas} replicas not Ready {timeout:.0f} s after the StatefulSet was created:\n  "
                       + _pending(api, replicas))


# ----- idle CPU ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Proc:
    ppid: int
    start: int
    ticks: int


def _procs() -> dict[int, _Proc]:
    """Every process on the machine: parent, start time and utime + stime (one pass over /proc)."""
    out: dict[int, _Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[int(entry.name)] = _Proc(int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]))
    return out


def _group(component: str, depth: int) -> str:
    """Which row a process counts in: the recorded component itself, or its descendants."""
    if component.startswith("kubelet/"):
        return "kubelets" if depth == 0 else "pod shims (sandbox.py)" if depth == 1 else "containers (writers)"
    if component == "apiserver":
        return "control plane" if depth == 0 else "control plane children"
    return f"{component}" if depth == 0 else f"{component} children"


def _members(state_dir: Path, procs: dict[int, _Proc]) -> dict[tuple[int, int], str]:
    """(pid, start time) -> group, for the recorded components and their descendants only."""
    layout = state.Layout(state_dir.resolve())
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    out: dict[tuple[int, int], str] = {}
    for comp in state.components(layout):
        if comp.pid not in procs or not state.is_ours(layout, comp.pid):
            continue
        frontier = [(comp.pid, 0)]
        while frontier:
            pid, depth = frontier.pop()
            out[(pid, procs[pid].start)] = _group(comp.name, depth)
            frontier.extend((child, depth + 1) for child in children.get(pid, ()) if child in procs)
    return out


def idle_cpu(state_dir: Path, seconds: float) -> dict[str, float]:
    """Percent of one core per group over ``seconds``: processes present at both ends, or started within."""
    before = _procs()
    members = _members(state_dir, before)
    started = time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing to await
    elapsed = time.monotonic() - started
    after = _procs()
    members.update(_members(state_dir, after))
    out: dict[str, float] = {}
    for (pid, start), group in members.items():
        end = after.get(pid)
        if end is None or end.start != start:
            continue  # gone (its last ticks are lost: idle pods do not churn)
        first = before.get(pid)
        ticks = end.ticks - (first.ticks if first is not None and first.start == start else 0)
        out[group] = out.get(group, 0.0) + 100.0 * ticks / TICKS / elapsed
    return out


# ----- API latency under load -------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


@contextlib.contextmanager
def _load(state_dir: Path, targets: list[tuple[str, int]], result: list[Load]) -> Iterator[None]:
    """The checkpoint load inside the cluster's network, counting from the ``with`` body on; ``result`` gets it."""
    layout = state.Layout(state_dir.resolve())
    proc = network.popen(layout, [sys.executable, "-c", LOAD, json.dumps(targets), str(LOAD_USERS), str(LOAD_BYTES),
                                  str(LOAD_START_TIMEOUT)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        said = proc.stdout.readline().decode().strip()  # the script's own deadline bounds this wait
        if said != "started":
            why = said or (proc.stderr.read().decode() if proc.stderr is not None else "") or "it exited"
            raise RuntimeError(f"the checkpoint load did not start: {why}")
        proc.stdin.write(b"window\n")
        proc.stdin.flush()
        yield
        proc.stdin.close()
        report = json.loads(proc.stdout.readline() or b"{}")
        proc.wait(30)
        if not report:
            raise RuntimeError("the checkpoint load ended without a report")
        result.append(Load(report["ok"] / report["span"], int(report["failed"]),
                           (report["p50"] or float("nan")) * 1000))
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def api_latency(api: client.Client, replicas: int, seconds: float) -> dict[str, Latency]:
    """One client, GET pod / LIST the namespace's pods / PATCH a pod, round after round for ``seconds``."""
    times: dict[str, list[float]] = {"GET pod": [], "LIST pods (namespace)": [], "PATCH pod (merge)": []}
    deadline = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < deadline:
        name = f"{SET}-{turn % replicas}"
        started = time.perf_counter()
        api.get("pods", name, NAMESPACE)
        got = time.perf_counter()
        api.list("pods", NAMESPACE)
        listed = time.perf_counter()
        api.patch("pods", name, {"metadata": {"annotations": {"bench.kubesim.io/turn": str(turn)}}}, NAMESPACE)
        patched = time.perf_counter()
        times["GET pod"].append((got - started) * 1000)
        times["LIST pods (namespace)"].append((listed - got) * 1000)
        times["PATCH pod (merge)"].append((patched - listed) * 1000)
        turn += 1
    return {label: Latency(len(ms), _percentile(ms, 0.5), _percentile(ms, 0.99)) for label, ms in times.items()}


# ----- one size, both sizes ---------------------------------------------------------------------


def measure(replicas: int, nodes: int, say: Any = print) -> Figures:
    """Start a cluster, roll out ``replicas`` writers, measure the three figures, stop it."""
    with tempfile.TemporaryDirectory(prefix="kubesim-scale-render-") as render:
        docs = _manifests(replicas, Path(render))
    say(f"  {replicas} replicas on {nodes} nodes: starting the cluster")
    with _cluster(nodes) as state_dir:
        api = client.Client.from_state(state_dir)
        try:
            say(f"  {replicas} replicas on {nodes} nodes: rolling out (waiting for readyReplicas == {replicas})")
            rollout = _rollout(api, docs, replicas)
            say(f"  {replicas} replicas on {nodes} nodes: Ready after {rollout:.1f} s; idle CPU over {IDLE_S:.0f} s")
            time.sleep(SETTLE_S)  # the rollout's last status writes and probes are not idle cost
            cpu = idle_cpu(state_dir, IDLE_S)
            pods, _rv = api.list("pods", NAMESPACE)
            targets = sorted((str(p["status"]["podIP"]), PORT) for p in pods)
            load: list[Load] = []
            say(f"  {replicas} replicas on {nodes} nodes: API latency for {LATENCY_S:.0f} s under the checkpoint load")
            with _load(state_dir, targets, load):
                latency = api_latency(api, replicas, LATENCY_S)
            return Figures(replicas, nodes, rollout, cpu, latency, load[0])
        finally:
            api.close()


def run(console: object) -> None:
    """Bench entry: the 3-replica baseline, then 64 replicas on 8 nodes, printed side by side with 64/3 ratios."""
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    (base_r, base_n), (big_r, big_n) = SIZES
    console.rule(f"kubesim: scale ({big_r} replicas on {big_n} nodes against {base_r} on {base_n})")
    console.print(f"[bold]kubesim at scale[/bold]: the harness's writer set (OrderedReady), private network, "
                  f"{os.cpu_count()} CPUs; the {base_r}-replica cluster is the baseline")
    say = console.print
    base = measure(base_r, base_n, say)
    try:
        big = measure(big_r, big_n, say)
    except RolloutStuck as exc:
        console.print(f"[bold red]scale bench: {big_r} replicas on {big_n} nodes did not roll out[/bold red] "
                      f"(baseline: {base_r} replicas Ready in {base.rollout_s:.1f} s): {exc}")
        return
    table = Table("measure", f"{base_r} pods, {base_n} nodes (baseline)", f"{big_r} pods, {big_n} nodes",
                  f"{big_r}/{base_r}")

    def row(label: str, a: float, b: float, unit: str, digits: int = 2) -> None:
        ratio = f"{b / a:.2f}x" if a > 0 else "baseline 0" if b > 0 else "-"
        table.add_row(label, f"{a:,.{digits}f} {unit}", f"{b:,.{digits}f} {unit}", ratio)

    row("rollout: create -> all Ready", base.rollout_s, big.rollout_s, "s", 1)
    row("  per replica", base.rollout_s / base_r, big.rollout_s / big_r, "s")
    groups = ["control plane", "control plane children", "network", "kubelets", "pod shims (sandbox.py)",
              "containers (writers)"]
    groups += sorted((set(base.cpu) | set(big.cpu)) - set(groups))
    for group in groups:
        if base.cpu.get(group) or big.cpu.get(group):
            row(f"idle CPU: {group}", base.cpu.get(group, 0.0), big.cpu.get(group, 0.0), "%")
    row("  per kubelet", base.cpu.get("kubelets", 0.0) / base_n, big.cpu.get("kubelets", 0.0) / big_n, "%", 3)
    row("  per writer", base.cpu.get("containers (writers)", 0.0) / base_r,
        big.cpu.get("containers (writers)", 0.0) / big_r, "%", 3)
    row("idle CPU: everything", sum(base.cpu.values()), sum(big.cpu.values()), "%")
    for label in base.latency:
        a, b = base.latency[label], big.latency[label]
        row(f"{label} p50 (n={a.samples}/{b.samples})", a.p50_ms, b.p50_ms, "ms")
        row(f"{label} p99", a.p99_ms, b.p99_ms, "ms")
    row(f"load: 1 MiB checkpoints/s ({LOAD_USERS} users)", base.load.ok_per_s, big.load.ok_per_s, "/s", 1)
    row("load: POST p50", base.load.post_p50_ms, big.load.post_p50_ms, "ms", 1)
    console.print(table)
    failed = base.load.failed + big.load.failed
    console.print(f"  idle CPU: percent of one core over {IDLE_S:.0f} s (/proc ticks: 0.1 % per process); latency: "
                  f"one client on the host, GET/LIST/PATCH in turn for {LATENCY_S:.0f} s while the load runs "
                  f"({LOAD_USERS} users, 1 MiB checkpoints to the pod IPs from inside the cluster's network)"
                  + (f"; [red]{failed} checkpoint POSTs failed[/red]" if failed else ""))


if __name__ == "__main__":
    from rich.console import Console

    run(Console())
