"""The pod-kill nemesis against a fake API: targets checked, force delete, heal = back and reachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import history, ops
from harness.kube import pods as kube_pods
from harness.load import endpoints
from harness.nemesis import base, pod_kill


def pod(uid: str, ip: str) -> kube_pods.PodState:
    return kube_pods.PodState(name="ckpt-1", uid=uid, ip=ip, node="n2", phase="Running", ready=True, deleting=False)


class FakeCluster:
    """Records deletes; the replacement 'comes back' when wait_replaced is called."""

    def __init__(self, endpoints_file: Path, *, rewrite: bool = True) -> None:
        self.deleted: list[tuple[str, int | None]] = []
        self.waited: list[tuple[str, str]] = []
        self.endpoints_file = endpoints_file
        self.rewrite = rewrite

    def delete_pod(self, _api: object, namespace: str, name: str, *, grace_seconds: int | None = None
                   ) -> kube_pods.PodState:
        self.deleted.append((f"{namespace}/{name}", grace_seconds))
        return pod("old-uid-1234", "127.12.0.2")

    def wait_replaced(self, _api: object, namespace: str, name: str, old_uid: str, *, timeout: float
                      ) -> kube_pods.PodState:
        self.waited.append((f"{namespace}/{name}", old_uid))
        if self.rewrite:  # what the endpoints publisher does when the new pod runs
            endpoints.write(self.endpoints_file, {0: "http://127.11.0.2:8080", 1: "http://127.12.0.3:8080"})
        return pod("new-uid-5678", "127.12.0.3")


@pytest.fixture
def endpoints_file(tmp_path: Path) -> Path:
    path = tmp_path / "endpoints.json"
    endpoints.write(path, {0: "http://127.11.0.2:8080", 1: "http://127.12.0.2:8080"})
    return path


def nemesis(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, heal_timeout_s: float = 5.0) -> pod_kill.PodKill:
    monkeypatch.setattr(kube_pods, "delete_pod", fake.delete_pod)
    monkeypatch.setattr(kube_pods, "wait_replaced", fake.wait_replaced)
    return pod_kill.PodKill(object(), "chaos", "ckpt", 3, fake.endpoints_file, heal_timeout_s=heal_timeout_s)


def test_kill_force_deletes_and_heal_waits_for_the_new_pod_and_its_address(
    endpoints_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeCluster(endpoints_file)
    kill = nemesis(fake, monkeypatch)
    with history.HistoryWriter(tmp_path / "history", ops.NEMESIS_PROCESS) as rec, base.fault(rec, kill, ["ckpt-1"]):
        assert fake.deleted == [("chaos/ckpt-1", 0)]
    assert fake.waited == [("chaos/ckpt-1", "old-uid-1234")]
    assert [(op.f, op.type) for op in history.read_history(tmp_path)] == [
        ("start", "invoke"), ("start", "ok"), ("stop", "invoke"), ("stop", "ok")]


def test_a_target_outside_the_set_is_refused_before_any_delete(
    endpoints_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCluster(endpoints_file)
    kill = nemesis(fake, monkeypatch)
    for bad in ("ckpt-3", "other-0", "ckpt-x", "ckpt"):
        with pytest.raises(base.NemesisError,
                           match=r"is not a pod of StatefulSet chaos/ckpt \(expected ckpt-0 .. ckpt-2\)"):
            kill.inject(["ckpt-0", bad])
    assert fake.deleted == []


def test_heal_fails_loudly_when_the_endpoints_never_follow_the_new_pod(
    endpoints_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCluster(endpoints_file, rewrite=False)
    kill = nemesis(fake, monkeypatch, heal_timeout_s=0.3)
    kill.inject(["ckpt-1"])
    with pytest.raises(base.NemesisError, match=r"timed out after 0.3s waiting for the endpoints file to point "
                                                r"ordinal 1 at pod ckpt-1.*last seen: ordinal 1 at http://127.12.0.2"):
        kill.heal(["ckpt-1"])


def test_heal_after_a_failed_delete_waits_for_nothing(endpoints_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    fake = FakeCluster(endpoints_file)
    kill = nemesis(fake, monkeypatch)

    def refuse(*_a: object, **_kw: object) -> kube_pods.PodState:
        raise kube_pods.PodError("pod chaos/ckpt-1 does not exist; nothing to delete")

    monkeypatch.setattr(kube_pods, "delete_pod", refuse)
    with pytest.raises(base.NemesisError, match="does not exist"), \
            history.HistoryWriter(tmp_path / "history", ops.NEMESIS_PROCESS) as rec, \
            base.fault(rec, kill, ["ckpt-1"]):
        pytest.fail("the body must not run when the inject failed")
    assert fake.waited == []
    assert [(op.f, op.type) for op in history.read_history(tmp_path)] == [
        ("start", "invoke"), ("start", "info"), ("stop", "invoke"), ("stop", "ok")]
