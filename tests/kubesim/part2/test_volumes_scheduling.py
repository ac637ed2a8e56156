"""Scheduler and volume controllers against a real kubesim API server, through the API only.

The controllers run in-process on the runtime's Manager (as the control plane runs them) against a
fresh API server; the three nodes are API objects reported Ready, without kubelets, so these tests
exercise scheduling and storage alone. Pods bound to a node are removed with grace 0 (no kubelet
would finish a graceful deletion).

IDs: C1 (standard class provisioning pinned to the node), C2 (shared class, one node at a time),
C3 (binding, Released, Delete/Retain), C4 (pvc-/pv-protection), C5 (local volume on a cordoned
node), D1 (filters, FailedScheduling, PodScheduled condition), D3 (cordon).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cluster_waits
import pytest

from kubesim import client, controlplane, state
from kubesim.controllers import (
    runtime,
    settings,
    volumes_binder,
    volumes_protection,
    volumes_provisioner,
    volumes_reclaim,
)
from kubesim.controllers import scheduler as scheduler_ctrl

pytestmark = [pytest.mark.kubesim, pytest.mark.slow]

NODES = ("kubesim-worker", "kubesim-worker2", "kubesim-worker3")
WAIT = 30.0  # a deadline for events a loaded 2-core machine still delivers, not a pause

Obj = dict[str, Any]


class Cluster:
    def __init__(self, api: client.Client, state_dir: Path) -> None:
        self.api = api
        self.state_dir = state_dir


def api_only_cluster(kubeconfig: Path) -> Cluster:
    """The StorageClass add-ons and three Ready nodes, no controllers yet."""
    state_dir = kubeconfig.parent.resolve()
    api = client.Client.from_kubeconfig(kubeconfig)
    controlplane.ensure_addons(api, state.Layout(state_dir))
    for name in NODES:
        node = api.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}}, "spec": {}})
        node["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
        api.update("nodes", node, subresource="status")
    return Cluster(api, state_dir)


def start_controllers(cluster: Cluster) -> runtime.Manager:
    """K3's controllers on the runtime's Manager, as the control plane runs them."""
    mgr = runtime.Manager(cluster.api, settings.ControllerSettings())
    mgr.state_dir = cluster.state_dir  # type: ignore[attr-defined]
    for ctrl in (scheduler_ctrl.new_scheduler(), volumes_binder.new_binder(), volumes_provisioner.new_provisioner(),
                 volumes_reclaim.new_reclaimer(), volumes_protection.new_claim_protection(),
                 volumes_protection.new_volume_protection()):
        mgr.add(ctrl)
    if not mgr.start(sync_timeout=20):
        mgr.stop()
        raise AssertionError("the scheduler and volume controllers' informers did not sync in 20s")
    return mgr


@pytest.fixture(scope="module")
def cluster(kubesim_factory: Callable[..., Path]) -> Iterator[Cluster]:
    plane = api_only_cluster(kubesim_factory())
    mgr = start_controllers(plane)
    try:
        yield plane
    finally:
        mgr.stop()
        plane.api.close()


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = f"k3-{uuid.uuid4().hex[:8]}"
    cluster.api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        for pod in cluster.api.list("pods", name)[0]:
            force_delete(cluster.api, name, pod["metadata"]["name"])
        for node in NODES:
            set_cordon(cluster.api, node, False)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `probe` until truthy; a timeout names what was awaited and the last value seen."""
    return cluster_waits.until_truthy(what, probe, timeout)


def force_delete(api: client.Client, ns: str, name: str) -> None:
    with contextlib.suppress(client.NotFound):
        api.delete("pods", name, ns, grace_period_seconds=0)


def set_cordon(api: client.Client, node: str, on: bool) -> None:
    """What `kubectl cordon` does: spec.unschedulable (the node controller would add the taint too)."""
    taints = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}] if on else None
    api.patch("nodes", node, {"spec": {"unschedulable": on or None, "taints": taints}})


def make_claim(api: client.Client, ns: str, name: str, klass: str | None = None) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if klass is not None:
        spec["storageClassName"] = klass
    return api.create("persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                 "metadata": {"name": name}, "spec": spec}, ns)


def make_pod(api: client.Client, ns: str, name: str, claim: str | None = None, **spec: Any) -> Obj:
    body: Obj = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}], **spec}
    if claim is not None:
        body["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return api.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}, ns)


def make_pod_after_cordon(api: client.Client, ns: str, name: str, claim: str | None = None) -> Obj:
    """Create the pod once the scheduler has seen the cordon; returns its PodScheduled=False condition.

    The scheduler decides from its node informer, which sees a cordon a little after the PATCH
    returns (upstream's scheduler cache is no different): a pod created in that window may
    legitimately land on a node that was just cordoned. Such a pod is deleted and created again;
    the claim under test is what a scheduler that has seen the cordon does."""
    def attempt() -> Obj | None:
        make_pod(api, ns, name, claim)
        cond = wait_for(f"PodScheduled of {ns}/{name}", lambda: pod_condition(api, ns, name))
        if cond["status"] == "False":
            return cond
        force_delete(api, ns, name)  # bound before the informer showed the cordon: try again
        wait_for(f"pod {ns}/{name} gone", lambda: not any(name_of_object(p) == name for p in api.list("pods", ns)[0]))
        return None

    return dict(wait_for(f"a pod {ns}/{name} the scheduler keeps pending after the cordon", attempt))


def name_of_object(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def node_of(api: client.Client, ns: str, pod: str) -> str:
    return str((api.get("pods", pod, ns).get("spec") or {}).get("nodeName") or "")


def scheduled(api: client.Client, ns: str, pod: str) -> str:
    return str(wait_for(f"pod {ns}/{pod} to be scheduled", lambda: node_of(api, ns, pod)))


def events(api: client.Client, ns: str, name: str, reason: str) -> list[str]:
    items, _ = api.list("events", ns, field_selector=f"involvedObject.name={name},reason={reason}")
    return [str(e.get("message")) for e in items]


def pod_condition(api: client.Client, ns: str, pod: str) -> Obj | None:
    for cond in (api.get("pods", pod, ns).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return dict(cond)
    return None


def bound_volume(api: client.Client, ns: str, claim: str) -> Obj:
    def probe() -> Obj | None:
        pvc = api.get("persistentvolumeclaims", claim, ns)
        if (pvc.get("status") or {}).get("phase") != "Bound":
            return None
        return api.get("persistentvolumes", pvc["spec"]["volumeName"])
    return dict(wait_for(f"claim {ns}/{claim} to be Bound", probe))


# --- D1 / D3 ---------------------------------------------------------------------------------


def test_pods_spread_over_ready_nodes_and_get_a_scheduled_event(cluster: Cluster, ns: str) -> None:
    for i in range(3):
        make_pod(cluster.api, ns, f"p{i}")
    placed = sorted(scheduled(cluster.api, ns, f"p{i}") for i in range(3))
    assert placed == sorted(NODES)
    messages = wait_for("the Scheduled event", lambda: events(cluster.api, ns, "p0", "Scheduled"))
    assert messages == [f"Successfully assigned {ns}/p0 to {node_of(cluster.api, ns, 'p0')}"]
    assert (pod_condition(cluster.api, ns, "p0") or {}).get("status") == "True"


def test_node_selector_and_taints_place_pods(cluster: Cluster, ns: str) -> None:
    make_pod(cluster.api, ns, "picky", nodeSelector={"kubernetes.io/hostname": "kubesim-worker3"})
    assert scheduled(cluster.api, ns, "picky") == "kubesim-worker3"
    cluster.api.patch("nodes", "kubesim-worker2", {"spec": {"taints": [
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})
    try:
        make_pod(cluster.api, ns, "plain", nodeSelector={"kubernetes.io/hostname": "kubesim-worker2"})
        make_pod(cluster.api, ns, "tolerant", nodeSelector={"kubernetes.io/hostname": "kubesim-worker2"},
                 tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
        assert scheduled(cluster.api, ns, "tolerant") == "kubesim-worker2"
        messages = wait_for("FailedScheduling for the untolerating pod",
                            lambda: events(cluster.api, ns, "plain", "FailedScheduling"))
        assert messages[0] == (
            "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node "
            "affinity/selector. no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is "
            "not helpful for scheduling.")
        assert node_of(cluster.api, ns, "plain") == ""
    finally:
        cluster.api.patch("nodes", "kubesim-worker2", {"spec": {"taints": None}})
    assert scheduled(cluster.api, ns, "plain") == "kubesim-worker2"  # removing the taint retries the pod


def test_cordoned_cluster_keeps_pods_pending_until_uncordon(cluster: Cluster, ns: str) -> None:
    for node in NODES:
        set_cordon(cluster.api, node, True)
    cond = make_pod_after_cordon(cluster.api, ns, "waiting")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/3 nodes are available: 3 node(s) were unschedulable.")
    set_cordon(cluster.api, "kubesim-worker2", False)
    assert scheduled(cluster.api, ns, "waiting") == "kubesim-worker2"


# --- C1 / C3 / C5 ----------------------------------------------------------------------------


def test_standard_claim_is_provisioned_on_the_pods_node_and_bound(cluster: Cluster, ns: str) -> None:
    make_claim(cluster.api, ns, "data")  # no class: the default `standard` one
    wait_for("WaitForFirstConsumer event", lambda: events(cluster.api, ns, "data", "WaitForFirstConsumer"))
    assert cluster.api.list("persistentvolumes")[0] == [] or all(
        pv["spec"].get("claimRef", {}).get("namespace") != ns for pv in cluster.api.list("persistentvolumes")[0])
    make_pod(cluster.api, ns, "user", "data")
    node = scheduled(cluster.api, ns, "user")
    pv = bound_volume(cluster.api, ns, "data")
    claim = cluster.api.get("persistentvolumeclaims", "data", ns)
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    assert claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert "kubernetes.io/pvc-protection" in claim["metadata"]["finalizers"]
    assert pv["metadata"]["name"] == f"pvc-{claim['metadata']['uid']}"
    assert pv["metadata"]["annotations"]["local.path.provisioner/selected-node"] == node
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert pv["status"]["phase"] == "Bound"
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert directory == cluster.state_dir / "nodes" / node / "local-path" / f"{pv['metadata']['name']}_{ns}_data"
    assert directory.is_dir()


def test_pod_on_a_local_volume_of_a_cordoned_node_stays_pending_until_uncordon(cluster: Cluster, ns: str) -> None:
    """C5 + D3: the volume pins the pod; cordon its node and a recreated pod names the volume node affinity conflict."""
    make_claim(cluster.api, ns, "data")
    make_pod(cluster.api, ns, "db", "data")
    node = scheduled(cluster.api, ns, "db")
    bound_volume(cluster.api, ns, "data")
    set_cordon(cluster.api, node, True)
    force_delete(cluster.api, ns, "db")
    wait_for("the old pod to be gone", lambda: not cluster.api.list("pods", ns)[0])
    make_pod_after_cordon(cluster.api, ns, "db", "data")
    messages = wait_for("FailedScheduling for the recreated pod",
                        lambda: events(cluster.api, ns, "db", "FailedScheduling"))
    assert messages[-1] == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match PersistentVolume's node "
        "affinity. no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful "
        "for scheduling.")
    assert node_of(cluster.api, ns, "db") == ""
    set_cordon(cluster.api, node, False)
    assert scheduled(cluster.api, ns, "db") == node


def test_deleted_claim_releases_its_volume_and_delete_policy_removes_it_with_its_directory(
        cluster: Cluster, ns: str) -> None:
    make_claim(cluster.api, ns, "data")
    make_pod(cluster.api, ns, "user", "data")
    scheduled(cluster.api, ns, "user")
    pv = bound_volume(cluster.api, ns, "data")
    directory = Path(pv["spec"]["hostPath"]["path"])
    (directory / "checkpoint").write_text("x")
    cluster.api.delete("persistentvolumeclaims", "data", ns)
    claim = cluster.api.get("persistentvolumeclaims", "data", ns)
    assert claim["metadata"].get("deletionTimestamp"), "the claim is kept while a scheduled pod uses it (C4)"
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    force_delete(cluster.api, ns, "user")

    def gone(plural: str, name: str, namespace: str = "") -> bool:
        try:
            cluster.api.get(plural, name, namespace)
        except client.NotFound:
            return True
        return False

    wait_for("the claim to be removed once no pod uses it", lambda: gone("persistentvolumeclaims", "data", ns))
    wait_for(f"volume {pv['metadata']['name']} to be deleted (reclaim policy Delete)",
             lambda: gone("persistentvolumes", pv["metadata"]["name"]))
    assert not directory.exists()


def test_retain_policy_keeps_the_released_volume_and_its_data(cluster: Cluster, ns: str) -> None:
    klass = f"keep-{ns}"
    cluster.api.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                          "metadata": {"name": klass}, "provisioner": "rancher.io/local-path",
                                          "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Retain"})
    try:
        make_claim(cluster.api, ns, "data", klass)
        make_pod(cluster.api, ns, "user", "data")
        scheduled(cluster.api, ns, "user")
        pv = bound_volume(cluster.api, ns, "data")
        name = pv["metadata"]["name"]
        (Path(pv["spec"]["hostPath"]["path"]) / "checkpoint").write_text("kept")
        force_delete(cluster.api, ns, "user")
        cluster.api.delete("persistentvolumeclaims", "data", ns)
        released = wait_for("the volume to be Released", lambda: (
            (v := cluster.api.get("persistentvolumes", name)) and v["status"].get("phase") == "Released" and v))
        assert released["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert (Path(pv["spec"]["hostPath"]["path"]) / "checkpoint").read_text() == "kept"
        # A new claim with the same name gets a new volume; the released one stays Released.
        make_claim(cluster.api, ns, "data", klass)
        make_pod(cluster.api, ns, "user2", "data")
        assert bound_volume(cluster.api, ns, "data")["metadata"]["name"] != name
        assert cluster.api.get("persistentvolumes", name)["status"]["phase"] == "Released"
        cluster.api.delete("persistentvolumes", name)
        wait_for("the Released volume to go once deleted (pv-protection lets it)",
                 lambda: name not in {v["metadata"]["name"] for v in cluster.api.list("persistentvolumes")[0]})
    finally:
        cluster.api.delete("storageclasses", klass)


# --- C2 --------------------------------------------------------------------------------------


def test_shared_volume_moves_to_another_node_only_after_the_first_pod_is_gone(cluster: Cluster, ns: str) -> None:
    make_claim(cluster.api, ns, "data", "shared")
    pv = bound_volume(cluster.api, ns, "data")  # Immediate binding: provisioned before any pod
    assert "nodeAffinity" not in pv["spec"]
    assert Path(pv["spec"]["hostPath"]["path"]).parent == cluster.state_dir / "shared-volumes"
    make_pod(cluster.api, ns, "first", "data")
    first_node = scheduled(cluster.api, ns, "first")
    set_cordon(cluster.api, first_node, True)
    make_pod_after_cordon(cluster.api, ns, "second", "data")  # else it may join "first" on its node
    messages = wait_for("FailedScheduling while the first pod holds the volume",
                        lambda: events(cluster.api, ns, "second", "FailedScheduling"))
    assert "2 node(s) can't attach a volume that is already exclusively attached to another node" in messages[-1]
    assert "1 node(s) were unschedulable" in messages[-1]
    force_delete(cluster.api, ns, "first")
    second_node = scheduled(cluster.api, ns, "second")
    assert second_node != first_node
    assert cluster.api.get("persistentvolumeclaims", "data", ns)["spec"]["volumeName"] == pv["metadata"]["name"]


# --- static volumes --------------------------------------------------------------------------


def test_static_local_volume_is_prebound_by_the_scheduler_and_pins_the_pod(cluster: Cluster, ns: str) -> None:
    """A pre-created PV of a no-provisioner WaitForFirstConsumer class binds through the scheduler (VolumeBinding)."""
    klass, pv_name = f"manual-{ns}", f"static-{ns}"
    cluster.api.create("storageclasses", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                          "metadata": {"name": klass}, "provisioner": "kubernetes.io/no-provisioner",
                                          "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Retain"})
    cluster.api.create("persistentvolumes", {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {
        "name": pv_name}, "spec": {
        "storageClassName": klass, "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(cluster.state_dir / pv_name)},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["kubesim-worker3"]}]}]}}}})
    try:
        make_claim(cluster.api, ns, "data", klass)
        make_pod(cluster.api, ns, "user", "data")
        assert scheduled(cluster.api, ns, "user") == "kubesim-worker3"
        pv = bound_volume(cluster.api, ns, "data")
        assert pv["metadata"]["name"] == pv_name
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert pv["spec"]["claimRef"]["name"] == "data"
    finally:
        force_delete(cluster.api, ns, "user")
        cluster.api.delete("storageclasses", klass)


def test_claim_of_an_unschedulable_pod_says_it_waits_for_that_pod(cluster: Cluster, ns: str) -> None:
    for node in NODES:
        set_cordon(cluster.api, node, True)
    make_pod_after_cordon(cluster.api, ns, "canary")  # the scheduler has seen the cordons (a bound pod would
    force_delete(cluster.api, ns, "canary")            # pin the claim to a node and never wait)
    make_claim(cluster.api, ns, "data")
    make_pod(cluster.api, ns, "stuck", "data")
    said = wait_for("WaitForPodScheduled on the claim", lambda: events(cluster.api, ns, "data", "WaitForPodScheduled"))
    assert said == ["waiting for pod stuck to be scheduled"]
    set_cordon(cluster.api, "kubesim-worker", False)
    assert scheduled(cluster.api, ns, "stuck") == "kubesim-worker"
    assert bound_volume(cluster.api, ns, "data")["metadata"]["annotations"][
        "local.path.provisioner/selected-node"] == "kubesim-worker"


def test_claim_selected_for_a_vanished_node_is_given_back_to_the_scheduler(cluster: Cluster, ns: str) -> None:
    """external-provisioner's ProvisioningReschedule: a missing node drops volume.kubernetes.io/selected-node."""
    cluster.api.create("persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
        "name": "data", "annotations": {"volume.kubernetes.io/selected-node": "kubesim-gone"}}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, ns)
    failed = wait_for("ProvisioningFailed for the vanished node",
                      lambda: events(cluster.api, ns, "data", "ProvisioningFailed"))
    assert failed == ['failed to get target node: nodes "kubesim-gone" not found']
    make_pod(cluster.api, ns, "user", "data")
    node = scheduled(cluster.api, ns, "user")
    assert node in NODES
    assert bound_volume(cluster.api, ns, "data")["metadata"]["annotations"][
        "local.path.provisioner/selected-node"] == node


# --- restart ---------------------------------------------------------------------------------


def test_controllers_started_on_half_done_work_finish_it(kubesim_factory: Callable[..., Path]) -> None:
    """A control plane killed mid-way resumes from the API alone: a claim already given a node and handed to
    the provisioner gets its volume and the waiting pod lands there; a Released Delete volume whose storage
    was not yet removed is reclaimed."""
    plane = api_only_cluster(kubesim_factory())
    ns = "restart"
    plane.api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    plane.api.create("persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
        "name": "data", "annotations": {"volume.kubernetes.io/selected-node": "kubesim-worker3",
                                        "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, ns)
    make_pod(plane.api, ns, "waiting", "data")
    leftover = plane.state_dir / "nodes" / "kubesim-worker" / "local-path" / "pvc-old_restart_gone"
    leftover.mkdir(parents=True)
    plane.api.create("persistentvolumes", {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {
        "name": "pvc-old", "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}}, "spec": {
        "storageClassName": "standard", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": str(leftover)},
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": "gone", "uid": "0000"}}})
    mgr = start_controllers(plane)
    try:
        assert scheduled(plane.api, ns, "waiting") == "kubesim-worker3"
        assert bound_volume(plane.api, ns, "data")["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
            "matchExpressions"][0]["values"] == ["kubesim-worker3"]
        wait_for("the leftover Released volume to be reclaimed",
                 lambda: "pvc-old" not in {v["metadata"]["name"] for v in plane.api.list("persistentvolumes")[0]})
        assert not leftover.exists()
    finally:
        force_delete(plane.api, ns, "waiting")
        mgr.stop()
        plane.api.close()
