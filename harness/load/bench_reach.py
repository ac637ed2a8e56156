"""``make bench`` (suite ``reach``): what reaching the writers through ``kubectl port-forward`` costs.

On kind and remote clusters the harness reaches each writer through a port-forward (kubectl ->
API server -> kubelet -> pod); on the embedded cluster with its private network it does the same.
The question this answers: does that path, rather than the writer, limit what a scenario
measures? The issue's bar is scenario throughput above 50 % of the direct path.

Measured in one run, on one embedded cluster started with ``--network host`` (the only mode in
which the host reaches pod IPs, so both paths lead to the *same* pods and volumes):

* **baseline** — locust against the three writers at their pod IPs (``pod-ip``);
* **subject** — the same load through one ``kubectl port-forward`` per pod (``port-forward``,
  what kind and the default embedded cluster use).

Each at 16 MiB checkpoints (4 shards: bandwidth) and 4 KiB (one shard: per-request overhead),
acknowledged checkpoints/s and MB/s from the recorded history, and the ratio subject/baseline.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from harness import history
from harness.clusters import base as cluster_base
from harness.clusters import embedded
from harness.deploy import direct
from harness.deploy import spec as deploy_spec
from harness.kube import client as kube_client
from harness.kube import endpoints as kube_endpoints
from harness.load import runner, summary

if TYPE_CHECKING:
    from rich.console import Console

REPLICAS: Final = 3
USERS: Final = 6
DURATION_S: Final = 8.0
#: (label, checkpoint bytes, shards)
SIZES: Final = (("16 MiB", 16 << 20, 4), ("4 KiB", 4096, 1))
PATHS: Final[tuple[kube_endpoints.Mode, ...]] = ("pod-ip", "port-forward")
RATIO_TARGET: Final = 0.5


@dataclasses.dataclass(frozen=True)
class Figure:
    """One path at one size, from the history locust recorded."""

    ok_per_s: float
    mb_per_s: float
    p50_ms: float


def _measure(cluster: embedded.EmbeddedCluster, spec: deploy_spec.DeploySpec, work: Path, mode: kube_endpoints.Mode,
             *, label: str, size: int, shards: int) -> Figure:
    api = kube_client.new_api_client(cluster.kubeconfig, cluster.context)
    run_dir = work / f"{mode}-{label.replace(' ', '')}"
    publisher = kube_endpoints.EndpointsPublisher(api, spec.namespace, spec.name, run_dir / "endpoints.json",
                                                  mode=mode, kubectl_args=cluster_base.kubectl_args(cluster))
    try:
        run_dir.mkdir(parents=True)
        publisher.publish()
        load = runner.LoadSpec(endpoints_file=run_dir / "endpoints.json", run_dir=run_dir / "load", users=USERS,
                               spawn_rate=100.0, duration_s=DURATION_S, size_bytes=size, shards=shards,
                               request_timeout_s=60.0)
        runner.run(load)
        got = summary.summarise(history.read_history(load.run_dir))
    finally:
        publisher.stop()
        kube_client.close(api)
    return Figure(got.ok / got.span_s if got.span_s else 0.0, got.mb_per_s, got.p50_ms or 0.0)


def collect(console: Console) -> dict[tuple[str, str], Figure]:
    work = Path(tempfile.mkdtemp(prefix="reach-bench-"))
    cluster = embedded.EmbeddedCluster(state_dir=work / "cluster", node_count=REPLICAS, network="host")
    spec = deploy_spec.DeploySpec(namespace="reach-bench", replicas=REPLICAS)
    target = direct.Target(cluster.kubeconfig, cluster.context)
    figures: dict[tuple[str, str], Figure] = {}
    try:
        with console.status("starting an embedded cluster (--network host) and deploying 3 writers"):
            cluster.start()
            direct.deploy(spec, target, wait_timeout=180.0, progress=lambda _line: None)
        for label, size, shards in SIZES:
            for mode in PATHS:
                with console.status(f"locust: {USERS} users, {label} checkpoints via {mode} for {DURATION_S:.0f}s"):
                    figures[(label, mode)] = _measure(cluster, spec, work, mode, label=label, size=size,
                                                       shards=shards)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return figures


def run(console: Console) -> None:
    from rich.table import Table

    console.print(f"the same {REPLICAS} writers on one embedded cluster, reached at their pod IPs (baseline) and "
                  "through kubectl port-forward (kind's path, and the default embedded cluster's)")
    figures = collect(console)
    table = Table("checkpoints", "path", "ok/s", "MB/s", "p50 ms", "ratio to pod-ip", "target", "ok")
    for label, _size, _shards in SIZES:
        base = figures[(label, "pod-ip")]
        for mode in PATHS:
            f = figures[(label, mode)]
            ratio = f.ok_per_s / base.ok_per_s if base.ok_per_s else 0.0
            baseline = mode == "pod-ip"
            table.add_row(label, mode, f"{f.ok_per_s:.1f}", f"{f.mb_per_s:.1f}", f"{f.p50_ms:.1f}",
                          "1.00 (baseline)" if baseline else f"{ratio:.2f}", "" if baseline else f">= {RATIO_TARGET}",
                          "" if baseline else ("[green]yes[/green]" if ratio >= RATIO_TARGET else "[red]NO[/red]"))
    console.print(table)
