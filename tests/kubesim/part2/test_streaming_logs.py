"""pods/log as upstream's kubelet serves it: follow, since, timestamps, tail, limitBytes (E4).

The sandbox shim writes the container log in the CRI format (a timestamp and a stream per line),
so every option works from the file. Waits have deadlines and name what they wait for; the only
thing awaited on the clock is the clock itself passing a second boundary for ``--since-time``.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from streaming_support import await_, create_ready, kubectl, pod, read_until, started

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


def _logs(cluster: Any, namespace: str, *args: str) -> str:
    proc = kubectl(cluster, namespace, "logs", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def test_kubectl_logs_follow_streams_a_growing_log_until_the_container_exits(kubesim_cluster: Any,
                                                                             namespace: str) -> None:
    """E4: -f shows new lines as they are written and ends when the container does."""
    cluster = kubesim_cluster
    script = ("i=0; while [ ! -e /scratch/stop ]; do i=$((i+1)); echo line $i; sleep 0.1; done; "
              "echo stopping >&2; echo the end")
    create_ready(cluster, namespace, pod("grow", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                                                   "volumeMounts": [{"name": "s", "mountPath": "/scratch"}]}],
                                         restartPolicy="Never", volumes=[{"name": "s", "emptyDir": {}}]))
    with started(cluster, namespace, "logs", "-f", "grow") as proc:
        seen = read_until(proc, rb"line 3\n", "the first lines")
        first = int(re.findall(rb"line (\d+)", seen)[-1])
        seen += read_until(proc, rb"line %d\n" % (first + 5), "lines written after following began")
        stop = kubectl(cluster, namespace, "exec", "grow", "--", "touch", "/scratch/stop")
        assert stop.returncode == 0, stop.stderr
        seen += read_until(proc, rb"the end\n", "the container's last line")
        assert proc.wait(30) == 0  # the stream ended with the container
        assert proc.stdout is not None
        seen += proc.stdout.read()  # "stopping" came through the other pipe: it may follow "the end"
    numbers = [int(n) for n in re.findall(rb"line (\d+)", seen)]
    assert numbers == list(range(1, numbers[-1] + 1))  # nothing lost, nothing repeated
    assert b"stopping" in seen  # stderr is part of the log too
    with started(cluster, namespace, "logs", "-f", "--tail=2", "grow") as proc:  # a finished container: ends at once
        assert proc.wait(30) == 0
        assert proc.stdout is not None
        assert sorted(proc.stdout.read().splitlines()) == [b"stopping", b"the end"]  # two pipes: either order


def test_since_timestamps_tail_and_limit_bytes(kubesim_cluster: Any, namespace: str) -> None:
    """E4: --timestamps (RFC3339NanoFixed), --since-time, --since, --tail, limitBytes, validation (422)."""
    cluster = kubesim_cluster
    script = "echo first; echo warn >&2; while [ ! -e /scratch/go ]; do sleep 0.1; done; echo second; sleep 3600"
    create_ready(cluster, namespace, pod("ts", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script],
                                                 "volumeMounts": [{"name": "s", "mountPath": "/scratch"}]}],
                                       volumes=[{"name": "s", "emptyDir": {}}]))
    early = await_("the first two lines", lambda: _logs(cluster, namespace, "ts", "--timestamps"),
                   lambda text: text.count("\n") == 2)
    stamped = [STAMP.match(line) for line in early.splitlines()]
    assert all(stamped), early
    assert {m.group(2) for m in stamped if m} == {"first", "warn"}
    written = max(datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")[:26] + "+00:00")
                  for m in stamped if m).timestamp()
    # two seconds later: any 1 s-precise bound between the two writes then falls strictly between them
    await_("the clock to be two seconds past the first lines", time.time, lambda now: now > written + 2)
    go = kubectl(cluster, namespace, "exec", "ts", "--", "touch", "/scratch/go")
    assert go.returncode == 0, go.stderr
    await_("the second line", lambda: _logs(cluster, namespace, "ts"), lambda text: "second" in text)
    boundary = datetime.datetime.fromtimestamp(int(written) + 1, datetime.UTC)
    since = boundary.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _logs(cluster, namespace, "ts", f"--since-time={since}") == "second\n"
    assert sorted(_logs(cluster, namespace, "ts", "--since=1h").splitlines()) == ["first", "second", "warn"]
    core = k8s.CoreV1Api(cluster.api)
    seconds = int(time.time() - written)  # now - seconds lies within the second after the first lines
    assert core.read_namespaced_pod_log("ts", namespace, since_seconds=seconds) == "second\n"
    assert _logs(cluster, namespace, "ts", "--tail=1") == "second\n"
    last = _logs(cluster, namespace, "ts", "--tail=1", "--timestamps")
    match = STAMP.match(last.rstrip("\n"))
    assert match is not None
    assert match.group(2) == "second"
    assert len(core.read_namespaced_pod_log("ts", namespace, limit_bytes=3)) == 3
    with pytest.raises(ApiException) as invalid:
        core.read_namespaced_pod_log("ts", namespace, tail_lines=-1)
    assert invalid.value.status == 422
    assert json.loads(invalid.value.body)["message"] == (
        'PodLogOptions "ts" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0')
    with pytest.raises(ApiException) as zero:
        core.read_namespaced_pod_log("ts", namespace, since_seconds=0)
    assert zero.value.status == 422
    assert json.loads(zero.value.body)["message"].endswith("sinceSeconds: Invalid value: 0: must be greater than 0")
    both = kubectl(cluster, namespace, "get", "--raw",
                   f"/api/v1/namespaces/{namespace}/pods/ts/log?sinceSeconds=5&sinceTime={since}")
    assert both.returncode == 1
    assert b"at most one of `sinceTime` or `sinceSeconds` may be specified" in both.stderr


def test_python_client_follow_reads_lines_as_they_come(kubesim_cluster: Any, namespace: str) -> None:
    """E4: read_namespaced_pod_log(follow=True, _preload_content=False) is a stream, not a snapshot."""
    cluster = kubesim_cluster
    script = "i=0; while true; do i=$((i+1)); echo n $i; sleep 0.1; done"
    create_ready(cluster, namespace, pod("py", [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]))
    core = k8s.CoreV1Api(cluster.api)
    resp = core.read_namespaced_pod_log("py", namespace, follow=True, _preload_content=False, timestamps=True)
    try:
        seen: list[str] = []
        pending = b""  # 64-byte chunks cut lines anywhere: only complete lines count
        deadline = time.monotonic() + 30
        for raw in resp.stream(64):
            *complete, pending = (pending + raw).split(b"\n")
            seen += [line.decode() for line in complete if line]
            if len(seen) >= 15 or time.monotonic() > deadline:
                break
        assert len(seen) >= 15, f"followed only {seen!r} within 30s"
        assert all(STAMP.match(line) for line in seen), seen
    finally:
        resp.release_conn()
