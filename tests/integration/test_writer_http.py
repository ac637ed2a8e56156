"""The writer's HTTP contract, against the real process (`harness writer serve`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from harness.workload import layout, serve, validate
from harness.workload import verify as verify_mod

pytestmark = [pytest.mark.slow]


def final_dirs(data_dir: Path) -> list[str]:
    ckdir = layout.checkpoints_dir(data_dir)
    return sorted(os.listdir(ckdir)) if ckdir.is_dir() else []


def test_acknowledged_checkpoint_is_published_valid_and_matches_its_ack(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path, ordinal=2, cli=True)
    w.await_ready()
    status, ack = w.request("POST", "/checkpoints", {"bytes": 3 * 1024 * 1024 + 7, "shards": 3, "request_id": "r-1"})
    assert status == 200, ack
    assert set(ack) == {"ordinal", "step", "digest", "bytes", "epoch", "durable_at", "request_id"}
    assert (ack["ordinal"], ack["step"], ack["bytes"], ack["request_id"]) == (2, 1, 3 * 1024 * 1024 + 7, "r-1")
    found, _ = verify_mod.verify_volume(tmp_path)
    assert [(c.step, c.valid, c.digest, c.request_id) for c in found.checkpoints] == [(1, True, ack["digest"], "r-1")]
    assert found.stamp is not None
    assert (found.stamp.ordinal, found.stamp.claim, found.stamp.statefulset) == (2, "data-ckpt-2", "ckpt")
    status, m = w.request("GET", "/checkpoints/1")
    assert status == 200
    assert (m["digest"], m["step"], m["ordinal"], m["epoch"]) == (ack["digest"], 1, 2, ack["epoch"])
    assert [f["size"] for f in m["files"]] == [1024 * 1024 + 3, 1024 * 1024 + 2, 1024 * 1024 + 2]
    shard = layout.checkpoints_dir(tmp_path) / "step-000000000001" / "shard-00000.bin"
    head = shard.read_bytes()[:65536]
    assert head.count(0) < 1024, "shard contents look like zeros"
    assert validate.file_digest(shard) == m["files"][0]["digest"]
    status, listing = w.request("GET", "/checkpoints")
    assert status == 200
    assert listing["latest_valid_step"] == 1
    assert listing["checkpoints"][0]["valid"] is True
    status, ready = w.request("GET", "/readyz")
    assert (status, ready["ready"], ready["latest_step"], ready["ordinal"]) == (200, True, 1, 2)
    assert w.terminate() == 0


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ({"bytes": -5, "shards": 1}, "out of range"),
        ({"bytes": 1 << 40, "shards": 1}, "out of range"),
        ({"bytes": 4096}, "'shards' is required"),
        ({"bytes": 4096, "shards": 0}, "out of range"),
        ({"bytes": 4096, "shards": 2000}, "out of range"),
        ({"bytes": 2, "shards": 3}, "must not exceed bytes"),
        ({"bytes": 4096, "shards": 1, "step": "7"}, "must be an integer"),
        ({"bytes": True, "shards": 1}, "must be an integer"),
        ({"bytes": 4096, "shards": 1, "color": "red"}, "unknown field"),
        ({"bytes": 4096, "shards": 1, "request_id": "x" * 200}, "request_id"),
    ],
)
def test_bad_request_is_400_with_a_reason_and_writes_nothing(tmp_path: Path, writer_spawn, body, complaint) -> None:
    w = writer_spawn(tmp_path, "--max-bytes", str(1 << 30))
    w.await_ready()
    status, answer = w.request("POST", "/checkpoints", body)
    assert status == 400
    assert complaint in answer["error"]
    assert answer["published"] is False
    assert final_dirs(tmp_path) == []
    status, _ = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})
    assert status == 200, "the writer stopped serving after a bad request"


def test_step_not_above_the_last_is_409_and_auto_steps_continue(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path)
    w.await_ready()
    assert w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1, "step": 5})[0] == 200
    status, answer = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1, "step": 5})
    assert (status, answer["published"]) == (409, False)
    assert w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1, "step": 3})[0] == 409
    status, ack = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})
    assert (status, ack["step"]) == (200, 6)
    w.kill()
    w2 = writer_spawn(tmp_path)
    w2.await_ready()
    status, ack = w2.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})
    assert (status, ack["step"]) == (200, 7), "after a restart the next step must follow the highest final name"


def test_concurrent_posts_get_unique_steps_and_all_validate(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path, "--keep-last", "0")
    w.await_ready()

    def post(i: int) -> tuple[int, dict]:
        return w.request("POST", "/checkpoints", {"bytes": 20000 + i, "shards": 1 + i % 4, "request_id": f"r{i}"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(48)))
    assert {s for s, _ in answers} == {200}
    steps = [a["step"] for _, a in answers]
    assert len(set(steps)) == 48
    found, _ = verify_mod.verify_volume(tmp_path)
    assert all(c.valid for c in found.checkpoints)
    assert {c.step: c.digest for c in found.checkpoints} == {a["step"]: a["digest"] for _, a in answers}


def test_keep_last_retains_the_newest_k(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path, "--keep-last", "2")
    w.await_ready()
    for _ in range(6):
        assert w.request("POST", "/checkpoints", {"bytes": 100, "shards": 1})[0] == 200
    assert w.terminate() == 0  # shutdown waits for the reaper's pass
    assert final_dirs(tmp_path) == ["step-000000000005", "step-000000000006"]


def test_volume_stamped_for_another_ordinal_is_refused_and_left_untouched(tmp_path: Path, writer_spawn) -> None:
    first = writer_spawn(tmp_path, ordinal=0)
    first.await_ready()
    assert first.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})[0] == 200
    assert first.terminate() == 0
    planted = layout.checkpoints_dir(tmp_path) / ".tmp-9-leftover"
    planted.mkdir()
    swapped = writer_spawn(tmp_path, ordinal=1)
    mismatch = swapped.await_event("identity.mismatch")
    assert "ordinal 0 (this pod: 1)" in mismatch["problem"]
    status, ident = swapped.request("GET", "/identity")
    assert (status, ident["match"], ident["stamp"]["ordinal"]) == (409, False, 0)
    assert "ordinal" in ident["error"]
    status, ready = swapped.request("GET", "/readyz")
    assert (status, ready["ready"], ready["state"]) == (503, False, "identity-mismatch")
    status, answer = swapped.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})
    assert (status, answer["published"]) == (503, False)
    assert planted.is_dir(), "boot recovery ran on a volume that is not ours"
    assert final_dirs(tmp_path) == [".tmp-9-leftover", "step-000000000001"]


@pytest.mark.parametrize("cli", [False, True], ids=["lean", "cli"])
def test_missing_data_dir_exits_2_with_one_line(tmp_path: Path, cli: bool, writer_command, writer_environment) -> None:
    done = subprocess.run([*writer_command(cli), "--data-dir", str(tmp_path / "nope"), "--port", "0"],
                          env=writer_environment(0), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "does not exist" in lines[0]


@contextlib.contextmanager
def read_only_mount(path: Path) -> Iterator[None]:
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)]
    rc = subprocess.run(mount, capture_output=True, check=False).returncode
    if rc != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_data_dir_exits_2_with_one_line(tmp_path: Path, writer_command, writer_environment) -> None:
    ro = tmp_path / "ro"
    with read_only_mount(ro):
        done = subprocess.run([*writer_command(), "--data-dir", str(ro), "--port", "0"],
                              env=writer_environment(0), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    expected = f"error: data dir {ro} is read-only: the writer needs a writable volume"
    assert done.stderr.strip().splitlines() == [expected]


@pytest.fixture
def memory_volume(tmp_path: Path) -> Iterator[Path]:
    """A data dir on tmpfs (/dev/shm) when there is one, else tmp_path.

    The SIGTERM test is about draining, not the disk: on this project's ext4 (mounted with online
    discard) a journal commit right after other tests deleted gigabytes waits for those discards,
    and one fsync was seen to stall past 30 s in the full suite (3 GB deleted first: 8 s instead
    of 0.8 s), which made the drain, not the writer, the thing under test.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="writer-sigterm-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_sigterm_finishes_in_flight_writes_and_exits_0(memory_volume: Path, writer_spawn) -> None:
    w = writer_spawn(memory_volume)
    w.await_ready()
    ckdir = layout.checkpoints_dir(memory_volume)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(w.request, "POST", "/checkpoints", {"bytes": 256 << 20, "shards": 4,
                                                                    "request_id": "held-at-the-stop"})
        writing = tenacity.Retrying(
            stop=tenacity.stop_before_delay(30), wait=tenacity.wait_fixed(0.001),
            retry=tenacity.retry_if_result(lambda seen: not seen), retry_error_callback=lambda _s: False,
        )(lambda: any(layout.is_temp_name(n) for n in os.listdir(ckdir)))
        assert writing, "the checkpoint's temp dir never appeared"
        # The writer may take its whole drain budget, then up to 5 s each for the reaper and the
        # HTTP threads: wait past that, so a slow drain shows up as "not drained", not a timeout.
        assert w.terminate(timeout=serve.DRAIN_SECONDS + 20) == 0
        status, ack = pending.result(timeout=60)
    assert status == 200, f"the in-flight checkpoint was not finished before exit: {ack}"
    found, _ = verify_mod.verify_volume(memory_volume)
    assert [c.valid for c in found.checkpoints] == [True]
    assert any(e["event"] == "stopped" and e["drained"] for e in w.events)
    [stopping] = [e for e in w.events if e["event"] == "stopping"]
    assert (stopping["in_flight"], stopping["in_flight_without_id"]) == (["held-at-the-stop"], 0), \
        "the writer's account of what it held at the signal is what the shutdown checker judges"
    shutil.rmtree(ckdir)  # 256 MiB: do not leave it to pytest's tmp_path retention


def _unread_by_server(server_port: int, client_port: int) -> int | None:
    """Bytes the server side of this loopback connection has not read yet (/proc/net/tcp rx_queue)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return int(queues.split(":")[1], 16)
    return None


def test_a_request_that_arrived_before_the_exit_gets_its_whole_answer(tmp_path: Path, writer_spawn) -> None:
    """Regression: once its writes had drained the writer exited, and its (daemon) handler threads
    died with it mid-request: a client saw its connection cut, no answer or half of one, although
    its request had arrived. Every request that arrived is answered; after the stop, 503."""
    w = writer_spawn(tmp_path)
    w.await_ready()
    body = json.dumps({"bytes": 1024, "shards": 1}).encode()
    with socket.create_connection(("127.0.0.1", w.port), timeout=30) as sock:
        sock.sendall(b"POST /checkpoints HTTP/1.1\r\nHost: writer\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        client_port = sock.getsockname()[1]
        tenacity.Retrying(
            stop=tenacity.stop_before_delay(15), wait=tenacity.wait_fixed(0.01), reraise=True,
            retry=tenacity.retry_if_result(lambda unread: unread != 0),
        )(lambda: _unread_by_server(w.port, client_port))  # the writer has read the head: the request arrived
        w.proc.send_signal(signal.SIGTERM)
        w.await_event("stopping")

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", w.port), timeout=5).close()
            except (ConnectionRefusedError, ConnectionResetError):  # reset: it was in the backlog at close
                return False
            return True

        # the rest of the body only once the writer has closed its listener, the last step before
        # an exit that would not wait for this request
        tenacity.Retrying(stop=tenacity.stop_before_delay(15), wait=tenacity.wait_fixed(0.01), reraise=True,
                          retry=tenacity.retry_if_result(bool))(listening)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), answer
    assert b"Connection: close" in head, head
    assert json.loads(rest) == {"error": "not ready: shutting down; nothing was published", "published": False}
    assert w.terminate_wait(timeout=serve.DRAIN_SECONDS + 20) == 0


def _tgkill(pid: int, tid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to one thread of another process (what the kernel may choose on its own)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, tid, int(sig)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_sigterm_that_lands_on_a_worker_thread_still_stops_the_writer(tmp_path: Path, writer_spawn) -> None:
    """Regression: the main thread waited on a threading.Event, which a signal handled on any
    other thread never wakes; the writer then ignored SIGTERM until SIGKILL."""
    w = writer_spawn(tmp_path)
    w.await_ready()
    pid = w.proc.pid
    workers = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert workers, "the writer runs HTTP and boot threads; /proc shows none"
    _tgkill(pid, workers[0], signal.SIGTERM)
    assert w.terminate_wait(timeout=serve.DRAIN_SECONDS + 20) == 0
    assert any(e["event"] == "signal" and e["signal"] == "SIGTERM" for e in w.events)


def test_verify_cli_prints_volume_facts_json(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path, ordinal=1)
    w.await_ready()
    assert w.request("POST", "/checkpoints", {"bytes": 1000, "shards": 2, "request_id": "q"})[0] == 200
    assert w.terminate() == 0
    done = subprocess.run([sys.executable, "-m", "harness", "verify", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ordinal"] == 1
    assert doc["latest_valid_step"] == 1
    assert doc["checkpoints"][0]["request_id"] == "q"


def test_resume_reads_the_newest_checkpoint_in_full_and_names_a_newer_torn_one(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path, "--keep-last", "0")
    w.await_ready()
    acks = [w.request("POST", "/checkpoints", {"bytes": 5000, "shards": 2})[1] for _ in range(3)]
    status, resumed = w.request("GET", "/resume")
    assert status == 200, resumed
    assert (resumed["step"], resumed["digest"], resumed["bytes"]) == (3, acks[2]["digest"], 5000)
    assert resumed["skipped"] == []
    shard = layout.checkpoints_dir(tmp_path) / layout.final_name(3) / "shard-00000.bin"
    shard.write_bytes(b"\0" * shard.stat().st_size)  # same size: only a full read can tell
    status, resumed = w.request("GET", "/resume")
    assert status == 200, resumed
    assert (resumed["step"], resumed["digest"]) == (2, acks[1]["digest"])
    assert resumed["skipped"] == [{"step": 3, "problem": "shard-00000.bin digest mismatch"}]


def test_resume_with_nothing_written_is_404(tmp_path: Path, writer_spawn) -> None:
    w = writer_spawn(tmp_path)
    w.await_ready()
    status, body = w.request("GET", "/resume")
    assert status == 404
    assert "nothing to resume from" in body["error"]


def test_manifest_is_served_only_for_a_checkpoint_whose_bytes_read_back_whole(tmp_path: Path, writer_spawn) -> None:
    """Regression: GET /checkpoints/<step> answered 200 with the manifest of a checkpoint whose
    bytes were corrupted or truncated (boot re-hashes only the newest; a torn one's manifest
    still decoded). A trainer resuming from it would have loaded garbage."""
    w = writer_spawn(tmp_path, "--keep-last", "0")
    w.await_ready()
    acks = [w.request("POST", "/checkpoints", {"bytes": 6000, "shards": 2})[1] for _ in range(4)]
    w.kill()
    ckdir = layout.checkpoints_dir(tmp_path)
    zeroed = ckdir / layout.final_name(1) / "shard-00001.bin"
    zeroed.write_bytes(b"\0" * zeroed.stat().st_size)  # same size: passes boot's structural check
    truncated = ckdir / layout.final_name(2) / "shard-00000.bin"
    truncated.write_bytes(truncated.read_bytes()[:100])
    w = writer_spawn(tmp_path, "--keep-last", "0")
    w.await_ready()
    status, answer = w.request("GET", "/checkpoints/1")
    assert status == 422, f"served a checkpoint whose bytes do not match: {status} {answer}"
    assert answer["error"] == "step 1: shard-00001.bin digest mismatch"
    status, answer = w.request("GET", "/checkpoints/2")
    assert status == 422, f"served a truncated checkpoint: {status} {answer}"
    assert answer["error"] == "step 2: shard-00000.bin has 100 bytes, manifest says 3000"
    status, m = w.request("GET", "/checkpoints/4")
    assert (status, m["digest"]) == (200, acks[3]["digest"])
    status, listing = w.request("GET", "/checkpoints")
    assert [(c["step"], c["valid"]) for c in listing["checkpoints"]] == [(1, False), (2, False), (3, True), (4, True)]
    newest = ckdir / layout.final_name(4) / "shard-00000.bin"
    newest.write_bytes(b"\0" * newest.stat().st_size)  # verified at boot, corrupted since
    assert w.request("GET", "/checkpoints/4")[0] == 422
    status, resumed = w.request("GET", "/resume")
    assert (status, resumed["step"], resumed["digest"]) == (200, 3, acks[2]["digest"])
    assert resumed["skipped"] == [{"step": 4, "problem": "shard-00000.bin digest mismatch"}]
    status, ready = w.request("GET", "/readyz")
    assert (status, ready["latest_step"]) == (200, 3)


def test_a_step_far_above_the_last_is_400_naming_the_bound(tmp_path: Path, writer_spawn) -> None:
    """Regression: step 999999999999 was accepted, after which every POST without a step got
    409 for good, across restarts too (steps are recovered from the final names)."""
    w = writer_spawn(tmp_path)
    w.await_ready()
    status, answer = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1, "step": 999999999999})
    assert status == 400, f"step 999999999999 was not refused: {status} {answer}"
    assert answer["published"] is False
    assert "at most 1000000 above" in answer["error"]
    assert "1000000" in answer["error"]
    assert final_dirs(tmp_path) == []
    status, ack = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})
    assert (status, ack["step"]) == (200, 1)
    status, ack = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1, "step": 1_000_001})
    assert (status, ack["step"]) == (200, 1_000_001)
    status, ack = w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})
    assert (status, ack["step"]) == (200, 1_000_002)


def raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is (http.client would refuse or re-encode these), half-close, and
    read the whole answer: (status, body); (0, b"") when the writer dropped the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def post_raw(body: bytes, length: bytes | None = None) -> bytes:
    size = str(len(body)).encode() if length is None else length
    return b"POST /checkpoints HTTP/1.1\r\nHost: x\r\nContent-Length: " + size + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    "request_bytes",
    [
        post_raw(b'{"bytes": 10, "shards": 1, "step": 1' + b"0" * 4300 + b"}"),
        post_raw(b"[" * 60000),
        b"GET /checkpoints/\xb2 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /checkpoints/" + b"1" * 4301 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        post_raw(b"{}", length=b"\xb2"),
        post_raw(b"{}", length=b"\xb9\xb2"),
        post_raw(b"{}", length=b"1" * 4301),
    ],
    ids=["step-4301-digits", "nested-json", "path-superscript", "path-4301-digits", "length-superscript",
         "length-superscripts", "length-4301-digits"],
)
def test_unparseable_numbers_are_400_not_a_dropped_connection(tmp_path: Path, writer_spawn, request_bytes) -> None:
    """Regression: these raised ValueError/RecursionError in the handler (str.isdigit is true
    for '²'; int() stops at 4300 digits), so the writer dropped the connection with a traceback."""
    w = writer_spawn(tmp_path)
    w.await_ready()
    status, body = raw_exchange(w.port, request_bytes)
    assert status == 400, "the writer dropped the connection instead of answering"
    assert body.endswith(b"\n"), body
    assert body.count(b"\n") == 1, "the error is not one line"
    assert json.loads(body)["error"]
    assert w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})[0] == 200
    assert w.terminate() == 0
    assert "Traceback" not in w.stderr()


@pytest.mark.parametrize("entry", [["-m", "harness", "writer", "serve"], ["-m", "harness.workload", "serve"]])
def test_outside_a_pod_the_writer_runs_as_named_and_says_how_when_unnamed(tmp_path: Path, entry: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POD_", "STATEFULSET_", "CLAIM_"))}
    unnamed = subprocess.run([sys.executable, *entry, "--data-dir", str(tmp_path)], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert unnamed.returncode == 2
    assert "--name <statefulset>-<ordinal>" in unnamed.stderr
    assert not list(tmp_path.iterdir()), "an unnamed writer wrote nothing"
    named = subprocess.Popen([sys.executable, *entry, "--data-dir", str(tmp_path), "--name", "ckpt-2",
                              "--host", "127.0.0.1", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert named.stdout is not None
        first = json.loads(named.stdout.readline())
        assert (first["event"], first["ordinal"], first["pod"]) == ("listening", 2, "ckpt-2")
    finally:
        os.killpg(named.pid, signal.SIGKILL)
        named.wait(timeout=10)
        if named.stdout:
            named.stdout.close()
