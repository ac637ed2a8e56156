"""``--cluster kind`` end to end through pytest-kind, with ``kind`` and ``docker`` as stand-ins.

No Docker daemon or kind binary exists here, so ``tests/standins/kind`` and
``tests/standins/docker`` go first on PATH: the same harness code and pytest-kind's
``KindCluster`` run them exactly as they would run the real tools, the stand-ins refuse any call
the real tools would refuse (wrong flags, wrong arity, an image never built), and kubesim does
the rest. A pytest session runs the scenario files in a subprocess in its own directory (its
``reports/`` and ``.pytest-kind/`` land there), and every stand-in cluster is brought down by its
recorded pids afterwards, whatever happened.

By default only pod-kill runs (~30 s); ``-m extended`` adds drain, scale and the two kind
capabilities (container kill through crictl, node crash through docker stop/start).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.clusters import base, existing, kind
from harness.deploy import spec as deploy_spec

pytestmark = [pytest.mark.slow, pytest.mark.kubesim]

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "tests" / "standins"
CLUSTER = "ckpt-chaos"
#: one scenario session (cluster up, image, scenarios, down); the tests' own timeouts leave room for it
SESSION_TIMEOUT_S = 900.0


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a session whose ``kind`` and ``docker`` are the stand-ins."""
    state = tmp_path / "standin-state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(PATH=os.pathsep.join([str(STANDINS), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               KIND_STANDIN_STATE=str(state), KUBECONFIG=str(tmp_path / "default-kubeconfig"))
    try:
        yield env
    finally:
        for left in sorted((state / "clusters").glob("*/kubesim")):
            subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(left), "--grace", "5"],
                           capture_output=True, timeout=120, check=False)


def run_session(where: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest ARGS`` in ``where``, in its own process group, killed by it if it overruns."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", "--cluster", "kind", *args]
    with subprocess.Popen(cmd, cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True) as proc:
        try:
            out, _ = proc.communicate(timeout=SESSION_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"the kind session did not finish within {SESSION_TIMEOUT_S:g}s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def calls(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["KIND_STANDIN_STATE"]) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def argv_of(made: list[dict[str, Any]], tool: str, *words: str) -> list[list[str]]:
    return [c["argv"] for c in made if c["tool"] == tool and c["argv"][: len(words)] == list(words)]


def assert_no_call_was_refused(made: list[dict[str, Any]]) -> None:
    refused = [c for c in made if c["rc"] == 2]
    assert not refused, f"calls the real tools would not accept: {refused}"


@pytest.mark.timeout(SESSION_TIMEOUT_S + 120)
def test_pod_kill_scenario_runs_on_kind_through_pytest_kind(tmp_path: Path, standin: dict[str, str]) -> None:
    done = run_session(tmp_path, standin, str(REPO / "scenarios" / "test_pod_kill.py"),
                       "--junitxml", "junit.xml")
    assert done.returncode == 0, done.stdout[-6000:]
    assert "1 passed" in done.stdout
    made = calls(standin)
    assert_no_call_was_refused(made)
    image = deploy_spec.default_image()
    kubeconfig = tmp_path / ".pytest-kind" / CLUSTER / "kubeconfig"
    # the image is built before anything is created, from the repository's Dockerfile
    assert argv_of(made, "docker", "build") == [["build", "--file", str(REPO / "infra" / "Dockerfile"), "--tag", image,
                                                 str(REPO)]]
    # pytest-kind's own calls: create from the config (its --name=/--kubeconfig= forms), load, delete
    assert argv_of(made, "kind", "create", "cluster") == [[
        "create", "cluster", f"--name={CLUSTER}", f"--kubeconfig={kubeconfig}", "--config",
        str(REPO / "infra" / "kind" / "cluster.yaml")]]
    assert argv_of(made, "kind", "load", "docker-image") == [["load", "docker-image", "--name", CLUSTER, image]]
    [export] = argv_of(made, "kind", "export", "logs")
    assert export[-2:] == ["--name", CLUSTER]
    [delete] = [c for c in made if c["argv"][:2] == ["delete", "cluster"]]
    assert delete["argv"] == ["delete", "cluster", f"--name={CLUSTER}", f"--kubeconfig={kubeconfig}"]
    assert delete["rc"] == 0, "kubesim down found something of the cluster still running"
    assert not list((Path(standin["KIND_STANDIN_STATE"]) / "clusters").iterdir()), "the cluster was not deleted"
    [run] = [p for p in (tmp_path / "reports").iterdir() if p.is_dir() and not p.is_symlink()]
    info = json.loads((run / "run.json").read_text())
    assert (info["cluster_kind"], info["outcome"]) == ("kind", "finished")
    assert (run / "cluster-logs" / "kind" / "kind-version.txt").is_file(), "kind export logs went elsewhere"
    assert 'tests="1"' in (tmp_path / "junit.xml").read_text()


@pytest.mark.extended
@pytest.mark.timeout(SESSION_TIMEOUT_S + 120)
def test_drain_scale_and_the_kind_capabilities_run_on_kind(tmp_path: Path, standin: dict[str, str],
                                                            request: pytest.FixtureRequest) -> None:
    if "extended" not in (request.config.getoption("-m") or ""):
        pytest.skip("extended: select with -m extended (drain, scale, container kill and node crash on kind, ~2 min)")
    scenarios = [str(REPO / "scenarios" / name) for name in
                 ("test_drain_local.py", "test_scale.py", "test_container_kill.py", "test_node_crash.py")]
    done = run_session(tmp_path, standin, *scenarios, "-m", "not extended")
    assert done.returncode == 0, done.stdout[-6000:]
    assert "4 passed" in done.stdout
    made = calls(standin)
    assert_no_call_was_refused(made)
    assert len(argv_of(made, "kind", "create", "cluster")) == 1, "one cluster serves the whole session"
    stops = argv_of(made, "docker", "stop")
    assert stops, "no node was crashed"
    assert all(argv[:3] == ["stop", "--time", "0"] for argv in stops), stops
    assert len(argv_of(made, "docker", "start")) == len(stops)
    kills = [argv for argv in argv_of(made, "docker", "exec") if "stop" in argv]
    assert kills, "no container was killed through crictl"
    assert all(argv[3:6] == ["stop", "--timeout", "0"] for argv in kills), kills


def test_without_kind_the_session_skips_naming_what_to_install(tmp_path: Path, standin: dict[str, str]) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "docker").symlink_to(STANDINS / "docker")
    env = {**standin, "PATH": os.pathsep.join([str(bare), str(Path(sys.executable).parent), "/usr/bin", "/bin"])}
    done = run_session(tmp_path, env, str(REPO / "scenarios" / "test_pod_kill.py"), "-rs")
    assert done.returncode == 0, done.stdout[-4000:]
    assert "1 skipped" in done.stdout
    assert "cluster unavailable: kind is not installed (no `kind` on PATH): install kind v0.33.0" in done.stdout
    assert not (tmp_path / ".pytest-kind").exists(), "nothing may be created when kind is missing"
    assert not (tmp_path / "standin-state" / "clusters").exists()


def test_a_cluster_that_existed_is_reused_with_its_kubeconfig_and_left_running(
        tmp_path: Path, standin: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in standin.items():
        monkeypatch.setenv(key, value)
    made = subprocess.run(["kind", "create", "cluster", "--config", str(REPO / "infra" / "kind" / "cluster.yaml")],
                          env=standin, capture_output=True, text=True, timeout=180, check=False)
    assert made.returncode == 0, made.stderr
    cluster = kind.KindCluster(work_dir=tmp_path, echo=lambda _line: None)
    with base.running(cluster):
        assert cluster.nodes == ("kubesim-worker", "kubesim-worker2", "kubesim-worker3")
        assert cluster.describe()["created_by_session"] is False
        assert existing.current_context(cluster.kubeconfig) == "kind-ckpt-chaos"
    assert run_kind(standin, "get", "clusters") == [CLUSTER], "a cluster the session did not create must stay"
    assert len(argv_of(calls(standin), "kind", "create", "cluster")) == 1
    assert argv_of(calls(standin), "kind", "export", "kubeconfig") == [
        ["export", "kubeconfig", "--name", CLUSTER, "--kubeconfig", str(cluster.kubeconfig)]]
    assert_no_call_was_refused(calls(standin))


def run_kind(env: dict[str, str], *args: str) -> list[str]:
    done = subprocess.run(["kind", *args], env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()
