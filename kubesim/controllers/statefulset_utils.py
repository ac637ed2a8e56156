"""StatefulSet identity, storage, pod health and claim-retention rules, as pure functions over dicts.

The facts are those of upstream `pkg/controller/statefulset/stateful_set_utils.go` (and
`pkg/api/v1/pod` for readiness/availability): pod `<set>-<ordinal>`, claim
`<template>-<set>-<ordinal>` whose labels are the claim template's labels plus the selector's
matchLabels, the retention policy realised purely as ownerReferences on claims (set ref for
whenDeleted=Delete on live ordinals, pod ref for whenScaled=Delete on condemned ordinals) so the
garbage collector does the deleting. Everything here is side-effect free so the update algorithm
can be unit-tested on hand-built objects.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from kubesim import timestamps

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
SET_API_VERSION = "apps/v1"
SET_KIND = "StatefulSet"
POD_API_VERSION = "v1"
POD_KIND = "Pod"

_POD_NAME_RE = re.compile(r"^(.*)-([0-9]+)$")
_INT32_MAX = 2**31 - 1

RetentionType = Literal["Retain", "Delete"]


# --- small accessors --------------------------------------------------------------------------------


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    s = obj.get("spec")
    return s if isinstance(s, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    raw = meta(obj).get("labels")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def owner_refs(obj: Mapping[str, Any]) -> list[Obj]:
    raw = meta(obj).get("ownerReferences")
    return [dict(r) for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []


def controller_ref(obj: Mapping[str, Any]) -> Obj | None:
    """metav1.GetControllerOf: the ownerReference with controller=true, if any."""
    for ref in owner_refs(obj):
        if ref.get("controller") is True:
            return ref
    return None


def replicas_of(sts: Mapping[str, Any]) -> int:
    value = spec(sts).get("replicas")
    return int(value) if isinstance(value, int) else 1


def min_ready_seconds(sts: Mapping[str, Any]) -> int:
    value = spec(sts).get("minReadySeconds")
    return int(value) if isinstance(value, int) else 0


def is_parallel(sts: Mapping[str, Any]) -> bool:
    """allowsBurst: Parallel pod management lifts the ordering constraints."""
    return spec(sts).get("podManagementPolicy") == "Parallel"


def update_strategy_type(sts: Mapping[str, Any]) -> str:
    strategy = spec(sts).get("updateStrategy")
    return str(strategy.get("type") or "RollingUpdate") if isinstance(strategy, Mapping) else "RollingUpdate"


def rolling_update(sts: Mapping[str, Any]) -> Mapping[str, Any] | None:
    strategy = spec(sts).get("updateStrategy")
    if not isinstance(strategy, Mapping):
        return None
    rolling = strategy.get("rollingUpdate")
    return rolling if isinstance(rolling, Mapping) else None


def partition_of(sts: Mapping[str, Any]) -> int:
    rolling = rolling_update(sts)
    value = rolling.get("partition") if rolling is not None else None
    return int(value) if isinstance(value, int) else 0


def max_unavailable(sts: Mapping[str, Any]) -> int:
    """getStatefulSetMaxUnavailable: int or percentage of replicas rounded down, never below 1."""
    rolling = rolling_update(sts)
    raw = rolling.get("maxUnavailable") if rolling is not None else None
    replicas = replicas_of(sts)
    if raw is None:
        value = 1
    elif isinstance(raw, str) and raw.endswith("%"):
        value = int(raw[:-1]) * replicas // 100
    else:
        value = int(raw)
    return max(value, 1)


# --- ordinals and names -----------------------------------------------------------------------------


def parent_and_ordinal(pod: Mapping[str, Any]) -> tuple[str, int]:
    """getParentNameAndOrdinal: `web-12` → ("web", 12); no match or an out-of-range number → ("", -1)."""
    match = _POD_NAME_RE.match(name_of(pod))
    if match is None:
        return "", -1
    number = int(match.group(2))
    return match.group(1), (number if number <= _INT32_MAX else -1)


def ordinal_of(pod: Mapping[str, Any]) -> int:
    return parent_and_ordinal(pod)[1]


def is_member_of(sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """The name-based filter upstream applies before adopting: only `<set>-<n>` pods are ever claimed."""
    parent, _ = parent_and_ordinal(pod)
    return parent == name_of(sts)


def start_ordinal(sts: Mapping[str, Any]) -> int:
    ordinals = spec(sts).get("ordinals")
    if isinstance(ordinals, Mapping) and isinstance(ordinals.get("start"), int):
        return int(ordinals["start"])
    return 0


def end_ordinal(sts: Mapping[str, Any]) -> int:
    """The last ordinal (inclusive); start-1 when replicas is 0."""
    return start_ordinal(sts) + replicas_of(sts) - 1


def in_ordinal_range(pod: Mapping[str, Any], sts: Mapping[str, Any]) -> bool:
    ordinal = ordinal_of(pod)
    return start_ordinal(sts) <= ordinal <= end_ordinal(sts)


def pod_name(sts: Mapping[str, Any], ordinal: int) -> str:
    return f"{name_of(sts)}-{ordinal}"


def claim_templates(sts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = spec(sts).get("volumeClaimTemplates")
    return [t for t in raw if isinstance(t, Mapping)] if isinstance(raw, list) else []


def claim_name(sts: Mapping[str, Any], template: Mapping[str, Any], ordinal: int) -> str:
    return f"{name_of(template)}-{name_of(sts)}-{ordinal}"


def selector_match_labels(sts: Mapping[str, Any]) -> dict[str, str]:
    selector = spec(sts).get("selector")
    labels = selector.get("matchLabels") if isinstance(selector, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def new_claims(sts: Mapping[str, Any], ordinal: int) -> dict[str, Obj]:
    """getPersistentVolumeClaims: template name → the claim the pod at `ordinal` uses.

    Labels are the claim template's own labels plus the selector's matchLabels (not the pod
    template's labels). Status and TypeMeta defaults copied from the template are dropped.
    """
    claims: dict[str, Obj] = {}
    for template in claim_templates(sts):
        claim: Obj = copy.deepcopy(dict(template))
        claim.pop("status", None)
        claim["apiVersion"] = "v1"
        claim["kind"] = "PersistentVolumeClaim"
        metadata = dict(claim.get("metadata") or {})
        labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
        labels.update(selector_match_labels(sts))
        metadata["labels"] = labels
        metadata["name"] = claim_name(sts, template, ordinal)
        metadata["namespace"] = namespace_of(sts)
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "generation"):
            metadata.pop(server_field, None)
        claim["metadata"] = metadata
        claims[name_of(template)] = claim
    return claims


def controller_ref_to(obj: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    """metav1.NewControllerRef."""
    return {"apiVersion": api_version, "kind": kind, "name": name_of(obj), "uid": uid_of(obj),
            "controller": True, "blockOwnerDeletion": True}


# --- identity and storage ---------------------------------------------------------------------------


def identity_matches(sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    return (ordinal >= 0 and parent == name_of(sts) and name_of(pod) == pod_name(sts, ordinal)
            and namespace_of(pod) == namespace_of(sts)
            and labels_of(pod).get(POD_NAME_LABEL) == name_of(pod))


def _volumes(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = spec(pod).get("volumes")
    return [v for v in raw if isinstance(v, Mapping)] if isinstance(raw, list) else []


def storage_matches(sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Every claim template has a same-named volume pointing at this ordinal's claim."""
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {str(v.get("name")): v for v in _volumes(pod)}
    for template in claim_templates(sts):
        volume = volumes.get(name_of(template))
        source = volume.get("persistentVolumeClaim") if volume is not None else None
        if not isinstance(source, Mapping) or source.get("claimName") != claim_name(sts, template, ordinal):
            return False
    return True


def update_identity(sts: Mapping[str, Any], pod: Obj) -> None:
    """Name, namespace and the pod-name / pod-index labels (PodIndexLabel is on by default since 1.28)."""
    ordinal = ordinal_of(pod)
    metadata = pod.setdefault("metadata", {})
    metadata["name"] = pod_name(sts, ordinal)
    metadata["namespace"] = namespace_of(sts)
    labels = metadata.setdefault("labels", {})
    labels[POD_NAME_LABEL] = metadata["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def update_storage(sts: Mapping[str, Any], pod: Obj) -> None:
    """Claim volumes first (template order), then the pod's other volumes; a same-named local volume is replaced."""
    ordinal = ordinal_of(pod)
    claims = new_claims(sts, ordinal)
    volumes: list[Any] = [{"name": template, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
                          for template, claim in claims.items()]
    volumes += [copy.deepcopy(dict(v)) for v in _volumes(pod) if str(v.get("name")) not in claims]
    pod.setdefault("spec", {})["volumes"] = volumes


def new_pod(sts: Mapping[str, Any], ordinal: int, revision: str) -> Obj:
    """newStatefulSetPod + setPodRevision: the pod for `ordinal` from `sts`'s template at `revision`.

    Like controller.GetPodFromTemplate the pod carries the template's labels, annotations and
    finalizers, `generateName: <set>-`, and a controller ownerReference to the set; hostname and
    subdomain (the governing service) are set once, at creation, as upstream's initIdentity does.
    """
    template = spec(sts).get("template")
    template = template if isinstance(template, Mapping) else {}
    tmeta = template.get("metadata") if isinstance(template.get("metadata"), Mapping) else {}
    assert isinstance(tmeta, Mapping)
    metadata: Obj = {
        "name": pod_name(sts, ordinal),
        "generateName": f"{name_of(sts)}-",
        "namespace": namespace_of(sts),
        "labels": {str(k): str(v) for k, v in (tmeta.get("labels") or {}).items()},
        "ownerReferences": [controller_ref_to(sts, SET_API_VERSION, SET_KIND)],
    }
    if tmeta.get("annotations"):
        metadata["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        metadata["finalizers"] = list(tmeta["finalizers"])
    pod: Obj = {"apiVersion": POD_API_VERSION, "kind": POD_KIND, "metadata": metadata,
                "spec": copy.deepcopy(dict(template.get("spec") or {}))}
    update_identity(sts, pod)
    pod["spec"]["hostname"] = metadata["name"]
    service = spec(sts).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    update_storage(sts, pod)
    metadata["labels"][REVISION_LABEL] = revision
    return pod


def pod_revision(pod: Mapping[str, Any]) -> str:
    return labels_of(pod).get(REVISION_LABEL, "")


# --- pod health (pkg/api/v1/pod: IsPodReady, IsPodAvailable) ----------------------------------------


parse_time = timestamps.parse_time


def phase_of(pod: Mapping[str, Any]) -> str:
    status = pod.get("status")
    return str(status.get("phase") or "") if isinstance(status, Mapping) else ""


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond
    return None


def is_created(pod: Mapping[str, Any]) -> bool:
    """A pod the API server holds has a phase; a placeholder for a missing ordinal has none."""
    return phase_of(pod) != ""


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def is_running_and_ready(pod: Mapping[str, Any]) -> bool:
    cond = _ready_condition(pod)
    return phase_of(pod) == "Running" and cond is not None and cond.get("status") == "True"


def available_at(pod: Mapping[str, Any], min_ready: int) -> datetime.datetime | None:
    """When the pod becomes (or became) available; None while it is not Ready.

    IsPodAvailable: Ready and, with minReadySeconds, Ready for longer than that since the Ready
    condition's lastTransitionTime (strictly: lastTransition + minReady < now).
    """
    cond = _ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    if min_ready <= 0:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)
    since = parse_time(cond.get("lastTransitionTime"))
    if since is None:
        return None
    return since + datetime.timedelta(seconds=min_ready)


def is_running_and_available(pod: Mapping[str, Any], min_ready: int, now: datetime.datetime) -> bool:
    at = available_at(pod, min_ready)
    return at is not None and (min_ready <= 0 or at < now)


def is_healthy(pod: Mapping[str, Any]) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_unavailable(pod: Mapping[str, Any], min_ready: int, now: datetime.datetime) -> bool:
    return not is_healthy(pod) or not is_running_and_available(pod, min_ready, now)


def is_failed_or_succeeded(pod: Mapping[str, Any]) -> bool:
    """Failed *and* Succeeded pods are replaced: a force-stopped pod's phase follows its exit code."""
    return phase_of(pod) in ("Failed", "Succeeded")


def is_pending(pod: Mapping[str, Any]) -> bool:
    return phase_of(pod) == "Pending"


# --- claim retention as ownerReferences -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    when_deleted: RetentionType = "Retain"
    when_scaled: RetentionType = "Retain"


def retention_policy(sts: Mapping[str, Any]) -> RetentionPolicy:
    raw = spec(sts).get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(raw, Mapping):
        return RetentionPolicy()
    deleted: RetentionType = "Delete" if raw.get("whenDeleted") == "Delete" else "Retain"
    scaled: RetentionType = "Delete" if raw.get("whenScaled") == "Delete" else "Retain"
    return RetentionPolicy(deleted, scaled)


def _matches_ref(ref: Mapping[str, Any], obj: Mapping[str, Any], api_version: str, kind: str) -> bool:
    return ref.get("apiVersion") == api_version and ref.get("kind") == kind and ref.get("name") == name_of(obj)


def _is_set_ref(ref: Mapping[str, Any], sts: Mapping[str, Any]) -> bool:
    return _matches_ref(ref, sts, SET_API_VERSION, SET_KIND)


def _is_pod_ref(ref: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    return _matches_ref(ref, pod, POD_API_VERSION, POD_KIND)


def has_owner_ref(target: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    uid = uid_of(owner)
    return any(ref.get("uid") == uid for ref in owner_refs(target))


def has_stale_owner_ref(target: Mapping[str, Any], owner: Mapping[str, Any], api_version: str, kind: str) -> bool:
    """A ref naming `owner` (same kind and name) with another uid: left by a previous incarnation."""
    for ref in owner_refs(target):
        if _matches_ref(ref, owner, api_version, kind):
            return ref.get("uid") != uid_of(owner)
    return False


def has_unexpected_controller(claim: Mapping[str, Any], sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Another controller manages the claim (only matters when some retention is Delete)."""
    policy = retention_policy(sts)
    if policy.when_scaled == "Retain" and policy.when_deleted == "Retain":
        return False
    for ref in owner_refs(claim):
        if _is_set_ref(ref, sts):
            if ref.get("uid") != uid_of(sts):
                return True
            continue
        if _is_pod_ref(ref, pod):
            if ref.get("uid") != uid_of(pod):
                return True
            continue
        if ref.get("controller") is True:
            return True
    return False


def _has_non_controller_owner(claim: Mapping[str, Any], sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    for ref in owner_refs(claim):
        if ref.get("uid") in (uid_of(sts), uid_of(pod)) and ref.get("controller") is not True:
            return True
    return False


def claim_owner_up_to_date(claim: Mapping[str, Any], sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """isClaimOwnerUpToDate: do the claim's ownerReferences already say what the policy wants?

    Retain/Retain: no set or pod ref. Retain on scale + Delete on set deletion: set ref only.
    Delete on scale + Retain: pod ref exactly when the pod is condemned. Delete/Delete: the set
    ref for live ordinals, the pod ref for condemned ones. Stale refs or a foreign controller
    mean "leave it alone" (True), unless we also hold a ref that must be scrubbed.
    """
    if (has_stale_owner_ref(claim, sts, SET_API_VERSION, SET_KIND)
            or has_stale_owner_ref(claim, pod, POD_API_VERSION, POD_KIND)):
        return True
    if has_unexpected_controller(claim, sts, pod):
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    policy = retention_policy(sts)
    set_ref, pod_ref = has_owner_ref(claim, sts), has_owner_ref(claim, pod)
    scaled_down = not in_ordinal_range(pod, sts)
    if policy.when_scaled == "Retain" and policy.when_deleted == "Retain":
        return not set_ref and not pod_ref
    if policy.when_scaled == "Retain":  # whenDeleted=Delete
        return set_ref and not pod_ref
    if policy.when_deleted == "Retain":  # whenScaled=Delete
        return not set_ref and scaled_down == pod_ref
    return scaled_down != set_ref and scaled_down == pod_ref


def desired_claim_owner_refs(claim: Mapping[str, Any], sts: Mapping[str, Any],
                             pod: Mapping[str, Any]) -> list[Obj]:
    """updateClaimOwnerRefForSetAndPod: scrub our set/pod refs, then add the controller refs the policy wants."""
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [r for r in owner_refs(claim) if not (_is_set_ref(r, sts) or _is_pod_ref(r, pod))]
    if unexpected:
        return refs

    def add(owner: Mapping[str, Any], api_version: str, kind: str) -> None:
        if not any(r.get("uid") == uid_of(owner) for r in refs):
            refs.append(controller_ref_to(owner, api_version, kind))

    policy = retention_policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    if policy.when_scaled == "Retain" and policy.when_deleted == "Delete":
        add(sts, SET_API_VERSION, SET_KIND)
    elif policy.when_scaled == "Delete":
        if scaled_down:
            add(pod, POD_API_VERSION, POD_KIND)
        elif policy.when_deleted == "Delete":
            add(sts, SET_API_VERSION, SET_KIND)
    return refs


def claim_is_stale(sts: Mapping[str, Any], pod: Mapping[str, Any], claims: Mapping[str, Mapping[str, Any]]) -> bool:
    """PodClaimIsStale: with whenScaled=Delete, a claim still owned by a previous pod of this name blocks creation.

    The garbage collector is about to delete it; creating the pod now would bind it to a claim
    that vanishes under it.
    """
    if retention_policy(sts).when_scaled == "Retain":
        return False
    for claim in new_claims(sts, ordinal_of(pod)).values():
        existing = claims.get(name_of(claim))
        if existing is not None and has_stale_owner_ref(existing, pod, POD_API_VERSION, POD_KIND):
            return True
    return False


def sorted_by_ordinal(pods: Sequence[Mapping[str, Any]], *, descending: bool = False) -> list[Mapping[str, Any]]:
    return sorted(pods, key=ordinal_of, reverse=descending)
