"""The store's publish protocol, step reservation, retention and boot recovery (in process)."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
from pathlib import Path

import pytest

from harness.workload import events, fsutil, layout, recovery, store, validate


def new_store(ckdir: Path, keep_last: int = 0, disk: fsutil.Disk | None = None, **kw: object) -> store.CheckpointStore:
    ckdir.mkdir(exist_ok=True)
    report = recovery.recover(ckdir, 0, fsutil.Disk(), events.NullLog())
    return store.CheckpointStore(ckdir, ordinal=0, volume_id="vol", epoch="ep", recovered=report,
                                 keep_last=keep_last, log=events.NullLog(), disk=disk, **kw)  # type: ignore[arg-type]


@pytest.fixture
def ckdir(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


class RecordingDisk(fsutil.Disk):
    """Records the order of protocol calls so a test can check the protocol's sequence."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def mkdir(self, path: Path) -> None:
        self.log.append(("mkdir", path.name))
        super().mkdir(path)

    def create(self, path: Path) -> int:
        self.log.append(("create", path.name))
        return super().create(path)

    def fsync(self, fd: int) -> None:
        self.log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1]))
        super().fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        self.log.append(("fsync_dir", path.name))
        super().fsync_dir(path)

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        self.log.append(("rename", f"{src.name}->{dst.name}"))
        super().rename_noreplace(src, dst)


def test_publish_follows_the_protocol_order(ckdir: Path) -> None:
    disk = RecordingDisk()
    s = new_store(ckdir, disk=disk)
    done = s.publish(None, 9000, 2, "r1")
    s.close()
    ops = disk.log
    tmp = ops[0][1]
    assert ops[0] == ("mkdir", tmp)
    assert tmp.startswith(".tmp-1-")
    rename = ops.index(("rename", f"{tmp}->step-000000000001"))
    before = set(ops[:rename])
    # every file and the temp dir are fsynced before the rename; the manifest is created last
    assert {("fsync", "shard-00000.bin"), ("fsync", "shard-00001.bin"), ("fsync", "MANIFEST.json"),
            ("fsync_dir", tmp)} <= before
    creates = [name for op, name in ops if op == "create"]
    assert creates[-1] == "MANIFEST.json"
    assert ops[rename + 1:] == [("fsync_dir", "checkpoints")]
    assert done.step == 1
    check = validate.check_checkpoint(ckdir / "step-000000000001", 1, 0)
    assert check.valid
    assert check.manifest is not None
    assert check.manifest.digest() == done.digest
    assert os.listdir(ckdir) == ["step-000000000001"]


def test_large_checkpoint_is_written_in_parallel_and_validates(ckdir: Path) -> None:
    s = new_store(ckdir, chunk_bytes=256 * 1024)
    done = s.publish(None, 9 * 1024 * 1024 + 3, 5)
    s.close()
    check = validate.check_checkpoint(ckdir / layout.final_name(done.step), done.step, 0)
    assert check.valid, check.problem
    assert check.manifest is not None
    # 9 MiB + 3 bytes over 5 shards: the remainder goes to the first shards
    assert [f.size for f in check.manifest.files] == [1887438, 1887438, 1887437, 1887437, 1887437]


def test_steps_are_unique_increasing_and_reserved_steps_cannot_be_reused(ckdir: Path) -> None:
    s = new_store(ckdir)
    assert s.publish(4, 10, 1).step == 4
    with pytest.raises(store.PublishError) as conflict:
        s.publish(4, 10, 1)
    assert (conflict.value.status, conflict.value.published) == (409, False)
    assert s.publish(None, 10, 1).step == 5
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        steps = list(pool.map(lambda _i: s.publish(None, 2000, 2).step, range(40)))
    assert sorted(steps) == list(range(6, 46))
    s.close()
    assert sorted(os.listdir(ckdir)) == [layout.final_name(n) for n in [4, *range(5, 46)]]


def test_retention_keeps_the_newest_k_valid_and_never_torn_ones(ckdir: Path) -> None:
    s = new_store(ckdir)
    for _ in range(3):
        s.publish(None, 10, 1)
    s.close()
    torn = ckdir / layout.final_name(2) / "shard-00000.bin"
    torn.write_bytes(b"x")  # tear step 2
    s = new_store(ckdir, keep_last=2)
    for _ in range(3):
        s.publish(None, 10, 1)
    s.close()
    assert sorted(os.listdir(ckdir)) == [layout.final_name(n) for n in (2, 5, 6)]


def test_retention_never_runs_ahead_of_the_newest_durable_checkpoint(ckdir: Path) -> None:
    s = new_store(ckdir, keep_last=1)
    for _ in range(5):
        done = s.publish(None, 10, 1)
        s.reap_now()
        assert os.listdir(ckdir) == [layout.final_name(done.step)]
    s.close()


def test_boot_recovery_removes_temp_dirs_keeps_torn_and_reports_latest_valid(ckdir: Path) -> None:
    s = new_store(ckdir)
    for _ in range(4):
        s.publish(None, 5000, 2)
    s.close()
    (ckdir / ".tmp-5-dead").mkdir()
    (ckdir / ".tmp-5-dead" / "shard-00000.bin").write_bytes(b"y" * 100)
    (ckdir / ".tmp-3-reap-beef").mkdir()
    m = ckdir / layout.final_name(4) / layout.MANIFEST_NAME
    m.write_bytes(m.read_bytes()[:-20])  # torn manifest on the newest
    (ckdir / layout.final_name(2) / "shard-00001.bin").write_bytes(b"z" * 2500)  # same size, wrong bytes
    out = io.StringIO()
    report = recovery.recover(ckdir, 0, fsutil.Disk(), events.EventLog(out))
    assert (report.removed_temp_dirs, report.removed_temp_bytes) == (2, 100)
    assert sorted(os.listdir(ckdir)) == [layout.final_name(n) for n in (1, 2, 3, 4)]
    by_step = {e.step: e for e in report.entries}
    assert (by_step[4].valid, by_step[4].checked) == (False, "full")
    assert "not JSON" in (by_step[4].problem or "")
    assert (by_step[3].valid, by_step[3].checked) == (True, "full")
    # older ones get a structural check only: the wrong-bytes shard of step 2 is not re-hashed at boot
    assert (by_step[2].valid, by_step[2].checked) == (True, "structure")
    assert report.latest_valid_step == 3
    assert report.highest_step == 4
    logged = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert "recovery.torn" in logged
    assert "recovery.temp-removed" in logged
    s = store.CheckpointStore(ckdir, ordinal=0, volume_id="vol", epoch="ep2", recovered=report, log=events.NullLog())
    assert s.publish(None, 10, 1).step == 5, "a step with a final name (even torn) is never reused"
    s.close()


class FailingDisk(fsutil.Disk):
    def __init__(self, failing: str, err: int) -> None:
        self.failing, self.err = failing, err

    def fsync(self, fd: int) -> None:
        if self.failing == "fsync":
            raise OSError(self.err, os.strerror(self.err))
        super().fsync(fd)

    def write_all(self, fd: int, data: bytes | memoryview) -> None:
        if self.failing == "write":
            raise OSError(self.err, os.strerror(self.err))
        super().write_all(fd, data)


@pytest.mark.parametrize(("failing", "err", "status"), [("write", 28, 507), ("fsync", 5, 500)])
def test_io_error_removes_the_temp_dir_and_publishes_nothing(ckdir: Path, failing: str, err: int, status: int) -> None:
    s = new_store(ckdir, disk=FailingDisk(failing, err))
    with pytest.raises(store.PublishError) as failed:
        s.publish(None, 4096, 2)
    assert (failed.value.status, failed.value.published) == (status, False)
    assert os.listdir(ckdir) == []
    assert s.entries() == []
    s.close()


def test_negative_control_flush_skip_writes_the_tail_after_the_fsync(ckdir: Path) -> None:
    disk = RecordingDisk()
    calls: list[str] = []
    orig_write = disk.write_all

    def write_all(fd: int, data: bytes | memoryview) -> None:
        calls.append("write")
        orig_write(fd, data)

    disk.write_all = write_all  # type: ignore[method-assign]
    orig_fsync = disk.fsync

    def fsync(fd: int) -> None:
        calls.append("fsync")
        orig_fsync(fd)

    disk.fsync = fsync  # type: ignore[method-assign]
    s = new_store(ckdir, disk=disk, unsafe_skip=frozenset({"flush"}))
    s.publish(None, 4096, 1)
    s.close()
    assert calls == ["write", "fsync", "fsync", "write"]  # manifest write, both fsyncs, then the shard's tail


def test_negative_control_atomic_rename_skip_writes_under_the_final_name(ckdir: Path) -> None:
    disk = RecordingDisk()
    s = new_store(ckdir, disk=disk, unsafe_skip=frozenset({"atomic-rename", "parent-fsync"}))
    s.publish(None, 4096, 1)
    s.close()
    assert disk.log[0] == ("mkdir", "step-000000000001")
    assert not any(op == "rename" for op, _ in disk.log)
    assert ("fsync_dir", "checkpoints") not in disk.log


def test_close_refuses_new_checkpoints_with_503(ckdir: Path) -> None:
    s = new_store(ckdir)
    assert s.close() is True
    with pytest.raises(store.PublishError) as refused:
        s.publish(None, 10, 1)
    assert (refused.value.status, refused.value.published) == (503, False)
