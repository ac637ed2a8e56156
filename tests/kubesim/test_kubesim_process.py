"""The server as a process: CLI up/down/status, restarts, and durability under SIGKILL (A9, A10)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesim", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _pid(state_dir: Path) -> int:
    return int(json.loads((state_dir / "state.json").read_text())["components"]["apiserver"]["pid"])


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for a parent that may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def state_dir(tmp_path: Path) -> Any:
    path = tmp_path / "state"
    try:
        yield path
    finally:
        if path.exists():
            _cli("down", "--state", str(path))


def test_up_status_down_and_restart_reuse_ca_token_and_port(state_dir: Path) -> None:
    """A10: up writes a kubeconfig; a second up says it runs; down stops it; a restart keeps CA, token and port."""
    first = _cli("up", "--state", str(state_dir), "--port", "0")
    assert first.returncode == 0, first.stderr
    assert f"export KUBECONFIG={state_dir.resolve() / 'kubeconfig'}" in first.stdout
    kubeconfig_before = yaml.safe_load((state_dir / "kubeconfig").read_text())
    # private: the store holds Secrets (WAL included), the directory the token and the CA key
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    stored = [p for p in state_dir.iterdir() if p.name.startswith("kubesim.db")]
    assert any(p.name == "kubesim.db-wal" for p in stored), stored
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in stored} == {p.name: "0o600" for p in stored}
    again = _cli("up", "--state", str(state_dir))
    assert again.returncode == 0
    assert again.stdout.startswith("kubesim already running")
    assert len(again.stdout.strip().splitlines()) == 1
    assert _cli("status", "--state", str(state_dir)).returncode == 0
    pid = _pid(state_dir)
    down = _cli("down", "--state", str(state_dir))
    assert down.returncode == 0
    assert f"apiserver (pid {pid})" in down.stdout
    assert not _alive(pid)
    status = _cli("status", "--state", str(state_dir))
    assert status.returncode == 1
    assert "not running" in status.stdout
    restarted = _cli("up", "--state", str(state_dir))
    assert restarted.returncode == 0, restarted.stderr
    assert yaml.safe_load((state_dir / "kubeconfig").read_text()) == kubeconfig_before


def test_state_path_that_is_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """Bad input: one clear line, exit code 2, nothing overwritten."""
    target = tmp_path / "not-a-dir"
    target.write_text("keep me")
    result = _cli("up", "--state", str(target))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is a file" in result.stderr
    assert target.read_text() == "keep me"


def test_acknowledged_writes_survive_sigkill_and_versions_keep_increasing(state_dir: Path) -> None:
    """A9: SIGKILL the server during a stream of writes; after restart every acknowledged write is there,
    nothing is half-applied and resourceVersions continue above everything acknowledged."""
    assert _cli("up", "--state", str(state_dir), "--port", "0").returncode == 0
    api = config.new_client_from_config(config_file=str(state_dir / "kubeconfig"))
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "crash"}})
    core.create_namespaced_config_map("crash", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    acked: dict[str, int] = {}
    counter_acked = 0
    enough = threading.Event()
    stopped = threading.Event()

    def writer() -> None:
        nonlocal counter_acked
        i = 0
        try:
            while True:
                i += 1
                cm = core.create_namespaced_config_map(
                    "crash", {"metadata": {"name": f"w-{i}"}, "data": {"i": str(i), "blob": "x" * 512}})
                acked[cm.metadata.name] = int(cm.metadata.resource_version)
                core.patch_namespaced_config_map("counter", "crash", {"data": {"n": str(i)}})
                counter_acked = i
                if i >= 60:
                    enough.set()
        except Exception:  # the server died under us: from here on nothing is acknowledged
            stopped.set()
            enough.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert enough.wait(timeout=60), "the writer never got 60 writes acknowledged"
    os.kill(_pid(state_dir), signal.SIGKILL)
    thread.join(timeout=30)
    assert stopped.is_set(), "the writer kept succeeding after SIGKILL"
    api.close()

    restarted = _cli("up", "--state", str(state_dir))
    assert restarted.returncode == 0, restarted.stderr
    api = config.new_client_from_config(config_file=str(state_dir / "kubeconfig"))
    core = client.CoreV1Api(api)
    stored = {cm.metadata.name: cm for cm in core.list_namespaced_config_map("crash").items}
    missing = [name for name in acked if name not in stored]
    assert not missing, f"acknowledged writes lost: {missing[:5]}"
    for name, cm in stored.items():
        if name.startswith("w-"):
            assert cm.data["i"] == name[2:], f"{name} is half-applied: {cm.data}"
            assert len(cm.data["blob"]) == 512
    assert int(stored["counter"].data["n"]) >= counter_acked
    highest = max(acked.values())
    after = core.create_namespaced_config_map("crash", {"metadata": {"name": "after-restart"}})
    assert int(after.metadata.resource_version) > highest
    listed = core.list_namespaced_config_map("crash")
    assert int(listed.metadata.resource_version) >= int(after.metadata.resource_version)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map(f"w-{len(acked) + 5}", "crash")
    assert err.value.status == 404
    api.close()


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """A thread-directed signal (``kill`` lets the kernel pick the thread, usually the main one)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "tgkill"):
        pytest.skip("this libc has no tgkill")
    if libc.tgkill(pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {sig})")


def test_sigterm_landing_on_a_worker_thread_still_stops_the_server(state_dir: Path) -> None:
    """The control plane's main thread must wake for a SIGTERM whose C handler ran on another thread
    (it used to block in ``Event.wait()`` forever, so ``down`` always ended in SIGKILL)."""
    import tenacity

    assert _cli("up", "--state", str(state_dir), "--port", "0").returncode == 0
    pid = _pid(state_dir)
    workers = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if int(t.name) != pid]
    assert workers, "the server runs no threads besides its main one"
    _tgkill(pid, workers[0], signal.SIGTERM)
    try:
        tenacity.Retrying(stop=tenacity.stop_after_delay(15), wait=tenacity.wait_fixed(0.05), reraise=True,
                          retry=tenacity.retry_if_result(bool))(lambda: _alive(pid))
    except tenacity.RetryError:
        pytest.fail(f"the server (pid {pid}) ignored a SIGTERM delivered to its thread {workers[0]} for 15 s")
    assert "shutting down (SIGTERM)" in (state_dir / "apiserver.log").read_text()


@pytest.mark.parametrize("command", [["up"], ["node", "crash"], ["net", "exec"]])
def test_help_is_plain_and_says_what_each_option_takes(command: list[str]) -> None:
    """Typer's rich panels printed a box and the Python type (<bool>) after every flag."""
    shown = _cli(*command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "<bool>" not in shown.stdout
    assert "\u256d" not in shown.stdout  # no rich panel border
    assert "part 1" not in shown.stdout
