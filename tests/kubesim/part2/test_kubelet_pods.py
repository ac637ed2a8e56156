"""The process kubelet through the Kubernetes API only (E1-E5), on K1's 3-node ``kubesim_cluster``.

Pods are bound by ``spec.nodeName`` (no scheduler involved). Each test names the sim-spec IDs it
covers. The cluster runs with CrashLoopBackOff base 1 s / cap 8 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import tenacity

from kubesim import client, podlogs

Obj = dict[str, Any]
T = TypeVar("T")
NODE = "kubesim-worker2"


def await_(what: str, probe: Callable[[], T], check: Callable[[T], bool], timeout: float = 20.0) -> T:
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


def _pod(name: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5, "containers": containers, **spec}}


def _get(cluster: Any, ns: str, name: str) -> Obj:
    return cluster.client.get("pods", name, ns)


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _cstatus(pod: Obj, name: str = "c") -> Obj:
    return next((c for c in (pod.get("status") or {}).get("containerStatuses") or [] if c["name"] == name), {})


def _gone(cluster: Any, ns: str, name: str) -> bool:
    try:
        cluster.client.get("pods", name, ns)
    except client.NotFound:
        return True
    return False


def _containers_json(cluster: Any, node: str) -> dict[str, Obj]:
    path = Path(cluster.state_dir) / "nodes" / node / "containers.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _http_status(url: str) -> int:
    """GET ``url``; run through ``cluster.inside`` (pods are reachable only from the cluster's network)."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status)


def _log_text(path: Path) -> str:
    """What the container wrote, from its CRI-format log file (records' prefixes stripped); "" if none yet."""
    if not path.exists():
        return ""
    return podlogs.render_file(path, podlogs.LogOptions()).decode()


def _events(cluster: Any, ns: str, pod: str) -> list[Obj]:
    items, _ = cluster.client.list("events", ns, field_selector=f"involvedObject.name={pod}")
    return items


def test_pause_pod_runs_gets_its_own_ip_is_ready_and_deletion_sigterms_it(kubesim_cluster: Any,
                                                                           namespace: str) -> None:
    """E1 (process, pod IP, hostIP), E3 (Ready without probes, container status), E2 (delete)."""
    cluster = kubesim_cluster
    started = time.monotonic()
    cluster.client.create("pods", _pod("pause", [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]), namespace)
    pod = await_("pause pod Ready", lambda: _get(cluster, namespace, "pause"), _ready)
    ready_after = time.monotonic() - started
    st = pod["status"]
    assert st["phase"] == "Running"
    index = cluster.net.index  # the cluster's 127.<index>.0.0/16; kubesim-worker2 owns 127.<index>.2.0/24
    assert st["podIP"].startswith(f"127.{index}.2.")
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert st["hostIP"] == f"127.{index}.2.1" == cluster.node_ip(2)
    cs = _cstatus(pod)
    assert cs["ready"]
    assert cs["started"]
    assert cs["restartCount"] == 0
    assert cs["containerID"].startswith("kubesim://")
    assert "running" in cs["state"]
    assert {c["type"] for c in st["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready",
                                                     "PodReadyToStartContainers"}
    entry = _containers_json(cluster, NODE)[f"{namespace}/pause/c"]
    assert _alive(entry["pid"])
    assert _alive(entry["pgid"])
    print(f"pause pod create -> Ready: {ready_after:.2f}s")
    started = time.monotonic()
    cluster.client.delete("pods", "pause", namespace)
    await_("pause pod removed", lambda: _gone(cluster, namespace, "pause"), bool)
    # pause exits on SIGTERM at once: far below the 5 s grace period
    assert time.monotonic() - started < 4
    assert not _alive(entry["pid"])
    assert not _alive(entry["pgid"])
    reasons = [e["reason"] for e in _events(cluster, namespace, "pause")]
    assert {"Pulled", "Created", "Started", "Killing"} <= set(reasons)


def test_container_ignoring_sigterm_is_killed_after_the_grace_period(kubesim_cluster: Any, namespace: str) -> None:
    """E2: a shell as PID 1 ignores SIGTERM (as in a real container); SIGKILL after the grace period."""
    cluster = kubesim_cluster
    pod = _pod("stubborn", [{"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}],
               terminationGracePeriodSeconds=2)
    cluster.client.create("pods", pod, namespace)
    await_("stubborn pod Ready", lambda: _get(cluster, namespace, "stubborn"), _ready)
    started = time.monotonic()
    cluster.client.delete("pods", "stubborn", namespace)
    await_("stubborn pod removed", lambda: _gone(cluster, namespace, "stubborn"), bool, timeout=15)
    took = time.monotonic() - started
    assert 1.8 <= took < 6, f"removal took {took:.1f}s with a 2 s grace period"


def test_crashing_container_shows_crashloopbackoff_with_growing_restart_count(kubesim_cluster: Any,
                                                                              namespace: str) -> None:
    """E3: restartCount, lastState.terminated, CrashLoopBackOff wording, BackOff events; E4 per-restart logs."""
    cluster = kubesim_cluster
    cluster.client.create("pods", _pod("crash", [{"name": "c", "image": "busybox",
                                                  "command": ["sh", "-c", "echo attempt; exit 3"]}]), namespace)
    pod = await_("CrashLoopBackOff after two restarts", lambda: _get(cluster, namespace, "crash"),
                 lambda p: _cstatus(p).get("restartCount", 0) >= 2
                 and (_cstatus(p).get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff")
    cs = _cstatus(pod)
    last = cs["lastState"]["terminated"]
    assert last["exitCode"] == 3
    assert last["reason"] == "Error"
    message = cs["state"]["waiting"]["message"]
    uid = pod["metadata"]["uid"]
    assert message.startswith("back-off ")
    assert message.endswith(f"restarting failed container=c pod=crash_{namespace}({uid})")
    assert pod["status"]["phase"] == "Running"
    assert not _ready(pod)
    later = await_("restartCount grows", lambda: _get(cluster, namespace, "crash"),
                   lambda p: _cstatus(p).get("restartCount", 0) > cs["restartCount"])
    assert _cstatus(later)["restartCount"] > cs["restartCount"]
    log_dir = Path(cluster.state_dir) / "nodes" / NODE / "pods" / f"{namespace}_crash_{uid}" / "c"
    assert _log_text(log_dir / "0.log") == "attempt\n"
    assert _log_text(log_dir / "1.log") == "attempt\n"
    assert any(e["reason"] == "BackOff" and e["type"] == "Warning" for e in _events(cluster, namespace, "crash"))


def test_unknown_image_gives_errimagepull_then_imagepullbackoff(kubesim_cluster: Any, namespace: str) -> None:
    """Bad input: an image kubesim cannot run gets the real pull-failure statuses and events."""
    cluster = kubesim_cluster
    _, rv = cluster.client.list("pods", namespace)
    cluster.client.create("pods", _pod("noimg", [{"name": "c", "image": "example.invalid/nope:1"}]), namespace)
    reasons: list[str] = []
    deadline = time.monotonic() + 20
    stream = cluster.client.watch("pods", namespace, resource_version=rv, field_selector="metadata.name=noimg",
                                  timeout_seconds=20)
    try:
        for _, obj in stream:
            reason = ((_cstatus(obj).get("state") or {}).get("waiting") or {}).get("reason")
            if reason and (not reasons or reasons[-1] != reason):
                reasons.append(str(reason))
            # pulled, backed off, pulled again after the back-off, backed off again
            if reasons[-4:] == ["ErrImagePull", "ImagePullBackOff", "ErrImagePull", "ImagePullBackOff"]:
                break
            assert time.monotonic() < deadline, f"reasons seen so far: {reasons}"
    finally:
        stream.close()
    assert reasons[-4:] == ["ErrImagePull", "ImagePullBackOff", "ErrImagePull", "ImagePullBackOff"], reasons
    assert set(reasons) <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}
    pod = _get(cluster, namespace, "noimg")
    assert pod["status"]["phase"] == "Pending"
    events = _events(cluster, namespace, "noimg")
    failed = [e["message"] for e in events if e["reason"] == "Failed"]
    assert any(m.startswith('Failed to pull image "example.invalid/nope:1": ') for m in failed)
    assert "Error: ErrImagePull" in failed
    assert any(e["reason"] == "BackOff" and e["message"] == 'Back-off pulling image "example.invalid/nope:1"'
               for e in events)


def test_missing_command_is_run_container_error_with_exit_code_128(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    cluster.client.create("pods", _pod("nocmd", [{"name": "c", "image": "busybox", "command": ["no-such-cmd"]}]),
                          namespace)
    pod = await_("StartError recorded", lambda: _get(cluster, namespace, "nocmd"),
                 lambda p: bool((_cstatus(p).get("lastState") or {}).get("terminated")))
    last = _cstatus(pod)["lastState"]["terminated"]
    assert last["exitCode"] == 128
    assert last["reason"] == "StartError"
    assert 'exec: "no-such-cmd": executable file not found in $PATH' in last["message"]


def test_unsupported_volume_is_failedmount_and_the_kubelet_keeps_serving(kubesim_cluster: Any,
                                                                         namespace: str) -> None:
    cluster = kubesim_cluster
    pod = _pod("badvol", [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                           "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
               volumes=[{"name": "v", "nfs": {"server": "nfs.example", "path": "/x"}}])
    cluster.client.create("pods", pod, namespace)
    await_("FailedMount event", lambda: _events(cluster, namespace, "badvol"),
           lambda evs: any(e["reason"] == "FailedMount" and "not supported" in e["message"] for e in evs))
    got = _get(cluster, namespace, "badvol")  # the kubelet wrote this status before it recorded the event
    assert _cstatus(got).get("state") == {"waiting": {"reason": "ContainerCreating"}}, got.get("status")
    assert got["status"]["phase"] == "Pending"
    cluster.client.create("pods", _pod("fine", [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]), namespace)
    await_("a later pod on the same node Ready", lambda: _get(cluster, namespace, "fine"), _ready)


def test_host_port_taken_on_the_node_rejects_the_second_pod(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    port = [{"containerPort": 80, "hostPort": 18080, "protocol": "TCP"}]
    cluster.client.create("pods", _pod("hp1", [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                                "ports": port}]), namespace)
    await_("first host-port pod Ready", lambda: _get(cluster, namespace, "hp1"), _ready)
    cluster.client.create("pods", _pod("hp2", [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                                "ports": port}]), namespace)
    pod = await_("second pod rejected", lambda: _get(cluster, namespace, "hp2"),
                 lambda p: (p.get("status") or {}).get("phase") == "Failed")
    assert pod["status"]["reason"] == "NodePorts"
    assert pod["status"]["message"] == ("Pod was rejected: Predicate NodePorts failed: node(s) didn't have free "
                                        "ports for the requested pod ports")


def test_writer_image_serves_readyz_on_its_pod_ip_with_its_volume_at_data(kubesim_cluster: Any, namespace: str,
                                                                          tmp_path: Path) -> None:
    """E1: ckpt-writer image, downward-API env (LISTEN_HOST from status.podIP), hostPath at /data, readiness."""
    cluster = kubesim_cluster
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    assert not Path("/data").exists() or Path("/data").is_dir()

    def field(name: str, path: str) -> Obj:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    container = {
        "name": "writer", "image": "ckpt-writer:test", "imagePullPolicy": "IfNotPresent",
        "command": ["harness", "writer", "serve", "--data-dir", "/data"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [field("POD_NAME", "metadata.name"), field("POD_NAMESPACE", "metadata.namespace"),
                field("LISTEN_HOST", "status.podIP"), {"name": "LISTEN_PORT", "value": "8080"},
                {"name": "STATEFULSET_NAME", "value": "w"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2, "failureThreshold": 2},
    }
    pod = _pod("w-0", [container], volumes=[{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}}],
               securityContext={"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001})
    started = time.monotonic()
    cluster.client.create("pods", pod, namespace)
    got = await_("writer Ready", lambda: _get(cluster, namespace, "w-0"), _ready, timeout=30)
    print(f"writer pod create -> Ready: {time.monotonic() - started:.2f}s")
    ip = got["status"]["podIP"]
    assert cluster.inside(_http_status, f"http://{ip}:8080/readyz") == 200  # from inside the cluster's network
    assert any(p.name != "lost+found" for p in data.iterdir()), "the writer wrote nothing into its volume"
    assert not Path("/data").exists() or Path("/data").is_dir()


def test_kubelet_sigkilled_takes_its_containers_and_a_restarted_one_resumes_the_pod(kubesim_cluster: Any,
                                                                                    namespace: str) -> None:
    """E5: no orphan process after a kubelet SIGKILL; restore restarts the container with restartCount+1."""
    cluster = kubesim_cluster
    node = "kubesim-worker3"
    pod = _pod("survivor", [{"name": "c", "image": "busybox",
                             "command": ["sh", "-c", "sleep 3600 & sleep 3600"]}])
    pod["spec"]["nodeName"] = node
    cluster.client.create("pods", pod, namespace)
    before = await_("survivor Ready", lambda: _get(cluster, namespace, "survivor"), _ready)
    entry = _containers_json(cluster, node)[f"{namespace}/survivor/c"]
    children = Path(f"/proc/{entry['pid']}/task/{entry['pid']}/children").read_text().split()
    pids = [entry["pid"], entry["pgid"], *map(int, children)]
    state = json.loads((Path(cluster.state_dir) / "state.json").read_text())
    kubelet_pid = state["components"][f"kubelet/{node}"]["pid"]
    os.kill(kubelet_pid, signal.SIGKILL)  # not `node crash`: PDEATHSIG + the PID namespace must do it alone
    try:
        await_("all container processes gone", lambda: [p for p in pids if _alive(p)], lambda alive: not alive)
    finally:
        cluster.heal()
    after = await_("survivor restarted and Ready", lambda: _get(cluster, namespace, "survivor"),
                   lambda p: _ready(p) and _cstatus(p).get("restartCount", 0) == 1, timeout=30)
    assert after["status"]["podIP"] == before["status"]["podIP"]
    assert _cstatus(after)["lastState"]["terminated"]["exitCode"] == 137
    assert _cstatus(after)["containerID"] != _cstatus(before)["containerID"]


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """A thread-directed signal (``kill`` lets the kernel pick the thread, usually the main one)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "tgkill"):
        pytest.skip("this libc has no tgkill")
    if libc.tgkill(pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {sig})")


def test_sigterm_landing_on_a_kubelet_worker_thread_stops_it_gracefully(kubesim_cluster: Any,
                                                                        namespace: str) -> None:
    """A SIGTERM whose C handler runs on a pod worker or watch thread must still stop the kubelet (its main
    thread used to sleep in ``Event.wait()`` through it, so ``down`` always had to SIGKILL it)."""
    cluster = kubesim_cluster
    node = "kubesim-worker3"
    pod = _pod("term", [{"name": "c", "image": "registry.k8s.io/pause:3.10"}])
    pod["spec"]["nodeName"] = node
    cluster.client.create("pods", pod, namespace)
    await_("term Ready", lambda: _get(cluster, namespace, "term"), _ready)
    container = _containers_json(cluster, node)[f"{namespace}/term/c"]["pid"]
    state = json.loads((Path(cluster.state_dir) / "state.json").read_text())
    kubelet_pid = state["components"][f"kubelet/{node}"]["pid"]
    workers = [int(t.name) for t in Path(f"/proc/{kubelet_pid}/task").iterdir() if int(t.name) != kubelet_pid]
    try:
        _tgkill(kubelet_pid, workers[0], signal.SIGTERM)
        await_(f"kubelet {kubelet_pid} gone after a SIGTERM to its thread {workers[0]}", lambda: _alive(kubelet_pid),
               lambda alive: not alive, timeout=15)
        await_("its container gone", lambda: _alive(container), lambda alive: not alive)
    finally:
        cluster.heal()
    log = (Path(cluster.state_dir) / "nodes" / node / "kubelet.log").read_text()
    assert f"kubelet for node {node} stopping (SIGTERM)" in log


def test_deletion_requested_while_the_kubelet_is_down_is_finished_when_it_returns(kubesim_cluster: Any,
                                                                                   namespace: str) -> None:
    """E5 + E2: a pod deleted during a node crash stays Terminating and goes once the kubelet is back."""
    cluster = kubesim_cluster
    node = "kubesim-worker3"
    pod = _pod("late", [{"name": "c", "image": "registry.k8s.io/pause:3.10"}])
    pod["spec"]["nodeName"] = node
    cluster.client.create("pods", pod, namespace)
    await_("late Ready", lambda: _get(cluster, namespace, "late"), _ready)
    cluster.run("node", "crash", node)
    try:
        cluster.client.delete("pods", "late", namespace)
        got = _get(cluster, namespace, "late")
        assert got["metadata"].get("deletionTimestamp")
    finally:
        cluster.heal()
    await_("late removed after restore", lambda: _gone(cluster, namespace, "late"), bool, timeout=30)


def test_pod_logs_are_readable_with_kubectl(kubesim_cluster: Any, namespace: str) -> None:
    """E4 through pods/log (K1 wires the API server's log source to the kubelet's files)."""
    cluster = kubesim_cluster
    word = uuid.uuid4().hex
    cluster.client.create("pods", _pod("talker", [{"name": "c", "image": "busybox",
                                                   "command": ["sh", "-c", f"echo {word}; sleep 3600"]}]), namespace)
    await_("talker Ready", lambda: _get(cluster, namespace, "talker"), _ready)
    kubectl = str(Path(sys.executable).parent / "kubectl")

    def logs() -> str:
        proc = subprocess.run([kubectl, "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "logs", "talker"],
                              capture_output=True, text=True, timeout=30, check=False)
        return proc.stdout + proc.stderr

    out = await_("kubectl logs shows the output", logs, lambda text: word in text, timeout=10)
    assert out.strip() == word


def test_exec_probes_run_inside_the_container_and_liveness_failure_restarts_it(kubesim_cluster: Any,
                                                                               namespace: str) -> None:
    """E3: exec readiness/liveness see the container's own volume; liveness failures restart it."""
    cluster = kubesim_cluster
    check = {"exec": {"command": ["test", "-f", "/probe/ok"]}, "periodSeconds": 1, "failureThreshold": 2}
    container = {"name": "c", "image": "busybox",
                 "command": ["sh", "-c", "touch /probe/ok; sleep 2; rm /probe/ok; sleep 3600"],
                 "volumeMounts": [{"name": "p", "mountPath": "/probe"}],
                 "readinessProbe": check, "livenessProbe": check}
    pod = _pod("live", [container], volumes=[{"name": "p", "emptyDir": {}}], terminationGracePeriodSeconds=1)
    cluster.client.create("pods", pod, namespace)
    await_("ready through the exec probe", lambda: _get(cluster, namespace, "live"), _ready)
    restarted = await_("restarted by the liveness probe", lambda: _get(cluster, namespace, "live"),
                       lambda p: _cstatus(p).get("restartCount", 0) >= 1, timeout=20)
    assert _cstatus(restarted)["lastState"]["terminated"]["exitCode"] == 137  # sh ignores SIGTERM as PID 1
    messages = [(e["reason"], e["message"]) for e in _events(cluster, namespace, "live")]
    assert ("Killing", "Container c failed liveness probe, will be restarted") in messages
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed") for r, m in messages)


def test_harness_statefulset_writers_serve_on_their_pod_ips_from_their_claims(kubesim_cluster: Any,
                                                                              namespace: str) -> None:
    """E1 end to end: the harness's own StatefulSet (PVC template on `standard`) becomes Ready."""
    from harness.deploy import manifests
    from harness.deploy import spec as deploy_spec

    cluster = kubesim_cluster
    sts = manifests.statefulset(deploy_spec.DeploySpec(name="kw", namespace=namespace, replicas=2, pdb=None,
                                                       termination_grace_seconds=5)).body
    started = time.monotonic()
    cluster.client.create("statefulsets", sts, namespace)

    def ready_pods() -> list[Obj]:
        items, _ = cluster.client.list("pods", namespace, label_selector="app.kubernetes.io/instance=kw")
        return [p for p in items if _ready(p)]

    pods = await_("both writers Ready", ready_pods, lambda ps: len(ps) == 2, timeout=40)
    print(f"2-replica OrderedReady writer StatefulSet create -> all Ready: {time.monotonic() - started:.2f}s")
    for pod in pods:
        ip = pod["status"]["podIP"]
        assert cluster.inside(_http_status, f"http://{ip}:8080/readyz") == 200
        claim = cluster.client.get("persistentvolumeclaims", f"data-{pod['metadata']['name']}", namespace)
        pv = cluster.client.get("persistentvolumes", claim["spec"]["volumeName"])
        path = Path((pv["spec"].get("local") or pv["spec"].get("hostPath"))["path"])
        assert any(path.iterdir()), f"writer {pod['metadata']['name']} left nothing in its volume {path}"
    cluster.client.delete("statefulsets", "kw", namespace)


def test_init_containers_run_to_completion_before_the_main_containers(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    shared = [{"name": "s", "mountPath": "/shared"}]
    pod = _pod("init", [{"name": "c", "image": "busybox", "volumeMounts": shared,
                         "command": ["sh", "-c", "cat /shared/token; sleep 3600"]}],
               initContainers=[{"name": "first", "image": "busybox", "volumeMounts": shared,
                                "command": ["sh", "-c", "sleep 0.5; echo prepared > /shared/token"]}],
               volumes=[{"name": "s", "emptyDir": {}}])
    cluster.client.create("pods", pod, namespace)
    seen = await_("Initialized=False while the init container runs", lambda: _get(cluster, namespace, "init"),
                  lambda p: any(c["type"] == "Initialized" and c["status"] == "False"
                                for c in (p.get("status") or {}).get("conditions") or []), timeout=10)
    assert seen["status"]["phase"] == "Pending"
    done = await_("init pod Ready", lambda: _get(cluster, namespace, "init"), _ready)
    init_status = done["status"]["initContainerStatuses"][0]
    assert init_status["state"]["terminated"]["exitCode"] == 0
    assert init_status["state"]["terminated"]["reason"] == "Completed"
    uid = done["metadata"]["uid"]
    log = Path(cluster.state_dir) / "nodes" / NODE / "pods" / f"{namespace}_init_{uid}" / "c" / "0.log"
    await_("main container printed the init container's file", lambda: _log_text(log),
           lambda text: text == "prepared\n")


def test_failing_init_container_with_restart_never_fails_the_pod(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    pod = _pod("badinit", [{"name": "c", "image": "registry.k8s.io/pause:3.10"}], restartPolicy="Never",
               initContainers=[{"name": "first", "image": "busybox", "command": ["sh", "-c", "exit 7"]}])
    cluster.client.create("pods", pod, namespace)
    got = await_("pod Failed", lambda: _get(cluster, namespace, "badinit"),
                 lambda p: (p.get("status") or {}).get("phase") == "Failed")
    assert got["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 7
    assert _cstatus(got)["state"]["waiting"]["reason"] == "PodInitializing"


def test_prestop_exec_hook_runs_in_the_container_before_sigterm(kubesim_cluster: Any, namespace: str,
                                                                tmp_path: Path) -> None:
    """E2: lifecycle.preStop (exec) runs inside the container, within the grace period, before SIGTERM."""
    cluster = kubesim_cluster
    host = tmp_path / "h"
    host.mkdir()
    host.chmod(0o777)  # the pause image runs as 65535
    container = {"name": "c", "image": "registry.k8s.io/pause:3.10",
                 "volumeMounts": [{"name": "h", "mountPath": "/h"}],
                 "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "hostname > /h/prestop"]}}}}
    cluster.client.create("pods", _pod("hook", [container],
                                       volumes=[{"name": "h", "hostPath": {"path": str(host)}}]), namespace)
    await_("hook pod Ready", lambda: _get(cluster, namespace, "hook"), _ready)
    cluster.client.delete("pods", "hook", namespace)
    await_("hook pod removed", lambda: _gone(cluster, namespace, "hook"), bool)
    assert (host / "prestop").read_text() == "hook\n"  # ran in the pod's UTS namespace: its hostname
    assert not any(e["reason"] == "FailedPreStopHook" for e in _events(cluster, namespace, "hook"))


def test_pod_hostname_resolves_to_its_pod_ip_in_its_etc_hosts(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    script = "hostname; grep named /etc/hosts; sleep 3600"
    cluster.client.create("pods", _pod("named", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}],
                                       hostname="named", subdomain="svc"), namespace)
    pod = await_("named pod Ready", lambda: _get(cluster, namespace, "named"), _ready)
    log = (Path(cluster.state_dir) / "nodes" / NODE / "pods" / f"{namespace}_named_{pod['metadata']['uid']}" / "c"
           / "0.log")
    text = await_("hosts line printed", lambda: _log_text(log), lambda t: t.count("\n") >= 2)
    assert text.splitlines()[0] == "named"
    assert text.splitlines()[1] == f"{pod['status']['podIP']}\tnamed.svc.{namespace}.svc.cluster.local\tnamed"
    assert "named" not in Path("/etc/hosts").read_text()


def test_run_to_completion_pods_end_succeeded_or_failed(kubesim_cluster: Any, namespace: str) -> None:
    """E2/E3: restartPolicy Never/OnFailure pods whose containers all exited get a terminal phase."""
    cluster = kubesim_cluster
    cluster.client.create("pods", _pod("ok", [{"name": "c", "image": "busybox", "command": ["true"]}],
                                       restartPolicy="OnFailure"), namespace)
    cluster.client.create("pods", _pod("bad", [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 4"]}],
                                       restartPolicy="Never"), namespace)
    def phase_is(want: str) -> Callable[[Obj], bool]:
        return lambda p: (p.get("status") or {}).get("phase") == want

    ok = await_("ok Succeeded", lambda: _get(cluster, namespace, "ok"), phase_is("Succeeded"))
    bad = await_("bad Failed", lambda: _get(cluster, namespace, "bad"), phase_is("Failed"))
    assert _cstatus(ok)["state"]["terminated"]["reason"] == "Completed"
    assert _cstatus(bad)["state"]["terminated"]["exitCode"] == 4
    assert _cstatus(bad)["restartCount"] == 0
    ready = next(c for c in ok["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "PodCompleted"


def test_failing_poststart_hook_kills_and_restarts_the_container(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    container = {"name": "c", "image": "registry.k8s.io/pause:3.10",
                 "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 9"]}}}}
    cluster.client.create("pods", _pod("post", [container]), namespace)
    await_("FailedPostStartHook and a restart", lambda: _get(cluster, namespace, "post"),
           lambda p: _cstatus(p).get("restartCount", 0) >= 1)
    assert any(e["reason"] == "FailedPostStartHook" for e in _events(cluster, namespace, "post"))


def test_active_deadline_stops_the_pod_and_fails_it(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    cluster.client.create("pods", _pod("deadline", [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                                       activeDeadlineSeconds=2), namespace)
    got = await_("DeadlineExceeded", lambda: _get(cluster, namespace, "deadline"),
                 lambda p: (p.get("status") or {}).get("reason") == "DeadlineExceeded", timeout=15)
    assert got["status"]["phase"] == "Failed"
    assert "terminated" in _cstatus(got)["state"]


def test_changing_a_containers_image_restarts_it_with_the_new_image(kubesim_cluster: Any, namespace: str) -> None:
    cluster = kubesim_cluster
    cluster.client.create("pods", _pod("swap", [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]), namespace)
    await_("swap Ready", lambda: _get(cluster, namespace, "swap"), _ready)
    new_image = {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    cluster.client.patch("pods", "swap", new_image, namespace, patch_type="strategic")
    got = await_("running the new image", lambda: _get(cluster, namespace, "swap"),
                 lambda p: _cstatus(p).get("image") == "registry.k8s.io/pause:3.10" and _ready(p))
    assert _cstatus(got)["restartCount"] == 1
    assert ("Killing", "Container c definition changed, will be restarted") in [
        (e["reason"], e["message"]) for e in _events(cluster, namespace, "swap")]


def test_force_delete_during_a_long_grace_period_stops_the_container_within_seconds(kubesim_cluster: Any,
                                                                                     namespace: str) -> None:
    cluster = kubesim_cluster
    pod = _pod("slow", [{"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}],
               terminationGracePeriodSeconds=60)
    cluster.client.create("pods", pod, namespace)
    await_("slow Ready", lambda: _get(cluster, namespace, "slow"), _ready)
    entry = _containers_json(cluster, NODE)[f"{namespace}/slow/c"]
    cluster.client.delete("pods", "slow", namespace)  # 60 s grace; sh as PID 1 ignores SIGTERM
    started = time.monotonic()
    cluster.client.delete("pods", "slow", namespace, grace_period_seconds=0)  # kubectl delete --force
    await_("container gone after the force delete", lambda: _alive(entry["pid"]), lambda alive: not alive,
           timeout=10)
    assert time.monotonic() - started < 6


def test_an_image_pull_takes_the_pull_time_in_containercreating_with_pulling_and_pulled_events(
        kubesim_cluster: Any, namespace: str) -> None:
    """Upstream timing: imagePullPolicy Always pulls on every start, waiting the cluster's pull time (1s)."""
    cluster = kubesim_cluster
    container = {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Always", "command": ["sleep", "600"]}
    started = time.monotonic()
    cluster.client.create("pods", _pod("pull", [container]), namespace)
    creating = await_("ContainerCreating while pulling", lambda: _get(cluster, namespace, "pull"),
                      lambda p: bool(_cstatus(p)), timeout=10)
    waiting = (_cstatus(creating).get("state") or {}).get("waiting") or {}
    assert waiting.get("reason") == "ContainerCreating", creating["status"]
    await_("pull pod Ready", lambda: _get(cluster, namespace, "pull"), _ready, timeout=20)
    assert time.monotonic() - started >= 1.0, "the pull must cost the pull time"
    events = await_("Pulling, Pulled and Started events", lambda: _events(cluster, namespace, "pull"),
                    lambda es: {"Pulling", "Pulled", "Started"} <= {e["reason"] for e in es}, timeout=10)
    reasons = [e["reason"] for e in events]
    assert reasons.index("Pulling") < reasons.index("Pulled") < reasons.index("Started"), reasons
    pulled = next(e["message"] for e in events if e["reason"] == "Pulled")
    assert pulled.startswith('Successfully pulled image "busybox:1.36" in '), pulled
