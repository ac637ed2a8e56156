"""The cluster protocol's helpers and the embedded cluster's handling of its CLI (faked here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import settings
from harness.clusters import base, embedded, existing, factory, kind


class FakeRun:
    """Stands in for subprocess.run: records argv, answers `up` and `down` as scripted."""

    def __init__(self, up: subprocess.CompletedProcess[str] | BaseException,
                 down_rc: int = 0) -> None:
        self.up = up
        self.down_rc = down_rc
        self.calls: list[list[str]] = []

    def __call__(self, cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(cmd)
        if "up" in cmd:
            if isinstance(self.up, BaseException):
                raise self.up
            return self.up
        return subprocess.CompletedProcess(cmd, self.down_rc, "stopped", "" if self.down_rc == 0 else "boom")

    def verbs(self) -> list[str]:
        return [c[3] for c in self.calls]


def done(rc: int, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["kubesim"], rc, out, err)


def test_up_command_passes_nodes_and_shortened_periods(tmp_path: Path) -> None:
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path, node_count=3)
    cmd = cluster.up_command()
    assert cmd[1:4] == ["-m", "kubesim", "up"]
    assert cmd[cmd.index("--state") + 1] == str(tmp_path)
    assert cmd[cmd.index("--nodes") + 1] == "3"
    assert cmd[cmd.index("--node-monitor-grace") + 1] == "4s"
    assert cmd[cmd.index("--toleration-seconds") + 1] == "10"
    assert cmd[cmd.index("--timing") + 1] == "upstream", "scenarios run with upstream timing unless told otherwise"


def test_timing_is_upstream_unless_the_environment_asks_for_fast_and_a_typo_is_one_line() -> None:
    assert factory.embedded_timing({}) == "upstream"
    assert factory.embedded_timing({"HARNESS_KUBESIM_TIMING": "fast"}) == "fast"
    with pytest.raises(base.ClusterError, match=r"^HARNESS_KUBESIM_TIMING='quick' is not one of upstream, fast$"):
        factory.embedded_timing({"HARNESS_KUBESIM_TIMING": "quick"})


def test_missing_kubesim_module_is_unavailable_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(done(1, err="/usr/bin/python: No module named kubesim.kubelet.__main__; "
                           "'kubesim.kubelet' is a package and cannot be directly executed"))
    monkeypatch.setattr(subprocess, "run", fake)
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path)
    with pytest.raises(base.ClusterUnavailable, match=r"cannot start here: .*No module named kubesim\.kubelet"), \
            base.running(cluster):
        pytest.fail("the body must not run")
    assert fake.verbs() == ["up", "down"], "a failed start must still run `down`"


def test_failed_start_is_one_line_with_the_log_tails_in_details(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nodes" / "kubesim-worker2").mkdir(parents=True)
    (tmp_path / "nodes" / "kubesim-worker2" / "kubelet.log").write_text("line 1\nkubelet: cannot bind 127.12.0.1\n")
    monkeypatch.setattr(subprocess, "run", FakeRun(done(1, err="kubesim: the kubelet of kubesim-worker2 exited")))
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path)
    with pytest.raises(base.ClusterError) as caught:
        cluster.start()
    assert not isinstance(caught.value, base.ClusterUnavailable)
    assert "\n" not in str(caught.value)
    assert "the kubelet of kubesim-worker2 exited" in str(caught.value)
    assert "cannot bind 127.12.0.1" in caught.value.details
    assert "kubelet.log" in caught.value.details


def test_start_deadline_is_reported_with_what_up_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(subprocess.TimeoutExpired(["kubesim"], 5, output=b"waiting for nodes", stderr=b""))
    monkeypatch.setattr(subprocess, "run", fake)
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path, start_timeout_s=5)
    with pytest.raises(base.ClusterError, match="did not come up within 5s") as caught:
        cluster.start()
    assert "waiting for nodes" in caught.value.details
    cluster.stop()
    assert fake.verbs() == ["up", "down"]


def test_stop_without_start_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(done(0))
    monkeypatch.setattr(subprocess, "run", fake)
    embedded.EmbeddedCluster(state_dir=tmp_path).stop()
    assert fake.calls == []


def test_running_stops_the_cluster_when_the_body_is_interrupted(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(done(0))
    monkeypatch.setattr(subprocess, "run", fake)
    monkeypatch.setattr(embedded, "_inspect", lambda _kubeconfig: (("n1",), "https://127.0.0.1:1"))
    (tmp_path / "kubeconfig").write_text("x")
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path, node_count=1)
    seen: list[tuple[str, ...]] = []

    def interrupted() -> None:
        with base.running(cluster):
            seen.append(cluster.nodes)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert seen == [("n1",)]
    assert fake.verbs() == ["up", "down"]


def test_zero_nodes_is_refused_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(done(0))
    monkeypatch.setattr(subprocess, "run", fake)
    with pytest.raises(base.ClusterError, match="at least one node"):
        embedded.EmbeddedCluster(state_dir=tmp_path, node_count=0).start()
    assert fake.calls == []


def test_kubectl_args_point_at_the_same_cluster(tmp_path: Path) -> None:
    cluster = existing.ExistingCluster(kubeconfig_path=tmp_path / "cfg", context_name="kind-ckpt")
    assert base.kubectl_args(cluster) == ["--kubeconfig", str(tmp_path / "cfg"), "--context", "kind-ckpt"]
    assert base.kubectl_args(embedded.EmbeddedCluster(state_dir=tmp_path)) == [
        "--kubeconfig", str(tmp_path / "kubeconfig")]


def test_a_capability_the_cluster_lacks_is_unavailable_naming_it(tmp_path: Path) -> None:
    cluster = existing.ExistingCluster(kubeconfig_path=tmp_path / "cfg", context_name="kind-ckpt")
    with pytest.raises(base.ClusterUnavailable, match=r"cannot do node-crash \(it offers: none\)"):
        base.require(cluster, "node-crash")
    with pytest.raises(base.ClusterUnavailable, match=r"cannot do kill-container"):
        cluster.kill_container("ns", "ckpt-0", "writer", "KILL")



def test_embedded_power_loss_is_offered_only_where_lazyfs_can_mount(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked once (``python -m kubesim.lazyfs check``); where it cannot, the refusal names what is missing."""
    calls: list[list[str]] = []

    def cannot(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return done(2, out="no /dev/fuse: this kernel or container offers no FUSE\n")

    monkeypatch.setattr(subprocess, "run", cannot)
    sim = embedded.EmbeddedCluster(state_dir=tmp_path)
    base.require(sim, "node-crash")
    with pytest.raises(base.ClusterUnavailable,
                       match=r"power-loss \(it offers: kill-container, node-crash\): no /dev/fuse"):
        base.require(sim, "power-loss")
    with pytest.raises(base.ClusterUnavailable, match="no /dev/fuse"):
        sim.power_loss("kubesim-worker")
    assert sim.describe()["power_loss"] == "not offered: no /dev/fuse: this kernel or container offers no FUSE"
    assert [c[1:4] for c in calls] == [["-m", "kubesim.lazyfs", "check"]], "the check runs once per cluster"

    able = embedded.EmbeddedCluster(state_dir=tmp_path)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **_kw: done(0, out="lazyfs can mount here\n"))
    assert "power-loss" in able.capabilities


def test_embedded_capabilities_run_the_kubesim_node_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def run(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return done(0 if "crash" in cmd else 1, err="no container writer in pod ckpt-9")

    monkeypatch.setattr(embedded.subprocess, "run", run)
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path)
    with pytest.raises(base.ClusterError, match="not running"):
        cluster.crash_node("kubesim-worker")
    cluster._started = True
    cluster.crash_node("kubesim-worker2")
    assert calls[-1][calls[-1].index("node"):] == ["node", "crash", "kubesim-worker2", "--state", str(tmp_path)]
    with pytest.raises(base.ClusterError, match="no container writer in pod ckpt-9"):
        cluster.kill_container("ns", "ckpt-9", "writer", "TERM")
    assert calls[-1][calls[-1].index("node"):] == ["node", "kill-container", "ckpt-9", "writer", "-n", "ns",
                                                    "--signal", "TERM", "--state", str(tmp_path)]


def test_embedded_kill_container_returns_when_kubesim_sent_the_signal(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    said = "sent SIGTERM to ns/ckpt-0/writer on kubesim-worker (process group 41) at 1796449103.512345\n"
    monkeypatch.setattr(embedded.subprocess, "run", lambda cmd, **_kw: done(0, out=said))
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path)
    cluster._started = True
    assert cluster.kill_container("ns", "ckpt-0", "writer", "TERM") == 1796449103.512345
    # an older kubesim that does not say: the time before the command, which surely precedes the signal
    monkeypatch.setattr(embedded.subprocess, "run", lambda cmd, **_kw: done(0, out="sent SIGTERM to ns/ckpt-0/writer"))
    monkeypatch.setattr(embedded.time, "time", lambda: 1234.5)
    assert cluster.kill_container("ns", "ckpt-0", "writer", "TERM") == 1234.5


def test_embedded_power_loss_runs_kubesim_node_power_loss_and_returns_what_was_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def run(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        if "check" in cmd:
            return done(0, out="lazyfs can mount here\n")
        return done(0, out='{"node": "kubesim-worker", "dropped": {"undurable_entries": 3, "buried_files": 0}}\n')

    monkeypatch.setattr(embedded.subprocess, "run", run)
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path)
    cluster._started = True
    assert cluster.power_loss("kubesim-worker") == {"undurable_entries": 3, "buried_files": 0}
    assert calls[-1][calls[-1].index("node"):] == ["node", "power-loss", "kubesim-worker", "--json", "--state",
                                                    str(tmp_path)]


def test_factory_builds_the_chosen_kind(tmp_path: Path) -> None:
    assert factory.make(settings.ClusterSettings(), state_dir=tmp_path).kind == "embedded"
    made = factory.make(settings.ClusterSettings(kind="existing", context="c"), state_dir=tmp_path)
    assert (made.kind, made.context) == ("existing", "c")


def test_a_kind_session_builds_the_format_layers_it_is_told_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(factory.ENV_WRITER_FORMATS, "orbax,torch")
    made = factory.make(settings.ClusterSettings(kind="kind"), state_dir=tmp_path)
    assert isinstance(made, kind.KindCluster)
    assert made.image_formats == ("torch", "orbax")
    monkeypatch.setenv(factory.ENV_WRITER_FORMATS, "tensorflow")
    with pytest.raises(base.ClusterError, match=r"^HARNESS_WRITER_FORMATS: --formats tensorflow: not an optional"):
        factory.make(settings.ClusterSettings(kind="kind"), state_dir=tmp_path)


def test_a_broken_kubesim_is_an_error_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", FakeRun(done(1, err="ImportError: cannot import name 'x' from 'kubesim.y'")))
    with pytest.raises(base.ClusterError) as caught:
        embedded.EmbeddedCluster(state_dir=tmp_path).start()
    assert not isinstance(caught.value, base.ClusterUnavailable)
