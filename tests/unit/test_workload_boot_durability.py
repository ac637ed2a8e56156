"""Boot makes the volume's own layout durable: the identity stamp and ``checkpoints/``.

A process crash leaves the page cache intact, so a directory entry created just before it is
still visible to the next boot; only a later power loss takes it away. The tests model exactly
that at the :class:`fsutil.Disk` seam: a ledger (shared by the crashed boot and the next, like
the kernel's page cache) of directory entries created but not yet made durable by an fsync of
their parent; what remains in it is what a power loss would undo. File contents are not
modelled: the publish protocol's file fsyncs are tested elsewhere.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.workload import app, config, events, fsutil, identity, layout

POD = config.PodIdentity("ckpt-0", "ns", "ckpt", 0, "data-ckpt-0")


class PowerCut(BaseException):
    """The simulated crash: a BaseException, so no ``except OSError`` in the writer absorbs it."""


class PowerLossDisk(fsutil.Disk):
    """Records entries not yet durable in ``ledger``; optionally crashes at the ``crash_at``-th
    fsync of ``crash_dir`` (before it runs, as if the process died on its way there)."""

    def __init__(self, ledger: set[Path], crash_dir: Path | None = None, crash_at: int = 0) -> None:
        self.ledger = ledger
        self.crash_dir, self.crash_at = crash_dir, crash_at
        self.dir_fsyncs = 0
        self._lock = threading.Lock()  # the store fsyncs from its pool threads

    def _created(self, path: Path, moved_from: Path | None = None) -> None:
        with self._lock:
            self.ledger.add(path)
            if moved_from is not None:
                self.ledger.discard(moved_from)

    def mkdir(self, path: Path) -> None:
        super().mkdir(path)
        self._created(path)

    def create(self, path: Path) -> int:
        fd = super().create(path)
        self._created(path)
        return fd

    def rename(self, src: Path, dst: Path) -> None:
        super().rename(src, dst)
        self._created(dst, moved_from=src)

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        super().rename_noreplace(src, dst)
        self._created(dst, moved_from=src)

    def fsync_dir(self, path: Path) -> None:
        if path == self.crash_dir:
            self.dir_fsyncs += 1
            if self.dir_fsyncs == self.crash_at:
                raise PowerCut(f"crash before fsync #{self.crash_at} of {path}")
        super().fsync_dir(path)
        with self._lock:
            self.ledger.difference_update({p for p in self.ledger if p.parent == path})


def lost_at_power_loss(ledger: set[Path], data_dir: Path) -> list[str]:
    """Entries of the data dir itself that a power loss right now would take away."""
    return sorted(p.name for p in ledger if p.parent == data_dir)


def test_stamp_left_unsynced_by_a_crash_is_made_durable_by_the_next_establish(tmp_path: Path) -> None:
    """Regression: a crash between the stamp's rename and the data dir's fsync left a stamp
    that every later boot read as "matched" and never fsynced; a power loss then took the
    stamp (and with it the volume's identity) while its checkpoints stayed."""
    ledger: set[Path] = set()
    with pytest.raises(PowerCut):
        identity.establish(tmp_path, POD, PowerLossDisk(ledger, crash_dir=tmp_path, crash_at=1))
    assert lost_at_power_loss(ledger, tmp_path) == [layout.STAMP_NAME], "the crash was not where the test means"
    again = identity.establish(tmp_path, POD, PowerLossDisk(ledger))
    assert again.outcome == "matched"
    assert lost_at_power_loss(ledger, tmp_path) == [], "a power loss after this boot would lose the stamp"


@pytest.mark.parametrize("crash_at", [1, 2], ids=["stamp-fsync", "checkpoints-dir-fsync"])
def test_every_boot_makes_the_layout_durable_before_ready(tmp_path: Path, crash_at: int) -> None:
    """Regression (checkpoints-dir-fsync): ``checkpoints/`` was fsynced into the data dir only
    by the boot that made it. A crash between that mkdir and its fsync left it for good: five
    acknowledged checkpoints later, a power loss took the directory and all five with it.
    The stamp-fsync case (a crash inside write_stamp) is coverage: the next boot's mkdir of
    ``checkpoints/`` and its fsync always healed that one."""
    ledger: set[Path] = set()
    cfg = config.WriterConfig(data_dir=tmp_path, keep_last=0)
    crashing = app.WriterApp(cfg, POD, events.NullLog(), PowerLossDisk(ledger, crash_dir=tmp_path, crash_at=crash_at))
    with pytest.raises(PowerCut):
        crashing.boot()
    assert lost_at_power_loss(ledger, tmp_path), "the crash left nothing unsynced: the test tests nothing"
    writer = app.WriterApp(cfg, POD, events.NullLog(), PowerLossDisk(ledger))
    writer.boot()
    assert writer.readiness().ready, writer.readiness()
    assert lost_at_power_loss(ledger, tmp_path) == [], "ready, but a power loss would undo the volume's layout"
    st = writer.ready_store()
    assert st is not None
    acked = [st.publish(None, 100, 1).step for _ in range(5)]
    assert acked == [1, 2, 3, 4, 5]
    assert writer.stop(10)
    assert sorted(ledger) == [], "acknowledged checkpoints a power loss would take away"
