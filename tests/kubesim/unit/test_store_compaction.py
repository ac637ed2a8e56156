"""The store forgets deleted data: etcd-like compaction of the event history, and a scrubbed file (A4, A11).

Each test writes through :class:`kubesim.apiserver.store.Store` directly and searches the SQLite
files' bytes for a marker that only the deleted object carried.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubesim.apiserver import store

SECRETS = "core/secrets"
CONFIGMAPS = "core/configmaps"


def _secret(name: str, payload: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ns"},
            "data": {"key": payload}}


def _filler(db: store.Store, count: int, size: int = 100) -> None:
    with db.write_lock:
        for _ in range(count):
            name = f"cm-{secrets.token_hex(4)}"
            db.put(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": name, "namespace": "ns"}, "data": {"a": "y" * size}}, None)


def _on_disk(state: Path, marker: str) -> list[str]:
    """The store's files (db, WAL) that still contain the marker."""
    return sorted(p.name for p in state.iterdir() if p.name.startswith("kubesim.db") and marker.encode() in
                  p.read_bytes())


def _await(condition: Callable[[], bool], timeout: float, waited_for: Callable[[], str]) -> None:
    """Poll ``condition`` until it holds; past ``timeout`` seconds fail naming what was awaited and what was seen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout:g} s for {waited_for()}")
        time.sleep(0.05)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path


def _create_and_delete(db: store.Store, marker: str, size: int) -> int:
    """A Secret with the marker, updated once (the old version has it too), then deleted; returns the delete's rv."""
    with db.write_lock:
        first = db.put(SECRETS, _secret("s", marker + "a" * size), None)
        second = db.put(SECRETS, _secret("s", marker + "b" * size), first)
        assert second.rv == first.rv + 1
        gone = db.remove(SECRETS, _secret("s", marker + "b" * size))
    return gone.rv


@pytest.mark.parametrize("size", [40, 6000], ids=["small", "overflow-pages"])
def test_a_deleted_secret_is_gone_from_the_file_once_compacted(state: Path, size: int) -> None:
    """A11: the history keeps the deleted Secret (watchable) until compaction; after it, no byte of it is on disk."""
    db = store.Store(state / "kubesim.db", window=10_000, compaction_interval=0)
    marker = secrets.token_hex(16)
    _filler(db, 20, size)
    deleted_at = _create_and_delete(db, marker, size)
    _filler(db, 20, size)
    assert _on_disk(state, marker), "the test proves nothing if the marker never reached the files"
    assert any(marker in ev.raw.decode() for ev in db.events_after(deleted_at - 3, 0))  # still in the history
    db.compact(deleted_at)
    assert _on_disk(state, marker) == []
    assert all(marker not in ev.raw.decode() for ev in db.events_after(deleted_at, 0))
    with pytest.raises(store.Compacted):
        db.events_after(deleted_at - 1, 0)  # a watch from before the compaction: 410 Expired
    db.close()


def test_compaction_runs_on_a_clock_like_the_apiservers_compactor(state: Path) -> None:
    """A4, A11: without any count-window pressure, the history up to the previous tick's revision is dropped."""
    db = store.Store(state / "kubesim.db", window=10_000, compaction_interval=0.2)
    marker = secrets.token_hex(16)
    deleted_at = _create_and_delete(db, marker, 100)
    _await(lambda: db.compacted_rv >= deleted_at and not _on_disk(state, marker), 10,
           lambda: f"the compaction clock (every 0.2 s) to drop the history up to the delete at rv {deleted_at}, "
                   f"in memory and on disk: compacted_rv is {db.compacted_rv}, "
                   f"files with the deleted Secret: {_on_disk(state, marker)}")
    with pytest.raises(store.Compacted):
        db.check_watchable(deleted_at - 1)
    db.check_watchable(db.resource_version)  # a watch from now is fine
    db.close()


def test_no_compaction_without_the_clock_keeps_the_window(state: Path) -> None:
    """A4: with the clock off, only the count window compacts (the old behaviour): the history is still watchable."""
    before = set(threading.enumerate())
    db = store.Store(state / "kubesim.db", window=10_000, compaction_interval=0)
    # nothing that could compact later: no thread was started (a compactor runs only on its own thread) ...
    assert [t.name for t in set(threading.enumerate()) - before] == []
    marker = secrets.token_hex(16)
    deleted_at = _create_and_delete(db, marker, 100)
    _filler(db, 50)  # ... and writes, the only other trigger, stay far below the count window
    db.check_watchable(deleted_at - 3)
    assert db.compacted_rv == 0
    assert _on_disk(state, marker)
    db.close()


def test_compaction_survives_a_restart_and_paging_snapshots_honour_it(state: Path) -> None:
    """A4, A9: a reopened store starts at the compacted revision; snapshots older than it are Compacted."""
    db = store.Store(state / "kubesim.db", window=10_000, compaction_interval=0)
    _filler(db, 5)
    middle = db.resource_version
    _filler(db, 5)
    db.compact(middle)
    assert [e.rv for e in db.events_after(middle, 0)] == list(range(middle + 1, middle + 6))
    with pytest.raises(store.Compacted):
        db.snapshot(CONFIGMAPS, None, middle - 1)
    assert len(db.snapshot(CONFIGMAPS, None, middle)) == 5
    last = db.resource_version
    db.close()
    again = store.Store(state / "kubesim.db", window=10_000, compaction_interval=0)
    assert again.resource_version == last
    assert again.compacted_rv == middle
    assert [e.rv for e in again.events_after(middle, 0)] == list(range(middle + 1, middle + 6))
    again.close()


def test_a_file_written_without_secure_delete_is_scrubbed_at_start(state: Path) -> None:
    """A11: free-space residue that an older kubesim left in kubesim.db is gone after the next start."""
    path = state / "kubesim.db"
    db = store.Store(path, window=10_000, compaction_interval=0)
    db.close()
    marker = secrets.token_hex(16)
    raw = sqlite3.connect(str(path), isolation_level=None)
    raw.execute("PRAGMA secure_delete=OFF")
    raw.execute("DELETE FROM meta WHERE k='secure_delete'")  # as a file from before this change
    raw.execute("INSERT INTO meta (k, v) VALUES ('residue', ?)", (marker * 50,))
    raw.execute("DELETE FROM meta WHERE k='residue'")
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    assert _on_disk(state, marker), "SQLite without secure_delete leaves deleted bytes in the file"
    store.Store(path, window=10_000, compaction_interval=0).close()
    assert _on_disk(state, marker) == []


def test_count_window_and_clock_together_never_move_compaction_backwards(state: Path) -> None:
    """A4: compacting to a revision the count window already passed changes nothing in memory."""
    db = store.Store(state / "kubesim.db", window=5, compaction_interval=0)
    _filler(db, 20)
    assert db.compacted_rv == db.resource_version - 5
    before = db.compacted_rv
    db.compact(before - 3)
    assert db.compacted_rv == before
    assert len(db.events_after(before, 0)) == 5
    db.close()
