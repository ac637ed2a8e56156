"""The kubelet's pure parts (E1, E3) and its sandbox on the real kernel (E1, E5).

Pure: downward-API env, probe thresholds, back-off schedule and upstream's duration wording,
pod IP allocation, phase/conditions, the image table. Sandbox: a container sees its volume at
a mountPath the host does not have, the host is left without it, a missing command is a start
error with exit code 128, and killing the container's parent kills the container AND a
grandchild it started in the background.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import tenacity

from kubesim import images, podlogs
from kubesim.kubelet import backoff, containers, envvars, podip, probes, status

POD = {
    "metadata": {"name": "writer-0", "namespace": "ns1", "uid": "u-1",
                 "labels": {"apps.kubernetes.io/pod-index": "0"}, "annotations": {"a": "b"}},
    "spec": {"nodeName": "kubesim-worker", "serviceAccountName": "default"},
}


def _no_objects(kind: str, namespace: str, name: str) -> dict[str, object] | None:
    del kind, namespace, name
    return None


# ----- downward API ------------------------------------------------------------------------------


def test_downward_api_env_resolves_every_field_the_writer_and_upstream_use() -> None:
    container = {"env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "IDX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}},
        {"name": "ANN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['a']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "LISTEN_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "URL", "value": "http://$(LISTEN_HOST):8080/$$(NOT)"},
    ]}
    env = envvars.build(POD, container, pod_ip="127.32.1.2", host_ip="127.32.1.1", lookup=_no_objects)
    assert env == {"POD_NAME": "writer-0", "NS": "ns1", "UID": "u-1", "IDX": "0", "ANN": "b",
                   "NODE": "kubesim-worker", "LISTEN_HOST": "127.32.1.2", "HOST_IP": "127.32.1.1",
                   "URL": "http://127.32.1.2:8080/$(NOT)"}


def test_missing_configmap_key_ref_is_a_config_error_unless_optional() -> None:
    ref = {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}
    with pytest.raises(envvars.EnvError, match='configmap "cm" not found'):
        envvars.build(POD, {"env": [ref]}, pod_ip="", host_ip="", lookup=_no_objects)
    ref["valueFrom"]["configMapKeyRef"]["optional"] = True  # type: ignore[index]
    assert envvars.build(POD, {"env": [ref]}, pod_ip="", host_ip="", lookup=_no_objects) == {}


def test_resource_field_ref_rounds_up_by_divisor() -> None:
    container = {"resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}, "env": [
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}
    env = envvars.build(POD, container, pod_ip="", host_ip="", lookup=_no_objects)
    assert env == {"MEM": "64", "CPU": "1"}


# ----- probes --------------------------------------------------------------------------------------


def test_readiness_needs_success_threshold_and_fails_after_failure_threshold() -> None:
    out = probes.Outcome("readiness", probes.Settings.of({"successThreshold": 2, "failureThreshold": 3}, "readiness"))
    assert out.result is False
    assert out.record(True) is False
    assert out.record(True) is True
    assert out.result is True
    assert [out.record(False) for _ in range(3)] == [False, False, True]
    assert out.result is False


def test_liveness_starts_healthy_and_gives_up_after_failure_threshold() -> None:
    out = probes.Outcome("liveness", probes.Settings.of({"failureThreshold": 2, "successThreshold": 5}, "liveness"))
    assert out.result is True
    assert out.settings.success_threshold == 1  # validation forces 1 for liveness
    out.record(False)
    assert not out.gave_up
    out.record(False)
    assert out.gave_up
    assert out.result is False


def test_tcp_probe_reports_refused_connection_like_go() -> None:
    ok, message = probes.tcp_socket({"port": 1}, {}, "127.0.0.1", 1.0)
    assert not ok
    assert message == "dial tcp 127.0.0.1:1: connect: connection refused"


# ----- back-off ------------------------------------------------------------------------------------


def test_crashloop_backoff_restarts_first_at_once_then_doubles_to_the_cap() -> None:
    b = backoff.Backoff(10, 300)
    assert not b.in_backoff_since("k", since=0, now=0)
    delays = [b.next("k", now=float(i)) for i in range(8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.in_backoff_since("k", since=7, now=100)
    assert not b.in_backoff_since("k", since=7, now=308)


def test_backoff_is_forgotten_after_twice_the_cap_without_failures() -> None:
    b = backoff.Backoff(0.5, 4)
    b.next("k", now=0)
    b.next("k", now=1)
    assert b.delay("k", now=2) == 1.0
    assert b.delay("k", now=1 + 8.01) == 0.0
    assert b.next("k", now=10) == 0.5


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"),
                                               (0.5, "500ms"), (1.5, "1.5s")])
def test_backoff_message_uses_go_duration_wording(seconds: float, text: str) -> None:
    assert backoff.go_duration(seconds) == text


# ----- pod IPs -------------------------------------------------------------------------------------


def test_pod_ips_are_per_cluster_and_node_ranges_round_robin_and_readoptable() -> None:
    """Cluster C, node i: host IP 127.C.i.1, pods 127.C.i.2-254; two clusters never share an address."""
    a, b = podip.Allocator(32, 1), podip.Allocator(32, 2)
    first = a.allocate("p1")
    assert first == "127.32.1.2"
    assert podip.host_ip(32, 1) == "127.32.1.1"
    assert b.allocate("p1") == "127.32.2.2"
    assert a.allocate("p1") == first  # idempotent per pod
    second = a.allocate("p2")
    a.release("p1")
    assert a.allocate("p3") not in (first, second)  # a freed address is not handed out again at once
    c = podip.Allocator(32, 1)
    assert c.claim("p2", second)
    assert not c.claim("p9", second)
    assert not c.claim("p4", "127.32.2.9")  # another node's
    assert not c.claim("p5", "127.33.1.9")  # another cluster's node of the same name
    assert not c.claim("p6", "127.32.1.1")  # the node's own address
    assert not c.claim("p7", "127.11.0.9")  # what an older kubesim gave kubesim-worker
    assert podip.Allocator(33, 1).allocate("p1") == "127.33.1.2"
    assert podip.cluster_range(33) == "127.33.0.0/16"
    assert podip.node_index_from_name("kubesim-worker") == 1
    assert podip.node_index_from_name("kubesim-worker3") == 3
    assert podip.node_index_from_name("kind-control-plane") is None
    with pytest.raises(podip.AddressError, match="cluster index 0"):
        podip.Allocator(0, 1)
    with pytest.raises(podip.AddressError, match="node index 255"):
        podip.host_ip(32, 255)


def test_allocator_never_hands_out_network_broadcast_or_host_addresses_and_says_when_full() -> None:
    a = podip.Allocator(40, 3)
    ips = {a.allocate(f"p{i}") for i in range(253)}
    assert len(ips) == 253  # more than the 110 pods a node admits
    assert all(ip.startswith("127.40.3.") for ip in ips)
    assert not any(ip.endswith((".0", ".255")) or ip == "127.40.3.1" for ip in ips)
    with pytest.raises(podip.AddressError, match=r"node 127\.40\.3\.0/24: all pod addresses are in use"):
        a.allocate("one-too-many")


# ----- status --------------------------------------------------------------------------------------


def _cs(state: dict[str, object], last: dict[str, object] | None = None, ready: bool = False) -> dict[str, object]:
    return {"name": "c", "state": state, "lastState": {"terminated": last} if last else {}, "ready": ready}


def test_phase_follows_get_phase() -> None:
    running = _cs({"running": {}})
    crashloop = _cs({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 1})
    creating = _cs({"waiting": {"reason": "ContainerCreating"}})
    done_ok = _cs({"terminated": {"exitCode": 0}})
    done_bad = _cs({"terminated": {"exitCode": 2}})
    assert status.phase("Always", [running]) == "Running"
    assert status.phase("Always", [crashloop]) == "Running"
    assert status.phase("Always", [creating, running]) == "Pending"
    assert status.phase("Never", [done_ok]) == "Succeeded"
    assert status.phase("Never", [done_bad]) == "Failed"
    assert status.phase("OnFailure", [done_bad]) == "Running"
    assert status.phase("OnFailure", [done_ok]) == "Succeeded"


def test_conditions_keep_foreign_ones_and_transition_times() -> None:
    existing = [{"type": "DisruptionTarget", "status": "True"},
                {"type": "Ready", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    out = status.conditions(existing, sandbox_ready=True, statuses=[_cs({"running": {}}, ready=False)],
                            pod_phase="Running", spec_containers=[{"name": "c"}])
    by_type = {c["type"]: c for c in out}
    assert by_type["DisruptionTarget"]["status"] == "True"
    assert by_type["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert by_type["Ready"]["message"] == "containers with unready status: [c]"
    assert {"PodReadyToStartContainers", "Initialized", "ContainersReady", "PodScheduled"} <= set(by_type)


# ----- images --------------------------------------------------------------------------------------


def test_image_table_runs_writer_pause_and_busybox_and_refuses_others() -> None:
    writer = images.resolve("ckpt-writer:0.1.0")
    assert writer.ref == "docker.io/library/ckpt-writer:0.1.0"
    assert images.command_line(writer.config, None, None) == ["harness", "writer", "serve", "--data-dir", "/data"]
    assert images.command_line(writer.config, None, ["--port", "1"]) == ["harness", "writer", "serve", "--port", "1"]
    assert images.command_line(writer.config, ["python"], None) == ["python"]
    assert dict(writer.config.env)["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert images.resolve("registry.k8s.io/pause:3.10").config.pause
    assert images.resolve("docker.io/library/busybox:1.36").config.cmd == ("sh",)
    with pytest.raises(images.PullError, match=r'failed to pull and unpack image "docker\.io/library/nginx:latest"'):
        images.resolve("nginx")
    with pytest.raises(images.InvalidImageName):
        images.resolve("UPPER:case")


# ----- the sandbox on the real kernel ------------------------------------------------------------


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox test mounts as root")


def _spec(tmp: Path, argv: list[str], mounts: list[dict[str, object]] | None = None) -> containers.LaunchSpec:
    rootfs = tmp / "rootfs"
    rootfs.mkdir(exist_ok=True)
    return containers.LaunchSpec(argv=argv, env={"PATH": "/usr/bin:/bin"}, cwd="/", rootfs=str(rootfs),
                                 mounts=mounts or [], makedirs=[], uid=None, gid=None, groups=[],
                                 hostname="sandbox-test", pause=False, mode="auto")


def _container_output(log: bytes) -> str:
    """What PID 1 wrote, from the shim's CRI-format log records (their timestamp/stream/tag stripped)."""
    return "".join(podlogs.parse_record(line, None).content.decode() for line in log.splitlines(keepends=True))


@needs_root
def test_volume_appears_at_a_mount_path_the_host_lacks_and_the_host_stays_clean(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "hello").write_text("from the volume\n")
    missing = f"/kubesim-k5-{uuid.uuid4().hex[:8]}/data"
    deep_missing = f"{tmp_path}/not-there/deeper"
    script = f"cat {missing}/hello && echo written > {deep_missing}/new && hostname && ls {tmp_path}"
    launched = containers.Launcher().launch(
        _spec(tmp_path, ["sh", "-c", script],
              [{"source": str(vol), "target": missing}, {"source": str(vol), "target": deep_missing}]),
        tmp_path / "log")
    assert isinstance(launched, containers.Process), launched
    assert launched.wait() == 0, (tmp_path / "log").read_text()
    out = _container_output((tmp_path / "log").read_bytes()).splitlines()
    assert out[0] == "from the volume"
    assert out[1] == "sandbox-test"
    assert "vol" in out[2:]  # the shadowed parent still shows its existing entries
    assert (vol / "new").read_text() == "written\n"
    assert not Path(missing.split("/data", maxsplit=1)[0]).exists()
    assert not Path(f"{tmp_path}/not-there").exists()


@needs_root
def test_missing_command_is_a_start_error_with_upstream_wording(tmp_path: Path) -> None:
    launched = containers.Launcher().launch(_spec(tmp_path, ["no-such-command-k5"]), tmp_path / "log")
    expected = 'exec: "no-such-command-k5": executable file not found in $PATH'
    assert launched == containers.StartFailure("start", expected)


@needs_root
def test_volumes_without_a_mount_namespace_fail_instead_of_writing_elsewhere(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["true"], [{"source": str(tmp_path), "target": "/data"}])
    launched = containers.Launcher().launch(
        containers.LaunchSpec(**{**spec.__dict__, "mode": "none"}), tmp_path / "log")
    assert isinstance(launched, containers.StartFailure)
    assert launched.stage == "create"
    assert "no private mount namespace" in launched.message


_PARENT = """
import json, sys, time
from pathlib import Path
from kubesim.kubelet import containers
tmp = Path(sys.argv[1])
(tmp / "rootfs").mkdir()
spec = containers.LaunchSpec(argv=["sh", "-c", "sleep 300 & sleep 300"], env={"PATH": "/usr/bin:/bin"}, cwd="/",
    rootfs=str(tmp / "rootfs"), mounts=[], makedirs=[], uid=None, gid=None, groups=[], hostname="x",
    pause=False, mode="auto")
proc = containers.Launcher().launch(spec, tmp / "log")
print(json.dumps({"pid": proc.init_pid, "pgid": proc.pgid}), flush=True)
time.sleep(300)
"""


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            out.add(k)
            todo.append(k)
    return out


@needs_root
def test_container_and_its_background_grandchild_die_with_their_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    pids: set[int] = set()
    try:
        assert parent.stdout is not None
        info = json.loads(parent.stdout.readline())
        for attempt in tenacity.Retrying(stop=tenacity.stop_after_delay(10), wait=tenacity.wait_fixed(0.05),
                                         reraise=True):
            with attempt:
                pids = {info["pgid"], info["pid"], *_descendants(info["pid"])}
                assert len(pids) >= 4, f"shim, sh and two sleeps expected, saw {sorted(pids)}"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        for attempt in tenacity.Retrying(stop=tenacity.stop_after_delay(10), wait=tenacity.wait_fixed(0.05),
                                         reraise=True):
            with attempt:
                alive = [p for p in pids if Path(f"/proc/{p}").exists()
                         and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
                assert not alive, f"still running after their parent was killed: {alive}"
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


def test_pause_image_exits_zero_on_sigterm(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("sandbox runs as root here")
    spec = _spec(tmp_path, [])
    launched = containers.Launcher().launch(containers.LaunchSpec(**{**spec.__dict__, "pause": True}), tmp_path / "l")
    assert isinstance(launched, containers.Process)  # returned after the handlers were installed
    launched.signal_main(signal.SIGTERM)
    assert launched.wait() == 0


_SYSTEM_PYTHON = Path("/usr/bin/python3")


@needs_root
@pytest.mark.skipif(not _SYSTEM_PYTHON.exists() or not Path("/usr/bin/setpriv").exists(),
                    reason="needs /usr/bin/python3 and setpriv to run the shim as an unprivileged user")
def test_unprivileged_shim_uses_a_user_namespace_and_still_mounts_volumes() -> None:
    """E1 where the kubelet is not root: the shim maps itself to root in a user namespace."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="k5-userns-", dir="/tmp"))  # reachable for uid 65534, unlike tmp_path
    try:
        (base / "rootfs").mkdir()
        (base / "vol").mkdir()
        for p in (base, base / "rootfs", base / "vol"):
            p.chmod(0o777)
        # A non-root kubelet runs the shim as its own user, who can read its own checkout; uid 65534
        # stands in for that user here but may not read a checkout under a 0700 directory (a
        # `mktemp -d` clone), so it runs a readable copy of the same stdlib-only script.
        shim = base / "sandbox.py"
        shutil.copyfile(containers.SANDBOX, shim)
        shim.chmod(0o644)
        target = f"/kubesim-k5-{uuid.uuid4().hex[:8]}"
        spec = {"argv": ["sh", "-c", f"echo from-userns > {target}/out; echo pid $$"], "env": {"PATH": "/usr/bin:/bin"},
                "cwd": "/", "rootfs": str(base / "rootfs"), "mounts": [{"source": str(base / "vol"), "target": target}],
                "makedirs": [], "hostname": "u", "mode": "auto"}
        r, w = os.pipe()
        proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(_SYSTEM_PYTHON),
                                 "-S", "-E", str(shim), str(w), str(os.getpid())],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(w,))
        os.close(w)
        out, _ = proc.communicate(json.dumps(spec).encode(), timeout=30)
        with os.fdopen(r, "rb") as fh:
            status_lines = fh.read().decode().splitlines()
        assert status_lines, f"the shim wrote no status line (exit {proc.returncode}): {out.decode(errors='replace')}"
        if any('"stage"' in line and "user namespace" in line for line in status_lines):
            pytest.skip(f"this kernel refuses unprivileged user namespaces: {status_lines}")
        assert json.loads(status_lines[0])["mode"] == "userns", status_lines
        assert proc.returncode == 0, out
        assert _container_output(out).strip() == "pid 1"
        assert (base / "vol" / "out").read_text() == "from-userns\n"
        assert not Path(target).exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ----- the shim never dies silently, and nothing it started outlives it -------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _await_gone(what: str, pid: int, timeout: float = 10.0) -> None:
    try:
        tenacity.Retrying(stop=tenacity.stop_after_delay(timeout), wait=tenacity.wait_fixed(0.05),
                          retry=tenacity.retry_if_result(bool))(lambda: _alive(pid))
    except tenacity.RetryError:
        pytest.fail(f"{what} (pid {pid}) still running {timeout:.0f}s later")


def _run_shim(stdin: bytes, kubelet_pid: int, status_fd: int | None = None) -> tuple[int, list[str], str]:
    """Run the shim by hand: (exit code, status lines, stderr)."""
    r, w = os.pipe()
    try:
        done = subprocess.run([sys.executable, "-S", "-E", str(containers.SANDBOX),
                               str(w if status_fd is None else status_fd), str(kubelet_pid)],
                              input=stdin, capture_output=True, pass_fds=(w,), timeout=30, check=False)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as fh:
        return done.returncode, fh.read().decode().splitlines(), done.stderr.decode(errors="replace")


def test_a_shim_whose_kubelet_is_already_gone_says_so_before_exiting() -> None:
    code, lines, _ = _run_shim(b"{}", kubelet_pid=1)  # its parent is this test, not pid 1: "the kubelet died"
    assert code == 137
    assert [json.loads(line)["stage"] for line in lines] == ["create"], lines
    assert json.loads(lines[0])["message"].startswith("the kubelet (pid 1) exited before the sandbox could tie")


def test_a_shim_failing_in_a_way_nobody_planned_for_still_reports_why() -> None:
    code, lines, stderr = _run_shim(b"this is not a spec", kubelet_pid=os.getpid())
    assert code == 128, stderr
    assert len(lines) == 1, (lines, stderr)
    assert json.loads(lines[0]) == {"stage": "create", "message": json.loads(lines[0])["message"]}
    assert "JSONDecodeError" in json.loads(lines[0])["message"]


def test_a_report_the_status_fd_cannot_take_goes_to_stderr() -> None:
    code, lines, stderr = _run_shim(b"{}", kubelet_pid=1, status_fd=987)
    assert code == 137
    assert lines == []
    assert "cannot write status fd 987" in stderr
    assert "the kubelet (pid 1) exited" in stderr


def test_a_shim_that_dies_without_a_status_line_is_reported_with_its_exit_status_and_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What no code in the shim can report (here: the interpreter cannot even open it) still reaches the pod."""
    monkeypatch.setattr(containers, "SANDBOX", tmp_path / "no-such-sandbox.py")
    launched = containers.Launcher().launch(_spec(tmp_path, ["true"]), tmp_path / "log")
    assert isinstance(launched, containers.StartFailure), launched
    assert launched.stage == "create"
    assert launched.message.startswith("container sandbox exited with code 2 before it started the container: ")
    assert "can't open file" in launched.message
    assert containers.silent_death(-9, "") == "container sandbox was killed by SIGKILL before it started the container"


def test_a_container_reported_exited_is_never_left_running(tmp_path: Path) -> None:
    """Whatever let PID 1 outlive its shim, the kubelet kills it when it reaps the shim."""
    fake_shim = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!"], stdout=subprocess.PIPE, start_new_session=True)
    assert fake_shim.stdout is not None
    init = int(fake_shim.stdout.readline())
    try:
        proc = containers.Process(fake_shim, init, "none", "id")
        assert proc.wait() == 0
        _await_gone("PID 1 of a container whose shim exited", init)
    finally:
        if _alive(init):
            os.kill(init, signal.SIGKILL)


# The shim, held in the gap between the fork and PID 1's PR_SET_PDEATHSIG ("fork"), or between the
# credential change that clears it and its re-arming ("setuid"), until the test has SIGKILLed the shim.
_GAPPED_SHIM = """
import os, runpy, sys
sandbox, gap, ready_fd, gate_fd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def hold():
    os.write(ready_fd, b"in the gap\\n")
    os.read(gate_fd, 1)  # EOF: the test closed its end after killing the shim

if gap == "fork":
    real_fork = os.fork
    def fork():
        pid = real_fork()
        if pid == 0:
            hold()
        return pid
    os.fork = fork
else:
    real_setuid = os.setuid
    def setuid(uid):
        real_setuid(uid)
        hold()
    os.setuid = setuid
sys.argv = [sandbox, *sys.argv[5:]]
runpy.run_path(sandbox, run_name="__main__")
"""


@needs_root
@pytest.mark.parametrize("gap", ["fork", "setuid"])
def test_a_shim_killed_before_pid_1_was_tied_to_it_leaves_no_container_running(tmp_path: Path, gap: str) -> None:
    """PID 1 of its own PID namespace sees getppid() == 0 with or without its shim: without another check a shim
    killed in the gap left the container running as an orphan of init (what `kubesim down` once left behind)."""
    (tmp_path / "rootfs").mkdir()
    spec = {"argv": ["sleep", "300"], "env": {"PATH": "/usr/bin:/bin"}, "cwd": "/", "rootfs": str(tmp_path / "rootfs"),
            "mounts": [], "makedirs": [], "hostname": "gap", "mode": "root", "groups": [],
            "uid": 65534 if gap == "setuid" else None, "gid": None}
    status_r, status_w = os.pipe()
    ready_r, ready_w = os.pipe()
    gate_r, gate_w = os.pipe()
    log = tmp_path / "log"
    with log.open("wb") as out:
        shim = subprocess.Popen([sys.executable, "-c", _GAPPED_SHIM, str(containers.SANDBOX), gap, str(ready_w),
                                 str(gate_r), str(status_w), str(os.getpid())], stdin=subprocess.PIPE, stdout=out,
                                stderr=out, pass_fds=(status_w, ready_w, gate_r), start_new_session=True)
    for fd in (status_w, ready_w, gate_r):
        os.close(fd)
    init = 0
    try:
        assert shim.stdin is not None
        shim.stdin.write(json.dumps(spec).encode())
        shim.stdin.close()
        with os.fdopen(ready_r, "rb") as ready, os.fdopen(status_r, "rb") as status:
            assert ready.readline() == b"in the gap\n", log.read_text()
            init = int(json.loads(status.readline())["pid"])
            shim.kill()
            shim.wait()
            os.close(gate_w)
            gate_w = -1
            _await_gone(f"the container's PID 1 after its shim was SIGKILLed in the {gap} gap", init)
            assert json.loads(status.readline()) == {
                "stage": "create", "message": "the container sandbox shim exited before the container was tied to it"}
    finally:
        if gate_w >= 0:
            os.close(gate_w)
        if shim.poll() is None:
            shim.kill()
            shim.wait()
        if init and _alive(init):
            os.kill(init, signal.SIGKILL)


# ----- volumes -------------------------------------------------------------------------------------


def _volume_pod(volumes_: list[dict[str, object]], fs_group: int | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"volumes": volumes_}
    if fs_group is not None:
        spec["securityContext"] = {"fsGroup": fs_group}
    return {"metadata": {"name": "p", "namespace": "ns1", "uid": "u"}, "spec": spec}


def test_claim_resolves_to_its_bound_pvs_directory_with_fsgroup_applied(tmp_path: Path) -> None:
    from kubesim.kubelet import volumes

    pv_dir = tmp_path / "pv"
    pv_dir.mkdir()
    (pv_dir / "old").write_text("x")
    objects = {("persistentvolumeclaims", "ns1", "data-p"): {"metadata": {}, "spec": {"volumeName": "pv1"},
                                                             "status": {"phase": "Bound"}},
               ("persistentvolumes", "", "pv1"): {"spec": {"local": {"path": str(pv_dir)}}}}
    got = volumes.setup(_volume_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "data-p"}}], 4242),
                        tmp_path / "pod", lambda k, ns, n: objects.get((k, ns, n)), pod_ip="", host_ip="")
    assert got["data"].path == pv_dir
    assert pv_dir.stat().st_gid == 4242
    assert pv_dir.stat().st_mode & 0o2070 == 0o2070
    assert (pv_dir / "old").stat().st_gid == 4242


def test_unbound_or_missing_claims_wait_and_unknown_volume_types_are_unsupported(tmp_path: Path) -> None:
    from kubesim.kubelet import volumes

    pending = {("persistentvolumeclaims", "ns1", "c"): {"metadata": {}, "spec": {}, "status": {"phase": "Pending"}}}
    with pytest.raises(volumes.MountError, match="PVC is not bound"):
        volumes.setup(_volume_pod([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]), tmp_path,
                      lambda k, ns, n: pending.get((k, ns, n)), pod_ip="", host_ip="")
    with pytest.raises(volumes.MountError, match='persistentvolumeclaim "c" not found'):
        volumes.setup(_volume_pod([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]), tmp_path,
                      _no_objects, pod_ip="", host_ip="")
    with pytest.raises(volumes.Unsupported, match="not supported"):
        volumes.setup(_volume_pod([{"name": "v", "nfs": {"server": "x", "path": "/"}}]), tmp_path, _no_objects,
                      pod_ip="", host_ip="")
    with pytest.raises(volumes.MountError, match="is not a directory"):
        volumes.setup(_volume_pod([{"name": "v", "hostPath": {"path": str(tmp_path / "nope"), "type": "Directory"}}]),
                      tmp_path, _no_objects, pod_ip="", host_ip="")


def test_configmap_secret_and_downward_api_volumes_are_files(tmp_path: Path) -> None:
    import base64

    from kubesim.kubelet import volumes

    objects = {("configmaps", "ns1", "cm"): {"data": {"a.conf": "A", "b": "B"}},
               ("secrets", "ns1", "s"): {"data": {"token": base64.b64encode(b"t0k").decode()}}}
    got = volumes.setup(_volume_pod([
        {"name": "c", "configMap": {"name": "cm", "items": [{"key": "a.conf", "path": "dir/a"}]}},
        {"name": "s", "secret": {"secretName": "s"}},
        {"name": "d", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "e", "emptyDir": {}},
    ]), tmp_path, lambda k, ns, n: objects.get((k, ns, n)), pod_ip="", host_ip="")
    assert (got["c"].path / "dir" / "a").read_text() == "A"
    assert not (got["c"].path / "b").exists()
    assert (got["s"].path / "token").read_bytes() == b"t0k"
    assert (got["d"].path / "name").read_text() == "p"
    assert got["e"].path.stat().st_mode & 0o777 == 0o777
    mounts = volumes.mounts_for({"volumeMounts": [{"name": "e", "mountPath": "/x", "subPath": "sub"}]}, got)
    assert mounts == [{"source": str(got["e"].path / "sub"), "target": "/x", "readOnly": False}]


class _StatusAndEvents:
    """The API server and event recorder a pod worker talks to, keeping one ordered record of both."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def patch(self, plural: str, name: str, body: dict[str, Any], namespace: str | None = None,
              **kwargs: Any) -> dict[str, Any]:
        del plural, name, namespace, kwargs
        self.seen.append(("status", body["status"]))
        return {}

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        from kubesim import client

        raise client.NotFound(404, "NotFound", f"{plural} {namespace}/{name} not found")

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        del obj, type_
        self.seen.append(("event", {"reason": reason, "message": message}))


def test_the_pod_shows_its_containers_creating_before_any_failedmount_event(tmp_path: Path) -> None:
    """E3: upstream's SyncPod sets the pod status (containers waiting in ContainerCreating) before it waits for
    volumes. Events leave on a sender thread, so a FailedMount recorded before the first status could be read by a
    client while the pod had no containerStatuses (the `KeyError: 'state'` the cluster test once hit)."""
    from kubesim.kubelet import pods

    fake = _StatusAndEvents()
    ctx = pods.Context(
        api=cast(Any, fake), event=fake.event, node="kubesim-worker", node_dir=tmp_path, host_ip="127.32.1.1",
        allocator=podip.Allocator(32, 1), launcher=cast(containers.Launcher, None),
        registry=containers.Registry(tmp_path / "containers.json"), crash_backoff=backoff.Backoff(1, 8),
        image_backoff=backoff.Backoff(1, 8), sandbox_mode="auto", fast_start=0.1, allocatable={})
    pod = {"metadata": {"name": "badvol", "namespace": "ns1", "uid": "u-1"},
           "spec": {"nodeName": "kubesim-worker", "volumes": [{"name": "v", "nfs": {"server": "x", "path": "/"}}],
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                    "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]}}
    pods.PodWorker(ctx, pod, on_done=lambda uid: None).sync()
    kinds = [kind for kind, _ in fake.seen]
    assert "event" in kinds, fake.seen
    first_event = fake.seen[kinds.index("event")][1]
    assert first_event["reason"] == "FailedMount", fake.seen
    statuses = [doc for kind, doc in fake.seen[:kinds.index("event")] if kind == "status"]
    assert statuses, f"FailedMount was recorded before any pod status: {fake.seen}"
    assert statuses[0]["phase"] == "Pending"
    assert [c["state"] for c in statuses[0]["containerStatuses"]] == [{"waiting": {"reason": "ContainerCreating"}}]


# ----- admission ---------------------------------------------------------------------------------


def test_admission_rejects_what_the_scheduler_would_have_filtered() -> None:
    from kubesim.kubelet import admission

    labels = {"kubernetes.io/hostname": "kubesim-worker"}
    alloc = {"cpu": "2", "memory": "1Gi", "pods": "3"}

    def pod(cpu: str | None = None, host_port: int | None = None, selector: dict[str, str] | None = None
            ) -> dict[str, object]:
        c: dict[str, object] = {"name": "c"}
        if cpu:
            c["resources"] = {"requests": {"cpu": cpu}}
        if host_port:
            c["ports"] = [{"containerPort": 80, "hostPort": host_port}]
        return {"spec": {"containers": [c], "nodeSelector": selector or {}}}

    assert admission.check(pod("500m"), [pod("1")], labels, alloc) is None
    assert admission.check(pod("1500m"), [pod("1")], labels, alloc) == (
        "OutOfcpu", "Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000")
    assert admission.check(pod(host_port=80), [pod(host_port=80)], labels, alloc)[0] == "NodePorts"  # type: ignore[index]
    assert admission.check(pod(selector={"kubernetes.io/hostname": "other"}), [], labels, alloc)[0] == "NodeAffinity"  # type: ignore[index]
    assert admission.check(pod(), [pod(), pod(), pod()], labels, alloc)[0] == "OutOfpods"  # type: ignore[index]
