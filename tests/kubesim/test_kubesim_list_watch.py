"""List with selectors and paging, and watch, through the official client and raw HTTP (A2, A4)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def _pod(name: str, labels: dict[str, str], node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


@pytest.fixture
def labelled_pods(kubesim_api: Any, namespace: str) -> client.CoreV1Api:
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_pod(namespace, _pod("a", {"app": "web", "tier": "front"}, node="n1"))
    core.create_namespaced_pod(namespace, _pod("b", {"app": "web", "tier": "back"}))
    core.create_namespaced_pod(namespace, _pod("c", {"app": "db"}, node="n1"))
    core.create_namespaced_pod(namespace, _pod("d", {"other": "x"}))
    return core


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c", "d"]),
    ("app in (web,db)", ["a", "b", "c"]),
    ("app notin (web)", ["c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("app=web,tier=back", ["b"]),
])
def test_label_selectors_select_like_upstream(labelled_pods: client.CoreV1Api, namespace: str, selector: str,
                                              expected: list[str]) -> None:
    """A2: =, ==, !=, in, notin, exists, !exists, and conjunctions."""
    items = labelled_pods.list_namespaced_pod(namespace, label_selector=selector).items
    assert sorted(p.metadata.name for p in items) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("metadata.name=b", ["b"]),
    ("spec.nodeName=n1", ["a", "c"]),
    ("spec.nodeName=", ["b", "d"]),
    ("status.phase=Pending", ["a", "b", "c", "d"]),
    ("status.phase!=Pending", []),
    ("metadata.name!=a,spec.nodeName=n1", ["c"]),
])
def test_field_selectors_select_like_upstream(labelled_pods: client.CoreV1Api, namespace: str, selector: str,
                                              expected: list[str]) -> None:
    """A2: metadata.name, spec.nodeName, status.phase (and !=)."""
    items = labelled_pods.list_namespaced_pod(namespace, field_selector=selector).items
    assert sorted(p.metadata.name for p in items) == expected


def test_field_selector_on_namespace_across_all_namespaces(labelled_pods: client.CoreV1Api, namespace: str) -> None:
    """A2: metadata.namespace on the all-namespaces list."""
    items = labelled_pods.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}").items
    assert sorted(p.metadata.name for p in items) == ["a", "b", "c", "d"]


def test_unsupported_field_selector_is_bad_request(labelled_pods: client.CoreV1Api, namespace: str) -> None:
    """A5: unknown field label -> 400 BadRequest with upstream's message."""
    with pytest.raises(ApiException) as err:
        labelled_pods.list_namespaced_pod(namespace, field_selector="spec.bogus=1")
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (400, "BadRequest")
    assert "field label not supported: spec.bogus" in body["message"]


def test_bad_label_selector_is_bad_request(labelled_pods: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        labelled_pods.list_namespaced_pod(namespace, label_selector="app in (web")
    assert err.value.status == 400


def test_paging_with_limit_and_continue_returns_every_item_once(kubesim_api: Any, namespace: str) -> None:
    """A2: limit + continue across three pages, remainingItemCount, one resourceVersion for all pages.

    Secrets, not ConfigMaps: every namespace also holds the ``kube-root-ca.crt`` ConfigMap."""
    core = client.CoreV1Api(kubesim_api)
    for i in range(7):
        core.create_namespaced_secret(namespace, {"metadata": {"name": f"cm-{i}"}})
    seen: list[str] = []
    first = core.list_namespaced_secret(namespace, limit=3)
    assert first.metadata.remaining_item_count == 4
    page = first
    pages = 1
    while True:
        seen += [c.metadata.name for c in page.items]
        assert page.metadata.resource_version == first.metadata.resource_version
        if not page.metadata._continue:
            break
        page = core.list_namespaced_secret(namespace, limit=3, _continue=page.metadata._continue)
        pages += 1
    assert pages == 3
    assert seen == [f"cm-{i}" for i in range(7)]


def test_later_pages_show_the_state_of_the_first_page(kubesim_api: Any, namespace: str) -> None:
    """A2: continue pages are a consistent snapshot — changes after the first page do not show."""
    core = client.CoreV1Api(kubesim_api)
    for i in range(6):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm-{i}"}, "data": {"v": "old"}})
    first = core.list_namespaced_config_map(namespace, limit=3)
    core.patch_namespaced_config_map("cm-4", namespace, {"data": {"v": "new"}})
    core.delete_namespaced_config_map("cm-5", namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm-3a"}})
    rest = core.list_namespaced_config_map(namespace, limit=10, _continue=first.metadata._continue)
    assert [(c.metadata.name, c.data) for c in rest.items] == [
        ("cm-3", {"v": "old"}), ("cm-4", {"v": "old"}), ("cm-5", {"v": "old"})]
    assert rest.metadata.resource_version == first.metadata.resource_version


def test_exact_resource_version_list_returns_that_state(kubesim_api: Any, namespace: str) -> None:
    """A2: resourceVersionMatch=Exact serves the list as of that version."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}, "data": {"v": "1"}})
    then = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.patch_namespaced_config_map("x", namespace, {"data": {"v": "2"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "y"}})
    old = core.list_namespaced_config_map(namespace, resource_version=then, resource_version_match="Exact")
    assert [(c.metadata.name, c.data) for c in old.items] == [("x", {"v": "1"})]
    assert old.metadata.resource_version == then


def test_watch_from_empty_version_starts_with_current_objects(kubesim_api: Any, namespace: str) -> None:
    """A4: resourceVersion "" -> synthetic ADDED for existing objects, then live changes."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "old"}})
    got: list[tuple[str, str]] = []
    stream = watch.Watch()

    def change() -> None:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "new"}})
        core.patch_namespaced_config_map("new", namespace, {"data": {"k": "v"}})
        core.delete_namespaced_config_map("new", namespace)

    writer = threading.Timer(0.3, change)
    writer.start()
    for event in stream.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10):
        got.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            stream.stop()
    writer.join()
    assert got == [("ADDED", "old"), ("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]


def test_watch_from_a_resource_version_replays_only_later_changes(kubesim_api: Any, namespace: str) -> None:
    """A4: a numeric resourceVersion streams exactly the changes after it."""
    core = client.CoreV1Api(kubesim_api)
    before = core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    core.patch_namespaced_config_map("x", namespace, {"data": {"n": "1"}})
    core.patch_namespaced_config_map("x", namespace, {"data": {"n": "2"}})
    stream = watch.Watch()
    got = []
    for event in stream.stream(core.list_namespaced_config_map, namespace,
                               resource_version=before.metadata.resource_version, timeout_seconds=5):
        got.append((event["type"], event["object"].data))
        if len(got) == 2:
            stream.stop()
    assert got == [("MODIFIED", {"n": "1"}), ("MODIFIED", {"n": "2"})]


def test_watch_sees_objects_enter_and_leave_a_label_selector(kubesim_api: Any, namespace: str) -> None:
    """A4: relabelling into / out of a selector arrives as ADDED / DELETED."""
    core = client.CoreV1Api(kubesim_api)
    start = core.create_namespaced_config_map(namespace, {"metadata": {"name": "m", "labels": {"sel": "no"}}})
    core.patch_namespaced_config_map("m", namespace, {"metadata": {"labels": {"sel": "yes"}}})
    core.patch_namespaced_config_map("m", namespace, {"metadata": {"labels": {"sel": "no"}}})
    stream = watch.Watch()
    got = []
    for event in stream.stream(core.list_namespaced_config_map, namespace, label_selector="sel=yes",
                               resource_version=start.metadata.resource_version, timeout_seconds=5):
        got.append(event["type"])
        if len(got) == 2:
            stream.stop()
    assert got == ["ADDED", "DELETED"]


def _watch_lines(raw: Any, path: str, count: int) -> list[dict[str, Any]]:
    """Read ``count`` events from a raw watch response (chunked NDJSON)."""
    import http.client

    conn = http.client.HTTPSConnection(raw.host, raw.port, context=raw.context, timeout=15)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {raw.token}"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert resp.getheader("Transfer-Encoding") == "chunked"
        events = []
        while len(events) < count:
            line = resp.readline()
            assert line, f"stream ended after {events}"
            events.append(json.loads(line))
        return events
    finally:
        conn.close()


def test_watch_sends_bookmarks_when_asked(raw: Any, kubesim_api: Any, namespace: str) -> None:
    """A4: allowWatchBookmarks -> BOOKMARK events carrying a resourceVersion (interval shortened for tests)."""
    cm = client.CoreV1Api(kubesim_api).create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    rv = cm.metadata.resource_version
    events = _watch_lines(raw, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&allowWatchBookmarks=true"
                               f"&resourceVersion={rv}&timeoutSeconds=10", 1)
    assert events[0]["type"] == "BOOKMARK"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_watch_list_sends_initial_events_then_an_annotated_bookmark(raw: Any, kubesim_api: Any,
                                                                    namespace: str) -> None:
    """A4: sendInitialEvents=true (client-go watch-list) ends the initial state with the marked BOOKMARK."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "two"}})
    events = _watch_lines(raw, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true"
                               "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", 3)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == [("ADDED", "one"),
                                                                                      ("ADDED", "two")]
    assert events[2]["type"] == "BOOKMARK"
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_send_initial_events_without_not_older_than_is_invalid(raw: Any, namespace: str) -> None:
    """A4: the real 422 for a malformed watch-list request."""
    reply = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&sendInitialEvents=true")
    assert reply.status == 422
    assert reply.json()["reason"] == "Invalid"


@pytest.fixture(scope="module")
def tiny_window_api(kubesim_factory: Callable[..., Path]) -> Any:
    """A separate kubesim that keeps only 5 watch events, so compaction is easy to reach."""
    api = config.new_client_from_config(config_file=str(kubesim_factory("--watch-window", "5")))
    try:
        yield api
    finally:
        api.close()


def test_watch_from_a_compacted_version_is_410_expired(tiny_window_api: Any) -> None:
    """A4: a resourceVersion older than the kept window -> ERROR event with 410 Expired; re-list works."""
    core = client.CoreV1Api(tiny_window_api)
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "w0"}})
    for i in range(1, 10):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"w{i}"}})
    with pytest.raises(ApiException) as err:
        for _event in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                           resource_version=first.metadata.resource_version, timeout_seconds=5):
            pass
    assert err.value.status == 410
    assert "too old resource version" in str(err.value.reason)
    relisted = core.list_namespaced_config_map("default")
    assert len(relisted.items) == 10


def test_continue_token_from_a_compacted_version_is_410(tiny_window_api: Any) -> None:
    """A2: paging past the compaction window answers 410 Expired (re-list)."""
    core = client.CoreV1Api(tiny_window_api)
    for i in range(4):
        core.create_namespaced_config_map("kube-public", {"metadata": {"name": f"p{i}"}})
    page = core.list_namespaced_config_map("kube-public", limit=2)
    for i in range(8):
        core.create_namespaced_config_map("kube-public", {"metadata": {"name": f"q{i}"}})
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("kube-public", limit=2, _continue=page.metadata._continue)
    assert err.value.status == 410
    assert json.loads(err.value.body)["reason"] == "Expired"


def test_eight_concurrent_watchers_each_see_every_event(kubesim_api: Any, kubesim_kubeconfig: Path,
                                                        namespace: str) -> None:
    """A4: fan-out without loss."""
    core = client.CoreV1Api(kubesim_api)
    start = core.create_namespaced_config_map(namespace, {"metadata": {"name": "seed"}})
    total = 40
    counts: list[int] = [0] * 8

    def watcher(index: int) -> None:
        own = config.new_client_from_config(config_file=str(kubesim_kubeconfig))
        stream = watch.Watch()
        try:
            for _event in stream.stream(client.CoreV1Api(own).list_namespaced_config_map, namespace,
                                        resource_version=start.metadata.resource_version, timeout_seconds=20):
                counts[index] += 1
                if counts[index] == total:
                    stream.stop()
        finally:
            own.close()

    threads = [threading.Thread(target=watcher, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for i in range(total):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"f{i}"}})
    deadline = time.monotonic() + 25
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    assert counts == [total] * 8


def test_watch_ends_cleanly_at_timeout_seconds(raw: Any, namespace: str) -> None:
    """A4: timeoutSeconds closes the stream with the terminating chunk (no error)."""
    import http.client

    conn = http.client.HTTPSConnection(raw.host, raw.port, context=raw.context, timeout=15)
    try:
        started = time.monotonic()
        conn.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=1",
                     headers={"Authorization": f"Bearer {raw.token}"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b""
        assert 0.9 <= time.monotonic() - started < 5
    finally:
        conn.close()


def test_watch_as_table_sends_one_row_per_event(raw: Any, kubesim_api: Any, namespace: str) -> None:
    """A4, A7: `kubectl get -w` asks for Tables; each event carries a one-row Table, headers only first."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "t1"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "t2"}})
    import http.client

    conn = http.client.HTTPSConnection(raw.host, raw.port, context=raw.context, timeout=15)
    try:
        conn.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=5",
                     headers={"Authorization": f"Bearer {raw.token}",
                              "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        resp = conn.getresponse()
        first, second = json.loads(resp.readline()), json.loads(resp.readline())
    finally:
        conn.close()
    assert first["object"]["kind"] == "Table"
    assert [c["name"] for c in first["object"]["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert "columnDefinitions" not in second["object"]
    assert [e["object"]["rows"][0]["cells"][0] for e in (first, second)] == ["t1", "t2"]


def test_watching_one_object_by_url(raw: Any, kubesim_api: Any, namespace: str) -> None:
    """A4: `.../configmaps/x?watch=1` streams only that object."""
    core = client.CoreV1Api(kubesim_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "mine"}})
    for path in (f"/api/v1/namespaces/{namespace}/configmaps/mine?watch=1&timeoutSeconds=1",
                 f"/api/v1/watch/namespaces/{namespace}/configmaps/mine?timeoutSeconds=1"):
        reply = raw.request("GET", path)
        events = [json.loads(line) for line in reply.body.splitlines()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "mine")]


def _server_threads(kubeconfig: Path) -> int:
    state = json.loads((kubeconfig.parent / "state.json").read_text())
    pid = state["components"]["apiserver"]["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads line for pid {pid}")


def test_abandoned_watches_release_their_server_threads(raw: Any, kubesim_kubeconfig: Path, namespace: str) -> None:
    """A4, A10: clients that hang up mid-watch do not leave threads behind in the server."""
    import http.client

    import tenacity

    before = _server_threads(kubesim_kubeconfig)
    conns = []
    for _ in range(20):
        conn = http.client.HTTPSConnection(raw.host, raw.port, context=raw.context, timeout=10)
        conn.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion=0",
                     headers={"Authorization": f"Bearer {raw.token}"})
        assert conn.getresponse().status == 200
        conns.append(conn)
    assert _server_threads(kubesim_kubeconfig) >= before + 20
    for conn in conns:
        conn.close()
    seen: list[int] = []

    def settled() -> bool:
        seen.append(_server_threads(kubesim_kubeconfig))
        return seen[-1] <= before + 2

    tenacity.Retrying(
        stop=tenacity.stop_before_delay(10), wait=tenacity.wait_fixed(0.2),
        retry=tenacity.retry_if_result(lambda done: not done),
        retry_error_callback=lambda _state: pytest.fail(
            f"watch threads not released: {before} before, last counts {seen[-5:]}"),
    )(settled)
