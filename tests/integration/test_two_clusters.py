"""Two embedded clusters with the same node names, side by side, each judged on its own writers.

Issue 12's first finding: pod IPs depended only on the node name, so a second cluster's writers
could not bind and the harness read the *other* cluster's writers (false "lost" checkpoints, or
as easily a false "valid"). With a private network per cluster, the same scenario run on two
clusters at once (same node names, same namespace-less pod and claim names) must give each run
its own volumes, identities and verdicts, and each run.json must name its own API server.
"""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import pytest

from harness import ops, store
from harness.clusters import base, embedded
from harness.scenario import model, on_cluster, runner, schedule, system

pytestmark = [pytest.mark.slow, pytest.mark.kubesim, pytest.mark.timeout(180)]

SCENARIO = model.Scenario(
    name="two-clusters",
    claim="One pod-kill on each of two clusters with the same node names; each run sees only its own writers.",
    deploy={"replicas": "2", "storage_class": "standard", "keep_last": "3", "pdb": "false"},
    faults={"pod-kill": model.Fault("pod-kill", "its pod was force-deleted (grace 0) and is being recreated")},
    schedule=lambda ctx: schedule.repeat(ctx.seed, "pod-kill", schedule.ordinals("ordinal", ctx.replicas), 1,
                                         delay_s=(0.2, 0.5)),
    load=model.LoadProfile(users=2, checkpoint_bytes=16 * 1024, shards=2, tail_s=1.0, max_s=120.0),
)


def run_on(cluster: embedded.EmbeddedCluster, reports: Path, seed: int) -> runner.Outcome:
    def say(line: str) -> None:
        print(f"[{cluster.name}] {line}", flush=True)

    def make(run_dir: Path) -> system.System:
        return on_cluster.StatefulSetOnCluster(SCENARIO, cluster, run_dir, say)

    return runner.execute(SCENARIO, make, seed=seed, cluster_kind=cluster.kind, base_dir=reports, progress=say)


def test_two_clusters_with_the_same_node_names_each_judge_their_own_writers(tmp_path: Path) -> None:
    clusters = [embedded.EmbeddedCluster(state_dir=tmp_path / f"cluster-{n}", node_count=2, name=f"kubesim-{n}")
                for n in "ab"]
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(c.start) for c in clusters]
            errors = [e for f in starts if (e := f.exception()) is not None]
        unavailable = [e for e in errors if isinstance(e, base.ClusterUnavailable)]
        if unavailable:
            pytest.skip(str(unavailable[0]))
        if errors:
            raise errors[0]
        a, b = clusters
        assert a.nodes == b.nodes, "the point: identical node names in both clusters"
        assert a.describe()["server"] != b.describe()["server"]
        assert (a.reach, b.reach) == ("port-forward", "port-forward")

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(run_on, c, tmp_path / f"reports-{c.name}", seed=7) for c in clusters]
            outcomes = [f.result() for f in runs]

        stamps: list[set[str]] = []
        epochs: list[set[str]] = []
        for cluster, outcome in zip(clusters, outcomes, strict=True):
            failures = outcome.failures([n for n in outcome.composed.verdicts if n != "perf"])
            assert not failures, f"{cluster.name}: {failures}"
            info = json.loads((outcome.run_dir / store.RUN_FILE).read_text())
            described = info["settings"]["system"]["cluster"]
            assert described["name"] == cluster.name
            assert described["server"] == cluster.describe()["server"], described
            facts = store.open_run(outcome.run_dir).facts()
            assert len(facts.volumes) == 2
            assert all(v.stamp is not None for v in facts.volumes)
            ids = {v.stamp.volume_id for v in facts.volumes if v.stamp is not None}
            seen = {i.volume_id for i in (*facts.identity_before, *facts.identity_after)}
            assert seen == ids, f"{cluster.name}: identities name volumes {seen}, its volumes are {ids}"
            stamps.append(ids)
            stored = store.open_run(outcome.run_dir).history()
            acked = [op.value for op in stored if op.f == ops.WRITE and op.type == "ok" and isinstance(op.value, dict)]
            assert acked, f"{cluster.name}: no write was acknowledged"
            epochs.append({str(v["epoch"]) for v in acked})
        assert not stamps[0] & stamps[1], f"the two clusters' runs share volumes: {stamps[0] & stamps[1]}"
        assert not epochs[0] & epochs[1], f"the two runs were answered by the same writers: {epochs[0] & epochs[1]}"
    finally:
        errs: list[BaseException] = []
        for cluster in clusters:
            try:
                cluster.stop()
            except base.ClusterError as exc:
                errs.append(exc)
        if errs:
            raise errs[0]
