"""pods/exec, pods/attach and ``kubectl cp`` through real kubectl and the Python client (A12).

Exec runs inside the container: its mount, PID and UTS namespaces, its root, user and
environment. kubectl 1.37 and the Python client both speak ``v5.channel.k8s.io``; exit codes come
back as upstream's ``NonZeroExitCode`` Status, so ``kubectl exec`` exits with the command's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from streaming_support import (
    await_,
    create_ready,
    kubectl,
    pod,
    read_until,
    started,
    writer_pod,
)

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]


def _shell_pod(name: str) -> dict[str, Any]:
    return pod(name, [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo started; sleep 3600"],
                       "env": [{"name": "GREETING", "value": "hello from the pod spec"}],
                       "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
               hostname="shell-host", volumes=[{"name": "scratch", "emptyDir": {}}])


def test_kubectl_exec_runs_in_the_container_and_propagates_exit_codes(kubesim_cluster: Any, namespace: str) -> None:
    """A12: exit codes, stdout/stderr, stdin to EOF, the container's namespaces, root, user, cwd and env."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, _shell_pod("sh"), writer_pod("w-0"))
    failed = kubectl(cluster, namespace, "exec", "sh", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert failed.returncode == 3
    assert failed.stdout == b"out\n"
    assert b"err\n" in failed.stderr
    assert b"command terminated with exit code 3" in failed.stderr
    inside = kubectl(cluster, namespace, "exec", "sh", "--", "sh", "-c",
                     'hostname; echo "$GREETING"; cat /proc/1/cmdline | tr "\\0" " "; echo; ls /scratch; echo $$')
    assert inside.returncode == 0, inside.stderr
    lines = inside.stdout.decode().splitlines()
    assert lines[0] == "shell-host"  # the pod's UTS namespace
    assert lines[1] == "hello from the pod spec"  # the container's environment
    assert lines[2].strip() == "sh -c echo started; sleep 3600"  # PID 1 of the container's PID namespace
    assert int(lines[-1]) > 1  # a process of that namespace, numbered in it
    piped = kubectl(cluster, namespace, "exec", "-i", "sh", "--", "sh", "-c", "cat > /scratch/in; wc -c < /scratch/in",
                    stdin=b"x" * 100_000)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == b"100000"  # stdin reached EOF (the v5 close signal), all of it arrived
    writer = kubectl(cluster, namespace, "exec", "w-0", "--", "sh", "-c", "id -u; id -g; pwd; echo $POD_NAME")
    assert writer.returncode == 0, writer.stderr
    assert writer.stdout.decode().split() == ["10001", "10001", "/data", "w-0"]  # the image's USER and WORKDIR
    missing = kubectl(cluster, namespace, "exec", "sh", "--", "no-such-command")
    assert missing.returncode == 1
    assert b'exec: "no-such-command": executable file not found in $PATH' in missing.stderr
    assert b"error executing command in container" in missing.stderr


def test_python_client_stream_exec_captures_channels_and_the_return_code(kubesim_cluster: Any,
                                                                         namespace: str) -> None:
    """A12: stream(connect_get_namespaced_pod_exec, ...) with and without _preload_content, stdin, a tty."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, _shell_pod("sh"))
    core = k8s.CoreV1Api(cluster.api)
    assert stream(core.connect_get_namespaced_pod_exec, "sh", namespace, command=["echo", "plain"], stderr=True,
                  stdin=False, stdout=True, tty=False) == "plain\n"
    session = stream(core.connect_get_namespaced_pod_exec, "sh", namespace,
                     command=["sh", "-c", "read line; echo got $line; echo oops >&2; exit 5"],
                     stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    session.write_stdin("abc\n")
    session.run_forever(timeout=20)
    assert session.read_stdout() == "got abc\n"
    assert session.read_stderr() == "oops\n"
    assert session.returncode == 5
    tty = stream(core.connect_get_namespaced_pod_exec, "sh", namespace, command=["sh"], stderr=True, stdin=True,
                 stdout=True, tty=True, _preload_content=False)
    tty.write_channel(4, json.dumps({"Width": 101, "Height": 33}))
    tty.write_stdin("stty size; tty; exit 7\n")
    tty.run_forever(timeout=20)
    out = tty.read_stdout()
    assert "33 101" in out
    assert "/dev/pts/" in out
    assert tty.returncode == 7


def test_exec_errors_are_upstreams(kubesim_cluster: Any, namespace: str) -> None:
    """A12: a missing container is a 400 before the upgrade; a pod that does not exist a 404."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, _shell_pod("sh"))
    core = k8s.CoreV1Api(cluster.api)
    with pytest.raises(ApiException) as bad:
        stream(core.connect_get_namespaced_pod_exec, "sh", namespace, container="nope", command=["true"],
               stderr=True, stdin=False, stdout=True, tty=False)
    assert "Handshake status 400" in str(bad.value.reason)
    assert "container nope is not valid for pod sh" in str(bad.value.reason)
    with pytest.raises(ApiException) as gone:
        stream(core.connect_get_namespaced_pod_exec, "nope", namespace, command=["true"], stderr=True,
               stdin=False, stdout=True, tty=False)
    assert "Handshake status 404" in str(gone.value.reason)
    wrong = kubectl(cluster, namespace, "exec", "sh", "-c", "nope", "--", "true")
    assert wrong.returncode == 1
    assert b"container nope is not valid for pod sh" in wrong.stderr or b"nope not found" in wrong.stderr


def test_kubectl_cp_copies_files_and_directories_both_ways(kubesim_cluster: Any, namespace: str,
                                                          tmp_path: Path) -> None:
    """A12: kubectl cp runs tar inside the container (the host's tar, visible in the container's root)."""
    cluster = kubesim_cluster
    create_ready(cluster, namespace, _shell_pod("sh"), writer_pod("w-0"))
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    payload = os.urandom(3 << 20)
    (src / "big.bin").write_bytes(payload)
    (src / "nested" / "note.txt").write_text("a note\n")
    put_file = kubectl(cluster, namespace, "cp", str(src / "big.bin"), "sh:/scratch/big.bin")
    assert put_file.returncode == 0, put_file.stderr
    put_dir = kubectl(cluster, namespace, "cp", str(src), "sh:/scratch/tree")
    assert put_dir.returncode == 0, put_dir.stderr
    listing = kubectl(cluster, namespace, "exec", "sh", "--", "sh", "-c",
                      "md5sum /scratch/big.bin /scratch/tree/big.bin; cat /scratch/tree/nested/note.txt")
    digest = hashlib.md5(payload).hexdigest().encode()
    assert listing.stdout.count(digest) == 2
    assert listing.stdout.endswith(b"a note\n")
    back = tmp_path / "back"
    back.mkdir()
    got_file = kubectl(cluster, namespace, "cp", "sh:/scratch/big.bin", str(back / "big.bin"))
    assert got_file.returncode == 0, got_file.stderr
    assert (back / "big.bin").read_bytes() == payload
    got_dir = kubectl(cluster, namespace, "cp", "sh:/scratch/tree", str(back / "tree"))
    assert got_dir.returncode == 0, got_dir.stderr
    assert (back / "tree" / "big.bin").read_bytes() == payload
    assert (back / "tree" / "nested" / "note.txt").read_text() == "a note\n"
    identity = kubectl(cluster, namespace, "cp", "w-0:/data/identity.json", str(back / "identity.json"))
    assert identity.returncode == 0, identity.stderr  # as the writer's user 10001, from its volume
    assert json.loads((back / "identity.json").read_text())["statefulset"] == "w"
    archive = kubectl(cluster, namespace, "exec", "sh", "--", "tar", "cf", "-", "-C", "/scratch", "tree")
    assert archive.returncode == 0
    (back / "t.tar").write_bytes(archive.stdout)
    with tarfile.open(back / "t.tar") as tar:
        assert "tree/nested/note.txt" in tar.getnames()


def test_attach_streams_the_containers_output_until_it_exits(kubesim_cluster: Any, namespace: str) -> None:
    """A12: attach follows stdout and stderr from now on; it ends, successfully, when the container exits."""
    cluster = kubesim_cluster
    script = ("i=0; while [ ! -e /scratch/stop ]; do i=$((i+1)); echo tick $i; echo tock $i >&2; sleep 0.2; done; "
              "echo bye")
    create_ready(cluster, namespace, pod("talker", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                                                     "volumeMounts": [{"name": "s", "mountPath": "/scratch"}]}],
                                         restartPolicy="Never", volumes=[{"name": "s", "emptyDir": {}}]))
    with started(cluster, namespace, "attach", "talker") as proc:
        read_until(proc, rb"tick \d+\n", "attach to show stdout")
        read_until(proc, rb"tock \d+\n", "attach to show stderr", stream="stderr")
        stop = kubectl(cluster, namespace, "exec", "talker", "--", "touch", "/scratch/stop")
        assert stop.returncode == 0, stop.stderr
        read_until(proc, rb"bye\n", "the container's last words")
        assert proc.wait(30) == 0
    core = k8s.CoreV1Api(cluster.api)
    await_("talker Succeeded", lambda: cluster.client.get("pods", "talker", namespace),
           lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
    late = stream(core.connect_get_namespaced_pod_attach, "talker", namespace, stderr=True, stdin=False,
                  stdout=True, tty=False, _preload_content=False)
    late.run_forever(timeout=20)  # v5: the API server upgrades first, then reports on the error channel
    status = json.loads(late.read_channel(3))
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert status["message"] == (f"Internal error occurred: unable to upgrade connection: container c not found in "
                                 f"pod talker_{namespace}")
