"""`harness load` refuses bad input with one line and exit 2, creating nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import cli


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_load(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.build_app(), ["load", "--out", str(tmp_path / "reports"), *args])
    return result.exit_code, result.stderr.strip()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "no endpoints"),
        (("--urls", ""), "no endpoints given"),
        (("--urls", "http://127.0.0.1:1", "--statefulset", "ckpt"), "either --urls"),
        (("--urls", "localhost:8080"), "not an http"),
        (("--urls", "http://127.0.0.1:1", "--size", "big"), "is not a size"),
        (("--urls", "http://127.0.0.1:1", "--size", "0"), "at least 1 byte"),
        (("--urls", "http://127.0.0.1:1", "--duration", "forever"), "is not a duration"),
        (("--urls", "http://127.0.0.1:1", "--duration", "0s"), "longer than 0"),
        (("--urls", "http://127.0.0.1:1", "--users", "0"), "users must be >= 1"),
        (("--urls", "http://127.0.0.1:1", "--shards", "0"), "shards must be >= 1"),
        (("--urls", "http://127.0.0.1:1", "--reach", "teleport"), "--reach"),
        (("--urls", "http://127.0.0.1:1", "--volumes", "nodir"), "ORDINAL=DIR"),
        (("--urls", "http://127.0.0.1:1", "--stages", "30s"), "DURATION:USERS"),
        (("--urls", "http://127.0.0.1:1", "--workers", "-1"), "workers must be >= 0"),
        (("--urls", "http://127.0.0.1:1", "--rate-per-ordinal", "-2"), "rate per ordinal must be >= 0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path: Path, args: tuple[str, ...],
                                                         complaint: str) -> None:
    code, err = run_load(tmp_path, *args)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert complaint in err
    assert not (tmp_path / "reports").exists()


def test_unreachable_url_is_refused_before_any_load_starts(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, err = run_load(tmp_path, "--urls", url, "--ready-timeout", "0.5", "--duration", "1s")
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert f"ordinal 0 at {url} is unreachable" in err
    assert not (tmp_path / "reports").exists()


def test_statefulset_with_a_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    code, err = run_load(tmp_path, "--statefulset", "ckpt", "--kubeconfig", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "does not exist" in err
    assert len(err.splitlines()) == 1, err
