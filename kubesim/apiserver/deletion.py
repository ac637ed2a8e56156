"""DELETE and deletecollection: preconditions, graceful deletion, finalizers, propagation policy.

Follows ``staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go`` (BeforeDelete: a repeated
delete may only shorten the grace period; the first graceful delete bumps generation),
``registry/generic/registry/store.go`` (markAsDeleting, finalizers block removal, the garbage
collection finalizers ``foregroundDeletion`` / ``orphan`` that the propagation policy sets) and
``pkg/registry/core/pod/strategy.go`` CheckGracefulDeleteStrategy (grace from the options, else
the pod's terminationGracePeriodSeconds; 0 for unscheduled or terminal pods). Pods that keep a
grace period wait for their kubelet to finish the deletion with grace 0.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from kubesim.apiserver import errors, fielderrors, kinds, rest, store

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = ("Foreground", "Background", "Orphan")


@dataclasses.dataclass(frozen=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


def parse_options(body: bytes, query: rest.Query) -> DeleteOptions:
    """DeleteOptions from the body (kubectl, the Python client) or the query string (curl-style)."""
    data: dict[str, Any] = {}
    if body.strip():
        data = rest.decode(body)
    for key in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        if key in query and key not in data:
            data[key] = query[key]
    if "dryRun" in query:
        data.setdefault("dryRun", [query["dryRun"]])
    grace = data.get("gracePeriodSeconds")
    if grace is not None:
        try:
            grace = int(grace)
        except (TypeError, ValueError):
            raise errors.bad_request(f"gracePeriodSeconds must be an integer, got {grace!r}") from None
        if grace < 0:
            grace = 1  # upstream: a negative grace period means "as soon as possible", not "now"
    policy = data.get("propagationPolicy")
    if policy is not None and policy not in POLICIES:
        raise errors.invalid("", "DeleteOptions", "", [fielderrors.FieldError(
            type="FieldValueNotSupported", field="propagationPolicy",
            detail='supported values: "Foreground", "Background", "Orphan"', value=policy,
        )])
    orphan = data.get("orphanDependents")
    if isinstance(orphan, str):
        orphan = orphan.lower() == "true"
    if orphan is not None and policy is not None:
        raise errors.invalid("", "DeleteOptions", "", [fielderrors.FieldError(
            type="FieldValueInvalid", field="propagationPolicy",
            detail="orphanDependents and deletionPropagation cannot be both set", value=policy,
        )])
    pre = data.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise errors.bad_request("preconditions must be an object")
    dry = data.get("dryRun") or []
    return DeleteOptions(
        grace_period_seconds=grace,
        propagation_policy=policy,
        orphan_dependents=bool(orphan) if orphan is not None else None,
        precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"),
        dry_run="All" in dry,
    )


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def _fmt_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_grace(obj: dict[str, Any], options: DeleteOptions) -> int:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if options.grace_period_seconds is not None:
        grace = options.grace_period_seconds
    else:
        configured = spec.get("terminationGracePeriodSeconds")
        grace = int(configured) if configured is not None else 30
    if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
        grace = 0
    return grace


def _gc_finalizers(finalizers: list[str], options: DeleteOptions) -> list[str]:
    policy = options.propagation_policy
    if policy is None and options.orphan_dependents is not None:
        policy = "Orphan" if options.orphan_dependents else "Background"
    out = list(finalizers)
    if policy == "Foreground":
        out = [f for f in out if f != ORPHAN]
        if FOREGROUND not in out:
            out.append(FOREGROUND)
    elif policy == "Orphan":
        out = [f for f in out if f != FOREGROUND]
        if ORPHAN not in out:
            out.append(ORPHAN)
    elif policy == "Background":
        out = [f for f in out if f not in (FOREGROUND, ORPHAN)]
    return out


@dataclasses.dataclass(frozen=True)
class Outcome:
    entry: store.Entry
    removed: bool


def delete_entry(api: rest.Api, t: rest.Target, current: store.Entry, options: DeleteOptions) -> Outcome:
    """One object's deletion (caller holds the write lock)."""
    res = t.resource
    meta_now = current.obj["metadata"]
    if options.precondition_uid and options.precondition_uid != meta_now.get("uid"):
        raise errors.conflict(res.group, res.plural, t.name,
                              f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                              f"UID in object meta: {meta_now.get('uid')}")
    if options.precondition_rv and options.precondition_rv != meta_now.get("resourceVersion"):
        raise errors.conflict(res.group, res.plural, t.name,
                              f"Precondition failed: ResourceVersion in precondition: {options.precondition_rv}, "
                              f"ResourceVersion in object meta: {meta_now.get('resourceVersion')}")
    obj: dict[str, Any] = json.loads(current.raw)
    meta = obj["metadata"]
    meta["finalizers"] = _gc_finalizers(list(meta.get("finalizers") or []), options)
    if not meta["finalizers"]:
        del meta["finalizers"]
    kind = obj.get("kind")
    moment = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    grace = _pod_grace(obj, options) if kind == "Pod" else 0
    if meta.get("deletionTimestamp"):
        pending = meta.get("deletionGracePeriodSeconds")
        if pending and options.grace_period_seconds is not None and kind == "Pod" and grace < pending:
            started = _parse_time(meta["deletionTimestamp"]) - datetime.timedelta(seconds=pending)
            meta["deletionTimestamp"] = _fmt_time(started + datetime.timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
    else:
        if meta.get("generation"):
            meta["generation"] = int(meta["generation"]) + 1
        meta["deletionTimestamp"] = _fmt_time(moment + datetime.timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if kind == "Namespace":
            obj.setdefault("status", {})["phase"] = "Terminating"
    if options.dry_run:
        return Outcome(store.Entry(obj, store.dumps(obj), current.rv), removed=rest.removable(obj))
    if rest.removable(obj):
        return Outcome(api.store.remove(t.rkey, obj), removed=True)
    if obj == current.obj:
        return Outcome(current, removed=False)
    return Outcome(api.store.put(t.rkey, obj, current), removed=False)


def success_status(t: rest.Target, entry: store.Entry) -> bytes:
    details: dict[str, Any] = {"name": t.name, "kind": t.resource.plural, "uid": entry.obj["metadata"].get("uid")}
    if t.resource.group:
        details["group"] = t.resource.group
    return store.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": details})


def delete(api: rest.Api, t: rest.Target, body: bytes, query: rest.Query) -> tuple[int, bytes]:
    options = parse_options(body, query)
    with api.store.write_lock:
        outcome = delete_entry(api, t, api.lookup(t), options)
    if outcome.removed and (t.resource.group, t.resource.plural) not in kinds.RETURNS_DELETED_OBJECT:
        return 200, success_status(t, outcome.entry)
    return 200, api.present(t.resource, outcome.entry)
