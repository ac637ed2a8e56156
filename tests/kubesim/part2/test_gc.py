"""D6 garbage collection through the API: background, foreground (blockOwnerDeletion) and orphan propagation.

Runs a control plane with only the garbage collector (``--controllers garbagecollector``): owners
and dependents are ConfigMaps / Secrets, so no kubelet is involved.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tenacity

from kubesim import client


@pytest.fixture(scope="module")
def gc_api(kubesim_factory: Any) -> Iterator[client.Client]:
    kubeconfig: Path = kubesim_factory("--controllers", "garbagecollector")
    api = client.Client.from_kubeconfig(kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def ns(gc_api: client.Client) -> str:
    name = f"gc-{uuid.uuid4().hex[:10]}"
    gc_api.create("namespaces", {"metadata": {"name": name}})
    return name


def _ref(owner: dict[str, Any], *, block: bool = False, controller: bool = False) -> dict[str, Any]:
    ref = {"apiVersion": owner.get("apiVersion", "v1"), "kind": owner.get("kind", "ConfigMap"),
           "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    if controller:
        ref["controller"] = True
    return ref


def _cm(api: client.Client, ns: str, name: str, *owners: dict[str, Any], finalizers: tuple[str, ...] = ()) -> dict[
        str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = list(owners)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    obj = api.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}, ns)
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "ConfigMap")
    return obj


def _await(what: str, probe: Any, timeout: float = 10.0) -> Any:
    last: list[Any] = [None]

    def check() -> bool:
        last[0] = probe()
        return bool(last[0])

    def gave_up(_s: tenacity.RetryCallState) -> None:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last[0]!r}")

    tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.05),
                      retry=tenacity.retry_if_result(lambda ok: not ok), retry_error_callback=gave_up)(check)
    return last[0]


def _exists(api: client.Client, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get("configmaps", name, ns)
    except client.NotFound:
        return None


def test_background_deletion_removes_dependents_after_the_owner(gc_api: client.Client, ns: str) -> None:
    owner = _cm(gc_api, ns, "owner")
    _cm(gc_api, ns, "child", _ref(owner))
    _cm(gc_api, ns, "grandchild", _ref(_cm(gc_api, ns, "child2", _ref(owner))))
    gc_api.delete("configmaps", "owner", ns, propagation_policy="Background")
    assert _exists(gc_api, ns, "owner") is None
    for name in ("child", "child2", "grandchild"):
        _await(f"{name} to be collected", lambda n=name: _exists(gc_api, ns, n) is None)


def test_dependent_with_a_remaining_owner_only_loses_the_dangling_reference(gc_api: client.Client, ns: str) -> None:
    first = _cm(gc_api, ns, "first")
    second = _cm(gc_api, ns, "second")
    _cm(gc_api, ns, "shared-child", _ref(first), _ref(second))
    gc_api.delete("configmaps", "first", ns)

    def only_second() -> bool:
        obj = _exists(gc_api, ns, "shared-child")
        return obj is not None and [r["name"] for r in obj["metadata"].get("ownerReferences", [])] == ["second"]

    _await("shared-child to keep only its reference to second", only_second)


def test_dependent_of_an_owner_that_never_existed_with_that_uid_is_deleted(gc_api: client.Client, ns: str) -> None:
    owner = _cm(gc_api, ns, "real")
    fake = dict(owner, metadata=dict(owner["metadata"], uid=str(uuid.uuid4())))
    _cm(gc_api, ns, "mismatched", _ref(fake))
    _cm(gc_api, ns, "matched", _ref(owner))
    _await("the dependent naming a stale uid to be collected", lambda: _exists(gc_api, ns, "mismatched") is None)
    assert _exists(gc_api, ns, "matched") is not None


def test_foreground_deletion_waits_for_blocking_dependents(gc_api: client.Client, ns: str) -> None:
    owner = _cm(gc_api, ns, "fg-owner")
    # The blocking dependent holds its own finalizer, so the owner must stay until the test releases it.
    _cm(gc_api, ns, "fg-blocker", _ref(owner, block=True), finalizers=("example.com/hold",))
    _cm(gc_api, ns, "fg-plain", _ref(owner))
    gc_api.delete("configmaps", "fg-owner", ns, propagation_policy="Foreground")
    _await("the non-blocking dependent to be deleted", lambda: _exists(gc_api, ns, "fg-plain") is None)
    blocker = _await("the blocking dependent to be marked for deletion",
                     lambda: (o := _exists(gc_api, ns, "fg-blocker")) and o["metadata"].get("deletionTimestamp") and o)
    still = _exists(gc_api, ns, "fg-owner")
    assert still is not None, "the owner vanished while a blockOwnerDeletion dependent still existed"
    assert "foregroundDeletion" in still["metadata"]["finalizers"]
    gc_api.patch("configmaps", "fg-blocker", {"metadata": {"finalizers": None,
                                                          "resourceVersion": blocker["metadata"]["resourceVersion"]}},
                 ns)
    _await("the owner to go once its blocking dependent is gone", lambda: _exists(gc_api, ns, "fg-owner") is None)


def test_orphan_deletion_keeps_dependents_and_strips_their_reference(gc_api: client.Client, ns: str) -> None:
    owner = _cm(gc_api, ns, "orphan-owner")
    other = _cm(gc_api, ns, "other-owner")
    _cm(gc_api, ns, "kept", _ref(owner, controller=True))
    _cm(gc_api, ns, "kept-two-owners", _ref(owner), _ref(other))
    gc_api.delete("configmaps", "orphan-owner", ns, propagation_policy="Orphan")
    _await("the owner to be deleted after orphaning", lambda: _exists(gc_api, ns, "orphan-owner") is None)
    kept = _exists(gc_api, ns, "kept")
    assert kept is not None
    assert not kept["metadata"].get("ownerReferences")
    two = _exists(gc_api, ns, "kept-two-owners")
    assert two is not None
    assert [r["name"] for r in two["metadata"]["ownerReferences"]] == ["other-owner"]


def test_cross_kind_ownership_collects_a_secret_owned_by_a_configmap(gc_api: client.Client, ns: str) -> None:
    owner = _cm(gc_api, ns, "cm-owner")
    gc_api.create("secrets", {"metadata": {"name": "owned-secret", "ownerReferences": [_ref(owner)]}}, ns)
    gc_api.delete("configmaps", "cm-owner", ns)

    def secret_gone() -> bool:
        try:
            gc_api.get("secrets", "owned-secret", ns)
        except client.NotFound:
            return True
        return False

    _await("the secret to be collected", secret_gone)


def test_foreground_deletion_without_blocking_dependents_finishes_and_collects_them(gc_api: client.Client,
                                                                                  ns: str) -> None:
    owner = _cm(gc_api, ns, "fg-free")
    _cm(gc_api, ns, "fg-free-child", _ref(owner))
    gc_api.delete("configmaps", "fg-free", ns, propagation_policy="Foreground")
    _await("the owner to go (nothing blocks it)", lambda: _exists(gc_api, ns, "fg-free") is None)
    _await("its dependent to be collected", lambda: _exists(gc_api, ns, "fg-free-child") is None)
