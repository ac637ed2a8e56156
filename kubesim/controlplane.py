"""The control-plane process: API server + controller manager in ONE process (``python -m kubesim.controlplane``).

Why one process: kind's control-plane node runs kube-apiserver and kube-controller-manager side
by side; a SIGKILL of kubesim's control plane must take both down and a restart must resume
both — the controllers then re-list and carry on, as kube-controller-manager does. The
controllers still talk to the server only over loopback HTTPS (:mod:`kubesim.client`) with the
state directory's CA and token, never through the store.

Arguments: everything ``python -m kubesim.apiserver`` takes, plus ``--controllers`` (``all``,
``none`` or a comma list of names from :data:`kubesim.controllers.CONTROLLERS`) and ``--addons``
(create the cluster add-ons kind installs at creation: the ``standard``, ``shared`` and ``lazy``
StorageClasses). Periods come from ``KUBESIM_*`` environment variables
(:class:`~kubesim.controllers.settings.ControllerSettings`), which ``kubesim up`` sets.

With ``--netns-fd`` (``kubesim up --network private``) the first thing the process does is publish
the API server's socket on the host and enter the cluster's network namespace
(:func:`kubesim.apiserver.__main__.publish`), so the controllers run inside it, next to the kubelets.

A controller module that is listed but missing, or a factory that fails, stops the process at
start with exit code 2 and one line naming it (a silently absent controller would make every
scenario lie).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from kubesim import client, podlogs, servicenet, state, stopsignal
from kubesim.apiserver import __main__ as apiserver_main
from kubesim.controllers import ControllerLoadError, load, runtime, settings

log = logging.getLogger("kubesim.controlplane")

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SHARED_PROVISIONER = "kubesim.io/shared"
LAZY_PROVISIONER = "kubesim.io/lazy"
ADDONS_MARKER = "addons.applied"

STORAGE_CLASSES: tuple[dict[str, object], ...] = (
    # kind pkg/build/nodeimage/const_storage.go: the default class, local-path volumes pinned to a node.
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
     "metadata": {"name": "standard", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
     "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"},
    # Network-attached storage any node can mount (one node at a time for ReadWriteOnce). Immediate binding:
    # the volume has no topology, so nothing is gained by waiting for the scheduler (as NFS/Ceph classes do);
    # a pod whose node dies can then be scheduled anywhere and the volume follows it.
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
     "metadata": {"name": "shared"},
     "provisioner": SHARED_PROVISIONER, "volumeBindingMode": "Immediate", "reclaimPolicy": "Delete"},
    # Power-loss tests: local to a node like `standard`, mounted by the node's kubelet through the lazy file
    # system (kubesim/lazyfs), so `kubesim node power-loss` drops what was never fsynced.
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
     "metadata": {"name": "lazy"},
     "provisioner": LAZY_PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"},
)


def _name(obj: dict[str, object]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name")) if isinstance(meta, dict) else ""


def ensure_addons(api: client.Client, layout: state.Layout) -> None:
    """Create each StorageClass once per cluster (kind applies them at creation; a later delete sticks).

    The marker lists the classes created so far; a cluster made by an older kubesim (marker
    ``storageclasses``: the first two) gets the classes added since, once."""
    marker = layout.root / ADDONS_MARKER
    try:
        lines = marker.read_text().split()
    except FileNotFoundError:
        lines = []
    done = {"standard", "shared"} if lines == ["storageclasses"] else {ln.removeprefix("storageclass/") for ln in lines}
    missing = [sc for sc in STORAGE_CLASSES if _name(sc) not in done]
    if not missing and lines:
        return
    for sc in missing:
        with contextlib.suppress(client.AlreadyExists):
            api.create("storageclasses", dict(sc))
    names = sorted(done | {_name(sc) for sc in missing})
    state.atomic_write(marker, "".join(f"storageclass/{n}\n" for n in names).encode())


def _args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m kubesim.controlplane", add_help=False)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--controllers", default=os.environ.get("KUBESIM_CONTROLLERS", "all"))
    parser.add_argument("--addons", action="store_true")
    known, rest = parser.parse_known_args(argv)
    return known, ["--state", str(known.state), *rest]


def _chosen(spec: str) -> frozenset[str] | None:
    """``all`` → None (every registered controller); ``none`` → empty; else the comma list."""
    spec = spec.strip()
    if spec == "all":
        return None
    if spec in ("", "none"):
        return frozenset()
    return frozenset(s.strip() for s in spec.split(",") if s.strip())


def main(argv: list[str] | None = None) -> int:
    known, server_argv = _args(argv if argv is not None else sys.argv[1:])
    try:  # first, while this is the only thread: --netns-fd moves the process into the cluster's network here
        listening = apiserver_main.publish(server_argv)
    except apiserver_main.ListenError as exc:
        print(f"kubesim apiserver: {exc}", file=sys.stderr)
        return 2
    # the cluster's service network (ClusterIP range, DNS address) for the coredns and kube-proxy controllers
    os.environ.setdefault(servicenet.ENV, str(servicenet.for_state(known.state).index))
    try:
        config = settings.ControllerSettings.from_env()
        controllers = load(only=_chosen(known.controllers))
    except (ValueError, ControllerLoadError) as exc:
        print(f"kubesim controlplane: {exc}", file=sys.stderr)
        return 2
    if not controllers:  # no controller manager: no root-CA publisher either (kubesim.apiserver.sacontrollers)
        server_argv += ["--no-root-ca-publisher"]
    if "--default-toleration-seconds" not in server_argv:
        server_argv += ["--default-toleration-seconds", str(config.toleration_seconds)]
    layout = state.Layout(known.state.resolve())
    podlogs.install(layout.root)

    def after_listen(port: int, stop: stopsignal.StopSignal) -> Callable[[], None]:
        api = client.Client("127.0.0.1", port, layout.ca_cert.read_bytes(), layout.token.read_text().strip())
        mgr = runtime.Manager(api, config)
        for ctrl in controllers:
            mgr.add(ctrl)

        def run() -> None:
            try:
                if known.addons:
                    ensure_addons(api, layout)
                if mgr.start():
                    log.info("controller manager running: %s", ", ".join(mgr.controllers()) or "(no controllers)")
            except Exception:
                log.exception("controller manager failed to start; stopping the control plane")
                stop.set()

        threading.Thread(target=run, name="controller-manager", daemon=True).start()
        return mgr.stop

    return apiserver_main.main(server_argv, after_listen, listening)


if __name__ == "__main__":
    sys.exit(main())
