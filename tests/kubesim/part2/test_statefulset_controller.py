"""The StatefulSet controller against a real kubesim API server, the test playing the kubelet.

Only the API server and this controller run (in-process, confined to the test's namespace); the
test marks pods Running/Ready through `pods/status` the way a kubelet would. That isolates the
controller's behaviour (F checklist items about the StatefulSet controller) from the kubelet,
scheduler and volume controllers, which `test_statefulset_cluster.py` exercises end to end.
Pods here are never scheduled, so their deletion is immediate (upstream's rule for unscheduled
pods), which keeps every test to a second or two.
"""

from __future__ import annotations

import contextlib
import datetime
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import cluster_waits
import pytest

from kubesim import client
from kubesim.controllers import runtime, settings
from kubesim.controllers import statefulset as sts_controller

Obj = dict[str, Any]
WAIT = 30.0  # generous: the machine is shared; a passing run takes about a second per test


@pytest.fixture
def controller(api: client.Client, ns: str) -> Iterator[runtime.Manager]:
    """Only the StatefulSet controller, watching only `ns` (other tests share this API server)."""
    mgr = runtime.Manager(api, settings.ControllerSettings(requeue_base=0.02, requeue_max=0.5))
    mgr.add(sts_controller.StatefulSetController(namespace=ns))
    assert mgr.start(sync_timeout=10), "StatefulSet controller caches did not sync within 10s"
    try:
        yield mgr
    finally:
        mgr.stop()


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_pod_state(api: client.Client, ns: str, name: str, *, ready: bool, phase: str = "Running") -> None:
    """What a kubelet reports: phase plus the Ready condition (lastTransitionTime only when it flips)."""
    pod = api.get("pods", name, ns)
    old = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    wanted = "True" if ready else "False"
    since = old["lastTransitionTime"] if old and old.get("status") == wanted else now()
    api.patch("pods", name, {"status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": wanted, "lastTransitionTime": since}]}}, ns, subresource="status")


class FakeKubelet:
    """Marks every new pod of the namespace Running and Ready, except names listed in `hold`."""

    def __init__(self, api: client.Client, ns: str) -> None:
        self.api, self.ns = api, ns
        self.hold: set[str] = set()
        self._stop = threading.Event()
        self._stream: client.WatchStream | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-kubelet")
        self._ready = threading.Event()

    def __enter__(self) -> FakeKubelet:
        self._thread.start()
        assert self._ready.wait(10), "fake kubelet watch did not open"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()
        self._thread.join(10)

    def _run(self) -> None:
        worker = self.api  # thread-safe: one keep-alive connection per thread
        self._stream = worker.watch("pods", self.ns, resource_version="0", timeout_seconds=120)
        self._ready.set()
        try:
            for etype, pod in self._stream:
                if self._stop.is_set():
                    return
                meta = pod.get("metadata") or {}
                if etype == "ADDED" and not meta.get("deletionTimestamp") and meta["name"] not in self.hold:
                    try:
                        set_pod_state(worker, self.ns, meta["name"], ready=True)
                    except client.NotFound:
                        continue
        except (client.ApiError, OSError, ValueError):
            if not self._stop.is_set():
                raise


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `probe` until truthy; a timeout names what was awaited and the last value seen."""
    return cluster_waits.until_truthy(what, probe, timeout)


def make_sts(name: str = "web", replicas: int = 3, *, image: str = "pause:1", parallel: bool = False,
             claims: bool = False, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": "svc", "selector": {"matchLabels": {"app": name}},
                 "podManagementPolicy": "Parallel" if parallel else "OrderedReady",
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}, **spec},
    }
    if claims:
        body["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}]
    return body


def pod_names(api: client.Client, ns: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in api.list("pods", ns)[0])


def pods_by_name(api: client.Client, ns: str) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in api.list("pods", ns)[0]}


class PodWatch:
    """ADDED/DELETED pod names in order, collected from a watch opened before the action."""

    def __init__(self, api: client.Client, ns: str) -> None:
        _, rv = api.list("pods", ns)
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self._stream = api.watch("pods", ns, resource_version=rv, timeout_seconds=60)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for etype, pod in self._stream:
                if etype in ("ADDED", "DELETED"):
                    self.events.put((etype, pod["metadata"]["name"]))
        except (client.ApiError, OSError, ValueError):
            return

    def take(self, count: int, timeout: float = WAIT) -> list[tuple[str, str]]:
        out = []
        for _ in range(count):
            try:
                out.append(self.events.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(f"only {out} within {timeout}s, wanted {count} pod events") from None
        return out

    def close(self) -> None:
        self._stream.close()


def uid_of(api: client.Client, plural: str, ns: str, name: str) -> str | None:
    try:
        return str(api.get(plural, name, ns)["metadata"]["uid"])
    except client.NotFound:
        return None


def sts_status(api: client.Client, ns: str, name: str = "web") -> Obj:
    return api.get("statefulsets", name, ns).get("status") or {}


def observed(api: client.Client, ns: str, name: str = "web", **want: Any) -> Obj:
    """Wait until the controller's status for the current generation says `want`."""
    def probe() -> Obj | None:
        sts = api.get("statefulsets", name, ns)
        status = sts.get("status") or {}
        ok = status.get("observedGeneration") == sts["metadata"]["generation"] and all(
            status.get(k) == v for k, v in want.items())
        return status if ok else None
    return wait_for(f"statefulset {name} status {want}", probe)  # type: ignore[no-any-return]


def scale(api: client.Client, ns: str, replicas: int, name: str = "web") -> None:
    api.patch("statefulsets", name, {"spec": {"replicas": replicas}}, ns)


# --------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("controller")
def test_ordered_scaling_creates_ascending_and_halts_on_an_unhealthy_pod(api: client.Client, ns: str) -> None:
    """B1 B2 B3 (F: ordered scaling halts on an unhealthy pod; ADDED 0,1,2 then DELETED 2,1,0)."""
    watch = PodWatch(api, ns)
    api.create("statefulsets", make_sts(claims=True), ns)
    for ordinal in range(3):
        assert watch.take(1) == [("ADDED", f"web-{ordinal}")]
        # the next pod must not appear while this one is not Ready: the status proves the sync saw it
        observed(api, ns, replicas=ordinal + 1, readyReplicas=ordinal)
        assert pod_names(api, ns) == [f"web-{i}" for i in range(ordinal + 1)]
        set_pod_state(api, ns, f"web-{ordinal}", ready=True)
    observed(api, ns, replicas=3, readyReplicas=3, currentReplicas=3, updatedReplicas=3)

    pods = pods_by_name(api, ns)
    for ordinal in range(3):
        pod = pods[f"web-{ordinal}"]
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"web-{ordinal}"
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (f"web-{ordinal}", "svc")
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-web-{ordinal}"}} in pod["spec"]["volumes"]
    claims = {c["metadata"]["name"]: c for c in api.list("persistentvolumeclaims", ns)[0]}
    assert sorted(claims) == ["data-web-0", "data-web-1", "data-web-2"]
    assert claims["data-web-0"]["metadata"]["labels"] == {"app": "web"}

    for ordinal in range(3):
        set_pod_state(api, ns, f"web-{ordinal}", ready=False)
    observed(api, ns, readyReplicas=0)
    scale(api, ns, 0)
    observed(api, ns, replicas=3, readyReplicas=0)
    assert pod_names(api, ns) == ["web-0", "web-1", "web-2"], "scale-down must halt while pods are unhealthy"
    for ordinal in range(3):
        # Once web-1 is healthy again web-2 is the first unhealthy pod, which upstream lets go at once.
        with contextlib.suppress(client.NotFound):
            set_pod_state(api, ns, f"web-{ordinal}", ready=True)
    assert watch.take(3) == [("DELETED", "web-2"), ("DELETED", "web-1"), ("DELETED", "web-0")]
    observed(api, ns, replicas=0)
    watch.close()


@pytest.mark.usefixtures("controller")
def test_burst_scaling_completes_with_unhealthy_pods(api: client.Client, ns: str) -> None:
    """B3 (F: burst scaling runs to completion even with unhealthy pods)."""
    api.create("statefulsets", make_sts(parallel=True), ns)
    observed(api, ns, replicas=3, readyReplicas=0)
    assert pod_names(api, ns) == ["web-0", "web-1", "web-2"]
    scale(api, ns, 0)
    wait_for("all pods deleted", lambda: pod_names(api, ns) == [])
    observed(api, ns, replicas=0)


@pytest.mark.usefixtures("controller")
def test_no_deadlock_when_a_predecessor_is_deleted_while_its_successor_is_unhealthy(api: client.Client,
                                                                                     ns: str) -> None:
    """B3 B4 (F: should not deadlock when a pod's predecessor fails)."""
    with FakeKubelet(api, ns) as kubelet:
        kubelet.hold.add("web-1")
        api.create("statefulsets", make_sts(replicas=2), ns)
        observed(api, ns, replicas=2, readyReplicas=1)
        old_uid = api.get("pods", "web-0", ns)["metadata"]["uid"]
        api.delete("pods", "web-0", ns)
        wait_for("web-0 recreated", lambda: uid_of(api, "pods", ns, "web-0") not in (None, old_uid))
        set_pod_state(api, ns, "web-1", ready=True)
        observed(api, ns, replicas=2, readyReplicas=2)


@pytest.mark.usefixtures("controller")
def test_failed_pod_is_replaced_by_a_new_pod_of_the_same_name(api: client.Client, ns: str) -> None:
    """B4: a Failed pod is deleted and recreated (same name, new uid, at most one per identity)."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1), ns)
        observed(api, ns, readyReplicas=1)
        old_uid = api.get("pods", "web-0", ns)["metadata"]["uid"]
        set_pod_state(api, ns, "web-0", ready=False, phase="Failed")
        wait_for("web-0 replaced", lambda: uid_of(api, "pods", ns, "web-0") not in (None, old_uid))
        observed(api, ns, replicas=1, readyReplicas=1)
        assert pod_names(api, ns) == ["web-0"]
    wanted = {("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful"),
              ("SuccessfulDelete", "delete Pod web-0 in StatefulSet web successful")}

    def set_events() -> list[Obj] | None:
        events = [e for e in api.list("events", ns)[0] if e["involvedObject"].get("kind") == "StatefulSet"]
        return events if wanted <= {(e["reason"], e["message"]) for e in events} else None

    events = wait_for(f"events {wanted}", set_events)
    assert all(e["source"]["component"] == "statefulset-controller" for e in events)


@pytest.mark.usefixtures("controller")
def test_rolling_update_goes_from_the_highest_ordinal_down_and_rollback_reuses_the_revision(
        api: client.Client, ns: str) -> None:
    """B5 (F: rolling update + rollback; ControllerRevisions, status revisions)."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(), ns)
        first = observed(api, ns, readyReplicas=3, updatedReplicas=3)
        rev1 = first["currentRevision"]
        assert rev1 == first["updateRevision"]
        assert rev1.startswith("web-")
        watch = PodWatch(api, ns)
        api.patch("statefulsets", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "pause:2"}]}}}}, ns, patch_type="strategic")
        assert [e for e in watch.take(6) if e[0] == "DELETED"] == [
            ("DELETED", "web-2"), ("DELETED", "web-1"), ("DELETED", "web-0")]
        done = observed(api, ns, readyReplicas=3, updatedReplicas=3, currentReplicas=3)
        rev2 = done["updateRevision"]
        assert rev2 != rev1
        assert done["currentRevision"] == rev2
        pods = pods_by_name(api, ns)
        assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods.values()} == {rev2}
        assert {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"pause:2"}

        api.patch("statefulsets", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "pause:1"}]}}}}, ns, patch_type="strategic")
        back = observed(api, ns, readyReplicas=3, updatedReplicas=3, currentReplicas=3, updateRevision=rev1)
        assert back["currentRevision"] == rev1
        revisions = {r["metadata"]["name"]: r for r in api.list("controllerrevisions", ns)[0]}
        assert set(revisions) == {rev1, rev2}
        assert revisions[rev1]["revision"] == 3
        assert revisions[rev2]["revision"] == 2
        owner = revisions[rev1]["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("StatefulSet", "web", True)
        watch.close()


@pytest.mark.usefixtures("controller")
def test_canary_and_phased_updates_with_partition(api: client.Client, ns: str) -> None:
    """B5 (F: canary and phased rolling updates with partition; a deleted pod keeps its side of the partition)."""
    with FakeKubelet(api, ns):
        body = make_sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 3}})
        api.create("statefulsets", body, ns)
        rev1 = observed(api, ns, readyReplicas=3)["currentRevision"]
        api.patch("statefulsets", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "pause:2"}]}}}}, ns, patch_type="strategic")
        status = observed(api, ns, readyReplicas=3, updatedReplicas=0)
        rev2 = status["updateRevision"]
        assert rev2 != rev1

        def images() -> list[str]:
            return [pods_by_name(api, ns)[f"web-{i}"]["spec"]["containers"][0]["image"] for i in range(3)]

        assert images() == ["pause:1"] * 3, "partition 3 of 3 replicas: nothing is updated"
        api.patch("statefulsets", "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}, ns)
        observed(api, ns, readyReplicas=3, updatedReplicas=1, currentReplicas=2)
        assert images() == ["pause:1", "pause:1", "pause:2"]
        old_uid = api.get("pods", "web-1", ns)["metadata"]["uid"]
        api.delete("pods", "web-1", ns)
        wait_for("web-1 recreated", lambda: uid_of(api, "pods", ns, "web-1") not in (None, old_uid))
        observed(api, ns, readyReplicas=3, updatedReplicas=1)
        assert images() == ["pause:1", "pause:1", "pause:2"], "a pod below the partition comes back old"
        api.patch("statefulsets", "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}, ns)
        done = observed(api, ns, readyReplicas=3, updatedReplicas=3, currentReplicas=3, currentRevision=rev2)
        assert done["updateRevision"] == rev2
        assert images() == ["pause:2"] * 3


@pytest.mark.usefixtures("controller")
def test_on_delete_replaces_pods_only_when_deleted(api: client.Client, ns: str) -> None:
    """B5 (F: OnDelete)."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(updateStrategy={"type": "OnDelete"}), ns)
        rev1 = observed(api, ns, readyReplicas=3)["currentRevision"]
        api.patch("statefulsets", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "pause:2"}]}}}}, ns, patch_type="strategic")
        status = observed(api, ns, readyReplicas=3, updatedReplicas=0, currentReplicas=3)
        assert status["currentRevision"] == rev1
        old = pods_by_name(api, ns)
        api.delete("pods", "web-0", ns)
        wait_for("web-0 recreated", lambda: uid_of(api, "pods", ns, "web-0")
                 not in (None, old["web-0"]["metadata"]["uid"]))
        observed(api, ns, readyReplicas=3, updatedReplicas=1, currentReplicas=2)
        now_pods = pods_by_name(api, ns)
        assert now_pods["web-0"]["spec"]["containers"][0]["image"] == "pause:2"
        assert [now_pods[f"web-{i}"]["metadata"]["uid"] for i in (1, 2)] == [
            old[f"web-{i}"]["metadata"]["uid"] for i in (1, 2)]


@pytest.mark.usefixtures("controller")
def test_orphans_are_adopted_and_pods_whose_labels_stop_matching_are_released(api: client.Client, ns: str) -> None:
    """B7 (F: adopt matching orphans and release non-matching pods)."""
    with FakeKubelet(api, ns):
        created = api.create("statefulsets", make_sts(replicas=1), ns)
        observed(api, ns, readyReplicas=1)

        def controller_uid() -> str | None:
            refs = api.get("pods", "web-0", ns)["metadata"].get("ownerReferences") or []
            return next((r["uid"] for r in refs if r.get("controller")), None)

        assert controller_uid() == created["metadata"]["uid"]
        api.patch("pods", "web-0", {"metadata": {"ownerReferences": None}}, ns)
        wait_for("web-0 re-adopted", lambda: controller_uid() == created["metadata"]["uid"])
        api.patch("pods", "web-0", {"metadata": {"labels": {"app": None}}}, ns)
        wait_for("web-0 released", lambda: controller_uid() is None)
        api.patch("pods", "web-0", {"metadata": {"labels": {"app": "web"}}}, ns)
        wait_for("web-0 adopted again", lambda: controller_uid() == created["metadata"]["uid"])


@pytest.mark.usefixtures("controller")
def test_terminating_claim_blocks_pod_creation_until_it_is_gone(api: client.Client, ns: str) -> None:
    """B2 B8: `create Pod web-0 in StatefulSet web failed error: pvc data-web-0 is being deleted`."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1, claims=True), ns)
        observed(api, ns, readyReplicas=1)
        claim = api.get("persistentvolumeclaims", "data-web-0", ns)
        api.patch("persistentvolumeclaims", "data-web-0", {"metadata": {"finalizers": ["example.com/hold"]}}, ns)
        api.delete("persistentvolumeclaims", "data-web-0", ns)
        api.delete("pods", "web-0", ns)
        message = "create Pod web-0 in StatefulSet web failed error: pvc data-web-0 is being deleted"
        wait_for("FailedCreate event", lambda: any(
            e["reason"] == "FailedCreate" and e["message"] == message for e in api.list("events", ns)[0]))
        assert pod_names(api, ns) == []
        api.patch("persistentvolumeclaims", "data-web-0", {"metadata": {"finalizers": None}}, ns)
        wait_for("a new data-web-0 claim", lambda: uid_of(api, "persistentvolumeclaims", ns, "data-web-0")
                 not in (None, claim["metadata"]["uid"]))
        wait_for("web-0 recreated and Ready", lambda: pod_names(api, ns) == ["web-0"]
                 and sts_status(api, ns).get("readyReplicas") == 1)


def test_claim_deletion_the_cache_has_not_seen_still_blocks_pod_creation(
        api: client.Client, ns: str, controller: runtime.Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    """B8 race: the pods watch may deliver a pod's deletion before the claims watch delivers its claim's.

    The claim is deleted first on the server, but the two watches are independent streams; under
    CPU load the sync woken by the pod's deletion ran with a claims cache that still showed the
    claim live and created web-0 on it (no FailedCreate ever came). Holding the claims informer's
    events makes that ordering certain instead of occasional.
    """
    claims_informer = controller.informer("persistentvolumeclaims", ns)
    holding, release = threading.Event(), threading.Event()
    apply = claims_informer._apply

    def held_apply(etype: str, obj: Obj) -> None:
        holding.set()
        release.wait(WAIT)
        apply(etype, obj)

    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1, claims=True), ns)
        observed(api, ns, readyReplicas=1)
        monkeypatch.setattr(claims_informer, "_apply", held_apply)
        try:
            api.patch("persistentvolumeclaims", "data-web-0", {"metadata": {"finalizers": ["example.com/hold"]}}, ns)
            api.delete("persistentvolumeclaims", "data-web-0", ns)
            assert holding.wait(WAIT), "the claims informer never received the claim's update"
            cached = claims_informer.get(ns, "data-web-0")
            assert cached is not None, "the claims cache lost data-web-0 before the hold"
            assert not cached["metadata"].get("deletionTimestamp"), "the held claims cache already saw the deletion"
            api.delete("pods", "web-0", ns)
            message = "create Pod web-0 in StatefulSet web failed error: pvc data-web-0 is being deleted"
            wait_for("FailedCreate event", lambda: any(
                e["reason"] == "FailedCreate" and e["message"] == message for e in api.list("events", ns)[0]))
            assert pod_names(api, ns) == []
        finally:
            release.set()
        api.patch("persistentvolumeclaims", "data-web-0", {"metadata": {"finalizers": None}}, ns)
        wait_for("web-0 recreated and Ready", lambda: pod_names(api, ns) == ["web-0"]
                 and sts_status(api, ns).get("readyReplicas") == 1)


@pytest.mark.usefixtures("controller")
def test_retention_policy_sets_claim_owner_references(api: client.Client, ns: str) -> None:
    """B6: whenDeleted=Delete → the set owns live claims; whenScaled=Delete → a condemned pod owns its claim."""
    with FakeKubelet(api, ns):
        body = make_sts(replicas=2, claims=True, persistentVolumeClaimRetentionPolicy={
            "whenDeleted": "Delete", "whenScaled": "Delete"})
        created = api.create("statefulsets", body, ns)
        observed(api, ns, readyReplicas=2)

        def owners(claim: str) -> list[tuple[str, str]]:
            refs = api.get("persistentvolumeclaims", claim, ns)["metadata"].get("ownerReferences") or []
            return [(r["kind"], r["uid"]) for r in refs]

        assert owners("data-web-0") == [("StatefulSet", created["metadata"]["uid"])]
        assert owners("data-web-1") == [("StatefulSet", created["metadata"]["uid"])]
        pod1_uid = api.get("pods", "web-1", ns)["metadata"]["uid"]
        # Scale down while web-1 is held unready so it is observed condemned before it goes.
        api.patch("statefulsets", "web", {"spec": {"persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": "Retain", "whenScaled": "Delete"}}}, ns)
        wait_for("set ref scrubbed from live claims", lambda: owners("data-web-0") == [])
        scale(api, ns, 1)
        wait_for("web-1 gone", lambda: pod_names(api, ns) == ["web-0"])
        assert owners("data-web-1") == [("Pod", pod1_uid)]
        assert owners("data-web-0") == []


@pytest.mark.usefixtures("controller")
def test_start_ordinal_set_increased_decreased_and_removed(api: client.Client, ns: str) -> None:
    """B1 (F: start ordinal set / increased / decreased / removed)."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=2), ns)
        wait_for("pods 0,1", lambda: pod_names(api, ns) == ["web-0", "web-1"])
        for start, expected in ((2, ["web-2", "web-3"]), (3, ["web-3", "web-4"]), (1, ["web-1", "web-2"])):
            api.patch("statefulsets", "web", {"spec": {"ordinals": {"start": start}}}, ns)
            wait_for(f"pods {expected}", lambda e=expected: pod_names(api, ns) == e)
        api.patch("statefulsets", "web", {"spec": {"ordinals": None}}, ns)
        wait_for("pods 0,1 again", lambda: pod_names(api, ns) == ["web-0", "web-1"])
        observed(api, ns, replicas=2, readyReplicas=2)
        assert pods_by_name(api, ns)["web-1"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"


@pytest.mark.usefixtures("controller")
def test_min_ready_seconds_delays_available_replicas(api: client.Client, ns: str) -> None:
    """B3 B5 (F: minReadySeconds and availableReplicas)."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1, minReadySeconds=2), ns)
        observed(api, ns, readyReplicas=1, availableReplicas=0)
        observed(api, ns, readyReplicas=1, availableReplicas=1)


@pytest.mark.usefixtures("controller")
def test_revision_history_is_truncated_to_the_limit(api: client.Client, ns: str) -> None:
    """B5: revisionHistoryLimit keeps live revisions plus at most `limit` older ones."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1, revisionHistoryLimit=1), ns)
        observed(api, ns, readyReplicas=1)
        for tag in (2, 3, 4):
            api.patch("statefulsets", "web", {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": f"pause:{tag}"}]}}}}, ns, patch_type="strategic")
            observed(api, ns, readyReplicas=1, updatedReplicas=1, currentReplicas=1)
        def two_revisions() -> list[str] | None:
            names = [r["metadata"]["name"] for r in api.list("controllerrevisions", ns)[0]]
            return names if len(names) == 2 else None

        names = wait_for("history truncated to 2", two_revisions)
        assert sts_status(api, ns)["currentRevision"] in names


def test_a_second_create_of_a_named_pod_with_generate_name_is_already_exists(api: client.Client, ns: str) -> None:
    """B4 (at most one pod per identity): StatefulSet pods carry generateName `<set>-` *and* a name; the
    API server must answer AlreadyExists instead of inventing a new name (upstream BeforeCreate)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "generateName": "web-"},
           "spec": {"containers": [{"name": "c", "image": "pause:1"}]}}
    api.create("pods", pod, ns)
    with pytest.raises(client.AlreadyExists):
        api.create("pods", pod, ns)
    assert pod_names(api, ns) == ["web-0"]


@pytest.fixture
def apps(kubesim_api: Any) -> Any:
    from kubernetes import client as k8s

    return k8s.AppsV1Api(kubesim_api)


@pytest.mark.usefixtures("controller")
def test_scale_subresource_get_put_patch_drives_the_set(api: client.Client, ns: str, apps: Any) -> None:
    """A1 B3 (F: /scale get/put/patch), with the official Python client's typed models."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1), ns)
        observed(api, ns, readyReplicas=1)
        scale_obj = apps.read_namespaced_stateful_set_scale("web", ns)
        assert (scale_obj.spec.replicas, scale_obj.status.replicas) == (1, 1)
        scale_obj.spec.replicas = 3
        apps.replace_namespaced_stateful_set_scale("web", ns, scale_obj)
        observed(api, ns, replicas=3, readyReplicas=3)
        assert pod_names(api, ns) == ["web-0", "web-1", "web-2"]
        apps.patch_namespaced_stateful_set_scale("web", ns, {"spec": {"replicas": 2}})
        observed(api, ns, replicas=2, readyReplicas=2)
        assert apps.read_namespaced_stateful_set_scale("web", ns).status.replicas == 2
        assert pod_names(api, ns) == ["web-0", "web-1"]


@pytest.mark.usefixtures("controller")
def test_list_patch_and_deletecollection_of_statefulsets(api: client.Client, ns: str, apps: Any) -> None:
    """A2 (F: list, patch, deletecollection of StatefulSets)."""
    for name in ("one", "two"):
        body = make_sts(name, replicas=1)
        body["metadata"]["labels"] = {"e2e": "sts"}
        api.create("statefulsets", body, ns)
    listed = apps.list_namespaced_stateful_set(ns, label_selector="e2e=sts")
    assert sorted(s.metadata.name for s in listed.items) == ["one", "two"]
    apps.patch_namespaced_stateful_set("one", ns, {"metadata": {"labels": {"patched": "yes"}}})
    assert apps.read_namespaced_stateful_set("one", ns).metadata.labels == {"e2e": "sts", "patched": "yes"}
    apps.delete_collection_namespaced_stateful_set(ns, label_selector="e2e=sts")
    wait_for("statefulsets gone", lambda: api.list("statefulsets", ns)[0] == [])


@pytest.mark.usefixtures("controller")
def test_status_subresource_get_put_patch_observed_by_watch(api: client.Client, ns: str, apps: Any) -> None:
    """A1 A4 B5 (F: /status get/put/patch observed by watch)."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=1), ns)
        observed(api, ns, readyReplicas=1)
        status = apps.read_namespaced_stateful_set_status("web", ns)
        assert status.status.observed_generation == status.metadata.generation
        _, rv = api.list("statefulsets", ns)
        stream = api.watch("statefulsets", ns, resource_version=rv, timeout_seconds=30)
        condition = {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from an e2e test"}
        apps.patch_namespaced_stateful_set_status("web", ns, {"status": {"conditions": [condition]}})
        seen = None
        for etype, obj in stream:
            conditions = (obj.get("status") or {}).get("conditions") or []
            if etype == "MODIFIED" and any(c.get("type") == "StatusUpdate" for c in conditions):
                seen = obj
                break
        stream.close()
        assert seen is not None, "the watch ended without showing the patched status condition"
        current = apps.read_namespaced_stateful_set_status("web", ns)
        current.status.conditions[0].message = "replaced by PUT"
        replaced = apps.replace_namespaced_stateful_set_status("web", ns, current)
        assert replaced.status.conditions[0].message == "replaced by PUT"
        assert replaced.status.replicas == 1


@pytest.mark.usefixtures("controller")
def test_retention_leaves_a_claim_owned_by_another_controller_alone(api: client.Client, ns: str) -> None:
    """B6 (F: PVC retention, other controller owns the claim): no pod ref, a ConflictingController warning."""
    owner = api.create("configmaps", {"metadata": {"name": "owner"}, "data": {}}, ns)
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
               "controller": True}
    api.create("persistentvolumeclaims", {"metadata": {"name": "data-web-1", "labels": {"app": "web"},
                                                       "ownerReferences": [foreign]},
                                          "spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Mi"}}}}, ns)
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=2, claims=True, persistentVolumeClaimRetentionPolicy={
            "whenDeleted": "Retain", "whenScaled": "Delete"}), ns)
        observed(api, ns, readyReplicas=2)
        scale(api, ns, 1)
        wait_for("web-1 gone", lambda: pod_names(api, ns) == ["web-0"])
    refs = api.get("persistentvolumeclaims", "data-web-1", ns)["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == [owner["metadata"]["uid"]]
    wait_for("ConflictingController warning", lambda: any(
        e["reason"] == "ConflictingController" and "data-web-1" in e["message"] for e in api.list("events", ns)[0]))


@pytest.mark.usefixtures("controller")
def test_an_adopted_pod_condemned_by_scale_down_hands_its_claim_to_the_pod(api: client.Client, ns: str) -> None:
    """B6 B7 (F: PVC retention after adopting pods): the orphaned web-1 is re-adopted, then owns its claim."""
    with FakeKubelet(api, ns):
        api.create("statefulsets", make_sts(replicas=2, claims=True, persistentVolumeClaimRetentionPolicy={
            "whenDeleted": "Retain", "whenScaled": "Delete"}), ns)
        observed(api, ns, readyReplicas=2)
        pod1 = api.patch("pods", "web-1", {"metadata": {"ownerReferences": None}}, ns)
        scale(api, ns, 1)
        wait_for("web-1 gone", lambda: pod_names(api, ns) == ["web-0"])
    refs = api.get("persistentvolumeclaims", "data-web-1", ns)["metadata"]["ownerReferences"]
    assert [(r["kind"], r["uid"]) for r in refs] == [("Pod", pod1["metadata"]["uid"])]
