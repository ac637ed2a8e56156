"""A scripted stand-in for ``python -m kubesim.kubelet`` used by test_cluster_cli (not a kubelet).

It registers its Node, keeps it Ready with a heartbeat, and runs one "container" (``sleep``) in
its own process group recorded in ``nodes/<node>/containers.json`` exactly as the real kubelet
must — enough to exercise ``up --nodes``, ``node crash|restore|kill-container|list`` and ``down``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
from pathlib import Path

from kubesim import client, state, stopsignal


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--node", required=True)
    args = parser.parse_args()
    api = client.Client.from_state(args.state)
    with stopsignal.StopSignal() as stop:
        _serve(api, args.state, args.node, stop)


def _serve(api: client.Client, state_dir: Path, node: str, stop: stopsignal.StopSignal) -> None:
    """Run one container (none with ``SCRIPTED_KUBELET_CONTAINER=0``) and heartbeat until SIGTERM."""
    node_dir = state_dir / "nodes" / node
    node_dir.mkdir(parents=True, exist_ok=True)
    container = None
    if os.environ.get("SCRIPTED_KUBELET_CONTAINER", "1") != "0":
        container = subprocess.Popen(["sleep", "3600"], start_new_session=True)
        start_time = Path(f"/proc/{container.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        state.atomic_write(node_dir / "containers.json", json.dumps({
            f"default/pod-on-{node}/main": {"pid": container.pid, "pgid": container.pid, "uid": "u",
                                            "start_time": int(start_time)}}).encode())
    with contextlib.suppress(client.AlreadyExists):
        api.create("nodes", {"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}})
    while not stop.is_set():
        with contextlib.suppress(client.ApiError):  # the control plane may be restarting or stopping: keep going
            api.patch("nodes", node, {"status": {"conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "scripted",
                "lastHeartbeatTime": _now(), "lastTransitionTime": _now()}]}}, subresource="status")
        stop.wait(0.5)
    if container is not None:
        os.killpg(container.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
