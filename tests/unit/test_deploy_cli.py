"""`harness deploy` / `undeploy` without a cluster: bad input is one line, exit 2, nothing created.

Run in-process through typer's CliRunner (a subprocess per case costs seconds on a loaded
machine); one test goes through `python -m harness` to cover the real entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness import cli
from harness.deploy import manifests, spec


@pytest.fixture(autouse=True)
def _no_ambient_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)


def harness(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path} if path is not None else None
    result = CliRunner().invoke(cli.build_app(), list(args), env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--replicas", "-1"], "error: --replicas: must be 0 or more, got -1"),
        (["--size", "lots"], "error: --size: 'lots' is not a Kubernetes quantity"),
        (["--access-mode", "RWM"], "error: --access-mode: 'RWM' is not one of"),
        (["--when-scaled", "Keep"], "error: --when-scaled: 'Keep' is not one of Retain, Delete"),
        (["--timeout", "0"], "error: --timeout must be more than 0 seconds"),
        (["--via", "helm"], "error: --via has no effect with --render"),
        (["--via", "pulumi"], "error: --via has no effect with --render"),
    ],
)
def test_bad_spec_value_is_one_line_exit_2_and_nothing_rendered(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    out = tmp_path / "out"
    proc = harness("deploy", "--render", str(out), *args)
    assert proc.returncode == 2
    assert one_error_line(proc).startswith(expected)
    assert not out.exists()


def test_missing_kubeconfig_is_one_line_before_anything(tmp_path: Path) -> None:
    proc = harness("deploy", "--kubeconfig", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        f"error: kubeconfig {tmp_path / 'nope.yaml'} does not exist; pass --kubeconfig PATH or set KUBECONFIG"
    )


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "kind-a", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "kind-a",
            }
        )
    )
    proc = harness("deploy", "--kubeconfig", str(kubeconfig), "--context", "kind-b")
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        f"error: context 'kind-b' is not in {kubeconfig} (contexts: kind-a); pass --context NAME"
    )


def test_unreachable_cluster_is_one_line_exit_1(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    proc = harness("deploy", "--kubeconfig", str(kubeconfig), "--no-wait")
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("error: cannot reach the API server at https://127.0.0.1:9 (")


def test_via_pulumi_without_the_cli_says_so_and_points_at_direct(tmp_path: Path) -> None:
    proc = harness("deploy", "--via", "pulumi", path=str(tmp_path))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "the pulumi CLI is not on PATH" in line
    assert "--via direct" in line
    proc = harness("undeploy", "--via", "pulumi", path=str(tmp_path))
    assert proc.returncode == 2
    assert "the pulumi CLI is not on PATH" in one_error_line(proc)


def test_render_writes_what_manifests_builds(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    proc = harness("deploy", "--render", str(out), "--replicas", "2", "--storage-class", "shared")
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.iterdir())
    assert [str(f) for f in files] == proc.stdout.split()
    expected = manifests.build(spec.parse({"replicas": "2", "storage_class": "shared"}))
    assert [yaml.safe_load(f.read_text()) for f in files] == [obj.body for obj in expected]


def test_every_spec_option_is_a_deploy_flag() -> None:
    proc = harness("deploy", "--help")
    assert proc.returncode == 0
    for option in spec.OPTIONS:
        assert option.flag in proc.stdout, option.flag


def test_console_script_entry_point_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "deploy", "--render", str(tmp_path / "out"), "--replicas", "-3"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: --replicas: must be 0 or more, got -3\n"
    assert not (tmp_path / "out").exists()
