"""The kind/docker stand-ins refuse what the real tools refuse, so a wrong call fails a test.

Calls that must be refused run in-process; a few run the executables themselves (no cluster is
ever created here); the crictl/ctr parsers run against a node whose containers are given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

STANDINS = Path(__file__).resolve().parents[2] / "tests" / "standins"
sys.path.insert(0, str(STANDINS))
import standins  # noqa: E402  (tests/standins is not a package: its executables import it by path)

REPO = STANDINS.parents[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KIND_STANDIN_STATE": str(tmp_path / "state"), "KUBECONFIG": str(tmp_path / "kc"),
            "PATH": os.pathsep.join([str(STANDINS), str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60, check=False)


def recorded(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["KIND_STANDIN_STATE"]) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("argv", [
    ("kind", "create", "cluster", "--nmae", "x"),
    ("kind", "create", "cluster", "--wait", "forever"),
    ("kind", "load", "docker-image", "--name", "x"),
    ("kind", "delete", "clusters", "--all"),
    ("kind", "get", "nodes", "extra"),
    ("docker", "stop", "--time", "soon", "n"),
    ("docker", "build", "--file", "infra/Dockerfile", "--tag", "a:1"),
    ("docker", "exec", "n"),
    ("docker", "kill", "n"),
])
def test_a_call_the_real_tool_would_not_accept_fails_loudly(
        env: dict[str, str], argv: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KIND_STANDIN_STATE", env["KIND_STANDIN_STATE"])
    main = standins.kind_main if argv[0] == "kind" else standins.docker_main
    assert main(argv[1:]) == 2
    assert f"stand-in {argv[0]}: refused a call the real {argv[0]} would not accept" in capsys.readouterr().err
    assert recorded(env)[-1]["rc"] == 2


def test_pytest_kinds_argument_forms_are_kinds(env: dict[str, str], tmp_path: Path) -> None:
    """``--name=N --kubeconfig=K`` (pytest-kind's delete) parse; deleting a missing cluster succeeds."""
    done = run(env, "kind", "delete", "cluster", "--name=absent", f"--kubeconfig={tmp_path / 'k'}")
    assert done.returncode == 0, done.stderr
    assert 'Deleting cluster "absent" ...' in done.stderr
    assert run(env, "kind", "get", "clusters").stderr.strip() == "No kind clusters found."


def test_kind_create_refuses_a_config_kind_would_refuse_before_starting_anything(env: dict[str, str],
                                                                               tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n  bogus: 1\n")
    done = run(env, "kind", "create", "cluster", "--name=x", "--config", str(bad))
    assert done.returncode == 1
    assert "invalid node entry" in done.stderr
    assert not (Path(env["KIND_STANDIN_STATE"]) / "clusters" / "x").exists()


def test_only_an_image_docker_built_can_be_loaded_and_tags_are_checked(env: dict[str, str]) -> None:
    assert run(env, "kind", "load", "docker-image", "--name", "x", "ckpt-writer:1").returncode == 1
    bad_tag = run(env, "docker", "build", "--file", str(REPO / "infra" / "Dockerfile"), "--tag", "Ckpt_Writer:1",
                  str(REPO))
    assert (bad_tag.returncode, bad_tag.stderr.strip()) == (1, 'ERROR: invalid tag "Ckpt_Writer:1": invalid reference '
                                                                'format')
    built = run(env, "docker", "build", "--file", str(REPO / "infra" / "Dockerfile"), "--tag", "ckpt-writer:1",
                str(REPO))
    assert built.returncode == 0, built.stderr
    assert "ckpt-writer:1" in json.loads((Path(env["KIND_STANDIN_STATE"]) / "images.json").read_text())
    assert run(env, "kind", "load", "docker-image", "--name", "x", "ckpt-writer:1").stderr.strip() == \
        'ERROR: no nodes found for cluster "x"'


def test_docker_answers_as_a_daemon_that_is_there_or_not(env: dict[str, str]) -> None:
    assert run(env, "docker", "info", "--format", "{{.ServerVersion}}").stdout.strip() == "28.3.0-standin"
    down = run({**env, "DOCKER_STANDIN_DAEMON": "down"}, "docker", "info", "--format", "{{.ServerVersion}}")
    assert down.returncode == 1
    assert "Is the docker daemon running?" in down.stderr
    assert run(env, "docker", "stop", "--time", "0", "nobody").stderr.strip() == \
        "Error response from daemon: No such container: nobody"


class FakeNode(standins.Node):
    """A node with given containers; signals are recorded instead of sent."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.sent: list[tuple[str, str]] = []

    def containers(self) -> list[dict[str, Any]]:
        return [{"id": i, "key": f"ns/ckpt-0/writer-{n}", "entry": {}, "state": "CONTAINER_RUNNING",
                 "labels": {"io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.name": "ckpt-0",
                            "io.kubernetes.pod.uid": "u", "io.kubernetes.container.name": f"writer-{n}"}}
                for n, i in enumerate(self.ids) if (i, "KILL") not in self.sent]

    def signal(self, container: dict[str, Any], name: str) -> None:
        self.sent.append((container["id"], name))


@pytest.fixture
def node() -> FakeNode:
    return FakeNode(["a" * 64, "b" * 64])


def test_crictl_takes_flags_before_arguments_only(node: FakeNode) -> None:
    assert standins.crictl(node, ["stop", "--timeout", "0", "aaaa"]) == 0
    assert node.sent == [("a" * 64, "KILL")]
    with pytest.raises(standins.Refused, match='try to find container "--timeout": not found'):
        standins.crictl(node, ["stop", "bbbb", "--timeout", "0"])


def test_crictl_ps_filters_by_label_and_prints_full_ids_only_when_asked(node: FakeNode,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    standins.crictl(node, ["ps", "--quiet", "--no-trunc", "--state", "running", "--label",
                           "io.kubernetes.container.name=writer-1", "--label", "io.kubernetes.pod.name=ckpt-0"])
    assert capsys.readouterr().out.split() == ["b" * 64]
    standins.crictl(node, ["ps", "-q"])
    assert capsys.readouterr().out.split() == ["a" * 13, "b" * 13]
    with pytest.raises(standins.Usage, match="must be key=value"):
        standins.crictl(node, ["ps", "--label", "writer"])


def test_ctr_kills_by_full_id_in_the_kubelets_namespace_only(node: FakeNode) -> None:
    assert standins.ctr(node, ["-n", "k8s.io", "task", "kill", "--signal", "SIGUSR1", "b" * 64]) == 0
    assert node.sent == [("b" * 64, "USR1")]
    with pytest.raises(standins.Refused, match=r'in namespace "k8s\.io": not found'):
        standins.ctr(node, ["-n", "k8s.io", "task", "kill", "--signal", "SIGHUP", "bbbb"])
    with pytest.raises(standins.Refused, match='in namespace "default": not found'):
        standins.ctr(node, ["task", "kill", "b" * 64])
    with pytest.raises(standins.Usage, match="exactly one container id"):
        standins.ctr(node, ["-n", "k8s.io", "task", "kill", "b" * 64, "--signal", "SIGHUP"])
