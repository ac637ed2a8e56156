"""Garbage collector (D6): ownerReferences with background, foreground and orphan propagation.

Follows ``pkg/controller/garbagecollector/garbagecollector.go`` (``attemptToDeleteItem``,
``processDeletingDependentsItem``, ``orphanDependents``), with informer caches standing in for
upstream's dependency graph (``graph_builder.go``):

* A dependent whose owners are all gone (no object with that name *and uid*) or are being
  deleted in the foreground is deleted — with Orphan / Foreground propagation if it carries that
  finalizer, Foreground if it has dependents of its own while an owner waits for it, else
  Background. The cache only says whether to look: as upstream's ``attemptToDeleteItem``, the
  dependent is read live and *its* ownerReferences are classified (the informer may lag behind the
  worker — e.g. still show a reference that orphaning has just stripped), each owner's absence is
  confirmed with a live GET (``isDangling``: the cache may not have seen a brand-new owner yet), and
  the delete carries the uid and resourceVersion that were classified (``deleteObject``, since
  kubernetes#132632), retried with the uid alone only if the ownerReferences did not change.
* If some owner is still there ("solid"), references to dangling or foreground-deleting owners are
  removed instead (strategic patch ``$patch: delete`` by uid, as upstream).
* An owner being deleted with the ``foregroundDeletion`` finalizer has its dependents deleted;
  the finalizer is removed once no dependent with ``blockOwnerDeletion: true`` remains.
* An owner being deleted with the ``orphan`` finalizer has its ownerReference removed from every
  dependent, then the finalizer removed. "Every" means every dependent the caches have seen, as
  upstream (``attemptToOrphanWorker`` reads the graph): one resource's watch stream is ordered, so a
  dependent of the same kind created before the owner's deletion is seen first (unless both land in
  the gap a re-list after a 410 covers); a dependent of another kind whose watch lags may be missed
  and is then collected as dangling once the owner is gone — a race upstream accepts as rare
  (kubernetes#26120: "no guarantee on the ordering of the events of different resources").

Keys are ``plural|namespace|name`` (the collector spans every resource). Only resources kubesim
serves are tracked; events are left out (upstream tracks them too, but nothing here owns them and
watching them would cost the most).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kubesim import client
from kubesim.apiserver import resources
from kubesim.controllers import runtime

log = logging.getLogger("kubesim.controllers.gc")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
OWNER_INDEX = "owner-uid"

TRACKED: tuple[str, ...] = (
    "pods", "persistentvolumeclaims", "persistentvolumes", "configmaps", "secrets", "services", "endpoints",
    "serviceaccounts", "statefulsets", "controllerrevisions", "poddisruptionbudgets", "nodes", "leases",
    "endpointslices",
)

Obj = dict[str, Any]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    return meta if isinstance(meta, dict) else {}


def owner_refs(obj: Obj) -> list[Obj]:
    return [r for r in _meta(obj).get("ownerReferences") or [] if isinstance(r, dict) and r.get("uid")]


def _owner_uids(obj: Obj) -> list[str]:
    return [str(r["uid"]) for r in owner_refs(obj)]


def _finalizers(obj: Obj) -> list[str]:
    return [str(f) for f in _meta(obj).get("finalizers") or []]


def _deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


class GarbageCollector:
    name = "garbagecollector"

    def __init__(self, tracked: tuple[str, ...] = TRACKED) -> None:
        self.tracked = tracked
        self.informers: dict[str, runtime.Informer] = {}
        self.mgr: runtime.Manager | None = None

    # ----- wiring -----------------------------------------------------------------------------------

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        for plural in self.tracked:
            inf = mgr.informer(plural)
            inf.add_index(OWNER_INDEX, _owner_uids)
            inf.add_index("uid", lambda o: [str(_meta(o).get("uid") or "")])
            self.informers[plural] = inf
            inf.add_handler(
                on_add=lambda o, p=plural: self._changed(p, None, o),  # type: ignore[misc]
                on_update=lambda old, new, p=plural: self._changed(p, old, new),  # type: ignore[misc]
                on_delete=lambda o, p=plural: self._deleted(p, o),  # type: ignore[misc]
            )

    def _enqueue(self, plural: str, obj: Obj) -> None:
        assert self.mgr is not None
        meta = _meta(obj)
        self.mgr.enqueue(self, f"{plural}|{meta.get('namespace') or ''}|{meta.get('name')}")

    def _enqueue_rate_limited(self, plural: str, obj: Obj) -> None:
        assert self.mgr is not None
        meta = _meta(obj)
        self.mgr.queue(self).add_rate_limited(f"{plural}|{meta.get('namespace') or ''}|{meta.get('name')}")

    def _enqueue_uid(self, uid: str) -> None:
        for plural, inf in self.informers.items():
            for obj in inf.by_index("uid", uid):
                self._enqueue(plural, obj)

    def _changed(self, plural: str, old: Obj | None, new: Obj) -> None:
        if owner_refs(new):
            self._enqueue(plural, new)
            for uid in _owner_uids(new):
                self._enqueue_uid(uid)  # a foreground-deleting owner re-checks its blocking dependents
        if _deleting(new) and {FOREGROUND, ORPHAN} & set(_finalizers(new)):
            self._enqueue(plural, new)
            if old is None or not _deleting(old) or _finalizers(old) != _finalizers(new):
                self._enqueue_dependents(str(_meta(new).get("uid")))

    def _deleted(self, plural: str, obj: Obj) -> None:
        del plural
        self._enqueue_dependents(str(_meta(obj).get("uid")))
        for uid in _owner_uids(obj):
            self._enqueue_uid(uid)

    def _enqueue_dependents(self, uid: str) -> None:
        for plural, dep in self.dependents(uid):
            self._enqueue(plural, dep)

    def dependents(self, uid: str) -> list[tuple[str, Obj]]:
        return [(plural, dep) for plural, inf in self.informers.items() for dep in inf.by_index(OWNER_INDEX, uid)]

    # ----- reconcile ----------------------------------------------------------------------------------

    def reconcile(self, key: str) -> float | None:
        plural, namespace, name = key.split("|", 2)
        obj = self.informers[plural].get(namespace, name)
        if obj is None:
            return None
        api = self._api()
        finalizers = _finalizers(obj)
        if _deleting(obj) and ORPHAN in finalizers:
            self._orphan_dependents(api, plural, obj)
            return None
        if _deleting(obj) and FOREGROUND in finalizers:
            self._delete_dependents_first(api, plural, obj)
            return None
        if owner_refs(obj) and not _deleting(obj):
            self._attempt_to_delete(api, plural, obj)
        return None

    def _api(self) -> client.Client:
        assert self.mgr is not None
        return self.mgr.client

    def _classify(self, api: client.Client, obj: Obj) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(solid, dangling, waiting-for-dependents-deletion) owner references, by live lookups."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        namespace = str(_meta(obj).get("namespace") or "")
        for ref in owner_refs(obj):
            res = resources.by_api_version_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            if res is None:
                log.info("%s/%s: owner kind %s/%s is not served; leaving the reference alone",
                         namespace, _meta(obj).get("name"), ref.get("apiVersion"), ref.get("kind"))
                solid.append(ref)
                continue
            plural = res.plural if not res.group else f"{res.plural}.{res.group}"
            try:
                owner = api.get(plural, str(ref.get("name")), namespace if res.namespaced else "")
            except client.NotFound:
                dangling.append(ref)
                continue
            if _meta(owner).get("uid") != ref.get("uid"):
                dangling.append(ref)
            elif _deleting(owner) and FOREGROUND in _finalizers(owner):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    def _solid_in_cache(self, obj: Obj) -> bool:
        """Every owner is cached with the referenced uid and not being deleted: nothing to do, no API call.

        Upstream's graph likewise only verifies owners it has not observed; this keeps pod status churn
        from turning into owner GETs.
        """
        namespace = str(_meta(obj).get("namespace") or "")
        for ref in owner_refs(obj):
            res = resources.by_api_version_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            inf = self.informers.get(res.plural) if res is not None else None  # tracked plurals are unique
            if res is None or inf is None:
                return False
            owner = inf.get(namespace if res.namespaced else "", str(ref.get("name")))
            if owner is None or _meta(owner).get("uid") != ref.get("uid") or _deleting(owner):
                return False
        return True

    def _attempt_to_delete(self, api: client.Client, plural: str, obj: Obj) -> None:
        """Upstream ``attemptToDeleteItem``: decide from the live dependent, delete only the version classified.

        The cached ``obj`` only says whether to look: the informer may lag behind this worker (the
        orphaning of its owner, say, already stripped the reference live while the cache still shows it),
        so the ownerReferences that are classified are those of a fresh GET, and the delete carries that
        object's uid *and* resourceVersion (kubernetes#132632): a change between the GET and the delete
        makes it fail instead of deleting an object that, by then, may have a solid owner again.
        """
        if self._solid_in_cache(obj):
            return
        meta = _meta(obj)
        name, namespace = str(meta.get("name")), str(meta.get("namespace") or "")
        try:
            latest = api.get(plural, name, namespace)
        except client.NotFound:
            return  # already gone: the informer delivers the deletion
        latest_meta = _meta(latest)
        if latest_meta.get("uid") != meta.get("uid") or _deleting(latest) or not owner_refs(latest):
            return  # a namesake, already on its way out, or owned by nobody any more
        solid, dangling, waiting = self._classify(api, latest)
        if solid:
            gone = dangling + waiting
            if gone:
                patch = {"metadata": {"uid": latest_meta.get("uid"),
                                      "ownerReferences": [{"$patch": "delete", "uid": r["uid"]} for r in gone]}}
                api.patch(plural, name, patch, namespace, patch_type="strategic")
                log.info("%s %s/%s: removed references to gone owners %s", plural, namespace, name,
                         [r.get("name") for r in gone])
            return
        finalizers = _finalizers(latest)
        if ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers or (waiting and self.dependents(str(latest_meta.get("uid")))):
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("deleting %s %s/%s (owners gone: %s) with %s propagation", plural, namespace, name,
                 [r.get("name") for r in dangling + waiting], policy)
        self._delete_classified(api, plural, latest, policy)

    @staticmethod
    def _delete_classified(api: client.Client, plural: str, latest: Obj, policy: str) -> None:
        """Upstream ``deleteObject``: delete ``latest`` at its resourceVersion; on a Conflict re-read it and
        retry with the uid precondition only if its ownerReferences are still the ones classified (so busy
        unrelated updates cannot starve collection); otherwise raise the Conflict so the key is retried
        (rate-limited by the manager) and classified afresh."""
        meta = _meta(latest)
        name, namespace, uid = str(meta.get("name")), str(meta.get("namespace") or ""), meta.get("uid")
        try:
            api.delete(plural, name, namespace, propagation_policy=policy,
                       preconditions={"uid": uid, "resourceVersion": meta.get("resourceVersion")})
            return
        except client.NotFound:
            return
        except client.Conflict as exc:
            conflict = exc
        try:
            live = api.get(plural, name, namespace)
        except client.NotFound:
            return
        if _meta(live).get("uid") != uid:
            return  # a different object with that name now: not ours to delete
        if (_meta(live).get("ownerReferences") or []) != (meta.get("ownerReferences") or []):
            log.info("%s %s/%s: ownerReferences changed since they were classified; not deleting, retrying",
                     plural, namespace, name)
            raise conflict
        with contextlib.suppress(client.NotFound, client.Conflict):  # Conflict: the uid changed meanwhile
            api.delete(plural, name, namespace, propagation_policy=policy, preconditions={"uid": uid})

    def _delete_dependents_first(self, api: client.Client, plural: str, owner: Obj) -> None:
        uid = str(_meta(owner).get("uid"))
        blocking = 0
        for dep_plural, dep in self.dependents(uid):
            ref = next((r for r in owner_refs(dep) if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not _deleting(dep):
                try:
                    self._attempt_to_delete(api, dep_plural, dep)
                except client.Conflict:  # it changed under us: classify it again on its own key, later
                    self._enqueue_rate_limited(dep_plural, dep)
        if blocking == 0:
            self._remove_finalizer(api, plural, owner, FOREGROUND)

    def _orphan_dependents(self, api: client.Client, plural: str, owner: Obj) -> None:
        uid = str(_meta(owner).get("uid"))
        for dep_plural, dep in self.dependents(uid):
            meta = _meta(dep)
            with contextlib.suppress(client.NotFound):
                api.patch(dep_plural, str(meta.get("name")), {"metadata": {
                    "uid": meta.get("uid"), "ownerReferences": [{"$patch": "delete", "uid": uid}]}},
                    str(meta.get("namespace") or ""), patch_type="strategic")
        self._remove_finalizer(api, plural, owner, ORPHAN)

    @staticmethod
    def _remove_finalizer(api: client.Client, plural: str, obj: Obj, finalizer: str) -> None:
        meta = _meta(obj)
        remaining = [f for f in _finalizers(obj) if f != finalizer]
        try:
            api.patch(plural, str(meta.get("name")), {"metadata": {
                "finalizers": remaining or None, "resourceVersion": meta.get("resourceVersion")}},
                str(meta.get("namespace") or ""))
        except client.NotFound:
            return
        log.info("%s %s/%s: removed finalizer %s", plural, meta.get("namespace"), meta.get("name"), finalizer)


def new() -> GarbageCollector:
    return GarbageCollector()
