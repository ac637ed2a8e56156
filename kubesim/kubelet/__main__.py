"""``python -m kubesim.kubelet --state DIR --node NAME [--node-index N] [--sandbox MODE]``.

The node's addresses come from the cluster's network recorded in ``DIR/state.json``
(:mod:`kubesim.network`): node N owns 127.<C>.<N>.0/24 of the cluster's 127.<C>.0.0/16. With
``--network private`` the kubelet must already run inside the cluster's network namespace
(``kubesim up`` and ``node restore`` start it under ``nsenter --net``); it refuses to start
anywhere else rather than run pods on the host's network.

Periods come from ``KUBESIM_*`` environment variables (kubesim.controllers.settings, what
``kubesim up`` hands every component): node status / lease interval, lease duration, the
CrashLoopBackOff base and cap, and the timing profile's ``KUBESIM_PROBE_FAST_START`` (seconds,
default 0: upstream's prober) and ``KUBESIM_IMAGE_PULL_TIME`` (seconds a pull takes, default 1).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path

from kubesim import client as kclient
from kubesim import network, state, stopsignal
from kubesim.controllers import settings
from kubesim.kubelet import manager, podip

MODES = ("auto", "root", "userns", "none")


def _fail(message: str) -> int:
    print(f"kubesim kubelet: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim.kubelet", description="kubesim's process kubelet")
    parser.add_argument("--state", required=True, type=Path, help="the kubesim state directory")
    parser.add_argument("--node", required=True, help="node name (kubesim-worker, kubesim-worker2, ...)")
    parser.add_argument("--node-index", type=int, default=None,
                        help=f"1..{podip.MAX_NODE_INDEX}, picks the node's 127.<cluster>.<N>.0/24 pod range "
                             "(default: from the name)")
    parser.add_argument("--sandbox", choices=MODES, default=os.environ.get("KUBESIM_SANDBOX", "auto"),
                        help="namespaces for containers (default auto: root, else user namespaces, else none)")
    args = parser.parse_args(argv)
    state_dir: Path = args.state.resolve()
    if not state_dir.is_dir():
        return _fail(f"state directory {state_dir} does not exist; start the control plane with `kubesim up` first")
    index = args.node_index if args.node_index is not None else podip.node_index_from_name(args.node)
    if index is None:
        return _fail(f"cannot derive a node index from {args.node!r}; pass --node-index 1..{podip.MAX_NODE_INDEX}")
    if not 1 <= index <= podip.MAX_NODE_INDEX:
        return _fail(f"--node-index {index} is outside 1..{podip.MAX_NODE_INDEX}")
    net = network.recorded(state.Layout(state_dir))
    if net is None:
        return _fail(f"no cluster network recorded in {state_dir}/state.json; start the cluster with `kubesim up`")
    if net.mode == "private" and network.ns_id("self") != net.netns:
        return _fail(f"not inside the cluster's network namespace {net.netns} (this process is in "
                     f"{network.ns_id('self')}); start kubelets with `kubesim up` or `kubesim node restore`")
    try:
        cfg = settings.ControllerSettings.from_env()
    except ValueError as exc:
        return _fail(str(exc))
    node_dir = state_dir / "nodes" / args.node
    node_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(node_dir / "kubelet.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    # `kill -USR1 <kubelet pid>` dumps every thread's stack into kubelet.log (what is it waiting for?)
    dump = open(node_dir / "kubelet.log", "a")  # noqa: SIM115 - lives as long as the process
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    try:
        api = kclient.Client.from_state(state_dir)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot reach the API server recorded in {state_dir}: {exc}")
    with stopsignal.StopSignal() as stop:
        # the kubelet's own stop event is the signal's, so a SIGTERM while it still waits to register ends that wait
        kubelet = manager.Kubelet(api, state_dir, args.node, index, cluster=net.index, cfg=cfg,
                                  sandbox_mode=args.sandbox, fast_start=cfg.probe_fast_start, stop=stop.event)
        log = logging.getLogger("kubesim.kubelet")
        log.info("kubelet for node %s starting (pid %d)", args.node, os.getpid())
        kubelet.start()
        stop.wait()
        log.info("kubelet for node %s stopping (%s)", args.node,
                 stop.received.name if stop.received is not None else "requested")
        kubelet.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
