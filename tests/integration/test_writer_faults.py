"""A full filesystem and failing I/O mid-checkpoint: nothing is published, the writer lives.

The ENOSPC test fills a real 4 MiB tmpfs (needs root to mount; skipped with the reason
otherwise — the injected-ENOSPC test below still runs). I/O errors that a real disk cannot be
made to produce on demand (EIO on fsync, a failing parent fsync) are injected through the
store's Disk seam into an in-process server, exercising the same HTTP path.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.workload import app, config, events, fsutil, layout, server
from harness.workload import verify as verify_mod

pytestmark = [pytest.mark.slow]


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({done.stderr.strip()}); injected ENOSPC covers it")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def entries(data_dir: Path) -> list[str]:
    return sorted(os.listdir(layout.checkpoints_dir(data_dir)))


def test_full_filesystem_is_507_publishes_nothing_and_writer_keeps_serving(tmp_path: Path, writer_spawn) -> None:
    vol = tmp_path / "vol"
    with small_tmpfs(vol, "4m"):
        w = writer_spawn(vol, "--keep-last", "0")
        w.await_ready()
        status, first = w.request("POST", "/checkpoints", {"bytes": 1 << 20, "shards": 2})
        assert status == 200, first
        before = entries(vol)
        status, answer = w.request("POST", "/checkpoints", {"bytes": 8 << 20, "shards": 4, "request_id": "too-big"})
        assert (status, answer["published"]) == (507, False), answer
        assert "no space" in answer["error"]
        assert entries(vol) == before, "a temp dir or a checkpoint was left behind by the failed write"
        status, ack = w.request("POST", "/checkpoints", {"bytes": 4096, "shards": 1})
        assert status == 200, f"writer stopped serving after ENOSPC: {ack}"
        found, _ = verify_mod.verify_volume(vol)
        assert [(c.step, c.valid) for c in found.checkpoints] == [(1, True), (3, True)]
        assert found.temp_dirs == 0
        assert w.terminate() == 0


class FaultyDisk(fsutil.Disk):
    """Raises ``error`` at the n-th call of ``op`` (1-based), counting every call."""

    def __init__(self, op: str, nth: int, error: int) -> None:
        self.op, self.nth, self.error = op, nth, error
        self.calls: dict[str, int] = {}
        self.armed = False

    def _hit(self, op: str) -> None:
        if not self.armed:
            return
        self.calls[op] = self.calls.get(op, 0) + 1
        if op == self.op and self.calls[op] == self.nth:
            self.armed = False
            raise OSError(self.error, os.strerror(self.error))

    def write_all(self, fd: int, data: bytes | memoryview) -> None:
        self._hit("write")
        super().write_all(fd, data)

    def fsync(self, fd: int) -> None:
        self._hit("fsync")
        super().fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        self._hit("fsync_dir")
        super().fsync_dir(path)

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        self._hit("rename")
        super().rename_noreplace(src, dst)


@pytest.fixture
def writer_in_process(tmp_path: Path) -> Iterator[tuple[app.WriterApp, FaultyDisk, int]]:
    disk = FaultyDisk("none", 0, 0)
    cfg = config.WriterConfig(data_dir=tmp_path, host="127.0.0.1", port=0, keep_last=0)
    pod = config.PodIdentity("ckpt-0", "t", "ckpt", 0, "data-ckpt-0")
    writer = app.WriterApp(cfg, pod, events.NullLog(), disk)
    writer.boot()
    httpd = server.WriterHTTPServer("127.0.0.1", 0, writer)
    thread = server.start(httpd)
    try:
        yield writer, disk, int(httpd.server_address[1])
    finally:
        writer.stop(10)
        httpd.shutdown()
        thread.join(10)
        httpd.server_close()


def post(port: int, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/checkpoints", json.dumps(body))
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    "case",
    [
        ("write", 3, errno.ENOSPC, 507, {"bytes": 6 << 20, "shards": 1}),  # mid-shard, small path
        ("write", 5, errno.ENOSPC, 507, {"bytes": 16 << 20, "shards": 4}),  # mid-shard, parallel path
        ("fsync", 1, errno.EIO, 500, {"bytes": 4096, "shards": 1}),
        ("fsync", 3, errno.EIO, 500, {"bytes": 16 << 20, "shards": 4}),
        ("fsync_dir", 1, errno.EIO, 500, {"bytes": 4096, "shards": 2}),  # the temp dir's fsync
        ("rename", 1, errno.EIO, 500, {"bytes": 4096, "shards": 1}),
        ("write", 1, errno.EDQUOT, 507, {"bytes": 4096, "shards": 1}),
    ],
)
def test_io_error_before_the_rename_publishes_nothing_and_the_writer_serves_on(
    writer_in_process: tuple[app.WriterApp, FaultyDisk, int], case: tuple[str, int, int, int, dict[str, object]]
) -> None:
    """(op, n-th call that fails, errno, expected status, request body)"""
    op, nth, err, status, body = case
    writer, disk, port = writer_in_process
    disk.op, disk.nth, disk.error, disk.armed = op, nth, err, True
    got, answer = post(port, body)
    assert (got, answer["published"]) == (status, False), answer
    assert not disk.armed, "the injected fault never fired: the test did not test anything"
    assert entries(writer.cfg.data_dir) == []
    got, ack = post(port, {"bytes": 4096, "shards": 1})
    assert got == 200, ack


def test_parent_fsync_failure_after_rename_is_indeterminate_and_hidden(
    writer_in_process: tuple[app.WriterApp, FaultyDisk, int],
) -> None:
    writer, disk, port = writer_in_process
    disk.op, disk.nth, disk.error, disk.armed = "fsync_dir", 2, errno.EIO, True  # 1: temp dir, 2: parent
    got, answer = post(port, {"bytes": 4096, "shards": 1})
    assert (got, answer["published"]) == (520, None), answer
    assert [n for n in entries(writer.cfg.data_dir) if not layout.is_temp_name(n)] == []
