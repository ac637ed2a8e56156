"""The real writer with each checkpoint format (docs/formats.md): writes through the library,
acknowledges a digest of the tensors, reads back with the library (``/resume``, ``/checkpoints/N``,
the offline verifier), refuses what a format cannot express — and under SIGKILL, a default
variant that writes into the final name leaves a torn checkpoint there, which every reader
catches, while a hardened variant (and Orbax's own temp-dir rename) never does.

Formats whose library is not installed are skipped with one line saying what to install.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tenacity

from harness.workload import config, layout
from harness.workload import verify as verify_mod

pytestmark = [pytest.mark.slow]

LIBRARY_FORMATS = [f for f in config.CHECKPOINT_FORMATS if f != "raw"]
#: default variants that write into the final name (a crash mid-save tears it)
IN_PLACE = frozenset({"safetensors", "torch-dcp"})


def installed(fmt: str) -> Any:
    problem = config.missing_library(fmt)  # type: ignore[arg-type]
    return pytest.param(fmt, id=fmt, marks=pytest.mark.skipif(problem is not None, reason=problem or ""))


FORMATS = [installed(f) for f in LIBRARY_FORMATS]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_publishes_resumes_and_verifies_by_its_library(
        writer_spawn: Callable[..., Any], tmp_path: Path, fmt: str) -> None:
    w = writer_spawn(tmp_path, "--format", fmt, "--keep-last", "0")
    ready = w.await_ready(60)
    assert ready["format"] == fmt
    assert w.await_event("listening")["library"]
    acked = {}
    for n, (nbytes, shards) in enumerate([(4, 1), (1000, 3), (300_000, 4), (2 * 1024 * 1024 + 3, 2)]):
        status, body = w.request("POST", "/checkpoints", {"bytes": nbytes, "shards": shards, "request_id": f"r{n}"})
        assert status == 200, body
        assert body["bytes"] == nbytes
        acked[body["step"]] = (body["digest"], f"r{n}")
    newest = max(acked)
    status, body = w.request("GET", "/resume")
    assert status == 200, body
    assert (body["step"], body["digest"], body["skipped"]) == (newest, acked[newest][0], [])
    status, body = w.request("GET", f"/checkpoints/{newest}")
    assert status == 200
    assert body["checkpoint_format"] == fmt
    assert body["digest"] == acked[newest][0]
    found, _ = verify_mod.verify_volume(tmp_path, ordinal=0)
    assert {c.step: (c.digest, c.request_id) for c in found.checkpoints if c.valid} == acked
    assert all(c.valid for c in found.checkpoints)
    assert w.terminate() == 0
    again = writer_spawn(tmp_path, "--format", fmt)
    assert again.await_ready(60)["latest_step"] == newest


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_request_the_format_cannot_express_is_a_400_and_writes_nothing(
        writer_spawn: Callable[..., Any], tmp_path: Path, fmt: str) -> None:
    w = writer_spawn(tmp_path, "--format", fmt)
    w.await_ready(60)
    status, body = w.request("POST", "/checkpoints", {"bytes": 7, "shards": 2})
    assert status == 400
    assert body["published"] is False
    assert "at least one float32 element" in body["error"]
    assert "\n" not in body["error"]
    assert os.listdir(layout.checkpoints_dir(tmp_path)) == []
    status, body = w.request("POST", "/checkpoints", {"bytes": 8, "shards": 2})
    assert status == 200, body
    assert body["step"] == 1  # the refused request reserved no step


def test_an_unknown_format_is_one_line_and_exit_2_with_nothing_written(
        writer_command: Callable[..., list[str]], writer_environment: Callable[..., dict[str, str]],
        tmp_path: Path) -> None:
    for env_or_flag in (["--format", "pickle"], []):
        env = writer_environment(0, **({} if env_or_flag else {"WRITER_FORMAT": "pickle"}))
        done = subprocess.run([*writer_command(), "--data-dir", str(tmp_path), "--port", "0", *env_or_flag],
                              env=env, check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1
        assert "unknown checkpoint format 'pickle'" in done.stderr
        assert os.listdir(tmp_path) == []


def test_a_missing_library_is_one_line_and_exit_2_with_nothing_written(
        writer_environment: Callable[..., dict[str, str]], tmp_path: Path) -> None:
    # torch hidden from this interpreter, as on a machine without the [torch] extra
    code = ("import sys; sys.modules['torch'] = None; from harness.workload.__main__ import main; "
            f"sys.exit(main(['serve', '--data-dir', {str(tmp_path)!r}, '--port', '0', '--format', 'torch-dcp']))")
    done = subprocess.run([sys.executable, "-c", code], env=writer_environment(0), check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert "format torch-dcp needs the Python module 'torch'" in done.stderr
    assert "ckpt-chaos-harness[torch]" in done.stderr
    assert os.listdir(tmp_path) == []


def test_unsafe_skip_is_refused_for_a_library_format(
        writer_command: Callable[..., list[str]], writer_environment: Callable[..., dict[str, str]],
        tmp_path: Path) -> None:
    done = subprocess.run([*writer_command(), "--data-dir", str(tmp_path), "--port", "0", "--format", "safetensors",
                           "--unsafe-skip", "file-fsync"], env=writer_environment(0), check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "raw format only" in done.stderr
    assert os.listdir(tmp_path) == []


# ---- SIGKILL ---------------------------------------------------------------------------------------
def _post_in_background(port: int, body: dict[str, object]) -> threading.Thread:
    def post() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/checkpoints", json.dumps(body), {"Content-Type": "application/json"})
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass  # killed mid-request: that is the point
        finally:
            conn.close()

    t = threading.Thread(target=post, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigkill_while_a_save_is_under_way(writer_spawn: Callable[..., Any], tmp_path: Path, fmt: str) -> None:
    """Kill the writer while a large save runs (once something for it exists on the volume): the
    in-place default variants leave a torn checkpoint under the final name, which the verifier,
    boot recovery and /resume all name; the others leave only a temp dir, removed at boot."""
    w = writer_spawn(tmp_path, "--format", fmt, "--keep-last", "0")
    w.await_ready(60)
    status, first = w.request("POST", "/checkpoints", {"bytes": 4096, "shards": 1})
    assert status == 200
    ckdir = layout.checkpoints_dir(tmp_path)
    post = _post_in_background(w.port, {"bytes": 192 * 1024 * 1024, "shards": 4})

    def save_under_way() -> bool:
        names = set(os.listdir(ckdir)) - {layout.final_name(first["step"])}
        return any(os.listdir(ckdir / n) for n in names if (ckdir / n).is_dir())

    tenacity.Retrying(stop=tenacity.stop_after_delay(60), wait=tenacity.wait_fixed(0.002),
                      retry=tenacity.retry_if_result(lambda seen: not seen), reraise=True)(save_under_way)
    w.kill()
    post.join(30)
    found, _ = verify_mod.verify_volume(tmp_path, ordinal=0)
    torn = [c for c in found.checkpoints if not c.valid]
    if fmt in IN_PLACE:
        assert [c.step for c in torn] == [first["step"] + 1], found
        assert found.temp_dirs == 0
    else:
        assert torn == [], found
        assert found.temp_dirs == 1, found
    again = writer_spawn(tmp_path, "--format", fmt)
    assert again.await_ready(60)["latest_step"] == first["step"]
    status, resumed = again.request("GET", "/resume")
    assert status == 200
    assert resumed["step"] == first["step"]
    assert [s["step"] for s in resumed["skipped"]] == [c.step for c in torn]
    assert not [n for n in os.listdir(ckdir) if layout.is_temp_name(n)]


@pytest.mark.parametrize("fmt", [installed(f) for f in LIBRARY_FORMATS if f not in IN_PLACE])
def test_random_sigkills_never_tear_or_lose_an_atomic_format(
        writer_spawn: Callable[..., Any], tmp_path: Path, fmt: str, harness_seed: int) -> None:
    """The crash test of test_writer_crash.py, shorter: SIGKILL at random moments under three
    clients; after each kill nothing is torn and every acknowledged checkpoint is there."""
    rng = random.Random(harness_seed)
    acked: dict[int, tuple[str, str]] = {}
    lock = threading.Lock()

    def client(port: int, name: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        crng = random.Random(f"{harness_seed}-{name}")
        try:
            for n in itertools.count():
                shards = crng.randint(1, 4)
                rid = f"{name}-{n}"
                body = json.dumps({"bytes": crng.randint(4 * shards, 256 * 1024), "shards": shards,
                                   "request_id": rid})
                try:
                    conn.request("POST", "/checkpoints", body)
                    resp = conn.getresponse()
                    answer = json.loads(resp.read())
                except (OSError, http.client.HTTPException, json.JSONDecodeError):
                    return
                if resp.status == 200:
                    with lock:
                        acked[answer["step"]] = (answer["digest"], rid)
                    round_acked.set()
        finally:
            conn.close()

    round_acked = threading.Event()
    for kill in range(int(os.environ.get("FORMAT_CRASH_KILLS", "4"))):
        w = writer_spawn(tmp_path, "--format", fmt, "--keep-last", "3")
        w.await_ready(60)
        round_acked.clear()
        threads = [threading.Thread(target=client, args=(w.port, f"k{kill}c{i}"), daemon=True) for i in range(3)]
        for t in threads:
            t.start()
        # Even kills count from ready (they may land before any write finished, as a boot-time
        # crash does); odd kills count from the round's first acknowledgement, so the run always
        # has acknowledged checkpoints to lose however slow the machine is.
        if kill % 2:
            assert round_acked.wait(60), f"kill {kill}: the writer acknowledged nothing within 60 s of ready"
        time.sleep(rng.uniform(0.05, 1.5))  # a random moment to kill at: the point of the test
        w.kill()
        for t in threads:
            t.join(30)
        found, _ = verify_mod.verify_volume(tmp_path, ordinal=0)
        assert all(c.valid for c in found.checkpoints), [c for c in found.checkpoints if not c.valid]
        valid = {c.step: (c.digest, c.request_id) for c in found.checkpoints}
        for step, ack in acked.items():
            if step in valid:
                assert valid[step] == ack
            else:
                assert sum(1 for s in valid if s > step) >= 3, f"acknowledged step {step} lost after kill {kill}"
    assert acked, "nothing was acknowledged: the test proved nothing"
