"""The checkpointing StatefulSet on the session's cluster: the system every product scenario tests.

Up: a namespace of the run's own (labelled for tests, so nothing else is ever touched), the
StatefulSet from :mod:`harness.deploy` applied and rolled out, and an endpoints publisher that
keeps ``endpoints.json`` pointing at each ordinal's current pod (pod IP or port-forward, as the
cluster allows). Read-back happens through the API only: the set's pods are stopped in the way
its retention policy keeps the claims, and a verifier pod mounts each claim. Down: the
namespace, claims included, whatever happened before.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from harness import facts, waiting
from harness.clusters import base as cluster_base
from harness.deploy import direct, manifests
from harness.kube import client as kube_client
from harness.kube import dump as kube_dump
from harness.kube import endpoints as kube_endpoints
from harness.kube import identity as kube_identity
from harness.kube import pods as kube_pods
from harness.kube import volumes as kube_volumes
from harness.load import endpoints
from harness.nemesis import base, context, registry
from harness.scenario import model, schedule

ROLLOUT_TIMEOUT_S: Final = 180.0
READ_BACK_TIMEOUT_S: Final = 180.0
#: namespaces are DNS labels (63 characters): "chaos-" + scenario + "-" + 6 hex digits
_MAX_SCENARIO_IN_NAMESPACE: Final = 63 - len("chaos-") - 7


def capabilities_needed(scenario: model.Scenario) -> frozenset[cluster_base.Capability]:
    """What the cluster must offer beyond the API: the scenario's own list and its nemeses' needs."""
    needed = {registry.needs(f.nemesis) for f in scenario.faults.values()}
    return scenario.needs | {n for n in needed if n is not None}


class StatefulSetOnCluster:
    def __init__(self, scenario: model.Scenario, cluster: cluster_base.Cluster, run_dir: Path,
                 progress: Callable[[str], None]) -> None:
        self._scenario = scenario
        self._cluster = cluster
        self._progress = progress
        self.kind: str = cluster.kind
        namespace = f"chaos-{scenario.name[:_MAX_SCENARIO_IN_NAMESPACE]}-{secrets.token_hex(3)}"
        self.spec = scenario.deploy_spec(namespace)
        if self.spec.when_scaled == "Delete" and self.spec.when_deleted == "Delete":
            raise model.ScenarioError(
                f"scenario {scenario.name}: with whenScaled and whenDeleted both Delete no claim outlives the "
                "read-back; keep one of them Retain")
        self.ordinals: Sequence[int] = range(self.spec.replicas)
        self.endpoints_file = run_dir / "endpoints.json"
        self._target = direct.Target(cluster.kubeconfig, cluster.context)
        self._api: kube_client.ApiClient | None = None
        self._publisher: kube_endpoints.EndpointsPublisher | None = None
        self._deployed = False

    @property
    def api(self) -> kube_client.ApiClient:
        if self._api is None:
            raise model.ScenarioError("the system is not up")
        return self._api

    def describe(self) -> Mapping[str, object]:
        return {"cluster": dict(self._cluster.describe()), "namespace": self.spec.namespace,
                "statefulset": self.spec.name, "storage_class": self.spec.storage_class,
                "image": self.spec.image, "replicas": self.spec.replicas}

    def check_fault(self, fault: model.Fault) -> None:
        registry.check(fault.nemesis, fault.options)

    def up(self) -> None:
        self._api = kube_client.new_api_client(self._cluster.kubeconfig, self._cluster.context)
        self._deployed = True  # from here on, down() removes the namespace whatever happens
        self._progress(f"deploying {self.spec.namespace}/{self.spec.name} ({self.spec.replicas} replicas, "
                       f"class {self.spec.storage_class or 'default'}) on {self._cluster.name}")
        try:
            direct.deploy(self.spec, self._target, wait_timeout=ROLLOUT_TIMEOUT_S, progress=self._progress)
        except direct.DeployError as exc:
            raise model.ScenarioError(f"deploy failed: {exc}") from None
        publisher = kube_endpoints.EndpointsPublisher(
            self.api, self.spec.namespace, self.spec.name, self.endpoints_file, mode=self._cluster.reach,
            kubectl_args=cluster_base.kubectl_args(self._cluster))
        publisher.start()
        self._publisher = publisher
        waiting.until(f"the endpoints file to list all {self.spec.replicas} ordinals",
                      lambda: (len(c := self.endpoints()) == self.spec.replicas, f"{c}"), timeout=60, interval=0.1)

    def endpoints(self) -> Mapping[int, str]:
        try:
            return dict(endpoints.read(self.endpoints_file).urls)
        except endpoints.EndpointsError:
            return {}

    def identity(self) -> tuple[facts.OrdinalIdentity, ...]:
        return kube_identity.read_identity(self.api, self.spec.namespace, self.spec.name, urls=self.endpoints(),
                                           ordinals=self.ordinals)

    def nemesis(self, fault: model.Fault) -> base.Nemesis:
        ctx = context.SetContext(
            api=self.api, cluster=self._cluster, namespace=self.spec.namespace, statefulset=self.spec.name,
            replicas=self.spec.replicas, endpoints_file=self.endpoints_file, heal_timeout_s=fault.heal_timeout_s,
            progress=self._progress)
        return registry.build(fault.nemesis, ctx, fault.options)

    def resolve(self, target: schedule.Target) -> str:
        if target.kind == "set":
            return self.spec.name
        if target.kind == "busiest-node":
            return self._busiest_node()
        if target.kind == "node":
            known = kube_identity.node_names(self.api)
            if target.ref not in known:
                raise base.NemesisError(f"no node {target.ref!r} in the cluster (nodes: {', '.join(known)})")
            return target.ref
        ordinal = target.ordinal
        assert ordinal is not None  # ordinal and node-of targets always carry one
        if ordinal not in self.ordinals:
            raise base.NemesisError(f"{target}: the set has ordinals 0..{self.spec.replicas - 1}")
        pod = f"{self.spec.name}-{ordinal}"
        if target.kind == "ordinal":
            return pod
        state = kube_pods.read_pod(self.api, self.spec.namespace, pod)
        if state is None or not state.node:
            raise base.NemesisError(f"{target}: pod {self.spec.namespace}/{pod} is not on a node now")
        return state.node

    def _busiest_node(self) -> str:
        counts: dict[str, int] = {}
        for ordinal in self.ordinals:
            state = kube_pods.read_pod(self.api, self.spec.namespace, f"{self.spec.name}-{ordinal}")
            if state is not None and state.node and not state.deleting:
                counts[state.node] = counts.get(state.node, 0) + 1
        if not counts:
            raise base.NemesisError("busiest-node: none of the set's pods is on a node now")
        return min(counts, key=lambda node: (-counts[node], node))

    def read_back(self) -> tuple[facts.VolumeFacts, ...]:
        """Stop the set's pods the way its retention policy keeps the claims, then verify each."""
        self._stop_publisher()
        selector = ",".join(f"{k}={v}" for k, v in manifests.selector_labels(self.spec).items())
        claims = {n: manifests.claim_name(self.spec, n) for n in self.ordinals}
        try:
            return kube_volumes.read_volumes(
                self.api, self.spec.namespace, self.spec.name, claims, image=self.spec.image,
                run_as=manifests.RUN_AS_ID, pod_selector=selector, timeout=READ_BACK_TIMEOUT_S,
                pull_policy=self.spec.image_pull_policy, progress=self._progress,
                stop="scale" if self.spec.when_scaled == "Retain" else "delete-set")
        except kube_volumes.VolumeReadError as exc:
            raise model.ScenarioError(f"reading the volumes back failed: {exc}") from None

    def retention(self) -> facts.RetentionPolicy:
        return facts.RetentionPolicy(when_deleted=self.spec.when_deleted, when_scaled=self.spec.when_scaled)

    def keep_last(self) -> int:
        return self.spec.writer.keep_last

    def collect(self, dest: Path) -> None:
        """The cluster's logs (as ``kind export logs`` would give) and the namespace's final objects."""
        try:
            self._cluster.collect_logs(dest, self.spec.namespace)
        except (OSError, cluster_base.ClusterError) as exc:
            self._progress(f"WARNING: cluster logs not collected: {exc}")
        if self._api is not None and self._deployed:
            try:
                kube_dump.dump_namespace(self._api, self.spec.namespace, dest)
            except (OSError, ValueError) as exc:
                self._progress(f"WARNING: object state of {self.spec.namespace} not written: {exc}")

    def down(self) -> None:
        self._stop_publisher()
        if self._deployed:
            self._deployed = False
            self._progress(f"deleting namespace {self.spec.namespace}")
            try:
                direct.undeploy(self.spec, self._target, delete_claims=True, delete_namespace=True,
                                wait_timeout=None, progress=lambda _line: None)
            except direct.DeployError as exc:  # never mask the scenario's own outcome with a cleanup failure
                self._progress(f"WARNING: namespace {self.spec.namespace} was not deleted: {exc}")
        if self._api is not None:
            kube_client.close(self._api)
            self._api = None

    def _stop_publisher(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(Exception):  # a publisher that cannot stop cleanly has nothing left to lose
                self._publisher.stop()
            self._publisher = None
