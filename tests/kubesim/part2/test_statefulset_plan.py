"""The StatefulSet update algorithm on hand-built objects (no cluster): B1-B8 decisions.

Each test names the docs/kubesim.md IDs it covers. The planner is `kubesim.controllers.statefulset_control`.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from kubesim.apiserver import selectors
from kubesim.controllers import revisions as rv
from kubesim.controllers import statefulset_control as ctl
from kubesim.controllers import statefulset_refs as refs
from kubesim.controllers import statefulset_utils as su

Obj = dict[str, Any]
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
LONG_AGO = "2026-01-01T11:00:00Z"


def make_set(replicas: int = 3, *, parallel: bool = False, image: str = "pause:1", partition: int = 0,
             on_delete: bool = False, claims: bool = True, start: int | None = None, min_ready: int = 0,
             when_deleted: str = "Retain", when_scaled: str = "Retain", max_unavailable: int | str = 1) -> Obj:
    strategy: Obj = ({"type": "OnDelete"} if on_delete else
                     {"type": "RollingUpdate", "rollingUpdate": {"partition": partition,
                                                                 "maxUnavailable": max_unavailable}})
    spec: Obj = {
        "replicas": replicas, "serviceName": "svc", "minReadySeconds": min_ready,
        "podManagementPolicy": "Parallel" if parallel else "OrderedReady",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "x"}},
                     "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": image}]}},
        "updateStrategy": strategy, "revisionHistoryLimit": 2,
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": when_scaled},
    }
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data", "labels": {"kind": "ckpt"}},
                                         "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}]
    if start is not None:
        spec["ordinals"] = {"start": start}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 4}, "spec": spec}


def revision_of(sts: Obj, number: int = 1) -> Obj:
    rev = rv.new_revision(sts, number, 0)
    rev["metadata"]["uid"] = f"rev-{number}"
    return rev


def running_pod(sts: Obj, ordinal: int, revision: Obj, *, ready: bool = True, phase: str = "Running",
                ready_since: str = LONG_AGO, terminating: bool = False) -> Obj:
    pod = su.new_pod(rv.apply_revision(sts, revision), ordinal, su.name_of(revision))
    pod["metadata"]["uid"] = f"pod-{ordinal}"
    pod["status"] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_since}]}
    if terminating:
        pod["metadata"]["deletionTimestamp"] = LONG_AGO
    return pod


def plan(sts: Obj, pods: list[Obj], current: Obj, update: Obj | None = None,
         claims: dict[str, Obj] | None = None) -> ctl.Plan:
    return ctl.plan_update(ctl.Inputs(sts, pods, claims or {}, current, update or current, 0, NOW))


def ops(p: ctl.Plan) -> list[ctl.Op]:
    return [op for stage in p.stages for task in stage.tasks for op in task]


def summary(p: ctl.Plan) -> list[str]:
    out = []
    for op in ops(p):
        if isinstance(op, ctl.CreatePod):
            out.append(f"create {su.name_of(op.pod)}")
        elif isinstance(op, ctl.DeletePod):
            out.append(f"delete {su.name_of(op.pod)} ({op.why})")
        elif isinstance(op, ctl.EnsureClaims):
            out += [f"claim {su.name_of(c)}" for c in op.create] + [f"blocked {n}" for n in op.being_deleted]
        elif isinstance(op, ctl.UpdateClaim):
            out.append(f"own {su.name_of(op.claim)}")
        else:
            out.append(f"update {su.name_of(op.pod)}")
    return out


def test_ordered_ready_creates_only_the_lowest_missing_ordinal_with_its_claim_first() -> None:
    """B1 B2 B3: claims before the pod, one pod at a time, identity labels, hostname/subdomain, owner."""
    sts = make_set()
    rev = revision_of(sts)
    p = plan(sts, [], rev)
    assert summary(p) == ["claim data-web-0", "create web-0"]
    pod = next(op.pod for op in ops(p) if isinstance(op, ctl.CreatePod))
    claim = next(op.create[0] for op in ops(p) if isinstance(op, ctl.EnsureClaims))
    assert pod["metadata"]["labels"] == {"app": "web", "tier": "x", su.POD_NAME_LABEL: "web-0",
                                         su.POD_INDEX_LABEL: "0", su.REVISION_LABEL: su.name_of(rev)}
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-0", "svc")
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]
    assert su.controller_ref(pod) == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                      "uid": "set-uid", "controller": True, "blockOwnerDeletion": True}
    # claim labels: the claim template's labels plus the selector's matchLabels (not the pod template's)
    assert claim["metadata"]["labels"] == {"kind": "ckpt", "app": "web"}
    assert "status" not in claim
    assert "ownerReferences" not in claim["metadata"]


def test_ordered_ready_waits_for_running_and_ready_before_the_next_ordinal() -> None:
    """B3: pod 1 only once pod 0 is Running and Ready."""
    sts = make_set()
    rev = revision_of(sts)
    assert summary(plan(sts, [running_pod(sts, 0, rev, ready=False)], rev)) == []
    assert summary(plan(sts, [running_pod(sts, 0, rev, phase="Pending", ready=False)], rev,
                        claims={"data-web-0": {"metadata": {"name": "data-web-0"}}})) == []
    assert summary(plan(sts, [running_pod(sts, 0, rev)], rev)) == ["claim data-web-1", "create web-1"]


def test_ordered_ready_waits_for_min_ready_seconds_availability() -> None:
    """B3: with minReadySeconds a Ready pod must stay Ready that long before its successor is created."""
    sts = make_set(min_ready=30)
    rev = revision_of(sts)
    just_ready = running_pod(sts, 0, rev, ready_since=(NOW - datetime.timedelta(seconds=5)).isoformat())
    p = plan(sts, [just_ready], rev)
    assert summary(p) == []
    assert p.status["readyReplicas"] == 1
    assert p.status["availableReplicas"] == 0
    assert summary(plan(sts, [running_pod(sts, 0, rev)], rev)) == ["claim data-web-1", "create web-1"]


def test_parallel_creates_every_missing_pod_in_one_burst_even_with_unhealthy_pods() -> None:
    """B3: Parallel ignores ordering and health."""
    sts = make_set(parallel=True, claims=False)
    rev = revision_of(sts)
    p = plan(sts, [running_pod(sts, 1, rev, ready=False)], rev)
    assert summary(p) == ["create web-0", "create web-2"]
    assert all(stage.burst for stage in p.stages)


def test_ordered_scale_down_deletes_the_highest_ordinal_first_one_at_a_time() -> None:
    """B3: 3 → 1 deletes web-2 only; with web-1 terminating nothing more happens."""
    sts = make_set(replicas=1)
    rev = revision_of(sts)
    pods = [running_pod(sts, i, rev) for i in range(3)]
    assert summary(plan(sts, pods, rev)) == ["delete web-2 (scale-down)"]
    pods[2] = running_pod(sts, 2, rev, terminating=True)
    assert summary(plan(sts, pods, rev)) == []


def test_ordered_scale_down_halts_while_a_lower_pod_is_unhealthy() -> None:
    """B3 (F ordered scaling): with every pod unready, scale-down waits; only the first unhealthy pod may go."""
    sts = make_set(replicas=0)
    rev = revision_of(sts)
    unready = [running_pod(sts, i, rev, ready=False) for i in range(3)]
    assert summary(plan(sts, unready, rev)) == []
    only_top_unready = [running_pod(sts, 0, rev), running_pod(sts, 1, rev), running_pod(sts, 2, rev, ready=False)]
    assert summary(plan(sts, only_top_unready, rev)) == ["delete web-2 (scale-down)"]


def test_parallel_scale_down_deletes_all_condemned_pods_at_once() -> None:
    """B3: burst scale-down."""
    sts = make_set(replicas=1, parallel=True, claims=False)
    rev = revision_of(sts)
    pods = [running_pod(sts, i, rev, ready=False) for i in range(4)]
    assert summary(plan(sts, pods, rev)) == ["delete web-3 (scale-down)", "delete web-2 (scale-down)",
                                              "delete web-1 (scale-down)"]


def test_failed_pod_is_deleted_and_recreated_only_after_the_old_object_is_gone() -> None:
    """B4: a Failed pod is deleted; while it is terminating nothing is created in its place."""
    sts = make_set(claims=False)
    rev = revision_of(sts)
    failed = running_pod(sts, 0, rev, phase="Failed", ready=False)
    assert summary(plan(sts, [failed], rev)) == ["delete web-0 (failed)"]
    failed["metadata"]["deletionTimestamp"] = LONG_AGO
    assert summary(plan(sts, [failed], rev)) == []
    assert summary(plan(sts, [], rev)) == ["create web-0"]


def test_terminating_claim_blocks_pod_creation() -> None:
    """B8: `pvc data-web-0 is being deleted`."""
    sts = make_set()
    rev = revision_of(sts)
    claims = {"data-web-0": {"metadata": {"name": "data-web-0", "namespace": "ns", "deletionTimestamp": LONG_AGO}}}
    p = plan(sts, [], rev, claims=claims)
    assert summary(p) == ["blocked data-web-0", "create web-0"]
    first = ops(p)[0]
    assert isinstance(first, ctl.EnsureClaims)
    assert first.for_create


def test_rolling_update_replaces_the_highest_ordinal_first_down_to_the_partition() -> None:
    """B5: one pod at a time (maxUnavailable 1), highest first; partition protects lower ordinals."""
    old_set = make_set()
    old = revision_of(old_set, 1)
    new_set = make_set(image="pause:2")
    new = revision_of(new_set, 2)
    pods = [running_pod(old_set, i, old) for i in range(3)]
    p = plan(new_set, pods, old, new)
    assert summary(p) == ["delete web-2 (update)"]
    assert p.status["currentReplicas"] == 2
    assert p.status["updatedReplicas"] == 0
    # web-2 replaced at the new revision but not Ready yet: wait
    pods[2] = running_pod(new_set, 2, new, ready=False)
    assert summary(plan(new_set, pods, old, new)) == []
    pods[2] = running_pod(new_set, 2, new)
    assert summary(plan(new_set, pods, old, new)) == ["delete web-1 (update)"]
    # partition 2: web-2 is updated, web-0 and web-1 stay at the old revision
    part_set = make_set(image="pause:2", partition=2)
    assert summary(plan(part_set, pods, old, new)) == []


def test_missing_pod_below_the_partition_is_recreated_at_the_current_revision() -> None:
    """B5 (F phased update): a deleted pod below the partition comes back at the old revision."""
    old_set = make_set(claims=False)
    old = revision_of(old_set, 1)
    new_set = make_set(image="pause:2", partition=2, claims=False)
    new = revision_of(new_set, 2)
    pods = [running_pod(old_set, 1, old), running_pod(new_set, 2, new)]
    created = next(op.pod for op in ops(plan(new_set, pods, old, new)) if isinstance(op, ctl.CreatePod))
    assert su.name_of(created) == "web-0"
    assert su.pod_revision(created) == su.name_of(old)
    assert created["spec"]["containers"][0]["image"] == "pause:1"


def test_max_unavailable_lets_a_rolling_update_replace_several_pods_at_once() -> None:
    """B5: maxUnavailable 2 deletes the two highest outdated pods together."""
    old_set = make_set(claims=False)
    old = revision_of(old_set, 1)
    new_set = make_set(image="pause:2", claims=False, max_unavailable="67%")
    new = revision_of(new_set, 2)
    pods = [running_pod(old_set, i, old) for i in range(3)]
    assert summary(plan(new_set, pods, old, new)) == ["delete web-2 (update)", "delete web-1 (update)"]


def test_on_delete_never_replaces_outdated_pods_but_recreates_deleted_ones_at_the_update_revision() -> None:
    """B5: OnDelete."""
    old_set = make_set(on_delete=True, claims=False)
    old = revision_of(old_set, 1)
    new_set = make_set(on_delete=True, image="pause:2", claims=False)
    new = revision_of(new_set, 2)
    pods = [running_pod(old_set, i, old) for i in range(3)]
    assert summary(plan(new_set, pods, old, new)) == []
    created = [op.pod for op in ops(plan(new_set, pods[:2], old, new)) if isinstance(op, ctl.CreatePod)]
    assert [su.pod_revision(p) for p in created] == [su.name_of(new)]


def test_status_counts_and_a_finished_rolling_update_promotes_the_update_revision() -> None:
    """B5: replicas/ready/current/updated/available, observedGeneration, completeRollingUpdate."""
    old_set = make_set(claims=False)
    old = revision_of(old_set, 1)
    new_set = make_set(image="pause:2", claims=False)
    new = revision_of(new_set, 2)
    pods = [running_pod(old_set, 0, old), running_pod(new_set, 1, new), running_pod(new_set, 2, new, ready=False)]
    status = plan(new_set, pods, old, new).status
    assert {k: status[k] for k in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                                   "availableReplicas", "observedGeneration")} == {
        "replicas": 3, "readyReplicas": 2, "currentReplicas": 1, "updatedReplicas": 2, "availableReplicas": 2,
        "observedGeneration": 4}
    assert status["currentRevision"] == su.name_of(old)
    done = [running_pod(new_set, i, new) for i in range(3)]
    status = plan(new_set, done, old, new).status
    assert status["currentRevision"] == status["updateRevision"] == su.name_of(new)
    assert status["currentReplicas"] == 3


def test_start_ordinal_moves_the_range_and_condemns_pods_outside_it() -> None:
    """B1: spec.ordinals.start = 2 with 2 replicas wants web-2, web-3; web-0 and web-1 go (highest first)."""
    sts = make_set(replicas=2, start=2, parallel=True, claims=False)
    rev = revision_of(sts)
    pods = [running_pod(sts, 0, rev), running_pod(sts, 1, rev)]
    assert summary(plan(sts, pods, rev)) == ["create web-2", "create web-3", "delete web-1 (scale-down)",
                                              "delete web-0 (scale-down)"]


def test_retention_policy_is_expressed_as_claim_owner_references() -> None:
    """B6: whenDeleted=Delete → set owns live claims; whenScaled=Delete → the condemned pod owns its claim."""
    sts = make_set(replicas=1, when_deleted="Delete", when_scaled="Delete")
    rev = revision_of(sts)
    new_claim = next(op.create[0] for op in ops(plan(sts, [], rev)) if isinstance(op, ctl.EnsureClaims))
    assert [r["uid"] for r in new_claim["metadata"]["ownerReferences"]] == ["set-uid"]
    pods = [running_pod(sts, 0, rev), running_pod(sts, 1, rev)]
    claims = {f"data-web-{i}": {"metadata": {"name": f"data-web-{i}", "namespace": "ns", "ownerReferences": [
        su.controller_ref_to(sts, "apps/v1", "StatefulSet")]}} for i in range(2)}
    p = plan(sts, pods, rev, claims=claims)
    updates = [op for op in ops(p) if isinstance(op, ctl.UpdateClaim)]
    assert [su.name_of(u.claim) for u in updates] == ["data-web-1"]
    assert updates[0].claim["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "pod-1", "controller": True,
         "blockOwnerDeletion": True}]
    # Retain/Retain: no refs at all, and an existing set ref is scrubbed
    keep = make_set(replicas=2)
    keep_claims = {"data-web-0": {"metadata": {"name": "data-web-0", "ownerReferences": [
        su.controller_ref_to(keep, "apps/v1", "StatefulSet")]}}}
    fixes = [op for op in ops(plan(keep, [running_pod(keep, 0, rev), running_pod(keep, 1, rev)], rev,
                                   claims=keep_claims)) if isinstance(op, ctl.UpdateClaim)]
    assert [f.claim["metadata"]["ownerReferences"] for f in fixes] == [[]]


def test_claim_still_owned_by_a_previous_pod_blocks_recreation_with_when_scaled_delete() -> None:
    """B6: scale 3→1→3 with whenScaled=Delete waits until GC removed the old claim."""
    sts = make_set(replicas=3, when_scaled="Delete", parallel=True)
    rev = revision_of(sts)
    old_ref = {"apiVersion": "v1", "kind": "Pod", "name": "web-2", "uid": "old-pod-2", "controller": True}
    claims = {"data-web-2": {"metadata": {"name": "data-web-2", "ownerReferences": [old_ref]}}}
    pods = [running_pod(sts, 0, rev), running_pod(sts, 1, rev)]
    assert summary(plan(sts, pods, rev, claims={**claims, "data-web-0": {"metadata": {"name": "data-web-0"}},
                                                "data-web-1": {"metadata": {"name": "data-web-1"}}})) == []


def test_identity_repair_updates_a_pod_missing_its_pod_name_label() -> None:
    """B1: identityMatches requires the pod-name label; the controller puts it back."""
    sts = make_set(claims=False, replicas=1)
    rev = revision_of(sts)
    pod = running_pod(sts, 0, rev)
    del pod["metadata"]["labels"][su.POD_NAME_LABEL]
    p = plan(sts, [pod], rev)
    assert summary(p) == ["update web-0"]
    assert next(op.pod for op in ops(p) if isinstance(op, ctl.UpdatePod))["metadata"]["labels"][
        su.POD_NAME_LABEL] == "web-0"


def test_adoption_takes_matching_orphans_and_releases_pods_whose_labels_stopped_matching() -> None:
    """B7: ControllerRefManager semantics with the `<set>-<n>` name filter."""
    sts = make_set(claims=False)
    rev = revision_of(sts)
    owned = running_pod(sts, 0, rev)
    orphan = running_pod(sts, 1, rev)
    orphan["metadata"]["ownerReferences"] = []
    wrong_name = running_pod(sts, 2, rev)
    wrong_name["metadata"].update(name="other-2", ownerReferences=[])
    relabelled = running_pod(sts, 3, rev)
    relabelled["metadata"]["labels"] = {}
    foreign = running_pod(sts, 4, rev)
    foreign["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "uid": "x", "controller": True}]
    selector = selectors.label_selector_from_api(sts["spec"]["selector"])
    claim = refs.classify(sts, [owned, orphan, wrong_name, relabelled, foreign], selector)
    assert [su.name_of(p) for p in claim.owned] == ["web-0"]
    assert [su.name_of(p) for p in claim.adopt] == ["web-1"]
    assert [su.name_of(p) for p in claim.release] == ["web-3"]
    assert refs.release_patch(sts, relabelled)["metadata"]["ownerReferences"] == [
        {"$patch": "delete", "uid": "set-uid"}]


def test_revision_names_are_the_set_name_and_a_safe_encoded_fnv1_hash() -> None:
    """B5: `<set>-<hash>`; FNV-1 (not 1a); the collision count changes the name."""
    assert rv.fnv1_32(b"") == 0x811C9DC5
    assert rv.fnv1_32(b"a") == 0x050C5D7E
    assert rv.safe_encode("0123456789") == "456789bcdf"  # why real names look like web-5f8c7b6d9d
    sts = make_set()
    a, b = rv.new_revision(sts, 1, 0), rv.new_revision(copy.deepcopy(sts), 1, 0)
    assert su.name_of(a) == su.name_of(b)
    assert su.name_of(a).startswith("web-")
    assert a["metadata"]["labels"][rv.HASH_LABEL] == su.name_of(a).removeprefix("web-")
    assert su.name_of(rv.new_revision(sts, 1, 1)) != su.name_of(a)
    assert a["data"]["spec"]["template"]["$patch"] == "replace"
    restored = rv.apply_revision(make_set(image="pause:9"), a)
    assert restored["spec"]["template"] == sts["spec"]["template"]


def test_changing_the_template_back_reuses_the_old_revision_as_a_rollback() -> None:
    """B5 (F rollback): equal data → the old ControllerRevision with a bumped revision number."""
    v1 = make_set()
    v2 = make_set(image="pause:2")
    r1, r2 = revision_of(v1, 1), revision_of(v2, 2)
    assert ctl.choose_revisions(v2, [r1, r2], 0).action == "reuse"
    choice = ctl.choose_revisions(v1, [r1, r2], 0)
    assert choice.action == "bump"
    assert su.name_of(choice.update) == su.name_of(r1)
    assert choice.update["revision"] == 3
    fresh = ctl.choose_revisions(make_set(image="pause:3"), [r1, r2], 0)
    assert fresh.action == "create"
    assert fresh.update["revision"] == 3


def test_history_truncation_keeps_live_revisions_and_the_newest_history() -> None:
    """B5: revisionHistoryLimit (2 here) counts only revisions no pod and no status refers to."""
    sts = make_set()
    revs = [revision_of(make_set(image=f"pause:{i}"), i) for i in range(1, 7)]
    live = {su.name_of(revs[0]), su.name_of(revs[5])}
    doomed = rv.revisions_to_delete(sts, revs, live)
    assert [r["revision"] for r in doomed] == [2, 3]


def test_a_claim_another_controller_manages_keeps_its_owner_and_raises_a_warning() -> None:
    """B6 (F: PVC retention when another controller owns the claim)."""
    sts = make_set(replicas=1, when_deleted="Delete", when_scaled="Delete")
    rev = revision_of(sts)
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "cm-uid", "controller": True}
    claims = {"data-web-0": {"metadata": {"name": "data-web-0", "ownerReferences": [foreign]}}}
    p = plan(sts, [], rev, claims=claims)
    assert [type(op).__name__ for op in ops(p)] == ["ConflictingController", "CreatePod"]
    condemned = running_pod(sts, 1, rev)
    claims["data-web-1"] = {"metadata": {"name": "data-web-1", "ownerReferences": [foreign]}}
    assert not [op for op in ops(plan(sts, [running_pod(sts, 0, rev), condemned], rev, claims=claims))
                if isinstance(op, ctl.UpdateClaim)]
