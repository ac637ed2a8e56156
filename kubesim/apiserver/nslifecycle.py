"""Finishing namespace deletion: delete what a terminating namespace holds, then drop its finalizer.

Upstream this is the namespace controller (``pkg/controller/namespace/deletion``) running in
kube-controller-manager; kubesim runs it inside the API server process because nothing else
would, and a namespace that never goes away breaks ``kubectl delete ns --wait`` and test
teardown. It deletes every namespaced object with background propagation (pods still get
their grace period and wait for their kubelet, as upstream) and, once the namespace is empty,
removes ``kubernetes`` from ``spec.finalizers`` through the same path as
``PUT namespaces/<name>/finalize``, which removes the namespace.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from kubesim.apiserver import deletion, kinds, resources, rest, store

log = logging.getLogger("kubesim.apiserver.namespaces")

NAMESPACE_FINALIZER = "kubernetes"
_NAMESPACES = "core/namespaces"


def _terminating(api: rest.Api) -> list[store.Entry]:
    items, _rv = api.store.scan(_NAMESPACES, None)
    return [entry for _key, entry in items if entry.obj["metadata"].get("deletionTimestamp")]


def _namespaced() -> list[resources.Resource]:
    seen: set[str] = set()
    out: list[resources.Resource] = []
    for res in resources.RESOURCES:
        key = kinds.storage_key(res)
        if res.namespaced and key not in seen:
            seen.add(key)
            out.append(res)
    return out


def finish(api: rest.Api, namespace: str) -> bool:
    """One pass over a terminating namespace; True once it is gone."""
    remaining = 0
    options = deletion.DeleteOptions(propagation_policy="Background")
    with api.store.write_lock:
        for res in _namespaced():
            items, _rv = api.store.scan(kinds.storage_key(res), namespace)
            for (ns, name), item in items:
                remaining += 1
                if not item.obj["metadata"].get("deletionTimestamp"):
                    target = rest.Target(res, ns, name)
                    if deletion.delete_entry(api, target, item, options).removed:
                        remaining -= 1
        if remaining:
            return False
        entry = api.store.get(_NAMESPACES, "", namespace)
        if entry is None:
            return True
        obj: dict[str, Any] = json.loads(entry.raw)
        finalizers = [f for f in (obj.get("spec") or {}).get("finalizers") or [] if f != NAMESPACE_FINALIZER]
        if finalizers:
            obj["spec"]["finalizers"] = finalizers
        else:
            obj.get("spec", {}).pop("finalizers", None)
        if obj == entry.obj:
            return False
        if rest.removable(obj):
            api.store.remove(_NAMESPACES, obj)
            log.info("namespace %s is empty and finalized", namespace)
            return True
        api.store.put(_NAMESPACES, obj, entry)
        return False


def run(api: rest.Api, stop: threading.Event, interval: float = 0.5) -> None:
    """Finish terminating namespaces whenever something changes (and at least every ``interval``)."""
    pos = api.store.resource_version
    while not stop.is_set() and not api.store.closed:
        for entry in _terminating(api):
            try:
                finish(api, entry.obj["metadata"]["name"])
            except Exception:
                log.exception("finishing namespace %s failed", entry.obj["metadata"]["name"])
        try:
            events = api.store.events_after(pos, interval)
        except store.Compacted:
            pos = api.store.resource_version
            continue
        if events:
            pos = events[-1].rv


def start(api: rest.Api, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run, args=(api, stop), name="namespace-lifecycle", daemon=True)
    thread.start()
    return thread
