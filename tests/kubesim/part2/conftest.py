"""Fixtures for kubesim part 2: a real 3-node cluster (control plane + three kubelet processes).

``kubesim_cluster`` (session) runs ``python -m kubesim up --state <tmp> --nodes 3`` with shortened
periods (:data:`CLUSTER_FLAGS`) and ``down`` at teardown, even when tests fail. It yields a
:class:`Cluster` with ``.state_dir``, ``.kubeconfig``, ``.client`` (:class:`kubesim.client.Client`),
``.api`` (a ``kubernetes`` ApiClient), ``.nodes``, ``.run(...)`` for ``kubesim`` CLI commands
(``cluster.run("node", "crash", "kubesim-worker2")``) and ``.heal()`` (restore crashed nodes,
uncordon all). ``heal`` also runs after EVERY test that used the cluster (autouse
``_heal_cluster_nodes``), so a test that fails half-way through a node fault — before its own
``finally`` knew which node it broke — cannot leave a crashed or cordoned node to the tests after it.
``namespace`` (function) creates a unique namespace on it and deletes it afterwards. Helpers K2-K5
rely on these names.

The cluster's network is kubesim's default (``--network host``) unless ``KUBESIM_TEST_NETWORK``
says otherwise (``private``: run the same tests on a cluster in a network namespace of its own).
Tests that talk to pods do so through ``cluster.inside(fn, ...)`` (kubesim's way in, see
:func:`kubesim.network.call`), never from the host directly, so they pass in both modes;
``cluster.pod_range`` / ``cluster.node_ip(i)`` give the cluster's addresses.

The cluster is skipped (with the reason printed) only while ``kubesim.kubelet`` has no
``__main__`` yet; any other start failure is an error showing the CLI's output.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kubelet_guard
import pytest

from kubesim import client, network, nodes, state

NODES = ("kubesim-worker", "kubesim-worker2", "kubesim-worker3")
NETWORK = os.environ.get("KUBESIM_TEST_NETWORK", network.DEFAULT_MODE)

CLUSTER_FLAGS: tuple[str, ...] = (
    "--node-monitor-grace", "4s",   # kubelets heartbeat every 1 s, node lifecycle looks every 0.5 s
    "--toleration-seconds", "10",   # pods on an unreachable node are evicted 10 s after the taint
    "--crashloop-base", "1s", "--crashloop-max", "8s",
    "--bookmark-interval", "5",
    # the suite runs --timing fast (tests/conftest.py), but pulls keep upstream's cost: a test
    # judges it, and it is paid once per image and node
    "--image-pull-time", "1s",
)


T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Cluster:
    state_dir: Path
    kubeconfig: Path
    client: client.Client
    api: Any
    nodes: tuple[str, ...]

    @property
    def net(self) -> network.Network:
        net = network.recorded(state.Layout(self.state_dir.resolve()))
        assert net is not None, f"no network recorded in {self.state_dir}"
        return net

    def node_ip(self, node_index: int) -> str:
        """The host IP of node ``node_index`` (kubesim-worker = 1)."""
        return f"127.{self.net.index}.{node_index}.1"

    def inside(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the cluster's network (pod IPs reachable), whichever mode it runs in."""
        return network.call(self.state_dir, fn, *args, **kwargs)

    def run(self, *args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """``python -m kubesim <args> --state <dir>``; raises with its output when ``check`` and it fails."""
        proc = subprocess.run([sys.executable, "-m", "kubesim", *args, "--state", str(self.state_dir)],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubesim {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def heal(self) -> list[str]:
        """Undo node faults a test left behind: restart crashed kubelets (waiting for Ready), uncordon nodes.

        Cheap when nothing is broken (a state.json read and one LIST), so it runs after every test that
        used the cluster; returns what it repaired. Tests may still call it in their ``finally``.
        """
        layout = state.Layout(self.state_dir.resolve())
        healed = []
        for node in self.nodes:
            if nodes.kubelet_pid(layout, node) is None:
                self.run("node", "restore", node)
                healed.append(f"restored {node}")
        items, _rv = self.client.list("nodes")
        for obj in items:
            name = str(obj["metadata"]["name"])
            if name in self.nodes and (obj.get("spec") or {}).get("unschedulable"):
                self.client.patch("nodes", name, {"spec": {"unschedulable": None}})
                healed.append(f"uncordoned {name}")
        return healed


@pytest.fixture(scope="session")
def kubesim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    kubelet_guard.require_kubelet()
    from kubernetes import config

    state_dir = tmp_path_factory.mktemp("kubesim-cluster")
    cmd = [sys.executable, "-m", "kubesim", "up", "--state", str(state_dir), "--port", "0",
           "--nodes", str(len(NODES)), "--network", NETWORK, *CLUSTER_FLAGS]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"kubesim up --nodes {len(NODES)} failed ({proc.returncode}): "
                               f"{proc.stdout}{proc.stderr}")
        kubeconfig = state_dir / "kubeconfig"
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        kube = client.Client.from_kubeconfig(kubeconfig)
        try:
            yield Cluster(state_dir, kubeconfig, kube, api_client, NODES)
        finally:
            kube.close()
            api_client.close()
    finally:
        subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state_dir), "--grace", "5"],
                       capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(autouse=True)
def _heal_cluster_nodes(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used ``kubesim_cluster``: restore crashed kubelets and uncordon nodes, pass or fail."""
    yield
    if "kubesim_cluster" not in request.fixturenames:
        return
    healed = request.getfixturevalue("kubesim_cluster").heal()
    if healed:
        print(f"\nhealed the shared cluster after {request.node.name}: {', '.join(healed)}")


@pytest.fixture
def namespace(kubesim_cluster: Cluster) -> Iterator[str]:
    """A namespace of its own on the cluster (deleted afterwards; the test does not wait for it to go)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubesim_cluster.client.create("namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            kubesim_cluster.client.delete("namespaces", name)
        except client.ApiError as exc:
            print(f"could not delete namespace {name}: {exc}")


@pytest.fixture
def api(kubesim_kubeconfig: Path) -> Iterator[client.Client]:
    """A kubesim client of the session's API-server-only kubesim (controller tests run their
    controllers in-process against it). Modules on the 3-node cluster define their own ``api``."""
    c = client.Client.from_kubeconfig(kubesim_kubeconfig)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def ns(api: client.Client) -> Iterator[str]:
    """A fresh namespace on ``api``'s server, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    api.create("namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        api.delete("namespaces", name)
