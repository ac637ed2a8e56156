"""A cluster's network (kubesim/network.py): ``--network host`` (the host's, a leased address range of the
cluster's own) and ``--network private`` (a network namespace of the cluster's own, as kind has it).

The key property, in both modes: two clusters with the same node names side by side each reach their
own pods and nothing of the other (a second cluster once bound nothing, `harness deploy` still said
yes, and the harness read the OTHER cluster's writers). Private mode adds: the host reaches only the
API server; the namespace outlives a SIGKILLed control plane and a SIGKILLed holder, and disappears
with the cluster; ``down`` covers every process in it. Pods are reached only through the way in
(``kubesim net exec``, :func:`kubesim.network.call`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_waits import until_truthy
from kubelet_guard import require_kubelet

from kubesim import client, network, state

MODES = ("host", "private")
HOST_NS = os.readlink("/proc/self/ns/net")


def kubesim(state_dir: Path, *args: str, timeout: float = 90,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesim", *args, "--state", str(state_dir)], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)


def net_exec(state_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """``python -m kubesim net exec --state DIR -- COMMAND...``"""
    return subprocess.run([sys.executable, "-m", "kubesim", "net", "exec", "--state", str(state_dir), "--", *command],
                          capture_output=True, text=True, timeout=60, check=False)


def up(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = kubesim(state_dir, "up", "--port", "0", *args)
    assert done.returncode == 0, f"up {args} failed: {done.stdout}{done.stderr}"
    return done


def record(state_dir: Path) -> dict[str, Any]:
    return state.read_state(state.Layout(state_dir.resolve()))


def pid_of(state_dir: Path, component: str) -> int:
    return int(record(state_dir)["components"][component]["pid"])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def in_namespace(netns: str) -> list[int]:
    """Every live process whose network namespace is ``netns``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and network.ns_id(entry.name) == netns and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def namespaces_of(state_dir: Path) -> dict[str, str | None]:
    return {name: network.ns_id(info["pid"]) for name, info in record(state_dir)["components"].items()
            if isinstance(info.get("pid"), int)}


@pytest.fixture
def clusters() -> Iterator[list[Path]]:
    """State directories for clusters a test starts; every one is brought down afterwards, pass or fail."""
    made: list[Path] = []
    yield made
    for state_dir in made:
        kubesim(state_dir, "down", "--grace", "5")


def private_available() -> None:
    if os.geteuid() != 0:
        pytest.skip("--network private needs root (network namespaces)")


# ----- the key property, in both modes -----------------------------------------------------------------


def http_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def deploy_writers(state_dir: Path) -> None:
    from harness.deploy import manifests
    from harness.deploy import spec as deploy_spec

    api = client.Client.from_state(state_dir)
    try:
        api.create("namespaces", {"metadata": {"name": "twin"}})
        sts = manifests.statefulset(deploy_spec.DeploySpec(name="ckpt", namespace="twin", replicas=2, pdb=None,
                                                           termination_grace_seconds=5)).body
        api.create("statefulsets", sts, "twin")
    finally:
        api.close()


def ready_writers(state_dir: Path) -> list[dict[str, Any]]:
    api = client.Client.from_state(state_dir)
    try:
        items, _ = api.list("pods", "twin")
    finally:
        api.close()
    ready = [p for p in items if any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in (p.get("status") or {}).get("conditions") or [])]
    return sorted(ready, key=lambda p: str(p["metadata"]["name"])) if len(ready) == 2 else []


def volume_id_on_disk(state_dir: Path, pod: dict[str, Any]) -> str:
    """The identity stamp the writer put on its claim's volume, read from the cluster's own disk."""
    api = client.Client.from_state(state_dir)
    try:
        claim = api.get("persistentvolumeclaims", f"data-{pod['metadata']['name']}", "twin")
        pv = api.get("persistentvolumes", claim["spec"]["volumeName"])
    finally:
        api.close()
    path = Path((pv["spec"].get("local") or pv["spec"].get("hostPath"))["path"])
    assert path.is_relative_to(state_dir.resolve()), f"{path} is not in the cluster's own state dir"
    return str(json.loads((path / "identity.json").read_text())["volume_id"])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", MODES)
def test_two_clusters_with_the_same_node_names_each_reach_only_their_own_writers(
        mode: str, tmp_path: Path, clusters: list[Path]) -> None:
    """Two clusters, both `kubesim-worker` + `kubesim-worker2`, the same StatefulSet in the same namespace:
    GET /identity on every pod through each cluster's way in answers with that cluster's own volume."""
    require_kubelet()
    if mode == "private":
        private_available()
    a, b = tmp_path / "a", tmp_path / "b"
    clusters += [a, b]
    for state_dir in (a, b):
        up(state_dir, "--nodes", "2", "--network", mode)
        deploy_writers(state_dir)
    pods = {d: until_truthy(f"both writers of {d.name} Ready", functools.partial(ready_writers, d), timeout=120)
            for d in (a, b)}
    ips = {d: [str(p["status"]["podIP"]) for p in pods[d]] for d in (a, b)}
    stamps: dict[Path, list[str]] = {}
    for state_dir in (a, b):
        stamps[state_dir] = []
        for pod, ip in zip(pods[state_dir], ips[state_dir], strict=True):
            status, body = network.call(state_dir, http_json, f"http://{ip}:8080/identity")
            assert status == 200, body
            expected = volume_id_on_disk(state_dir, pod)
            assert body["stamp"]["volume_id"] == expected, (
                f"{state_dir.name}'s {pod['metadata']['name']} at {ip} answered with another volume: {body}")
            stamps[state_dir].append(expected)
    assert not set(stamps[a]) & set(stamps[b])
    index = {d: int(record(d)["network"]["index"]) for d in (a, b)}
    if mode == "host":
        assert index[a] != index[b]
        for d in (a, b):
            assert all(ip.startswith(f"127.{index[d]}.") for ip in ips[d]), ips
        assert not set(ips[a]) & set(ips[b])
        status, body = http_json(f"http://{ips[a][0]}:8080/identity")  # host mode: the host reaches pods too
        assert body["stamp"]["volume_id"] == stamps[a][0]
    else:
        assert ips[a] == ips[b], "the same nodes in two private networks give the same addresses"
        for ip in ips[a]:
            with pytest.raises(ConnectionRefusedError), socket.create_connection((ip, 8080), timeout=5):
                pass  # the host cannot reach a private cluster's pods


# ----- private: lifetime ------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_private_network_outlives_a_sigkilled_control_plane_and_holder_and_dies_with_the_cluster(
        tmp_path: Path, clusters: list[Path]) -> None:
    """Control plane SIGKILLed → `up` restarts it in the same namespace; a restored kubelet joins it; a
    SIGKILLed holder is replaced by one in the same namespace; everything SIGKILLed → the namespace is
    gone, and the next `up` makes a working one; `down` leaves nothing in it."""
    require_kubelet()
    private_available()
    state_dir = tmp_path / "p"
    clusters.append(state_dir)
    up(state_dir, "--nodes", "2", "--network", "private")
    netns = str(record(state_dir)["network"]["netns"])
    assert set(namespaces_of(state_dir).values()) == {netns} != {HOST_NS}
    assert set(namespaces_of(state_dir)) == {"apiserver", "kubelet/kubesim-worker", "kubelet/kubesim-worker2",
                                             "network"}

    control_plane = pid_of(state_dir, "apiserver")
    os.kill(control_plane, signal.SIGKILL)
    until_truthy("the control plane gone", lambda: not alive(control_plane), timeout=10)
    up(state_dir)
    assert pid_of(state_dir, "apiserver") != control_plane
    assert set(namespaces_of(state_dir).values()) == {netns}

    crashed = kubesim(state_dir, "node", "crash", "kubesim-worker2")
    assert crashed.returncode == 0, crashed.stderr
    restored = kubesim(state_dir, "node", "restore", "kubesim-worker2")
    assert restored.returncode == 0, restored.stderr
    assert network.ns_id(pid_of(state_dir, "kubelet/kubesim-worker2")) == netns

    holder = pid_of(state_dir, "network")
    os.kill(holder, signal.SIGKILL)
    until_truthy("the holder gone", lambda: not alive(holder), timeout=10)
    up(state_dir)  # the control plane runs: `up` only brings the network back, into the same namespace
    assert pid_of(state_dir, "network") != holder
    assert set(namespaces_of(state_dir).values()) == {netns}
    assert "network: private (network namespace " + netns in kubesim(state_dir, "status").stdout

    everything = [info["pid"] for info in record(state_dir)["components"].values()]
    for pid in everything:
        os.kill(pid, signal.SIGKILL)
    until_truthy("nothing left in the namespace", lambda: not in_namespace(netns), timeout=15)
    up(state_dir, "--nodes", "2")
    fresh = str(record(state_dir)["network"]["netns"])
    assert set(namespaces_of(state_dir).values()) == {fresh}
    assert record(state_dir)["network"]["mode"] == "private"  # the recorded mode is kept

    down = kubesim(state_dir, "down", "--grace", "5")
    assert (down.returncode, down.stderr) == (0, ""), down.stdout
    assert "network (pid" in down.stdout
    assert not in_namespace(fresh)
    assert record(state_dir)["components"] == {}


def test_down_kills_and_names_whatever_still_runs_in_the_private_network(tmp_path: Path,
                                                                         clusters: list[Path]) -> None:
    """down's final check covers the network: a `net exec` command still running (found by its network
    namespace) and a holder whose record was lost (by its command line, which is always the same) are
    SIGKILLed and named; down exits 1."""
    private_available()
    state_dir = tmp_path / "leak"
    clusters.append(state_dir)
    up(state_dir, "--network", "private")
    netns = str(record(state_dir)["network"]["netns"])
    sleeper = subprocess.Popen([sys.executable, "-m", "kubesim", "net", "exec", "--state", str(state_dir), "--",
                                "sleep", "300"], stdin=subprocess.DEVNULL)
    until_truthy("the sleep inside", lambda: network.ns_id(sleeper.pid) == netns
                 and Path(f"/proc/{sleeper.pid}/cmdline").read_bytes().startswith(b"sleep"), timeout=20)
    holder = pid_of(state_dir, "network")
    with state.updating_state(state.Layout(state_dir.resolve())) as data:
        data["components"].pop("network")  # lost record: only the namespace still says it is the cluster's
    down = kubesim(state_dir, "down", "--grace", "2")
    sleeper.wait(timeout=10)
    assert down.returncode == 1, down.stdout + down.stderr
    lines = down.stderr.splitlines()
    assert [line for line in lines if f"pid {sleeper.pid} " in line and
            line.endswith(f"[in the cluster's network namespace {netns}]")], down.stderr
    assert [line for line in lines if f"pid {holder} " in line and line.endswith("[an unrecorded network]")], (
        down.stderr)
    assert not alive(holder)
    assert not in_namespace(netns)


def test_down_of_a_dead_cluster_leaves_a_namespace_that_reused_its_identity_alone(tmp_path: Path,
                                                                                   clusters: list[Path]) -> None:
    """Namespace inodes are reused once freed: a cluster SIGKILLed long ago may record the identity another
    cluster's namespace has now. Its `down` must not take that namespace's processes for its own."""
    private_available()
    dead, other = tmp_path / "dead", tmp_path / "other"
    clusters += [dead, other]
    up(dead, "--network", "private")
    up(other, "--network", "private")
    for pid in [info["pid"] for info in record(dead)["components"].values()]:
        os.kill(pid, signal.SIGKILL)
    until_truthy("the dead cluster gone", lambda: not any(state.is_ours(state.Layout(dead.resolve()), info["pid"])
                                                         for info in record(dead)["components"].values()), 10)
    reused = str(record(other)["network"]["netns"])
    with state.updating_state(state.Layout(dead.resolve())) as data:
        data["network"]["netns"] = reused  # as if the kernel had handed the freed inode to `other`
    victims = in_namespace(reused)
    down = kubesim(dead, "down", "--grace", "2")
    assert (down.returncode, down.stderr) == (0, ""), down.stdout
    assert all(alive(pid) for pid in victims), "down of a dead cluster killed another cluster's processes"
    assert kubesim(other, "status").returncode == 0


def test_a_failed_up_leaves_no_network_behind(tmp_path: Path, clusters: list[Path]) -> None:
    """The API server cannot listen (its --port is taken): up fails, and the holder / lease it made are gone."""
    state_dir = tmp_path / "failed"
    clusters.append(state_dir)
    modes = ["host", "private"] if os.geteuid() == 0 else ["host"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        for mode in modes:
            failed = kubesim(state_dir, "up", "--port", str(port), "--network", mode)
            assert failed.returncode == 1, failed.stdout + failed.stderr
            assert f"cannot listen on 127.0.0.1:{port}" in failed.stderr
            data = record(state_dir)
            assert data["components"] == {}, data
            assert data["network"]["mode"] == mode
            if mode == "host":
                assert not Path(data["network"]["lease"]).exists(), "the lease was not given back"
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and str(state_dir.resolve()).encode() in (Path(p, "cmdline").read_bytes()
                                                          if Path(p, "cmdline").exists() else b"")]


# ----- the way in ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_net_exec_and_call_run_in_the_clusters_network_with_the_kubeconfig_working(
        mode: str, tmp_path: Path, clusters: list[Path]) -> None:
    if mode == "private":
        private_available()
    state_dir = tmp_path / mode
    clusters.append(state_dir)
    up(state_dir, "--network", mode)
    expected_ns = str(record(state_dir)["network"]["netns"]) if mode == "private" else HOST_NS

    seen = net_exec(state_dir, "readlink", "/proc/self/ns/net")
    assert (seen.returncode, seen.stdout.strip()) == (0, expected_ns), seen.stderr
    code = net_exec(state_dir, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (code.returncode, code.stdout, code.stderr) == (7, "out\n", "err\n")
    missing = net_exec(state_dir, "no-such-command-here")
    assert missing.returncode == 127
    assert missing.stderr.strip() == "kubesim: cannot run 'no-such-command-here': No such file or directory"

    def from_inside() -> tuple[str | None, list[str]]:
        api = client.Client.from_kubeconfig(state_dir / "kubeconfig")  # the same kubeconfig works inside
        try:
            items, _ = api.list("namespaces")
        finally:
            api.close()
        return network.ns_id("thread-self"), sorted(str(n["metadata"]["name"]) for n in items)

    where, names = network.call(state_dir, from_inside)
    assert where == expected_ns
    assert "default" in names
    assert network.ns_id("thread-self") == HOST_NS, "the caller's thread stays on the host"
    ran = network.run(state_dir, ["readlink", "/proc/self/ns/net"], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == expected_ns
    with pytest.raises(ZeroDivisionError):
        network.call(state_dir, lambda: 1 // 0)  # the callable's exception reaches the caller

    status = kubesim(state_dir, "status")
    assert f"network: {mode} (" in status.stdout
    if mode == "private":
        ip = network.call(state_dir, _listen_once, "127.10.1.77")
        with pytest.raises(ConnectionRefusedError), socket.create_connection((ip, 8080), timeout=5):
            pass
        assert network.call(state_dir, socket.if_nameindex) == [(1, "lo")]  # nothing to leave the machine by


@pytest.mark.timeout(180)
def test_kubectl_port_forward_reaches_a_private_clusters_pod_from_the_host(tmp_path: Path,
                                                                          clusters: list[Path]) -> None:
    """What the harness needs once the default is private: the host reaches pods through the API server's
    pods/portforward (its handler threads live in the cluster's network, so they dial the pod IP there)."""
    private_available()
    require_kubelet()
    kubectl = shutil.which("kubectl")
    if kubectl is None or importlib.util.find_spec("kubesim.apiserver.streaming.portforward") is None:
        pytest.skip("needs kubectl and the API server's pods/portforward")
    state_dir = tmp_path / "pf"
    clusters.append(state_dir)
    up(state_dir, "--nodes", "1", "--network", "private")
    api = client.Client.from_state(state_dir)
    try:
        api.create("pods", {"metadata": {"name": "web"}, "spec": {"containers": [{
            "name": "c", "image": "busybox", "command": ["sh", "-c", "exec python3 -m http.server --bind $IP 8080"],
            "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "readinessProbe": {"tcpSocket": {"port": 8080}}}]}}, "default")
        until_truthy("web Ready", lambda: any(c.get("type") == "Ready" and c.get("status") == "True" for c in (
            api.get("pods", "web", "default").get("status") or {}).get("conditions") or []), timeout=60)
    finally:
        api.close()
    forward = subprocess.Popen([kubectl, "--kubeconfig", str(state_dir / "kubeconfig"), "port-forward", "pod/web",
                                ":8080"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        local = int(line.split("127.0.0.1:", 1)[1].split()[0])
        assert http_status(f"http://127.0.0.1:{local}/") == 200
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(resp.status)


def _listen_once(ip: str) -> str:
    """Bind a pod-like address inside and prove it is reachable there."""
    with socket.socket() as server:
        server.bind((ip, 8080))
        server.listen()
        with socket.create_connection((ip, 8080), timeout=5):
            pass
    return ip


# ----- where private is not possible, and mode changes -------------------------------------------------


def test_private_where_namespaces_are_refused_is_one_line_naming_network_host(tmp_path: Path) -> None:
    """Without CAP_SYS_ADMIN (as a non-root user) unshare(CLONE_NEWNET) fails: one line, exit 2, nothing runs."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to drop CAP_SYS_ADMIN")
    state_dir = tmp_path / "refused"
    done = subprocess.run(["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", sys.executable,
                           "-m", "kubesim", "up", "--state", str(state_dir), "--nodes", "1", "--network", "private"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("kubesim: --network private needs a network namespace of its own")
    assert "unshare(CLONE_NEWNET): Operation not permitted" in done.stderr
    assert "use --network host" in done.stderr
    assert record(state_dir)["components"] == {}


def test_the_network_of_a_running_cluster_does_not_change_under_it(tmp_path: Path, clusters: list[Path]) -> None:
    private_available()
    state_dir = tmp_path / "switch"
    clusters.append(state_dir)
    up(state_dir, "--network", "host")
    assert record(state_dir)["network"]["mode"] == "host"
    refused = kubesim(state_dir, "up", "--network", "private")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"kubesim: --network private: the cluster in {state_dir.resolve()} runs with --network host (apiserver "
        "running); stop it with `kubesim down` to change its network")
    assert kubesim(state_dir, "down").returncode == 0
    up(state_dir, "--network", "private")  # stopped: the network may change, and the lease goes back
    data = record(state_dir)
    assert data["network"]["mode"] == network.DEFAULT_MODE == "private"
    assert "lease" not in data["network"]


# ----- host mode: the leases ---------------------------------------------------------------------------


@pytest.fixture
def leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lease directory of the test's own, and no socket of the machine counted as using a range."""
    directory = tmp_path / "leases"
    monkeypatch.setenv(network.LEASES_ENV, str(directory))
    monkeypatch.setattr(network, "_bound_indexes", set)
    return directory


def fake_cluster(root: Path) -> state.Layout:
    root.mkdir(parents=True, exist_ok=True)
    return state.Layout(root.resolve())


@contextlib.contextmanager
def process_of(layout: state.Layout) -> Iterator[int]:
    """A live process recorded as the cluster's component (its command line names the state dir)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", str(layout.root)],
                            stdin=subprocess.PIPE)
    until_truthy("its command line", lambda: state.is_ours(layout, proc.pid), timeout=10)
    with state.updating_state(layout) as data:
        data["components"]["apiserver"] = {"pid": proc.pid, "cmd": proc.args}
    try:
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def test_host_leases_give_each_running_cluster_its_own_range_and_reclaim_only_dead_owners(
        leases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = network.HOST_INDEXES.start
    a, b, c = (fake_cluster(tmp_path / n) for n in "abc")
    with process_of(a):
        assert network.ensure(a, "host").index == first
        monkeypatch.setattr(network, "_start_time", lambda pid: None)  # a's `up` has ended: only its processes count
        assert network.ensure(b, "host").index == first + 1
        assert network.ensure(a, "host").index == first  # a restart keeps its range
        lease = json.loads((leases / f"127.{first}").read_text())
        assert lease["state"] == str(a.root)
    # a's processes are gone: its lease is stale, the next cluster reclaims it
    assert network.ensure(c, "host").index == first
    assert network.recorded(c) == network.Network("host", first, lease=str(leases / f"127.{first}"))
    # b is not running either, but its preferred range is still free: it gets it back
    assert network.ensure(b, "host").index == first + 1
    network.release_lease(b)
    assert not (leases / f"127.{first + 1}").exists()
    network.release_lease(a)  # a's lease now names c: untouched
    assert json.loads((leases / f"127.{first}").read_text())["state"] == str(c.root)


def test_a_lease_is_held_while_the_up_taking_it_runs_and_while_its_owner_records_the_range(
        leases: Path, tmp_path: Path) -> None:
    first = network.HOST_INDEXES.start
    a, b, c = (fake_cluster(tmp_path / n) for n in "abc")
    assert network.ensure(a, "host").index == first  # this process is a's `up`, still running: no process recorded
    assert network.ensure(b, "host").index == first + 1
    with process_of(a):
        with state.updating_state(a) as data:  # a moved to another range meanwhile: its old lease is stale
            data["network"] = network.Network("host", first + 5).to_json()
        (leases / f"127.{first}").write_text(json.dumps({"state": str(a.root), "pid": -1, "start": "0"}))
        assert network.ensure(c, "host").index == first


def test_ranges_with_sockets_bound_on_the_host_are_skipped(leases: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = network.HOST_INDEXES.start
    monkeypatch.setattr(network, "_bound_indexes", lambda: {first, first + 1})
    assert network.ensure(fake_cluster(tmp_path / "a"), "host").index == first + 2
    monkeypatch.undo()
    with socket.socket() as sock:
        sock.bind(("127.201.0.1", 0))  # what an older kubesim or anything else on this machine may hold
        sock.listen()
        assert 201 in network._bound_indexes()


def test_no_free_range_is_one_line_that_names_the_way_out(leases: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "_bound_indexes", lambda: set(network.HOST_INDEXES))
    with pytest.raises(network.NetworkError, match=r"^no free address range for --network host: .* use "
                                                   r"--network private$"):
        network.ensure(fake_cluster(tmp_path / "a"), "host")
