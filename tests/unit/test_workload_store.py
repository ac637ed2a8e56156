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


def zero_shard(ckdir: Path, step: int, index: int = 0) -> None:
    """Overwrite a shard with zeros of the same size: only re-hashing can tell."""
    shard = ckdir / layout.final_name(step) / layout.shard_name(index)
    shard.write_bytes(b"\0" * shard.stat().st_size)


def test_retention_counts_only_verified_checkpoints_toward_keep_last(ckdir: Path) -> None:
    """Regression: boot re-hashes only the newest checkpoint; the older ones pass a structural
    check (sizes, manifest) however wrong their bytes are. Counting those toward keep-last K
    made retention delete an older checkpoint that was fine, because newer ones merely looked it."""
    s = new_store(ckdir)
    for _ in range(4):
        s.publish(None, 5000, 1)
    s.close()
    zero_shard(ckdir, 2)
    zero_shard(ckdir, 3)
    report = recovery.recover(ckdir, 0, fsutil.Disk(), events.NullLog())
    assert [(e.step, e.valid, e.checked) for e in report.entries] == [
        (1, True, "structure"), (2, True, "structure"), (3, True, "structure"), (4, True, "full")]
    s = new_store(ckdir, keep_last=3)
    s.reap_now()
    assert sorted(os.listdir(ckdir)) == [layout.final_name(n) for n in (1, 2, 3, 4)], "step 1 was reaped"
    assert [(e.step, e.valid, e.checked) for e in s.entries()] == [
        (1, True, "full"), (2, False, "full"), (3, False, "full"), (4, True, "full")]
    s.publish(None, 5000, 1)
    s.publish(None, 5000, 1)
    s.close()  # the reaper's last pass: 6, 5 and 4 are the newest three verified
    assert sorted(os.listdir(ckdir)) == [layout.final_name(n) for n in (2, 3, 4, 5, 6)], "torn ones are evidence"


def test_verify_reads_every_byte_and_marks_a_failing_checkpoint_invalid(ckdir: Path) -> None:
    s = new_store(ckdir)
    first = s.publish(None, 5000, 2)
    second = s.publish(None, 5000, 2)
    zero_shard(ckdir, 1, index=1)
    found = s.verify(1)
    assert found is not None
    assert (found.entry.valid, found.entry.problem, found.manifest) == (False, "shard-00001.bin digest mismatch", None)
    assert [(e.step, e.valid) for e in s.entries()] == [(1, False), (2, True)]
    assert s.latest_valid_step() == 2
    again = s.verify(1)
    assert again is not None
    assert again.entry == found.entry, "a torn checkpoint stays torn"
    ok = s.verify(2)
    assert ok is not None
    assert ok.manifest is not None
    assert (ok.entry.valid, ok.entry.checked, ok.manifest.digest()) == (True, "full", second.digest)
    assert s.verify(3) is None
    resumed = s.resume()
    assert resumed is not None
    assert (resumed.step, resumed.digest, resumed.skipped) == (2, second.digest, ())
    zero_shard(ckdir, 2)
    assert s.resume() is None
    assert first.step == 1
    s.close()


def test_resume_names_every_newer_checkpoint_it_passes_over(ckdir: Path) -> None:
    """Consistent with GET /checkpoints/<step>: a checkpoint a read found torn stays named in
    ``skipped`` by every later resume, instead of being passed over in silence."""
    s = new_store(ckdir)
    older = s.publish(None, 5000, 1)
    s.publish(None, 5000, 1)
    zero_shard(ckdir, 2)
    found = s.verify(2)
    assert found is not None
    assert not found.entry.valid
    for _ in range(2):
        resumed = s.resume()
        assert resumed is not None
        assert (resumed.step, resumed.digest) == (1, older.digest)
        assert resumed.skipped == ((2, "shard-00000.bin digest mismatch"),)
    s.close()


def test_explicit_step_is_bounded_by_a_window_above_the_last(ckdir: Path) -> None:
    """Regression: step 999999999999 was accepted, and every later step-less publish got 409
    for good (steps are recovered from the final names after a restart too)."""
    s = new_store(ckdir)
    with pytest.raises(store.PublishError) as far:
        s.publish(layout.MAX_STEP, 10, 1)
    assert (far.value.status, far.value.published) == (400, False)
    assert f"at most {store.STEP_WINDOW}" in far.value.message
    assert os.listdir(ckdir) == []
    assert s.publish(store.STEP_WINDOW, 10, 1).step == store.STEP_WINDOW  # the bound itself is accepted
    with pytest.raises(store.PublishError) as again:
        s.publish(2 * store.STEP_WINDOW + 1, 10, 1)
    assert again.value.status == 400
    assert str(2 * store.STEP_WINDOW) in again.value.message, "the answer names the largest step accepted now"
    assert s.publish(None, 10, 1).step == store.STEP_WINDOW + 1
    s.close()
