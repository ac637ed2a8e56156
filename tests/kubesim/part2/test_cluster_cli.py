"""`kubesim up --nodes N`, `down` and the node fault tools, with a scripted kubelet (scripted_kubelet.py).

The real kubelet (helper K5) is exercised by the kubesim_cluster fixture's users; here the point is
the process management: what is recorded, what is killed (by pid, never by name), and what is said.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity

from kubesim import client, network, state

SCRIPTED = Path(__file__).with_name("scripted_kubelet.py")


def kubesim(state_dir: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesim", *args, "--state", str(state_dir)], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def components(state_dir: Path) -> dict[str, dict[str, object]]:
    return state.read_state(state.Layout(state_dir))["components"]


def read_containers(state_dir: Path, node: str) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "nodes" / node / "containers.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def container_pid(state_dir: Path, node: str) -> int:
    data = json.loads((state_dir / "nodes" / node / "containers.json").read_text())
    return int(data[f"default/pod-on-{node}/main"]["pid"])


@pytest.fixture
def scripted_env() -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[3])
    return dict(os.environ, KUBESIM_KUBELET_CMD=f"{sys.executable} {SCRIPTED}",
                PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))


@pytest.fixture
def cluster_dir(tmp_path: Path, scripted_env: dict[str, str]) -> Iterator[Path]:
    state_dir = tmp_path / "cluster"
    try:
        yield state_dir
    finally:
        kubesim(state_dir, "down", "--grace", "2", env=scripted_env)


def test_up_with_nodes_records_kubelets_and_crash_restore_down_stop_exactly_them(
        cluster_dir: Path, scripted_env: dict[str, str]) -> None:
    up = kubesim(cluster_dir, "up", "--port", "0", "--nodes", "2", "--controllers", "none", env=scripted_env)
    assert up.returncode == 0, up.stderr
    assert "nodes Ready: kubesim-worker, kubesim-worker2" in up.stdout
    comps = components(cluster_dir)
    # the private network's holder is a component of its own (the default network): recorded, and stopped by down
    assert set(comps) == {"apiserver", "kubelet/kubesim-worker", "kubelet/kubesim-worker2", network.COMPONENT}
    kubelet2 = int(comps["kubelet/kubesim-worker2"]["pid"])  # type: ignore[call-overload]
    container2 = container_pid(cluster_dir, "kubesim-worker2")
    container1 = container_pid(cluster_dir, "kubesim-worker")
    assert alive(kubelet2)
    assert alive(container2)

    crashed = kubesim(cluster_dir, "node", "crash", "kubesim-worker2", env=scripted_env)
    assert crashed.returncode == 0, crashed.stderr
    assert f"killed kubelet pid {kubelet2} and 1 container process group(s)" in crashed.stdout
    assert not alive(kubelet2)
    assert not alive(container2)
    assert alive(container1), "crashing one node touched another node's container"
    listed = kubesim(cluster_dir, "node", "list", env=scripted_env).stdout
    assert "kubesim-worker2      stopped" in listed

    restored = kubesim(cluster_dir, "node", "restore", "kubesim-worker2", env=scripted_env)
    assert restored.returncode == 0, restored.stderr
    assert "kubesim-worker2: Ready" in restored.stdout
    new_kubelet = int(components(cluster_dir)["kubelet/kubesim-worker2"]["pid"])  # type: ignore[call-overload]
    assert new_kubelet != kubelet2
    assert alive(new_kubelet)

    down = kubesim(cluster_dir, "down", "--grace", "5", env=scripted_env)
    assert down.returncode == 0, down.stderr
    assert down.stdout.index("kubelet/") < down.stdout.index("apiserver"), "kubelets must stop before the control plane"
    assert not alive(new_kubelet)
    assert not alive(container1)
    assert not alive(container_pid(cluster_dir, "kubesim-worker2"))
    assert components(cluster_dir) == {}


def test_up_after_a_control_plane_sigkill_restarts_only_it_with_the_recorded_shape(
        cluster_dir: Path, scripted_env: dict[str, str]) -> None:
    first = kubesim(cluster_dir, "up", "--port", "0", "--nodes", "2", "--controllers", "none",
                    "--node-monitor-grace", "8s", env=scripted_env)
    assert first.returncode == 0, first.stderr
    before = components(cluster_dir)
    control_plane = int(before["apiserver"]["pid"])  # type: ignore[call-overload]
    os.kill(control_plane, signal.SIGKILL)
    tenacity.Retrying(stop=tenacity.stop_before_delay(5), wait=tenacity.wait_fixed(0.05), reraise=True,
                      retry=tenacity.retry_if_result(bool))(lambda: alive(control_plane))
    layout = state.Layout(cluster_dir)
    old_port = int(state.read_state(layout)["port"])
    with socket.socket() as squatter:  # the port `up` will try first is taken: the control plane comes back elsewhere
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        recorded = state.read_state(layout)
        recorded["port"] = squatter.getsockname()[1]  # (the dead server's own port lingers in TIME_WAIT)
        state.write_state(layout, recorded)
        again = kubesim(cluster_dir, "up", env=scripted_env)
        restarted_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    assert again.returncode == 0, again.stderr
    assert "started" not in again.stdout.splitlines()[-1], "running kubelets must be left alone"
    assert int(state.read_state(layout)["port"]) not in (old_port, recorded["port"])
    api = client.Client.from_state(cluster_dir)

    def heartbeats() -> list[str]:
        return [next(c["lastHeartbeatTime"] for c in n["status"]["conditions"] if c["type"] == "Ready")
                for n in api.list("nodes")[0]]

    tenacity.Retrying(stop=tenacity.stop_before_delay(10), wait=tenacity.wait_fixed(0.1), reraise=True,
                      retry=tenacity.retry_if_result(lambda beats: min(beats) < restarted_at))(heartbeats)
    after = components(cluster_dir)
    assert after["apiserver"]["pid"] != control_plane
    for node in ("kubelet/kubesim-worker", "kubelet/kubesim-worker2"):
        assert after[node]["pid"] == before[node]["pid"]
    assert after["apiserver"]["cmd"][after["apiserver"]["cmd"].index("--controllers") + 1] == "none"  # type: ignore[index,union-attr]
    recorded = state.read_state(state.Layout(cluster_dir))["settings"]
    assert recorded["node_monitor_grace"] == 8.0
    assert recorded["node_status_interval"] == 2.0


def test_kill_container_signals_only_that_containers_process_group(
        cluster_dir: Path, scripted_env: dict[str, str]) -> None:
    assert kubesim(cluster_dir, "up", "--port", "0", "--nodes", "2", "--controllers", "none",
                   env=scripted_env).returncode == 0
    target = container_pid(cluster_dir, "kubesim-worker")
    other = container_pid(cluster_dir, "kubesim-worker2")
    done = kubesim(cluster_dir, "node", "kill-container", "pod-on-kubesim-worker", "main", "-n", "default",
                   "--signal", "TERM", env=scripted_env)
    assert done.returncode == 0, done.stderr
    assert "sent SIGTERM to default/pod-on-kubesim-worker/main on kubesim-worker" in done.stdout
    # the container is not our child: await its disappearance through /proc
    tenacity.Retrying(stop=tenacity.stop_before_delay(5), wait=tenacity.wait_fixed(0.05), reraise=True,
                      retry=tenacity.retry_if_result(bool))(lambda: alive(target))
    assert alive(other)
    missing = kubesim(cluster_dir, "node", "kill-container", "nope", "main", env=scripted_env)
    assert missing.returncode == 1
    assert "no running container 'main' of pod default/nope" in missing.stderr


def _await(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    try:
        tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.05),
                          retry=tenacity.retry_if_result(lambda ok: not ok))(check)
    except tenacity.RetryError:
        pytest.fail(f"timed out after {timeout:.0f}s awaiting {what}")


def _orphaned_container(state_dir: Path) -> subprocess.Popen[bytes] | None:
    """A process shaped like a container its kubelet and shim lost (its root a rootfs inside the state dir), or
    None where it cannot be made (it needs root and util-linux's unshare)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    rootfs = state_dir / "nodes" / "kubesim-worker" / "pods" / "ns_lost_uid" / "writer" / "rootfs"
    rootfs.mkdir(parents=True)
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             f'mount --rbind / "{rootfs}" && exec chroot "{rootfs}" sleep 300'],
                            start_new_session=True, stdin=subprocess.DEVNULL)

    def chrooted() -> bool:
        try:
            return os.readlink(f"/proc/{proc.pid}/root") == str(rootfs)
        except OSError:
            return False

    _await(f"pid {proc.pid} chrooted into {rootfs}", chrooted)
    return proc


def test_down_sigkills_and_names_whatever_of_the_cluster_outlived_stopping_it(
        cluster_dir: Path, scripted_env: dict[str, str]) -> None:
    """Nothing a cluster started may survive `down`: an unrecorded second kubelet, or a container process whose
    records went with its shim, is SIGKILLed by pid, named on stderr, and `down` exits 1."""
    up = kubesim(cluster_dir, "up", "--port", "0", "--nodes", "1", "--controllers", "none", env=scripted_env)
    assert up.returncode == 0, up.stderr
    kubelet_cmd = components(cluster_dir)["kubelet/kubesim-worker"]["cmd"]
    assert isinstance(kubelet_cmd, list)
    leaked = [subprocess.Popen(kubelet_cmd, env=dict(scripted_env, SCRIPTED_KUBELET_CONTAINER="0"),
                               start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)]
    try:
        orphan = _orphaned_container(cluster_dir)
        if orphan is not None:
            leaked.append(orphan)
        down = kubesim(cluster_dir, "down", "--grace", "5", env=scripted_env)
        said = f"down exited {down.returncode}; stdout: {down.stdout}; stderr: {down.stderr}"
        assert down.returncode == 1, said
        assert "stopped kubelet/kubesim-worker" in down.stdout, said
        assert [proc.wait(timeout=10) for proc in leaked] == [-signal.SIGKILL] * len(leaked), said
        assert f"{len(leaked)} process(es) of this cluster outlived `down`" in down.stderr, said
        assert f"pid {leaked[0].pid} " in down.stderr, said
        assert "an unrecorded kubelet/kubesim-worker" in down.stderr, said
        if orphan is not None:
            assert f"pid {orphan.pid} (uid 0): sleep 300 [a container process: its root is " in down.stderr, said
        again = kubesim(cluster_dir, "down", "--grace", "5", env=scripted_env)
        assert (again.returncode, again.stderr) == (0, ""), f"a second down found something the first left: {again}"
    finally:
        for proc in leaked:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_up_stops_everything_and_names_the_node_when_a_kubelet_exits(
        tmp_path: Path, scripted_env: dict[str, str]) -> None:
    env = dict(scripted_env, KUBESIM_KUBELET_CMD=f"{sys.executable} -c \"import sys; sys.exit('kubelet refused')\"")
    state_dir = tmp_path / "broken"
    up = kubesim(state_dir, "up", "--port", "0", "--nodes", "1", "--controllers", "none", env=env)
    assert up.returncode == 1
    assert "the kubelet of kubesim-worker exited" in up.stderr
    assert "kubelet refused" in up.stderr
    assert components(state_dir) == {}, "a failed up must not leave processes behind"


@pytest.mark.parametrize(("args", "message"), [
    (("up", "--nodes", "-1"), "--nodes -1 must be 0 or more"),
    (("up", "--controllers", "statefulset,bogus"), "--controllers: unknown"),
    (("up", "--node-monitor-grace", "soon"), "'soon' is not a duration"),
    (("up", "--node-monitor-grace", "4s", "--node-status-interval", "5s"), "must be shorter than node-monitor-grace"),
    (("up", "--timing", "slow"), "--timing 'slow': use upstream or fast"),
    (("up", "--image-pull-time", "soon"), "'soon' is not a duration"),
])
def test_bad_up_flags_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = kubesim(tmp_path / "s", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "state.json").exists() or components(tmp_path / "s") == {}


def test_node_commands_refuse_unknown_nodes_and_signals(kubesim_kubeconfig: Path) -> None:
    state_dir = kubesim_kubeconfig.parent
    crash = kubesim(state_dir, "node", "crash", "kubesim-worker9")
    assert crash.returncode == 2
    assert "no node 'kubesim-worker9'" in crash.stderr
    bad_signal = kubesim(state_dir, "node", "kill-container", "p", "c", "--signal", "BOGUS")
    assert bad_signal.returncode == 2
    assert "--signal 'BOGUS' is not a signal" in bad_signal.stderr


def test_pod_logs_come_from_the_kubelet_log_files(kubesim_kubeconfig: Path) -> None:
    """E4 seam: pods/log reads nodes/<node>/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log."""
    api = client.Client.from_kubeconfig(kubesim_kubeconfig)
    pod = api.create("pods", {"metadata": {"name": "logged"}, "spec": {"containers": [
        {"name": "main", "image": "busybox"}, {"name": "side", "image": "busybox"}]}}, "default")
    try:
        api.post_subresource("pods", "logged", "default", "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "logged"},
            "target": {"kind": "Node", "name": "somenode"}})
        base = "/api/v1/namespaces/default/pods/logged/log"
        with pytest.raises(client.ApiError) as waiting:
            api.raw_get(base + "?container=main")
        assert waiting.value.status == 400
        assert 'container "main" in pod "logged" is waiting to start: ContainerCreating' in waiting.value.message
        logs = kubesim_kubeconfig.parent / "nodes" / "somenode" / "pods" / f"default_logged_{pod['metadata']['uid']}"
        (logs / "main").mkdir(parents=True)
        (logs / "main" / "0.log").write_text("first run\n")
        (logs / "main" / "1.log").write_text("a\nb\nc\n")
        assert api.raw_get(base + "?container=main") == b"a\nb\nc\n"
        assert api.raw_get(base + "?container=main&tailLines=2") == b"b\nc\n"
        assert api.raw_get(base + "?container=main&previous=true") == b"first run\n"
        (logs / "side").mkdir()
        (logs / "side" / "0.log").write_text("x\n")
        with pytest.raises(client.ApiError) as no_previous:
            api.raw_get(base + "?container=side&previous=true")
        assert 'previous terminated container "side" in pod "logged" not found' in no_previous.value.message
        kubectl = Path(sys.executable).with_name("kubectl")
        out = subprocess.run([str(kubectl), "--kubeconfig", str(kubesim_kubeconfig), "logs", "logged", "-c", "main",
                              "--tail", "1"], capture_output=True, text=True, timeout=30, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "c\n"
    finally:
        api.delete("pods", "logged", "default", grace_period_seconds=0)


def test_three_node_cluster_has_kind_nodes_and_storage_classes(kubesim_cluster: Any) -> None:
    """The session cluster: kind's node names and labels, all Ready; kind's default `standard` class + `shared`."""
    items, _rv = kubesim_cluster.client.list("nodes")
    by_name = {n["metadata"]["name"]: n for n in items}
    assert sorted(by_name) == ["kubesim-worker", "kubesim-worker2", "kubesim-worker3"]
    for name, node in by_name.items():
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
    classes = {sc["metadata"]["name"]: sc for sc in kubesim_cluster.client.list("storageclasses")[0]}
    standard = classes["standard"]
    assert standard["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (standard["provisioner"], standard["volumeBindingMode"], standard["reclaimPolicy"]) == (
        "rancher.io/local-path", "WaitForFirstConsumer", "Delete")
    assert (classes["shared"]["provisioner"], classes["shared"]["volumeBindingMode"]) == (
        "kubesim.io/shared", "Immediate")


def test_kubectl_logs_shows_a_real_containers_output_and_previous_instance(kubesim_cluster: Any,
                                                                         namespace: str) -> None:
    """E4 end to end: scheduler, kubelet, log files, pods/log seam; kill-container makes a `previous` log."""
    api = kubesim_cluster.client
    api.create("pods", {"metadata": {"name": "talker"}, "spec": {"containers": [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "echo started $POD; exec sleep 3600"],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}, namespace)

    def status_of() -> dict[str, Any]:
        return api.get("pods", "talker", namespace).get("status") or {}

    def running(restarts: int) -> bool:
        statuses = status_of().get("containerStatuses") or [{}]
        return bool(statuses[0].get("state", {}).get("running")) and statuses[0].get("restartCount") == restarts

    tenacity.Retrying(stop=tenacity.stop_before_delay(30), wait=tenacity.wait_fixed(0.1), reraise=True,
                      retry=tenacity.retry_if_result(lambda ok: not ok))(lambda: running(0))
    kubectl = [str(Path(sys.executable).with_name("kubectl")), "--kubeconfig", str(kubesim_cluster.kubeconfig),
               "-n", namespace]

    def logs(*extra: str) -> str:
        out = subprocess.run([*kubectl, "logs", "talker", *extra], capture_output=True, text=True, timeout=30,
                             check=False)
        return out.stdout if out.returncode == 0 else f"exit {out.returncode}: {out.stderr}"

    tenacity.Retrying(stop=tenacity.stop_before_delay(10), wait=tenacity.wait_fixed(0.1), reraise=True,
                      retry=tenacity.retry_if_result(lambda text: text != "started talker\n"))(logs)
    kubesim_cluster.run("node", "kill-container", "talker", "main", "-n", namespace, "--signal", "KILL")
    tenacity.Retrying(stop=tenacity.stop_before_delay(30), wait=tenacity.wait_fixed(0.1), reraise=True,
                      retry=tenacity.retry_if_result(lambda ok: not ok))(lambda: running(1))
    assert logs("--previous") == "started talker\n"


def test_heal_brings_a_crashed_and_cordoned_node_back(kubesim_cluster: Any) -> None:
    kubesim_cluster.run("node", "crash", "kubesim-worker3")
    kubesim_cluster.client.patch("nodes", "kubesim-worker2", {"spec": {"unschedulable": True}})
    assert "kubesim-worker3      stopped" in kubesim_cluster.run("node", "list").stdout
    kubesim_cluster.heal()
    listed = kubesim_cluster.run("node", "list").stdout
    assert "stopped" not in listed
    for node in kubesim_cluster.nodes:
        assert not kubesim_cluster.client.get("nodes", node).get("spec", {}).get("unschedulable")


def test_control_plane_sigkill_and_up_resumes_controllers_and_kubelets(tmp_path: Path) -> None:
    """A9 + E5 at the process level: after a SIGKILL of the control plane, `up` restarts it; the running
    kubelet reconnects, the controllers re-list, and a pod created afterwards is scheduled and runs."""
    from kubelet_guard import require_kubelet

    require_kubelet()
    state_dir = tmp_path / "restart"
    try:
        up = kubesim(state_dir, "up", "--port", "0", "--nodes", "1", "--node-monitor-grace", "4s")
        assert up.returncode == 0, up.stderr
        api = client.Client.from_state(state_dir)
        control_plane = int(components(state_dir)["apiserver"]["pid"])  # type: ignore[call-overload]
        kubelet = int(components(state_dir)["kubelet/kubesim-worker"]["pid"])  # type: ignore[call-overload]
        os.kill(control_plane, signal.SIGKILL)
        tenacity.Retrying(stop=tenacity.stop_before_delay(5), wait=tenacity.wait_fixed(0.05), reraise=True,
                          retry=tenacity.retry_if_result(bool))(lambda: alive(control_plane))
        again = kubesim(state_dir, "up")
        assert again.returncode == 0, again.stderr
        assert int(components(state_dir)["kubelet/kubesim-worker"]["pid"]) == kubelet  # type: ignore[call-overload]
        api = client.Client.from_state(state_dir)
        api.create("pods", {"metadata": {"name": "after"}, "spec": {"containers": [
            {"name": "main", "image": "registry.k8s.io/pause:3.10"}]}}, "default")

        def phase() -> str:
            return str((api.get("pods", "after", "default").get("status") or {}).get("phase"))

        tenacity.Retrying(stop=tenacity.stop_before_delay(30), wait=tenacity.wait_fixed(0.1), reraise=True,
                          retry=tenacity.retry_if_result(lambda p: p != "Running"))(phase)
        assert api.get("pods", "after", "default")["spec"]["nodeName"] == "kubesim-worker"
    finally:
        kubesim(state_dir, "down", "--grace", "5")


def test_down_of_a_real_cluster_running_containers_leaves_nothing_and_has_nothing_to_report(tmp_path: Path) -> None:
    """E5: `down` with real kubelets, running containers (a volume, a non-root user, a background grandchild):
    every process is gone afterwards and the leftover check, finding none, stays silent (exit 0)."""
    from kubelet_guard import require_kubelet

    require_kubelet()
    state_dir = tmp_path / "real"
    try:
        up = kubesim(state_dir, "up", "--port", "0", "--nodes", "1")
        assert up.returncode == 0, up.stderr
        api = client.Client.from_state(state_dir)
        api.create("pods", {"metadata": {"name": "busy"}, "spec": {
            "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "main", "image": "busybox", "workingDir": "/data",
                            "command": ["sh", "-c", "sleep 3600 & sleep 3600"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}, "default")

        def running() -> dict[str, Any]:
            return read_containers(state_dir, "kubesim-worker").get("default/busy/main") or {}

        _await("the busy container running", lambda: bool(running()), timeout=30)
        entry = running()
        init = int(entry["pid"])
        _await("its background sleep started",
               lambda: bool(Path(f"/proc/{init}/task/{init}/children").read_text().split()))
        pids = [init, int(entry["pgid"]),
                *map(int, Path(f"/proc/{init}/task/{init}/children").read_text().split())]
        down = kubesim(state_dir, "down", "--grace", "5")
        assert (down.returncode, down.stderr) == (0, ""), down.stdout
        assert not [pid for pid in pids if alive(pid)]
    finally:
        kubesim(state_dir, "down", "--grace", "5")


def test_cluster_admission_uses_the_clusters_toleration_seconds_and_default_class(kubesim_cluster: Any,
                                                                                 namespace: str) -> None:
    """D2/C1 wiring: `up --toleration-seconds 10` reaches admission; a claim without a class gets `standard`."""
    api = kubesim_cluster.client
    pod = api.create("pods", {"metadata": {"name": "tolerant"}, "spec": {"nodeName": "nowhere", "containers": [
        {"name": "main", "image": "registry.k8s.io/pause:3.10"}]}}, namespace)
    seconds = {t["key"]: t.get("tolerationSeconds") for t in pod["spec"]["tolerations"]}
    assert seconds == {"node.kubernetes.io/not-ready": 10, "node.kubernetes.io/unreachable": 10}
    api.delete("pods", "tolerant", namespace, grace_period_seconds=0)
    claim = api.create("persistentvolumeclaims", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}, namespace)
    assert claim["spec"]["storageClassName"] == "standard"
