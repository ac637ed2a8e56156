"""The StatefulSet update algorithm as a pure planner: (set, pods, claims, revisions, now) → a Plan.

This is upstream `stateful_set_control.go` updateStatefulSet, split so the decisions can be
tested without a cluster: the planner returns what to do, `statefulset.py` does it.

A Plan is a sequence of stages run in order; the first failure stops the rest (upstream returns
the error and the sync is retried with backoff):

1. live replicas (ordinals [start, start+replicas)) — create missing pods (claims first), replace
   Failed/Succeeded ones, repair identity/storage/claim ownership. OrderedReady ("monotonic")
   walks them in ordinal order and stops at the first pod it had to create, or that is
   terminating, not Running+Ready, or not yet available (minReadySeconds); Parallel runs every
   replica's task in slow-start batches 1, 2, 4, … (so a failing create stops a burst early);
2. claim ownership of condemned pods (retention policy whenScaled);
3. condemned pods (ordinals outside the range), highest ordinal first; OrderedReady deletes one
   and stops, and will not delete a healthy-looking pod while a lower one is unhealthy, unless the
   condemned pod is itself the first unhealthy one; Parallel deletes them all;
4. rolling update (not for OnDelete): with maxUnavailable M (default 1; MaxUnavailableStatefulSet
   is on by default in current releases), if fewer than M live replicas are unavailable, delete up
   to M-unavailable pods not at the update revision, from the highest ordinal down to the
   partition. Deleted pods come back in stage 1 at the right revision.

The status is computed from the pods as they are *before* the plan runs (as upstream does), then
completeRollingUpdate promotes updateRevision to currentRevision once every replica is updated
and ready.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from kubesim.controllers import revisions as rv
from kubesim.controllers import statefulset_utils as su

Obj = dict[str, Any]


# --- operations ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EnsureClaims:
    """createPersistentVolumeClaims: create the missing claims; a claim being deleted is an error.

    `for_create` marks the claims step of creating a pod: its failure is then reported as the
    pod's FailedCreate, as upstream's CreateStatefulPod does.
    """

    pod_name: str
    create: tuple[Obj, ...]
    being_deleted: tuple[str, ...]
    for_create: bool


@dataclasses.dataclass(frozen=True)
class CreatePod:
    pod: Obj


@dataclasses.dataclass(frozen=True)
class UpdatePod:
    pod: Obj


@dataclasses.dataclass(frozen=True)
class DeletePod:
    pod: Obj
    why: Literal["failed", "scale-down", "update"]


@dataclasses.dataclass(frozen=True)
class UpdateClaim:
    """Rewrite a claim's ownerReferences for the retention policy (`claim` is the full new object)."""

    claim: Obj
    pod_name: str


@dataclasses.dataclass(frozen=True)
class ConflictingController:
    """A claim managed by another controller: its retention policy is ignored (a Warning event upstream)."""

    claim_name: str


Op = EnsureClaims | CreatePod | UpdatePod | DeletePod | UpdateClaim | ConflictingController
Task = tuple[Op, ...]


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    tasks: tuple[Task, ...]
    burst: bool


@dataclasses.dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]
    status: Obj
    """The status to write (after completeRollingUpdate)."""


# --- status ---------------------------------------------------------------------------------------------


def replica_status(pods: Sequence[Mapping[str, Any]], min_ready: int, current: str, update: str,
                   now: datetime.datetime) -> dict[str, int]:
    """computeReplicaStatus; terminating pods count in replicas/ready/available but not current/updated."""
    out = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0}
    for pod in pods:
        created = su.is_created(pod)
        if created:
            out["replicas"] += 1
        if su.is_running_and_ready(pod):
            out["readyReplicas"] += 1
            if su.is_running_and_available(pod, min_ready, now):
                out["availableReplicas"] += 1
        if created and not su.is_terminating(pod):
            revision = su.pod_revision(pod)
            if revision == current:
                out["currentReplicas"] += 1
            if revision == update:
                out["updatedReplicas"] += 1
    return out


def complete_rolling_update(sts: Mapping[str, Any], status: Obj) -> None:
    if (su.update_strategy_type(sts) == "RollingUpdate"
            and status["updatedReplicas"] == su.replicas_of(sts)
            and status["readyReplicas"] == su.replicas_of(sts)
            and status["replicas"] == su.replicas_of(sts)):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


_COMPARED = ("replicas", "currentReplicas", "readyReplicas", "updatedReplicas", "currentRevision",
             "availableReplicas", "updateRevision")


def status_changed(sts: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """inconsistentStatus (plus collisionCount, which upstream writes along with any change)."""
    old = sts.get("status") if isinstance(sts.get("status"), Mapping) else {}
    assert isinstance(old, Mapping)
    if int(status.get("observedGeneration") or 0) > int(old.get("observedGeneration") or 0):
        return True
    for key in _COMPARED:
        default: object = "" if key.endswith("Revision") else 0
        if (old.get(key) or default) != (status.get(key) or default):
            return True
    return int(old.get("collisionCount") or 0) != int(status.get("collisionCount") or 0)


# --- the planner ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Inputs:
    sts: Mapping[str, Any]
    pods: Sequence[Mapping[str, Any]]
    """The pods the set owns after adoption/release (terminating ones included)."""
    claims: Mapping[str, Mapping[str, Any]]
    """The namespace's claims by name."""
    current_revision: Mapping[str, Any]
    update_revision: Mapping[str, Any]
    collision_count: int
    now: datetime.datetime


def _claims_ops_for_create(update_set: Mapping[str, Any], pod: Mapping[str, Any],
                           claims: Mapping[str, Mapping[str, Any]], *, for_create: bool) -> list[Op]:
    """The claims step of creating (or un-pending) a pod, followed by retention ownerRef fixes."""
    ordinal = su.ordinal_of(pod)
    to_create: list[Obj] = []
    deleting: list[str] = []
    updates: list[Op] = []
    for claim in su.new_claims(update_set, ordinal).values():
        name = su.name_of(claim)
        existing = claims.get(name)
        if existing is None:
            fresh = copy.deepcopy(claim)
            refs = su.desired_claim_owner_refs(fresh, update_set, pod)
            if refs:
                fresh["metadata"]["ownerReferences"] = refs
            to_create.append(fresh)
        elif su.is_terminating(existing):
            deleting.append(name)
        else:
            if su.has_unexpected_controller(existing, update_set, pod):
                updates.append(ConflictingController(name))
            if not su.claim_owner_up_to_date(existing, update_set, pod):
                updates.append(_claim_update(existing, update_set, pod))
    ops: list[Op] = []
    if to_create or deleting:
        ops.append(EnsureClaims(su.name_of(pod), tuple(to_create), tuple(deleting), for_create))
    return ops + updates


def _claim_update(claim: Mapping[str, Any], sts: Mapping[str, Any], pod: Mapping[str, Any]) -> UpdateClaim:
    new = copy.deepcopy(dict(claim))
    new.setdefault("metadata", {})["ownerReferences"] = su.desired_claim_owner_refs(claim, sts, pod)
    return UpdateClaim(new, su.name_of(pod))


def _retention_updates(sts: Mapping[str, Any], pod: Mapping[str, Any],
                       claims: Mapping[str, Mapping[str, Any]]) -> list[UpdateClaim]:
    """UpdatePodClaimForRetentionPolicy for an existing pod's existing claims."""
    ops: list[UpdateClaim] = []
    for claim in su.new_claims(sts, su.ordinal_of(pod)).values():
        existing = claims.get(su.name_of(claim))
        if existing is not None and not su.claim_owner_up_to_date(existing, sts, pod):
            ops.append(_claim_update(existing, sts, pod))
    return ops


def _process_replica(inp: Inputs, update_set: Mapping[str, Any], replica: Mapping[str, Any],
                     monotonic: bool) -> tuple[Task, bool]:
    """processReplica: (what to do for this replica, whether an ordered rollout must stop here)."""
    min_ready = su.min_ready_seconds(inp.sts)
    if su.is_failed_or_succeeded(replica):
        if not su.is_terminating(replica):
            return (DeletePod(dict(replica), "failed"),), True
        return (), True  # the replacement is created once the old object is gone
    if not su.is_created(replica):
        if su.claim_is_stale(inp.sts, replica, inp.claims):
            return (), True
        create_ops = [*_claims_ops_for_create(inp.sts, replica, inp.claims, for_create=True), CreatePod(dict(replica))]
        return tuple(create_ops), monotonic
    ops_pending: list[Op] = []
    if su.is_pending(replica):
        ops_pending = _claims_ops_for_create(inp.sts, replica, inp.claims, for_create=False)
        if any(isinstance(op, EnsureClaims) and op.being_deleted for op in ops_pending):
            return tuple(ops_pending), True
    if monotonic and (su.is_terminating(replica) or not su.is_running_and_ready(replica)
                      or not su.is_running_and_available(replica, min_ready, inp.now)):
        return tuple(ops_pending), True
    pending_claims = {su.name_of(op.claim) for op in ops_pending if isinstance(op, UpdateClaim)}
    retention_ops = [op for op in _retention_updates(update_set, replica, inp.claims)
                     if su.name_of(op.claim) not in pending_claims]
    identity_ok = su.identity_matches(inp.sts, replica)
    storage_ok = su.storage_matches(inp.sts, replica)
    if identity_ok and storage_ok and not retention_ops:
        return tuple(ops_pending), False
    ops: list[Op] = list(ops_pending)
    fixed: Obj = copy.deepcopy(dict(replica))
    if not identity_ok:
        su.update_identity(update_set, fixed)
    if not storage_ok:
        su.update_storage(update_set, fixed)
        ops += [op for op in _claims_ops_for_create(update_set, fixed, inp.claims, for_create=False)
                if isinstance(op, EnsureClaims)]
    ops += retention_ops
    if not identity_ok or not storage_ok:
        ops.append(UpdatePod(fixed))
    return tuple(ops), False


def _new_versioned_pod(inp: Inputs, current_set: Mapping[str, Any], update_set: Mapping[str, Any],
                       ordinal: int) -> Obj:
    """newVersionedStatefulSetPod: ordinals below the partition are (re)created at the current revision.

    (Upstream's condition also covers a RollingUpdate set without a rollingUpdate block, which
    the API defaults away; OnDelete always creates at the update revision.)
    """
    start = su.start_ordinal(inp.sts)
    if (su.update_strategy_type(current_set) == "RollingUpdate"
            and su.rolling_update(current_set) is not None
            and ordinal < start + su.partition_of(current_set)):
        return su.new_pod(current_set, ordinal, su.name_of(inp.current_revision))
    return su.new_pod(update_set, ordinal, su.name_of(inp.update_revision))


def plan_update(inp: Inputs) -> Plan:
    sts = inp.sts
    current_name, update_name = su.name_of(inp.current_revision), su.name_of(inp.update_revision)
    current_set = rv.apply_revision(sts, inp.current_revision)
    update_set = rv.apply_revision(sts, inp.update_revision)
    min_ready = su.min_ready_seconds(sts)

    status: Obj = {
        "observedGeneration": int(su.meta(sts).get("generation") or 0),
        "currentRevision": current_name,
        "updateRevision": update_name,
        "collisionCount": inp.collision_count,
    }
    status.update(replica_status(inp.pods, min_ready, current_name, update_name, inp.now))

    start, count = su.start_ordinal(sts), su.replicas_of(sts)
    slots: list[Mapping[str, Any] | None] = [None] * count
    condemned: list[Mapping[str, Any]] = []
    for pod in inp.pods:
        ordinal = su.ordinal_of(pod)
        if start <= ordinal < start + count:
            slots[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    replicas: list[Mapping[str, Any]] = [
        pod if pod is not None else _new_versioned_pod(inp, current_set, update_set, start + i)
        for i, pod in enumerate(slots)]
    condemned = su.sorted_by_ordinal(condemned, descending=True)

    first_unavailable: Mapping[str, Any] | None = None
    for pod in [*replicas, *reversed(condemned)]:
        if su.is_unavailable(pod, min_ready, inp.now):
            first_unavailable = pod
            break

    def finish(stages: list[Stage]) -> Plan:
        complete_rolling_update(sts, status)
        return Plan(tuple(s for s in stages if s.tasks), status)

    if su.meta(sts).get("deletionTimestamp"):
        return finish([])
    monotonic = not su.is_parallel(sts)
    stages: list[Stage] = []

    # 1. live replicas
    tasks: list[Task] = []
    for replica in replicas:
        task, should_exit = _process_replica(inp, update_set, replica, monotonic)
        if task:
            tasks.append(task)
        if should_exit and monotonic:
            stages.append(Stage("replicas", tuple(tasks), burst=False))
            return finish(stages)
    stages.append(Stage("replicas", tuple(tasks), burst=not monotonic))

    # 2. claim ownership of condemned pods (whenScaled=Delete hands the claim to the pod)
    claim_tasks = [tuple(ops) for pod in condemned if (ops := _retention_updates(update_set, pod, inp.claims))]
    stages.append(Stage("condemned-claims", tuple(claim_tasks), burst=not monotonic))

    # 3. scale down, highest ordinal first
    delete_tasks: list[Task] = []
    for pod in condemned:
        if su.is_terminating(pod):
            if monotonic:
                stages.append(Stage("scale-down", tuple(delete_tasks), burst=False))
                return finish(stages)
            continue
        if monotonic and pod is not first_unavailable and (
                not su.is_running_and_ready(pod) or not su.is_running_and_available(pod, min_ready, inp.now)):
            stages.append(Stage("scale-down", tuple(delete_tasks), burst=False))
            return finish(stages)
        delete_tasks.append((DeletePod(dict(pod), "scale-down"),))
        if monotonic:
            stages.append(Stage("scale-down", tuple(delete_tasks), burst=False))
            return finish(stages)
    stages.append(Stage("scale-down", tuple(delete_tasks), burst=not monotonic))

    if su.update_strategy_type(sts) == "OnDelete":
        return finish(stages)

    # 4. rolling update within maxUnavailable, highest ordinal first, down to the partition
    budget = su.max_unavailable(sts)
    unavailable = sum(1 for pod in replicas if su.is_unavailable(pod, min_ready, inp.now))
    update_tasks: list[Task] = []
    if unavailable < budget:
        to_delete = budget - unavailable
        for index in range(len(replicas) - 1, su.partition_of(sts) - 1, -1):
            if len(update_tasks) >= to_delete:
                break
            pod = replicas[index]
            if su.pod_revision(pod) != update_name and not su.is_terminating(pod):
                update_tasks.append((DeletePod(dict(pod), "update"),))
                status["currentReplicas"] -= 1
    stages.append(Stage("rolling-update", tuple(update_tasks), burst=True))
    return finish(stages)


# --- revisions ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RevisionChoice:
    """getStatefulSetRevisions, minus the API calls.

    `action` says what must happen to make `update` real: "reuse" (it is already the newest
    revision), "bump" (an older equal revision becomes the newest: its `revision` number is set
    to `update["revision"]`), or "create" (a new ControllerRevision; on a name collision with
    different data the collision count is bumped and the name recomputed).
    `current` is None when status.currentRevision names no existing revision: the update
    revision then becomes the current one.
    """

    update: Obj
    action: Literal["reuse", "bump", "create"]
    current: Mapping[str, Any] | None


def choose_revisions(sts: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]],
                     collision_count: int) -> RevisionChoice:
    ordered = rv.sort_revisions(revisions)
    candidate = rv.new_revision(sts, rv.next_revision(ordered), collision_count)
    equal = rv.find_equal(ordered, candidate)
    status = sts.get("status") if isinstance(sts.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    current_name = status.get("currentRevision")
    current = next((r for r in ordered if su.name_of(r) == current_name), None)
    if equal and rv.equal_revision(ordered[-1], equal[-1]):
        return RevisionChoice(dict(ordered[-1]), "reuse", current)
    if equal:
        bumped = copy.deepcopy(dict(equal[-1]))
        bumped["revision"] = candidate["revision"]
        if current is not None and su.name_of(current) == su.name_of(bumped):
            current = bumped
        return RevisionChoice(bumped, "bump", current)
    return RevisionChoice(candidate, "create", current)
