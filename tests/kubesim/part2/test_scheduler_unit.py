"""The scheduler's pure decision logic (D1, D3, C3, C5): filters, messages, volume plans.

IDs: D1 (filters, FailedScheduling text), D3 (cordon), C1/C3 (WaitForFirstConsumer plan), C2 (one
node at a time for the shared class), C5 (volume node affinity conflict).
"""

from __future__ import annotations

from typing import Any

from kubesim.controllers import scheduler_plugins as sp
from kubesim.controllers import volumes_common as vc

STANDARD = vc.ClassInfo("standard", vc.LOCAL_PATH_PROVISIONER, "Delete", True)
SHARED = vc.ClassInfo("shared", vc.SHARED_PROVISIONER, "Delete", True)
CLASSES = {"standard": STANDARD, "shared": SHARED}


def node(name: str, *, ready: str = "True", unschedulable: bool = False, taints: list[dict[str, Any]] | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {vc.HOSTNAME_LABEL: name, **(labels or {})}},
            "spec": {"unschedulable": unschedulable, "taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str, *, claims: tuple[str, ...] = (), node_name: str = "", phase: str = "Pending",
        ns: str = "ns", **spec: Any) -> dict[str, Any]:
    volumes = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes,
                     "nodeName": node_name, **spec},
            "status": {"phase": phase}}


def claim(name: str, klass: str = "standard", *, volume: str = "", selected: str = "",
          modes: tuple[str, ...] = ("ReadWriteOnce",), ns: str = "ns") -> dict[str, Any]:
    ann = {}
    if volume:
        ann[vc.ANN_BIND_COMPLETED] = "yes"
    if selected:
        ann[vc.ANN_SELECTED_NODE] = selected
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "annotations": ann},
            "spec": {"storageClassName": klass, "accessModes": list(modes), "volumeName": volume,
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound" if volume else "Pending"}}


def local_pv(name: str, on: str, *, klass: str = "standard", size: str = "1Gi",
             claim_ref: dict[str, Any] | None = None, phase: str = "Available") -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"storageClassName": klass, "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": f"/x/{name}"}, "claimRef": claim_ref,
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": vc.HOSTNAME_LABEL, "operator": "In", "values": [on]}]}]}}},
            "status": {"phase": phase}}


NODES = [node("kubesim-worker"), node("kubesim-worker2"), node("kubesim-worker3")]


def view(*, nodes: list[dict[str, Any]] | None = None, pods: list[dict[str, Any]] | None = None,
         claims: list[dict[str, Any]] | None = None, pvs: list[dict[str, Any]] | None = None,
         assumed: dict[str, str] | None = None) -> sp.ClusterView:
    return sp.ClusterView(
        nodes=NODES if nodes is None else nodes, pods=pods or [],
        claims={(vc.namespace_of(c), vc.name_of(c)): c for c in claims or []},
        volumes={vc.name_of(v): v for v in pvs or []}, classes=CLASSES, assumed=assumed or {})


def test_pod_goes_to_the_node_with_fewest_pods_and_ties_break_by_name() -> None:
    busy = [pod("a", node_name="kubesim-worker"), pod("b", node_name="kubesim-worker3")]
    assert sp.schedule(pod("p"), view(pods=busy)).node == "kubesim-worker2"
    assert sp.schedule(pod("p"), view()).node == "kubesim-worker"


def test_terminal_pods_do_not_count_for_spreading() -> None:
    done = [pod("a", node_name="kubesim-worker", phase="Succeeded")]
    assert sp.schedule(pod("p"), view(pods=done)).node == "kubesim-worker"


def test_cordoned_and_not_ready_nodes_are_skipped_with_upstream_reasons() -> None:
    nodes = [node("kubesim-worker", unschedulable=True,
                  taints=[{"key": vc.UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}]),
             node("kubesim-worker2", ready="Unknown"), node("kubesim-worker3", ready="False")]
    decision = sp.schedule(pod("p"), view(nodes=nodes))
    assert decision.node is None
    assert decision.message == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had untolerated taint(s). "
        "no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful "
        "for scheduling.")


def test_tolerating_the_unschedulable_taint_allows_a_cordoned_node() -> None:
    nodes = [node("kubesim-worker", unschedulable=True)]
    tolerant = pod("p", tolerations=[{"key": vc.UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}])
    assert sp.schedule(tolerant, view(nodes=nodes)).node == "kubesim-worker"


def test_taints_need_matching_tolerations() -> None:
    tainted = [node("kubesim-worker", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])]
    assert sp.schedule(pod("p"), view(nodes=tainted)).node is None
    equal = pod("p", tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}])
    assert sp.schedule(equal, view(nodes=tainted)).node == "kubesim-worker"
    wrong_value = pod("p", tolerations=[{"key": "gpu", "operator": "Equal", "value": "no"}])
    assert sp.schedule(wrong_value, view(nodes=tainted)).node is None
    wildcard = pod("p", tolerations=[{"operator": "Exists"}])
    assert sp.schedule(wildcard, view(nodes=tainted)).node == "kubesim-worker"


def test_prefer_no_schedule_taints_do_not_filter() -> None:
    soft = [node("kubesim-worker", taints=[{"key": "x", "effect": "PreferNoSchedule"}])]
    assert sp.schedule(pod("p"), view(nodes=soft)).node == "kubesim-worker"


def test_node_selector_and_required_node_affinity_filter_nodes() -> None:
    nodes = [node("kubesim-worker"), node("kubesim-worker2", labels={"disk": "ssd"})]
    selected = pod("p", nodeSelector={"disk": "ssd"})
    assert sp.schedule(selected, view(nodes=nodes)).node == "kubesim-worker2"
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]}}}
    assert sp.schedule(pod("q", affinity=affinity), view(nodes=nodes)).node == "kubesim-worker"
    nowhere = sp.schedule(pod("r", nodeSelector={"disk": "nvme"}), view(nodes=nodes))
    assert nowhere.message.startswith("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")


def test_host_port_conflicts_are_preemptable_failures() -> None:
    ports = {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
    running = [pod("a", node_name="kubesim-worker", **ports)]
    decision = sp.schedule(pod("p", **ports), view(nodes=[node("kubesim-worker")], pods=running))
    assert decision.message == (
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. "
        "no new claims to deallocate, preemption: 0/1 nodes are available: 1 No preemption victims found "
        "for incoming pod.")
    other_ip = {"containers": [{"name": "c", "image": "busybox",
                                "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}]}]}
    specific = [pod("a", node_name="kubesim-worker", containers=[{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.3"}]}])]
    assert sp.schedule(pod("p", **other_ip), view(nodes=[node("kubesim-worker")], pods=specific)).node


def test_bound_local_volume_pins_the_pod_to_its_node() -> None:
    pv = local_pv("pvc-1", "kubesim-worker2", claim_ref={"name": "data", "namespace": "ns", "uid": "uid-data"},
                  phase="Bound")
    decision = sp.schedule(pod("p", claims=("data",)), view(claims=[claim("data", volume="pvc-1")], pvs=[pv]))
    assert decision.node == "kubesim-worker2"
    assert decision.plan.all_bound


def test_local_volume_on_a_cordoned_node_names_the_volume_node_affinity_conflict() -> None:
    """C5: the claim's node is cordoned, every other node conflicts with the PV's node affinity."""
    nodes = [node("kubesim-worker"), node("kubesim-worker2", unschedulable=True), node("kubesim-worker3")]
    pv = local_pv("pvc-1", "kubesim-worker2", claim_ref={"name": "data", "namespace": "ns"}, phase="Bound")
    decision = sp.schedule(pod("p", claims=("data",)),
                           view(nodes=nodes, claims=[claim("data", volume="pvc-1")], pvs=[pv]))
    assert decision.node is None
    assert decision.message == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match PersistentVolume's node "
        "affinity. no new claims to deallocate, preemption: 0/3 nodes are available: 3 Preemption is not helpful "
        "for scheduling.")


def test_local_volume_whose_node_is_gone_conflicts_everywhere() -> None:
    pv = local_pv("pvc-1", "kubesim-gone", phase="Bound")
    decision = sp.schedule(pod("p", claims=("data",)), view(claims=[claim("data", volume="pvc-1")], pvs=[pv]))
    assert "3 node(s) didn't match PersistentVolume's node affinity." in decision.message


def test_unbound_wait_for_first_consumer_claim_is_provisioned_on_the_chosen_node() -> None:
    decision = sp.schedule(pod("p", claims=("data",)), view(claims=[claim("data")]))
    assert decision.node == "kubesim-worker"
    assert decision.plan.provision == ("data",)


def test_claim_already_annotated_for_another_node_keeps_the_pod_there() -> None:
    decision = sp.schedule(pod("p", claims=("data",)), view(claims=[claim("data", selected="kubesim-worker3")]))
    assert decision.node == "kubesim-worker3"
    assert decision.plan.waiting == ("data",)
    assert not decision.plan.provision


def test_static_volume_matching_size_class_and_node_is_prebound() -> None:
    small = local_pv("small", "kubesim-worker3", size="500Mi")
    fits = local_pv("fits", "kubesim-worker3", size="2Gi")
    bigger = local_pv("bigger", "kubesim-worker3", size="5Gi")
    decision = sp.schedule(pod("p", claims=("data",)), view(claims=[claim("data")], pvs=[small, fits, bigger]))
    assert decision.node == "kubesim-worker"  # provisioning is possible anywhere; spreading picks the first
    only_worker3 = [node("kubesim-worker3")]
    decision = sp.schedule(pod("p", claims=("data",)),
                           view(nodes=only_worker3, claims=[claim("data")], pvs=[small, fits, bigger]))
    assert decision.plan.static == (("data", "fits"),)


def test_missing_or_terminating_claims_fail_in_prefilter() -> None:
    missing = sp.schedule(pod("p", claims=("data",)), view())
    assert missing.message == (
        '0/3 nodes are available: persistentvolumeclaim "data" not found. no new claims to deallocate, '
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    dying = claim("data")
    dying["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert 'persistentvolumeclaim "data" is being deleted.' in sp.schedule(
        pod("p", claims=("data",)), view(claims=[dying])).message


def test_unbound_immediate_claim_blocks_scheduling() -> None:
    immediate = vc.ClassInfo("fast", "example.com/x", "Delete", False)
    v = sp.ClusterView(nodes=NODES, pods=[], claims={("ns", "data"): claim("data", "fast")}, volumes={},
                       classes={"fast": immediate})
    assert "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims." in sp.schedule(
        pod("p", claims=("data",)), v).message


def test_shared_volume_is_used_by_one_node_at_a_time() -> None:
    """C2: while a live pod on worker2 uses the shared claim, other nodes are refused; once it is gone they are not."""
    shared_claim = claim("data", "shared", volume="pvc-s")
    pv = {"metadata": {"name": "pvc-s", "annotations": {vc.ANN_DYNAMICALLY_PROVISIONED: vc.SHARED_PROVISIONER}},
          "spec": {"storageClassName": "shared", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "hostPath": {"path": "/x"}}, "status": {"phase": "Bound"}}
    old = pod("old", claims=("data",), node_name="kubesim-worker2")
    old["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"  # terminating still holds the volume
    nodes = [node("kubesim-worker"), node("kubesim-worker2", unschedulable=True)]
    held = sp.schedule(pod("new", claims=("data",)), view(nodes=nodes, pods=[old], claims=[shared_claim], pvs=[pv]))
    assert held.node is None
    assert f"1 {sp.ERR_MULTI_ATTACH}" in held.message
    assert "1 node(s) were unschedulable" in held.message
    moved = sp.schedule(pod("new", claims=("data",)), view(nodes=nodes, claims=[shared_claim], pvs=[pv]))
    assert moved.node == "kubesim-worker"
    failed = pod("old", claims=("data",), node_name="kubesim-worker2", phase="Failed")
    assert sp.schedule(pod("new", claims=("data",)),
                       view(nodes=nodes, pods=[failed], claims=[shared_claim], pvs=[pv])).node == "kubesim-worker"


def test_shared_volume_follows_an_assumed_pod_too() -> None:
    shared_claim = claim("data", "shared", selected="kubesim-worker3")
    other = pod("first", claims=("data",))
    decision = sp.schedule(pod("second", claims=("data",)),
                           view(pods=[other], claims=[shared_claim], assumed={"ns/first": "kubesim-worker3"}))
    assert decision.node == "kubesim-worker3"


def test_local_volume_allows_many_pods_on_its_node() -> None:
    pv = local_pv("pvc-1", "kubesim-worker", claim_ref={"name": "data", "namespace": "ns"}, phase="Bound")
    first = pod("a", claims=("data",), node_name="kubesim-worker")
    decision = sp.schedule(pod("b", claims=("data",)),
                           view(pods=[first], claims=[claim("data", volume="pvc-1")], pvs=[pv]))
    assert decision.node == "kubesim-worker"


def test_no_nodes_at_all() -> None:
    assert sp.schedule(pod("p"), view(nodes=[])).message == "no nodes available to schedule pods"


def test_node_selector_terms_are_ored_and_empty_terms_match_nothing() -> None:
    n = node("kubesim-worker", labels={"zone": "a", "rank": "5"})
    assert vc.node_selector_matches({"nodeSelectorTerms": [{}]}, n) is False
    assert vc.node_selector_matches({"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
        {"matchExpressions": [{"key": "rank", "operator": "Gt", "values": ["3"]}]}]}, n)
    assert vc.node_selector_matches({"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["kubesim-worker"]}]}]}, n)
    assert not vc.node_selector_matches({"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}]}, n)


def test_heartbeat_only_node_updates_do_not_count_as_schedulability_changes() -> None:
    from kubesim.controllers import scheduler

    before = node("kubesim-worker")
    heartbeat = node("kubesim-worker")
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:10Z"
    assert scheduler.node_schedulability(before) == scheduler.node_schedulability(heartbeat)
    for changed in (node("kubesim-worker", unschedulable=True), node("kubesim-worker", ready="Unknown"),
                    node("kubesim-worker", labels={"disk": "ssd"}),
                    node("kubesim-worker", taints=[{"key": "k", "effect": "NoSchedule"}])):
        assert scheduler.node_schedulability(before) != scheduler.node_schedulability(changed)


def test_only_unbound_live_default_scheduler_pods_are_pending() -> None:
    from kubesim.controllers import scheduler

    assert scheduler.is_pending(pod("p"))
    assert not scheduler.is_pending(pod("p", node_name="kubesim-worker"))
    assert not scheduler.is_pending(pod("p", phase="Failed"))
    assert not scheduler.is_pending(pod("p", schedulerName="my-scheduler"))
    dying = pod("p")
    dying["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not scheduler.is_pending(dying)
