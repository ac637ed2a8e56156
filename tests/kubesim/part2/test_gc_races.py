"""D6 garbage-collector races, replayed deterministically (upstream ``attemptToDeleteItem`` semantics).

The collector runs in-process against the session's API-server-only kubesim, but nothing runs on its
own: the manager is never started, so no informer thread and no worker exist. The test applies the
watch events the GC's informer would receive, in the order it chooses (``Informer._apply`` is exactly
what the watch loop calls per event), and runs reconciles in the order it chooses. So an informer that
lags behind the worker — what a loaded machine produces now and then — is replayed every time.

Upstream decides from the *live* dependent (``latest := gc.getObject(...)``, then
``classifyReferences(latest.OwnerReferences)``) and deletes it only at the resourceVersion it
classified (kubernetes#132632, fixing #114603: a re-parented DaemonSet was deleted). These tests fail
if the collector decides from its cache, or deletes without that resourceVersion precondition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import client
from kubesim.controllers import gc, runtime

Obj = dict[str, Any]


class HandDriven:
    """A GarbageCollector whose informer events and reconciles are applied by the test, one by one."""

    def __init__(self, api: client.Client) -> None:
        self.mgr = runtime.Manager(api)
        self.gc = gc.GarbageCollector()
        self.mgr.add(self.gc)

    def observe(self, etype: str, obj: Obj) -> None:
        """The configmaps watch delivers ``etype`` for ``obj`` (cache, indices and handlers, as the watch loop)."""
        self.gc.informers["configmaps"]._apply(etype, obj)

    def cached(self, ns: str, name: str) -> Obj | None:
        return self.gc.informers["configmaps"].get(ns, name)

    def queued(self) -> list[str]:
        """Keys the handlers enqueued so far, in order (drains the queue; the test runs them itself)."""
        q = self.mgr.queue(self.gc)
        keys = []
        while len(q):
            key = q.get(timeout=0)
            assert key is not None
            q.done(key)
            keys.append(key)
        return keys

    def reconcile(self, ns: str, name: str) -> None:
        assert self.gc.reconcile(f"configmaps|{ns}|{name}") is None


@pytest.fixture
def gc_client(kubesim_kubeconfig: Path) -> Iterator[client.Client]:
    """A client of its own for the collector, so a test can hook the collector's reads only."""
    c = client.Client.from_kubeconfig(kubesim_kubeconfig)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def hand(gc_client: client.Client) -> Iterator[HandDriven]:
    driven = HandDriven(gc_client)
    try:
        yield driven
    finally:
        driven.mgr.stop()


def _cm(api: client.Client, ns: str, name: str, *owners: Obj) -> Obj:
    meta: Obj = {"name": name}
    if owners:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"],
                                    "uid": o["metadata"]["uid"]} for o in owners]
    obj = api.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}, ns)
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "ConfigMap")
    return obj


def _live(api: client.Client, ns: str, name: str) -> Obj | None:
    try:
        return api.get("configmaps", name, ns)
    except client.NotFound:
        return None


def _owner_names(obj: Obj) -> list[str]:
    return [str(r["name"]) for r in obj["metadata"].get("ownerReferences") or []]


def _before_first_get_of(monkeypatch: pytest.MonkeyPatch, c: client.Client, name: str,
                         step: Callable[[], None]) -> list[str]:
    """Run ``step`` once, just before ``c``'s first GET of ``name`` is sent; returns the names ``c`` GETs."""
    real_get = c.get
    got: list[str] = []

    def get(plural: str, obj_name: str, namespace: str = "", **kw: Any) -> Obj:
        if obj_name == name and name not in got:
            step()
        got.append(obj_name)
        return real_get(plural, obj_name, namespace, **kw)

    monkeypatch.setattr(c, "get", get)
    return got


def test_orphaned_dependent_still_cached_with_its_reference_is_not_collected(
        api: client.Client, ns: str, hand: HandDriven) -> None:
    """The flake of test_gc.py::test_orphan_deletion_keeps_dependents_and_strips_their_reference, replayed.

    The owner's orphan finalizer is processed (reference stripped live, finalizer removed, owner gone)
    while the informer has not yet delivered the dependent's MODIFIED event; the dependent's key, queued
    by the owner's deletion event behind the owner's, then runs against the cached dependent that still
    names the now-absent owner.
    """
    owner = _cm(api, ns, "owner")
    kept = _cm(api, ns, "kept", owner)
    hand.observe("ADDED", owner)
    hand.observe("ADDED", kept)
    hand.queued()
    hand.reconcile(ns, "kept")  # its owner is solid in the cache: nothing to do

    deleting = api.delete("configmaps", "owner", ns, propagation_policy="Orphan")
    assert deleting is not None
    assert deleting["metadata"]["finalizers"] == ["orphan"]
    hand.observe("MODIFIED", deleting)
    assert hand.queued() == [f"configmaps|{ns}|owner", f"configmaps|{ns}|kept"]

    hand.reconcile(ns, "owner")  # orphans: strips kept's reference, removes the finalizer
    assert _live(api, ns, "owner") is None, "the owner should be gone once its orphan finalizer was removed"
    live_kept = _live(api, ns, "kept")
    assert live_kept is not None
    assert _owner_names(live_kept) == []
    cached_kept = hand.cached(ns, "kept")
    assert cached_kept is not None
    assert _owner_names(cached_kept) == ["owner"], "the replay needs the informer not to have seen the orphaning"

    hand.reconcile(ns, "kept")  # the informer still lags: the cached kept names an owner that is gone
    after = _live(api, ns, "kept")
    assert after is not None, "the GC deleted an orphaned dependent from its stale cached ownerReferences"
    assert _owner_names(after) == []


def test_dependent_re_parented_between_its_live_read_and_the_delete_is_kept(
        api: client.Client, ns: str, gc_client: client.Client, hand: HandDriven,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """kubernetes#114603: after the GC read the dependent (owner: old), a controller moved it to a new
    owner and deleted the old one; the GC then finds "old" gone. Deleting at the resourceVersion it
    classified fails with a Conflict, the ownerReferences differ now, so it retries later and keeps it."""
    old = _cm(api, ns, "old-owner")
    new = _cm(api, ns, "new-owner")
    dep = _cm(api, ns, "dep", old)
    for obj in (old, new, dep):
        hand.observe("ADDED", obj)
    api.delete("configmaps", "old-owner", ns)
    hand.observe("DELETED", old)
    assert f"configmaps|{ns}|dep" in hand.queued()

    def re_parent() -> None:
        api.patch("configmaps", "dep", {"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "new-owner", "uid": new["metadata"]["uid"]}]}}, ns)

    gets = _before_first_get_of(monkeypatch, gc_client, "old-owner", re_parent)
    with contextlib.suppress(client.Conflict):  # the manager retries the key, as upstream requeues the item
        hand.reconcile(ns, "dep")
    assert "old-owner" in gets, "the replay needs the GC to have looked the old owner up"
    live = _live(api, ns, "dep")
    assert live is not None, "the GC deleted a dependent whose ownerReferences changed after it read them"
    assert _owner_names(live) == ["new-owner"]

    hand.reconcile(ns, "dep")  # the retry, still before the informer delivered dep's MODIFIED
    live = _live(api, ns, "dep")
    assert live is not None
    assert _owner_names(live) == ["new-owner"]


def test_dependent_changed_elsewhere_between_its_live_read_and_the_delete_is_still_collected(
        api: client.Client, ns: str, gc_client: client.Client, hand: HandDriven,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The resourceVersion precondition must not starve collection: when the conflict came from a change
    that left the ownerReferences as classified, the delete is retried with the uid precondition only."""
    owner = _cm(api, ns, "owner")
    dep = _cm(api, ns, "busy", owner)
    hand.observe("ADDED", owner)
    hand.observe("ADDED", dep)
    api.delete("configmaps", "owner", ns)
    hand.observe("DELETED", owner)
    assert f"configmaps|{ns}|busy" in hand.queued()

    def touch() -> None:
        api.patch("configmaps", "busy", {"data": {"status": "changed"}}, ns)

    gets = _before_first_get_of(monkeypatch, gc_client, "owner", touch)
    hand.reconcile(ns, "busy")
    assert "owner" in gets, "the replay needs the GC to have looked the owner up"
    assert _live(api, ns, "busy") is None, "a dependent of a gone owner survived an unrelated update"
