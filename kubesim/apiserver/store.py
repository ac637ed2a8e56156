"""The durable object store: SQLite in WAL mode, an in-memory mirror, and the watch event log.

Why this shape (k3s's kine shows the pattern of an SQL table standing in for etcd):

* Every write is one SQLite transaction that updates the ``objects`` row, appends the watch
  event to ``events`` and stores the cluster-wide resourceVersion counter in ``meta``; the HTTP
  response is sent only after ``COMMIT`` returns, so anything acknowledged is on disk and the
  counter can never go backwards after a restart.
* ``synchronous=NORMAL`` in WAL mode: a committed transaction has been ``write()``-n to the WAL
  file before COMMIT returns, so it survives the *process* being SIGKILLed (the page cache
  belongs to the kernel). Only an operating-system crash or power loss can drop the last
  commits, which is outside what the simulated control plane promises (A9: process kill).
  ``FULL`` would add an fsync per write for a guarantee we do not test.
* Reads never touch SQLite: the current objects live in memory next to their serialised JSON,
  so GET and LIST are dictionary lookups and byte concatenation.
* Resource versions are contiguous (one write = one version = one event), so the in-memory
  event log is a list indexed by ``rv - first_rv``; watchers wait on one condition variable and
  read the slice after their position. Events older than the window are compacted; a watch
  from before the window gets 410 Expired, as from a compacted etcd.
* Compaction also runs on a clock, as kube-apiserver drives etcd's
  (``k8s.io/apiserver/pkg/storage/etcd3/compact.go``): every ``compaction_interval`` (upstream's
  ``--etcd-compaction-interval``, 5 minutes) the history up to the revision seen one interval
  earlier is dropped, none at the first tick after a start. So a deleted or overwritten object's
  data (a Secret's) leaves the history within two intervals even when few writes happen, where
  the count window alone could keep it forever.
* Deleted data also leaves the file: ``secure_delete`` makes SQLite overwrite freed cells and
  pages with zeros, and each compaction ends with a ``wal_checkpoint(TRUNCATE)``, which copies
  the zeroed pages into ``kubesim.db`` and empties the WAL (whose old frames still held them). A
  database written before this (no ``secure_delete`` marker in ``meta``) is VACUUMed once at
  start. Measured choice (see ``compact``): secure_delete costs ~15 % of store writes that free
  space; a VACUUM per compaction would rewrite the whole file every interval, blocking writers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("kubesim.apiserver.store")

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

COMPACTION_INTERVAL = 300.0
"""Seconds between compactions: kube-apiserver's ``--etcd-compaction-interval`` default (5 min).

``KUBESIM_COMPACTION_INTERVAL`` (seconds; 0 turns the clock off) overrides it for a server
started without an explicit ``compaction_interval``.
"""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One stored object. ``obj`` is shared: callers copy (``json.loads(raw)``) before changing it."""

    obj: dict[str, Any]
    raw: bytes
    rv: int


@dataclasses.dataclass(frozen=True)
class Event:
    rv: int
    type: EventType
    rkey: str
    namespace: str
    name: str
    obj: dict[str, Any]
    raw: bytes
    prev: dict[str, Any] | None
    prev_raw: bytes | None = None


class Compacted(Exception):
    """The requested resourceVersion is older than the oldest event still kept."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    rkey TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, json BLOB NOT NULL,
    PRIMARY KEY (rkey, ns, name)
);
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, type TEXT NOT NULL, rkey TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
    json BLOB NOT NULL, prev BLOB
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


class Store:
    """All objects of all resources, keyed by resource key (``group/plural``), namespace and name.

    Writers must hold :attr:`write_lock` around read-check-write sequences (preconditions,
    AlreadyExists); readers need no lock.
    """

    def __init__(self, path: Path, window: int = 10_000, compaction_interval: float | None = None) -> None:
        if window < 1:
            raise ValueError(f"watch window must be at least 1 event, got {window}")
        if compaction_interval is None:
            text = os.environ.get("KUBESIM_COMPACTION_INTERVAL") or str(COMPACTION_INTERVAL)
            try:
                compaction_interval = float(text)
            except ValueError:
                raise ValueError(f"KUBESIM_COMPACTION_INTERVAL={text!r} is not a number of seconds") from None
        self.window = window
        self.compaction_interval = compaction_interval
        self.write_lock = threading.RLock()
        self._mem_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        # 0600 before SQLite opens it: the -wal and -shm files it creates take the database file's mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # freed cells and pages are zeroed (module docstring)
        self._db.executescript(_SCHEMA)
        self._objects: dict[str, dict[Key, Entry]] = {}
        for rkey, ns, name, rv, raw in self._db.execute("SELECT rkey, ns, name, rv, json FROM objects"):
            data = bytes(raw)
            self._objects.setdefault(rkey, {})[(ns, name)] = Entry(json.loads(data), data, int(rv))
        row = self._db.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
        self._rv = int(row[0]) if row else 0
        # The event log: _log[i].rv == _first_rv + i. Everything at or below _compacted is gone.
        self._log: list[Event] = []
        for rv, etype, rkey, ns, name, raw, prev in self._db.execute(
            "SELECT rv, type, rkey, ns, name, json, prev FROM events WHERE rv > ? ORDER BY rv", (self._rv - window,)
        ):
            data = bytes(raw)
            prev_data = bytes(prev) if prev else None
            self._log.append(Event(int(rv), etype, rkey, ns, name, json.loads(data), data,
                                   json.loads(prev_data) if prev_data else None, prev_data))
        if self._log and self._log[-1].rv != self._rv:
            raise RuntimeError(f"store {path}: event log ends at {self._log[-1].rv} but the counter says {self._rv}")
        # Only a contiguous tail can be served; anything before a gap counts as compacted.
        start = 0
        for i in range(1, len(self._log)):
            if self._log[i].rv != self._log[i - 1].rv + 1:
                start = i
        self._log = self._log[start:]
        self._first_rv = self._log[0].rv if self._log else self._rv + 1
        self._compacted = self._first_rv - 1
        self._writes_since_trim = 0
        self._scrub_at_start()
        self._stop = threading.Event()
        self._compactor: threading.Thread | None = None
        if self.compaction_interval > 0:
            self._compactor = threading.Thread(target=self._compact_on_a_clock, name="store-compactor", daemon=True)
            self._compactor.start()

    def _scrub_at_start(self) -> None:
        """Drop events nothing can reach any more; VACUUM once a file written without secure_delete."""
        self._db.execute("DELETE FROM events WHERE rv <= ?", (self._compacted,))
        if self._db.execute("SELECT v FROM meta WHERE k='secure_delete'").fetchone() is None:
            self._db.execute("VACUUM")  # rewrites live content only: old free-space residue is gone
            self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('secure_delete', 'on')")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ----- reads -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def compacted_rv(self) -> int:
        return self._compacted

    def get(self, rkey: str, namespace: str, name: str) -> Entry | None:
        bucket = self._objects.get(rkey)
        return bucket.get((namespace, name)) if bucket else None

    def scan(self, rkey: str, namespace: str | None) -> tuple[list[tuple[Key, Entry]], int]:
        """A consistent snapshot of one resource (optionally one namespace), sorted by key."""
        with self._mem_lock:
            rv = self._rv
            bucket = self._objects.get(rkey)
            items = list(bucket.items()) if bucket else []
        if namespace is not None:
            items = [item for item in items if item[0][0] == namespace]
        items.sort(key=lambda item: item[0])
        return items, rv

    def snapshot(self, rkey: str, namespace: str | None, rv: int) -> list[tuple[Key, Entry]]:
        """The objects of one resource as they were at resourceVersion ``rv`` (sorted by key).

        Rebuilt from the current state by undoing the logged events after ``rv`` (each event
        carries the previous version), which is what makes paged lists consistent.
        Raises :class:`Compacted` when those events are no longer kept.
        """
        with self.write_lock:
            current, now = self.scan(rkey, namespace)
            with self._cond:
                if rv < self._compacted:
                    raise Compacted(rv, self._compacted)
                start = rv + 1 - self._first_rv
                later = self._log[max(start, 0):] if rv < now else []
        state = dict(current)
        undone: set[Key] = set()
        for ev in later:
            key = (ev.namespace, ev.name)
            if ev.rkey != rkey or key in undone or (namespace is not None and ev.namespace != namespace):
                continue
            undone.add(key)
            if ev.type == "ADDED" or ev.prev is None:
                state.pop(key, None)
            else:
                raw = ev.prev_raw if ev.prev_raw is not None else dumps(ev.prev)
                state[key] = Entry(ev.prev, raw, int(ev.prev["metadata"].get("resourceVersion") or 0))
        return sorted(state.items(), key=lambda item: item[0])

    def count(self, rkey: str, namespace: str | None) -> int:
        bucket = self._objects.get(rkey)
        if not bucket:
            return 0
        with self._mem_lock:
            keys = list(bucket)
        return len(keys) if namespace is None else sum(1 for ns, _ in keys if ns == namespace)

    # ----- writes (caller holds write_lock) ----------------------------------------------

    def put(self, rkey: str, obj: dict[str, Any], prev: Entry | None) -> Entry:
        """Create (``prev`` None) or replace an object; stamps and returns its new resourceVersion."""
        meta = obj["metadata"]
        event = self._commit("ADDED" if prev is None else "MODIFIED", rkey, meta.get("namespace", ""),
                             meta["name"], obj, prev)
        return Entry(event.obj, event.raw, event.rv)

    def remove(self, rkey: str, obj: dict[str, Any]) -> Entry:
        """Delete an object; the DELETED event carries it with the deletion's resourceVersion."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        stored = self.get(rkey, ns, name)
        event = self._commit("DELETED", rkey, ns, name, obj, stored)
        return Entry(event.obj, event.raw, event.rv)

    def _commit(  # noqa: PLR0917 - one positional per event field
        self, etype: EventType, rkey: str, ns: str, name: str, obj: dict[str, Any], prev_entry: Entry | None
    ) -> Event:
        with self.write_lock:  # callers hold it already; the compactor shares the connection
            return self._commit_locked(etype, rkey, ns, name, obj, prev_entry)

    def _commit_locked(  # noqa: PLR0917 - one positional per event field
        self, etype: EventType, rkey: str, ns: str, name: str, obj: dict[str, Any], prev_entry: Entry | None
    ) -> Event:
        rv = self._rv + 1
        obj["metadata"]["resourceVersion"] = str(rv)
        raw = dumps(obj)
        prev = prev_entry.obj if prev_entry is not None else None
        prev_raw = prev_entry.raw if prev_entry is not None else None
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if etype == "DELETED":
                db.execute("DELETE FROM objects WHERE rkey=? AND ns=? AND name=?", (rkey, ns, name))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO objects (rkey, ns, name, rv, json) VALUES (?, ?, ?, ?, ?)",
                    (rkey, ns, name, rv, raw),
                )
            db.execute(
                "INSERT INTO events (rv, type, rkey, ns, name, json, prev) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rv, etype, rkey, ns, name, raw, prev_raw),
            )
            db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?)", (str(rv),))
            self._writes_since_trim += 1
            if self._writes_since_trim >= max(1, min(256, self.window)):
                trim_to = rv - self.window
                if trim_to > 0:
                    db.execute("DELETE FROM events WHERE rv <= ?", (trim_to,))
                self._writes_since_trim = 0
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        event = Event(rv, etype, rkey, ns, name, obj, raw, prev, prev_raw)
        with self._mem_lock:
            bucket = self._objects.setdefault(rkey, {})
            if etype == "DELETED":
                bucket.pop((ns, name), None)
            else:
                bucket[(ns, name)] = Entry(obj, raw, rv)
            self._rv = rv
        with self._cond:
            if not self._log:
                self._first_rv = rv
            self._log.append(event)
            excess = len(self._log) - self.window
            # Trim exactly for small windows (tests), in batches for large ones (cheap appends).
            if excess > 0 and (self.window <= 256 or excess >= 256):
                del self._log[:excess]
                self._first_rv += excess
                self._compacted = self._first_rv - 1
            self._cond.notify_all()
        return event

    # ----- compaction -----------------------------------------------------------------------

    def compact(self, rev: int) -> None:
        """Forget the history up to and including ``rev``, in memory and on disk, and scrub the file.

        Afterwards a watch or a paged list from a resourceVersion below ``rev`` gets 410 Expired,
        and no event at or below ``rev`` — so no earlier version of any object, and nothing of an
        object deleted at or before ``rev`` — is left in ``kubesim.db`` or its WAL.

        Why ``secure_delete=ON`` and not a VACUUM per compaction (measured on the store alone, 2 KB
        Secrets, one third of the writes deletes, the rest replacements): ON costs 15 % of store
        writes/s (3,490 vs 4,108 with OFF; HTTP adds ~1.5 ms a request, so ~2 % there, and creates
        free nothing), and compacting 5,000 events of a 46 MB file holds the write lock 184 ms
        (32 ms without the zeroing). A VACUUM plus checkpoint of the same file took 177-193 ms and
        rewrites every live object each interval, so it grows with the cluster, not with the
        history dropped. ``FAST`` (4,014/s) is not enough: it leaves freed overflow pages as they
        were, and a deleted 6 KB Secret stayed readable in the file.
        """
        with self.write_lock:
            if self._closed:
                return
            rev = min(rev, self._rv)
            with self._cond:
                if rev > self._compacted:
                    drop = max(0, min(len(self._log), rev - self._first_rv + 1))
                    del self._log[:drop]
                    self._first_rv += drop
                    self._compacted = rev
                upto = self._compacted  # the count window may be ahead; the disk catches up here too
            self._db.execute("DELETE FROM events WHERE rv <= ?", (upto,))
            busy, _frames, _copied = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:  # only this process opens the file, so a reader blocking the truncation is unexpected
            log.warning("the WAL could not be emptied after compacting to %d; the next compaction retries", upto)
        log.debug("compacted the event history up to resourceVersion %d", upto)

    def _compact_on_a_clock(self) -> None:
        """kube-apiserver's compactor loop: each tick compacts to the revision the previous tick saw."""
        seen: int | None = None  # no compaction on the first tick after a start ("bootstrap")
        while not self._stop.wait(self.compaction_interval):
            current = self._rv
            try:
                if seen is not None:
                    self.compact(seen)
            except sqlite3.Error:
                log.exception("compacting the event history failed; retrying at the next interval")
                continue
            seen = current

    # ----- watch ---------------------------------------------------------------------------

    def events_after(self, rv: int, timeout: float) -> list[Event]:
        """Events with resourceVersion > ``rv``, waiting up to ``timeout`` seconds for the first one.

        Raises :class:`Compacted` when events after ``rv`` are no longer kept.
        """
        with self._cond:
            if rv < self._compacted:
                raise Compacted(rv, self._compacted)
            if self._rv <= rv and not self._closed:
                self._cond.wait(timeout)
            if rv < self._compacted:
                raise Compacted(rv, self._compacted)
            start = rv + 1 - self._first_rv
            return self._log[max(start, 0):] if start < len(self._log) else []

    def check_watchable(self, rv: int) -> None:
        with self._cond:
            if rv < self._compacted:
                raise Compacted(rv, self._compacted)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        with self.write_lock:
            self._db.close()
        if self._compactor is not None and self._compactor is not threading.current_thread():
            self._compactor.join(timeout=5)

    def resources(self) -> Iterator[str]:
        return iter(list(self._objects))
