"""Informer, WorkQueue, Manager and Recorder (kubesim.controllers.runtime/events) against a real server."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from kubesim import client
from kubesim.controllers import events, runtime, settings


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {}}


class Recording:
    """Informer callbacks collected into a queue so tests await them instead of sleeping."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()

    def attach(self, inf: runtime.Informer) -> None:
        inf.add_handler(lambda o: self.events.put(("add", o["metadata"]["name"])),
                        lambda _old, new: self.events.put(("update", new["metadata"]["name"])),
                        lambda o: self.events.put(("delete", o["metadata"]["name"])))

    def next(self, timeout: float = 10.0) -> tuple[str, str]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no informer callback within {timeout}s") from None

    def until(self, wanted: tuple[str, str], timeout: float = 10.0) -> list[tuple[str, str]]:
        seen = []
        deadline = time.monotonic() + timeout
        while wanted not in seen:
            seen.append(self.next(max(0.01, deadline - time.monotonic())))
        return seen


def test_informer_lists_existing_objects_then_delivers_watch_events(api: client.Client, ns: str) -> None:
    api.create("configmaps", _cm("old", app="a"), ns)
    inf = runtime.Informer(api, "configmaps", ns)
    rec = Recording()
    rec.attach(inf)
    inf.start()
    try:
        assert inf.wait_synced(10)
        assert rec.next() == ("add", "old")
        api.create("configmaps", _cm("new", app="b"), ns)
        assert rec.next() == ("add", "new")
        api.patch("configmaps", "new", {"data": {"k": "v"}}, ns)
        assert rec.next() == ("update", "new")
        assert inf.get(ns, "new")["data"] == {"k": "v"}  # type: ignore[index]
        from kubesim.apiserver import selectors
        names = [o["metadata"]["name"] for o in inf.list(ns, selectors.parse_label_selector("app=b"))]
        assert names == ["new"]
        api.delete("configmaps", "old", ns)
        assert rec.next() == ("delete", "old")
        assert inf.get(ns, "old") is None
    finally:
        inf.stop()


def test_informer_index_tracks_objects_by_a_computed_value(api: client.Client, ns: str) -> None:
    inf = runtime.Informer(api, "configmaps", ns)
    inf.add_index("app", lambda o: [(o["metadata"].get("labels") or {}).get("app", "")])
    rec = Recording()
    rec.attach(inf)
    inf.start()
    try:
        inf.wait_synced(10)
        api.create("configmaps", _cm("x", app="one"), ns)
        rec.until(("add", "x"))
        assert [o["metadata"]["name"] for o in inf.by_index("app", "one")] == ["x"]
        api.patch("configmaps", "x", {"metadata": {"labels": {"app": "two"}}}, ns)
        rec.until(("update", "x"))
        assert inf.by_index("app", "one") == []
        assert [o["metadata"]["name"] for o in inf.by_index("app", "two")] == ["x"]
    finally:
        inf.stop()


class GatedClient(client.Client):
    """Holds the informer's next watch until the test opens the gate (to make its resourceVersion expire)."""

    gate = threading.Event()

    def watch(self, *args: Any, **kwargs: Any) -> client.WatchStream:
        assert self.gate.wait(30), "gate never opened"
        return super().watch(*args, **kwargs)


def test_informer_relists_after_410_and_reports_what_it_missed(kubesim_factory: Any) -> None:
    kubeconfig = kubesim_factory("--watch-window", "3")
    base = client.Client.from_kubeconfig(kubeconfig)
    gated = GatedClient.from_kubeconfig(kubeconfig)
    assert isinstance(gated, GatedClient)
    gated.gate = threading.Event()
    gated.gate.set()
    base.create("configmaps", _cm("doomed"), "default")
    inf = runtime.Informer(gated, "configmaps", "default")
    rec = Recording()
    rec.attach(inf)
    inf.start()
    try:
        assert inf.wait_synced(10)
        assert rec.until(("add", "doomed"))
        assert inf.wait_watching(10)
        gated.gate.clear()
        inf.drop_watch()  # a dropped stream: the informer re-watches from its last resourceVersion
        base.delete("configmaps", "doomed", "default")
        for n in range(6):  # push that resourceVersion out of the 3-event window
            base.create("configmaps", _cm(f"later{n}"), "default")
        gated.gate.set()
        seen = rec.until(("delete", "doomed"))
        seen += rec.until(("add", "later5"))
        assert inf.relists == 2, "the expired watch should have been answered by exactly one re-list"
        assert inf.get("default", "doomed") is None
        assert {f"later{n}" for n in range(6)} <= {o["metadata"]["name"] for o in inf.list("default")}
    finally:
        gated.gate.set()
        inf.stop()


def test_workqueue_dedups_keys_and_never_hands_one_key_to_two_workers() -> None:
    q = runtime.WorkQueue()
    for _ in range(3):
        q.add("ns/a")
    q.add("ns/b")
    assert len(q) == 2
    first = q.get(timeout=1)
    assert first == "ns/a"
    q.add("ns/a")  # re-added while being processed: must wait for done()
    assert q.get(timeout=1) == "ns/b"
    assert q.get(timeout=0.1) is None
    q.done("ns/a")
    assert q.get(timeout=1) == "ns/a"
    q.done("ns/a")
    q.done("ns/b")
    assert q.get(timeout=0.05) is None


def test_workqueue_add_after_delivers_no_earlier_than_asked() -> None:
    q = runtime.WorkQueue()
    started = time.monotonic()
    q.add_after("k", 0.3)
    q.add_after("k", 5)  # the later duplicate must not delay the first delivery
    assert q.get(timeout=0.05) is None
    assert q.get(timeout=2) == "k"
    assert time.monotonic() - started >= 0.3
    q.shutdown()
    assert q.get(timeout=1) is None


def test_workqueue_keeps_only_the_earliest_delayed_add_of_a_key() -> None:
    q = runtime.WorkQueue()
    for _ in range(100):
        q.add_after("k", 5)
    q.add_after("k", 0.05)
    assert len(q._delayed) == 2, "repeated later add_after calls must not pile up"
    assert q.get(timeout=2) == "k"
    q.done("k")
    assert q.get(timeout=0.2) is None, "the superseded 5 s entry must not deliver again"


def test_workqueue_a_rate_limited_retry_that_asks_for_the_deadline_again_is_delivered_at_it() -> None:
    """The contract node lifecycle relies on: a 409 retry replaces a pending timer, so the retry must ask
    for its deadline again, and asking again is all it takes (no caller-side "already pending" table)."""
    q = runtime.WorkQueue(backoff_base=0.02)
    started = time.monotonic()
    q.add_after("node", 0.4)  # the grace deadline
    q.add_rate_limited("node")  # a 409 retry 20 ms later supersedes it
    assert q.get(timeout=1) == "node"
    q.done("node")
    q.add_after("node", 0.4 - (time.monotonic() - started))  # the retry asks for the same deadline again
    assert q.get(timeout=2) == "node", "the deadline re-check was lost"
    assert time.monotonic() - started >= 0.4


def test_workqueue_backoff_doubles_per_failure_and_resets_on_forget() -> None:
    q = runtime.WorkQueue(backoff_base=0.01, backoff_max=0.04)
    assert [q.add_rate_limited("k") for _ in range(4)] == [0.01, 0.02, 0.04, 0.04]
    q.forget("k")
    assert q.add_rate_limited("k") == 0.01


class Flaky:
    """Fails its first three reconciles of a key, then succeeds; records when each attempt ran."""

    name = "flaky"

    def __init__(self) -> None:
        self.attempts: list[float] = []
        self.succeeded = threading.Event()

    def setup(self, mgr: runtime.Manager) -> None:
        inf = mgr.informer("configmaps")
        inf.add_handler(on_add=lambda o: mgr.enqueue(self, client.key_of(o)) if o["metadata"]["name"] == "flaky"
                        else None)

    def reconcile(self, key: str) -> float | None:
        self.attempts.append(time.monotonic())
        if len(self.attempts) <= 3:
            raise RuntimeError(f"induced failure {len(self.attempts)} for {key}")
        self.succeeded.set()
        return None


def test_manager_retries_a_failing_reconcile_with_growing_backoff(api: client.Client, ns: str) -> None:
    mgr = runtime.Manager(api, settings.ControllerSettings(requeue_base=0.05, requeue_max=1.0))
    flaky = Flaky()
    mgr.add(flaky)
    assert mgr.start(sync_timeout=10)
    try:
        api.create("configmaps", _cm("flaky"), ns)
        assert flaky.succeeded.wait(10), f"reconcile never succeeded; attempts: {len(flaky.attempts)}"
        gaps = [b - a for a, b in zip(flaky.attempts, flaky.attempts[1:], strict=False)]
        assert len(gaps) == 3
        assert gaps[0] >= 0.05
        assert gaps[1] >= 0.1
        assert gaps[2] >= 0.2
        assert mgr.queue(flaky).failures(f"{ns}/flaky") == 0
    finally:
        mgr.stop()


def test_recorder_folds_a_repeated_event_into_one_with_a_count(api: client.Client, ns: str) -> None:
    cm = api.create("configmaps", _cm("subject"), ns)
    rec = events.Recorder(api, "test-controller")
    rec.warning(cm, "SomethingFailed", "it broke")
    rec.warning(cm, "SomethingFailed", "it broke")
    rec.normal(cm, "Fine", "all good")
    assert rec.flush(10)
    items, _rv = api.list("events", ns)
    by_reason = {e["reason"]: e for e in items}
    assert set(by_reason) == {"SomethingFailed", "Fine"}
    failed = by_reason["SomethingFailed"]
    assert failed["count"] == 2
    assert failed["type"] == "Warning"
    assert failed["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert failed["source"]["component"] == "test-controller"


def test_settings_read_durations_from_the_environment_and_refuse_nonsense() -> None:
    got = settings.ControllerSettings.from_env({"KUBESIM_NODE_MONITOR_GRACE": "4s",
                                                "KUBESIM_CRASHLOOP_BASE": "500ms", "KUBESIM_TOLERATION_SECONDS": "10"})
    assert (got.node_monitor_grace, got.crashloop_base, got.toleration_seconds) == (4.0, 0.5, 10)
    assert (got.node_status_interval, got.node_lease_duration, got.node_monitor_period) == (1.0, 4.0, 0.5)
    assert settings.ControllerSettings.from_env(got.to_env()) == got
    with pytest.raises(ValueError, match="not a duration"):
        settings.ControllerSettings.from_env({"KUBESIM_CRASHLOOP_BASE": "soon"})
    with pytest.raises(ValueError, match="node-status-interval"):
        settings.ControllerSettings(node_status_interval=5, node_monitor_grace=4).validated()


def test_a_handler_added_after_sync_is_replayed_the_cached_objects(api: client.Client, ns: str) -> None:
    api.create("configmaps", _cm("present"), ns)
    inf = runtime.Informer(api, "configmaps", ns)
    inf.start()
    try:
        assert inf.wait_synced(10)
        late = Recording()
        late.attach(inf)
        assert late.next() == ("add", "present")
    finally:
        inf.stop()


def test_informer_survives_a_handler_that_raises(api: client.Client, ns: str) -> None:
    inf = runtime.Informer(api, "configmaps", ns)

    def explode(_obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    inf.add_handler(on_add=explode)
    rec = Recording()
    rec.attach(inf)
    inf.start()
    try:
        assert inf.wait_synced(10)
        api.create("configmaps", _cm("one"), ns)
        api.create("configmaps", _cm("two"), ns)
        assert rec.until(("add", "two"))
    finally:
        inf.stop()
