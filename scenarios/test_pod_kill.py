"""Scenario: StatefulSet pods force-deleted mid-write; the controller brings each ordinal back.

The cluster twin of test_process_kill: the checkpointing StatefulSet is deployed on the
session's cluster (the embedded one by default), locust writes checkpoints to every ordinal,
and a seeded schedule force-deletes pods (grace period 0: the kubelet kills the writer without
a drain). Each fault heals when the StatefulSet has the ordinal Ready again with a new UID and
the endpoints file points at it. Afterwards the identity map is read again, every claim is
read back by a verifier pod through the API (never from the cluster's disks), and the
checkers judge the stored run.

Claims proven: every acknowledged checkpoint is present with its digest, nothing torn is under
a final name, nothing appears that was not attempted; each ordinal keeps its claim, PV and
volume stamp across pod replacement; each ordinal serves its newest acknowledged step again
after each kill.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import facts, scenario, waiting
from harness.checkers import expect
from harness.clusters import base as cluster_base
from harness.deploy import direct, manifests
from harness.deploy import spec as deploy_spec
from harness.kube import client as kube_client
from harness.kube import endpoints as kube_endpoints
from harness.kube import identity as kube_identity
from harness.kube import volumes as kube_volumes
from harness.load import endpoints, runner
from harness.nemesis import pod_kill

ORDINALS = 3
KEEP_LAST = 3
KILLS = 4
LOAD_SECONDS = 24.0
CHECKPOINT_BYTES = 256 * 1024
SHARDS = 4
USERS = 6
ROLLOUT_TIMEOUT_S = 120.0
READ_BACK_TIMEOUT_S = 120.0
CHECKERS = ("durability", "identity", "availability", "perf")
#: seconds between a heal and the next kill: with ~1 s per kill, spreads the kills over the load
DELAY_S = (1.0, 4.5)


def say(line: str) -> None:
    print(line, flush=True)


def test_force_deleted_pods_keep_every_acknowledged_checkpoint(
    harness_seed: int, cluster: cluster_base.Cluster, report_attach: Callable[[str, str], None]
) -> None:
    namespace = f"chaos-pod-kill-{secrets.token_hex(3)}"
    spec = deploy_spec.parse({
        "namespace": namespace, "replicas": str(ORDINALS), "storage_class": "standard", "keep_last": str(KEEP_LAST),
    })
    schedule = scenario.seeded_schedule(harness_seed, KILLS, [f"{spec.name}-{n}" for n in range(ORDINALS)],
                                        delay_s=DELAY_S)
    exp = expect.Expectations()
    settings = {"ordinals": ORDINALS, "keep_last": KEEP_LAST, "kills": KILLS, "load_seconds": LOAD_SECONDS,
                "checkpoint_bytes": CHECKPOINT_BYTES, "shards": SHARDS, "users": USERS, "namespace": namespace,
                "statefulset": spec.name, "storage_class": spec.storage_class, "image": spec.image,
                "cluster": dict(cluster.describe())}
    run = scenario.start_run("pod-kill", seed=harness_seed, cluster_kind=cluster.kind, settings=settings,
                             expectations=exp, schedule=schedule)
    endpoints_file = run.path / "endpoints.json"
    target = direct.Target(cluster.kubeconfig, cluster.context)
    selector = ",".join(f"{k}={v}" for k, v in manifests.selector_labels(spec).items())
    claims = {n: manifests.claim_name(spec, n) for n in range(ORDINALS)}
    api = kube_client.new_api_client(cluster.kubeconfig, cluster.context)
    try:
        say(f"deploying {namespace}/{spec.name} ({ORDINALS} replicas, class {spec.storage_class}) on {cluster.name}")
        direct.deploy(spec, target, wait_timeout=ROLLOUT_TIMEOUT_S, progress=say)
        publisher = kube_endpoints.EndpointsPublisher(
            api, namespace, spec.name, endpoints_file, mode=cluster.reach,
            kubectl_args=cluster_base.kubectl_args(cluster),
        )
        with publisher:
            current = _await_every_ordinal(endpoints_file)
            before = kube_identity.read_identity(api, namespace, spec.name, urls=current())
            say(f"identity before: {_identity_line(before)}")
            plan = scenario.FaultPlan(
                nemesis=pod_kill.PodKill(api, namespace, spec.name, ORDINALS, endpoints_file, progress=say),
                schedule=schedule,
                ordinal_of=lambda pod: int(pod.rsplit("-", 1)[1]),
                unavailable_because="its pod was force-deleted (grace 0) and is being recreated",
            )
            load_spec = runner.LoadSpec(endpoints_file=endpoints_file, run_dir=run.path, users=USERS,
                                        spawn_rate=USERS, duration_s=LOAD_SECONDS, size_bytes=CHECKPOINT_BYTES,
                                        shards=SHARDS, request_timeout_s=10.0)
            result = scenario.run_faults_under_load(run, load_spec, current, plan, ordinals=range(ORDINALS),
                                                    progress=say)
            after = kube_identity.read_identity(api, namespace, spec.name, urls=current())
            say(f"identity after: {_identity_line(after)}")
        volumes = kube_volumes.read_volumes(
            api, namespace, spec.name, claims, image=spec.image, run_as=manifests.RUN_AS_ID, pod_selector=selector,
            timeout=READ_BACK_TIMEOUT_S, pull_policy=spec.image_pull_policy, progress=say,
        )
        run.write_facts(facts.RunFacts(
            volumes=volumes, identity_before=before, identity_after=after,
            retention=facts.RetentionPolicy(when_deleted=spec.when_deleted, when_scaled=spec.when_scaled),
            keep_last=KEEP_LAST,
        ))
        composed = scenario.judge(run, CHECKERS, exp, load=result, progress=say, attach=report_attach)
    finally:
        kube_client.close(api)
        say(f"deleting namespace {namespace}")
        try:
            direct.undeploy(spec, target, delete_claims=True, delete_namespace=True, wait_timeout=None,
                            progress=lambda _line: None)
        except direct.DeployError as exc:  # never mask the scenario's own outcome with a cleanup failure
            say(f"WARNING: namespace {namespace} was not deleted: {exc}")
    for name in ("durability", "identity", "availability"):
        assert composed.verdicts[name].valid is True, f"{name}: {composed.verdicts[name].summary}"
    kills = scenario.fault_count(run.path)
    assert kills == KILLS, f"expected {KILLS} pod kills in the history, saw {kills}"


def _await_every_ordinal(path: Path) -> Callable[[], dict[int, str]]:
    """Wait until the endpoints file lists every ordinal; return a reader of the current map."""

    def current() -> dict[int, str]:
        return dict(endpoints.read(path).urls)

    waiting.until(
        f"the endpoints file to list all {ORDINALS} ordinals",
        lambda: (len(c := current()) == ORDINALS, f"{c}"),
        timeout=30,
        interval=0.1,
    )
    return current


def _identity_line(identity: tuple[facts.OrdinalIdentity, ...]) -> str:
    return "; ".join(f"{i.ordinal}: {i.claim} -> {i.volume} on {i.node}, volume id {i.volume_id}" for i in identity)


@pytest.fixture(autouse=True)
def _announce(request: pytest.FixtureRequest) -> None:
    """Scenarios are long: say which one runs (pytest's -s shows it live)."""
    print(f"\nscenario {request.node.name}: StatefulSet pods force-deleted ({KILLS} seeded kills) during load")
