"""Subresources other than status and eviction: statefulsets/scale, pods/binding, pods/log, namespaces/finalize.

* scale (``pkg/registry/apps/statefulset/storage/storage.go`` ScaleREST): an ``autoscaling/v1
  Scale`` view of ``spec.replicas`` / ``status.replicas`` + the selector as a string; writes
  honour the Scale's resourceVersion as a precondition on the StatefulSet.
* binding (``pkg/registry/core/pod/storage/storage.go`` assignPod): sets ``spec.nodeName``
  once, adds ``PodScheduled=True``; the scheduler (part 2) binds through it.
* log (``pkg/registry/core/pod/rest/log.go``): container validation as upstream; the bytes
  come from :data:`log_source`, which the process kubelets (part 2) provide (``follow=true`` is
  streamed by :mod:`kubesim.apiserver.streaming.logs_follow`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from kubesim.apiserver import errors, fieldcheck, fielderrors, rest, selectors, store

# ----- statefulsets/scale ------------------------------------------------------------------


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    try:
        selector = str(selectors.label_selector_from_api(spec.get("selector")))
    except selectors.SelectorError:
        selector = ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": int(spec.get("replicas", 1) or 0)},
        "status": {"replicas": int((obj.get("status") or {}).get("replicas") or 0), "selector": selector},
    }


def scale_get(api: rest.Api, t: rest.Target) -> bytes:
    return store.dumps(to_scale(api.lookup(_parent(t)).obj))


def _parent(t: rest.Target) -> rest.Target:
    return dataclasses.replace(t, subresource="")


def _write_scale(api: rest.Api, t: rest.Target, current: store.Entry, scale: dict[str, Any],
                 query: rest.Query) -> bytes:
    rest.check_type(scale, "autoscaling/v1", "Scale")
    fieldcheck.enforce("autoscaling", "Scale", "autoscaling/v1", scale, query)
    meta = rest.metadata_of(scale)
    if meta.get("name", t.name) != t.name:
        raise errors.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})"
        )
    rv = meta.get("resourceVersion")
    if rv and rv != current.obj["metadata"].get("resourceVersion"):
        raise errors.stale(t.resource.group, t.resource.plural, t.name)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid("autoscaling", "Scale", t.name, [fielderrors.FieldError(
            type="FieldValueInvalid", field="spec.replicas", detail="must be greater than or equal to 0",
            value=replicas)])
    sts: dict[str, Any] = json.loads(current.raw)
    sts.setdefault("spec", {})["replicas"] = replicas
    entry = api.apply_update(_parent(t), current, sts, t.resource.kind, status_only=False)
    return store.dumps(to_scale(entry.obj))


def scale_put(api: rest.Api, t: rest.Target, body: bytes, query: rest.Query) -> bytes:
    scale = rest.decode(body)
    with api.store.write_lock:
        return _write_scale(api, t, api.lookup(_parent(t)), scale, query)


def scale_patch(api: rest.Api, t: rest.Target, content_type: str, body: bytes, query: rest.Query) -> bytes:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype not in rest.PATCH_TYPES:
        raise errors.unsupported_media_type(ctype, rest.PATCH_TYPES)
    with api.store.write_lock:
        current = api.lookup(_parent(t))
        scale = rest.apply_patch(ctype, to_scale(current.obj), body, "Scale")
        return _write_scale(api, t, current, scale, query)


# ----- pods/binding ------------------------------------------------------------------------


def bind(api: rest.Api, t: rest.Target, body: bytes) -> tuple[int, bytes]:
    binding = rest.decode(body)
    rest.check_type(binding, "v1", "Binding")
    target = binding.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if not node:
        raise errors.invalid("", "Binding", t.name, [fielderrors.FieldError(
            type="FieldValueRequired", field="target.name", detail="", value="")])
    name = (binding.get("metadata") or {}).get("name") or t.name
    if name != t.name:
        raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL ({t.name})")
    pods = _parent(t)
    with api.store.write_lock:
        entry = api.lookup(pods)
        pod: dict[str, Any] = json.loads(entry.raw)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("", "pods", t.name, f"pod {t.name} is being deleted, cannot be assigned to a host")
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict("", "pods", t.name, f'pod {t.name} is already assigned to node "{current}"')
        pod.setdefault("spec", {})["nodeName"] = node
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": rest.now()})
        status["conditions"] = conditions
        api.store.put(pods.rkey, pod, entry)
    return 201, store.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})


# ----- pods/log ------------------------------------------------------------------------------


LogSource = Callable[[dict[str, Any], str, rest.Query], bytes | None]


def _no_kubelet(pod: dict[str, Any], container: str, query: rest.Query) -> bytes | None:
    del pod, container, query
    return None


#: Where pod logs come from; the process kubelets (part 2) replace this. None = nobody serves the node.
log_source: LogSource = _no_kubelet


def logs(api: rest.Api, t: rest.Target, query: rest.Query) -> bytes:
    from kubesim.apiserver.streaming import targets  # validateContainer, shared with exec/attach/log follow

    pod = api.lookup(_parent(t)).obj
    container = targets.validate_container(pod, query.get("container", ""))
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        return b""  # upstream: no host assigned yet -> an empty log
    out = log_source(pod, container, query)
    if out is None:
        raise errors.bad_request(
            f'container "{container}" in pod "{t.name}" is waiting to start: no kubelet serves node "{node}"'
        )
    return out


# ----- namespaces/finalize -------------------------------------------------------------------


def finalize(api: rest.Api, t: rest.Target, body: bytes) -> bytes:
    """PUT namespaces/<name>/finalize: only ``spec.finalizers`` changes; an emptied terminating namespace goes."""
    obj = rest.decode(body)
    rest.check_type(obj, "v1", "Namespace")
    parent = _parent(t)
    with api.store.write_lock:
        entry = api.lookup(parent)
        rv = rest.metadata_of(obj).get("resourceVersion")
        if rv and rv != entry.obj["metadata"].get("resourceVersion"):
            raise errors.stale("", "namespaces", t.name)
        ns: dict[str, Any] = json.loads(entry.raw)
        finalizers = (obj.get("spec") or {}).get("finalizers") or []
        ns.setdefault("spec", {})["finalizers"] = finalizers
        if not finalizers:
            del ns["spec"]["finalizers"]
        if ns == entry.obj:
            return entry.raw
        if rest.removable(ns):
            return api.store.remove(parent.rkey, ns).raw
        return api.store.put(parent.rkey, ns, entry).raw
