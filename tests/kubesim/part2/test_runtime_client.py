"""kubesim.client against the part-1 API server over HTTPS (no server internals)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from kubesim import client


def _cm(name: str, **labels: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"a": "1"}}


def test_client_round_trips_create_get_list_patch_update_delete(api: client.Client, ns: str) -> None:
    created = api.create("configmaps", _cm("one", app="x"), ns)
    api.create("configmaps", _cm("two", app="y"), ns)
    assert api.get("configmaps", "one", ns)["metadata"]["uid"] == created["metadata"]["uid"]
    items, rv = api.list("configmaps", ns, label_selector="app=x")
    assert [i["metadata"]["name"] for i in items] == ["one"]
    assert int(rv) > 0
    assert items[0]["kind"] == "ConfigMap"
    assert api.patch("configmaps", "one", {"data": {"b": "2"}}, ns)["data"] == {"a": "1", "b": "2"}
    assert api.patch("configmaps", "one", {"data": {"c": "3"}}, ns, patch_type="strategic")["data"]["c"] == "3"
    patched = api.patch("configmaps", "one", [{"op": "remove", "path": "/data/a"}], ns, patch_type="json")
    assert "a" not in patched["data"]
    stale = dict(created)
    with pytest.raises(client.Conflict) as exc:
        api.update("configmaps", stale)
    assert exc.value.status == 409
    assert exc.value.reason == "Conflict"
    fresh = api.get("configmaps", "one", ns)
    fresh["data"] = {"z": "9"}
    assert api.update("configmaps", fresh)["data"] == {"z": "9"}
    api.delete("configmaps", "one", ns)
    with pytest.raises(client.NotFound) as missing:
        api.get("configmaps", "one", ns)
    assert missing.value.message == 'configmaps "one" not found'


def test_client_maps_status_reasons_to_error_classes(api: client.Client, ns: str) -> None:
    api.create("configmaps", _cm("dup"), ns)
    with pytest.raises(client.AlreadyExists):
        api.create("configmaps", _cm("dup"), ns)
    with pytest.raises(client.Invalid) as invalid:
        api.create("configmaps", _cm("Not_A_Name"), ns)
    assert invalid.value.status == 422
    with pytest.raises(client.NotFound) as sts:
        api.get("statefulsets", "nope", ns)
    assert sts.value.message == 'statefulsets.apps "nope" not found'
    with pytest.raises(client.Conflict):
        api.delete("configmaps", "dup", ns, preconditions={"uid": "not-the-uid"})


def test_client_binds_a_pod_through_the_binding_subresource(api: client.Client, ns: str) -> None:
    api.create("pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, ns)
    api.post_subresource("pods", "p", ns, "binding",
                         {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": "somenode"}})
    assert api.get("pods", "p", ns)["spec"]["nodeName"] == "somenode"
    api.delete("pods", "p", ns, grace_period_seconds=0)


def test_client_watch_streams_changes_from_the_list_resource_version(api: client.Client, ns: str) -> None:
    api.create("configmaps", _cm("before"), ns)
    _items, rv = api.list("configmaps", ns)
    stream = api.watch("configmaps", ns, resource_version=rv, timeout_seconds=30)
    api.create("configmaps", _cm("after"), ns)
    api.delete("configmaps", "after", ns)
    seen: list[tuple[str, str]] = []
    for etype, obj in stream:
        if etype == "BOOKMARK":
            continue
        seen.append((etype, obj["metadata"]["name"]))
        if len(seen) == 2:
            break
    stream.close()
    assert seen == [("ADDED", "after"), ("DELETED", "after")]


def test_closing_a_watch_from_another_thread_unblocks_its_reader(api: client.Client, ns: str) -> None:
    _items, rv = api.list("configmaps", ns)
    stream = api.watch("configmaps", ns, resource_version=rv, timeout_seconds=60, allow_bookmarks=False)
    ended = threading.Event()

    def read() -> None:
        for _event in stream:
            pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert not ended.wait(0.3), "the watch ended on its own before close()"
    started = time.monotonic()
    stream.close()
    assert ended.wait(5), "close() did not unblock the reader"
    assert time.monotonic() - started < 5


def test_watch_from_an_expired_resource_version_raises_gone(kubesim_factory: object) -> None:
    kubeconfig = kubesim_factory("--watch-window", "3")  # type: ignore[operator]
    api = client.Client.from_kubeconfig(kubeconfig)
    _items, rv = api.list("configmaps", "default")
    for n in range(6):
        api.create("configmaps", _cm(f"c{n}"), "default")
    with pytest.raises(client.Gone) as exc:
        for _event in api.watch("configmaps", "default", resource_version=rv, timeout_seconds=10):
            pass
    assert exc.value.status == 410
    assert exc.value.reason == "Expired"


def test_one_client_serves_many_threads_at_once(api: client.Client, ns: str) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for m in range(5):
                api.create("configmaps", _cm(f"t{n}-{m}"), ns)
                api.get("configmaps", f"t{n}-{m}", ns)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(api.list("configmaps", ns)[0]) == 40


def test_a_server_that_is_not_listening_is_unreachable(kubesim_kubeconfig: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = client.Client.from_kubeconfig(kubesim_kubeconfig)
    dead.port = port  # same CA and token, nobody listening
    with pytest.raises(client.Unreachable) as exc:
        dead.get("namespaces", "default")
    assert exc.value.status == 0


def test_resolve_prefers_the_core_group_and_accepts_a_qualified_plural() -> None:
    assert client.resolve("events").group == ""
    assert client.resolve("events.events.k8s.io").group == "events.k8s.io"
    assert client.resolve("statefulsets").group == "apps"
    with pytest.raises(ValueError, match="no resource"):
        client.resolve("deployments")
