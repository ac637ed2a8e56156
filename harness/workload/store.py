"""The checkpoint store: the publish protocol of docs/durability.md, step by step, and retention.

Publishing one checkpoint (the numbers are the steps in docs/durability.md):

1. ``mkdir`` a unique temp dir ``.tmp-<step>-<hex>`` beside the final name (same filesystem).
2. write every shard, ``fsync`` each (no user-space buffer: ``os.write`` loops, so there is
   nothing to flush), hashing the bytes as they go.
3. write MANIFEST.json last (names, sizes, digests, step, ordinal, epoch, its own digest), fsync.
4. fsync the temp dir.

The fsyncs of steps 2-4 may run concurrently (small checkpoints issue them together so the
kernel folds them into one journal commit; large ones fsync each shard as soon as it is
written), but every one of them has returned successfully before step 5: until the rename
nothing is visible, so their order inside the temp dir cannot be observed after a crash.
5. rename it to ``step-%012d`` — renameat2(RENAME_NOREPLACE), a final name is never reused.
6. fsync the parent.
7. only then return :class:`Published` (the HTTP layer answers 200).

Errors before step 5 remove the temp dir and report ``published=False`` (507 for ENOSPC /
EDQUOT, 500 otherwise); an fsync error is never retried. Once the rename has happened the
checkpoint is visible, so a failing parent fsync gets an *indeterminate* answer (520): the
store tries to move it back out of sight, but cannot promise what a crash will show.

Retention (keep the newest K valid checkpoints) runs in a background reaper after a publish
is durable, so deleting never precedes the new checkpoint's durability and never costs the
acknowledged request an extra fsync. The reaper renames a victim to a temp name, fsyncs the
parent once per batch, then deletes — a crash mid-delete leaves a temp dir (removed at boot),
never a half-deleted directory under a final name. Torn checkpoints are never reaped: they
are evidence for the checkers. Only *verified* checkpoints count toward K — written by this
process, or re-hashed at boot or by a read — never one that only passed boot's structural
check: its bytes may be wrong, and counting it could delete the older checkpoint a trainer
must fall back on. So the reaper first re-hashes, newest first, the structure-checked ones
among the newest until it knows K verified ones (at most K-1 reads per boot, none once this
process has published K; a torn one is marked invalid and kept); every valid checkpoint
older than the K-th verified one is surplus and goes. Hashing those too, only to delete
them, would cost a full read of the whole history per boot, and in a crash loop the reaper
would rarely finish before the next crash: the volume would grow with every life. The first
pass follows this process's first publish, not its boot: deleting before this process made
a checkpoint durable gains nothing, and what the pod lists when it turns ready stays on the
volume until it writes.

Reads (:meth:`CheckpointStore.verify`, behind ``GET /checkpoints/<step>`` and ``/resume``)
re-hash every byte against the manifest each time; a checkpoint that fails is marked invalid
in the catalog for good (torn evidence: never reaped, never counted, named by every resume).

Steps: an explicit step must exceed every published or reserved step and be at most
:data:`STEP_WINDOW` above it, so one request cannot push the next automatic step past
:data:`layout.MAX_STEP` and make every later step-less POST a 409, across restarts too.

Library formats (``checkpoint_format``, docs/formats.md): the library saves (:mod:`formats`) —
the default variant straight into the final name with nothing of ours around it, so an error
mid-save is indeterminate (520: the library may have left part of it there); the hardened one
into a temp dir that is then fsynced throughout, renamed and its parent fsynced like steps 4-6
above. A request the format cannot express (:mod:`tensors`) is a 400 before a step is reserved.

Concurrency: step reservation is one short critical section; shards of large checkpoints are
written in parallel on a shared thread pool; different checkpoints proceed concurrently.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import functools
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import blake3

from harness.workload import config, events, formats, fsutil, layout, manifest, payload, recovery, tensors, validate

#: HTTP status for "the checkpoint may or may not be published" (outside the writer contract's
#: list of definite failures, so a client records the op as indeterminate)
INDETERMINATE_STATUS: Final = 520
_NO_SPACE: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
#: below this many bytes a checkpoint is written in the request thread (handing off costs more)
PARALLEL_MIN_BYTES: Final = 4 * 1024 * 1024
#: at most this many shards are written in the request thread (their fds stay open until the fsync)
INLINE_MAX_SHARDS: Final = 16
#: how far above the last published or reserved step an explicit step may jump (a trainer
#: checkpointing every N iterations names steps N apart; a million leaves room for any N)
STEP_WINDOW: Final = 1_000_000


class PublishError(Exception):
    """The checkpoint was not acknowledged; ``published`` says whether it is certainly absent."""

    def __init__(self, status: int, message: str, published: bool | None = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.published = published


@dataclasses.dataclass(frozen=True, slots=True)
class Published:
    ordinal: int
    step: int
    digest: str
    bytes: int
    epoch: str
    durable_at: float
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Open:
    """A written file whose fsync is still due (and, for the flush negative control, its tail)."""

    fd: int
    tail: payload.Buffer | None


@dataclasses.dataclass(frozen=True, slots=True)
class Resumed:
    """The checkpoint a resuming trainer would load, after reading all of it."""

    ordinal: int
    step: int
    digest: str
    bytes: int
    read_seconds: float
    #: newer checkpoints that failed the full read: (step, problem)
    skipped: tuple[tuple[int, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Verification:
    """A checkpoint read back in full: its catalog entry after the read, and its manifest
    (None unless every byte matched)."""

    entry: recovery.Entry
    manifest: manifest.Manifest | None


class _Cancelled(Exception):
    """A sibling shard failed; stop writing this one."""


class CheckpointStore:
    def __init__(
        self,
        ckdir: Path,
        *,
        ordinal: int,
        volume_id: str,
        epoch: str,
        recovered: recovery.RecoveryReport,
        keep_last: int = config.DEFAULT_KEEP_LAST,
        unsafe_skip: frozenset[config.ProtocolStep] = frozenset(),
        log: events.EventLog | None = None,
        disk: fsutil.Disk | None = None,
        shard_workers: int = 4,
        chunk_bytes: int = payload.CHUNK_BYTES,
        checkpoint_format: config.CheckpointFormat = config.DEFAULT_FORMAT,
    ) -> None:
        self.ckdir = ckdir
        self.checkpoint_format = checkpoint_format
        family = formats.family(checkpoint_format)
        #: the library module (imported now: ImportError names what is missing)
        self._library = formats.library(family) if family is not None else None
        self.ordinal = ordinal
        self.volume_id = volume_id
        self.epoch = epoch
        self.keep_last = keep_last
        self.unsafe_skip = unsafe_skip
        self._log = log if log is not None else events.EventLog()
        self._disk = disk if disk is not None else fsutil.Disk()
        self._chunk = chunk_bytes
        self._lock = threading.Lock()
        self._catalog: dict[int, recovery.Entry] = {e.step: e for e in recovered.entries}
        self._reserved = recovered.highest_step
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, shard_workers), thread_name_prefix="shard")
        self._parallel = shard_workers > 1
        self._sync_pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="fsync")
        self._reap_wanted = threading.Event()
        self._closing = False
        self._reaper = threading.Thread(target=self._reap_loop, name="reaper", daemon=True)
        self._reaper.start()

    # ---- queries -------------------------------------------------------------------------
    def entries(self) -> list[recovery.Entry]:
        with self._lock:
            return [self._catalog[s] for s in sorted(self._catalog)]

    def latest_valid_step(self) -> int | None:
        with self._lock:
            return max((s for s, e in self._catalog.items() if e.valid), default=None)

    def has(self, step: int) -> bool:
        with self._lock:
            return step in self._catalog

    def verify(self, step: int) -> Verification | None:
        """Read checkpoint ``step`` back in full, every byte hashed against its manifest.

        None when the catalog has no such step, or retention retired it while it was read
        (it is no longer under a final name). A checkpoint already known invalid is returned
        as it is, without a read: torn stays torn. One that fails now is marked invalid in the
        catalog (logged as ``checkpoint.invalid``), so it is never reaped, never counted
        toward keep-last, and never served; one that passes counts as verified from now on.
        """
        with self._lock:
            entry = self._catalog.get(step)
        if entry is None:
            return None
        if not entry.valid:
            return Verification(entry, None)
        check = validate.check_checkpoint(self.ckdir / entry.name, step, self.ordinal, "full")
        with self._lock:
            current = self._catalog.get(step)
            if current is None:
                return None  # retired by retention while it was read
            if check.valid:
                current = self._catalog[step] = dataclasses.replace(current, checked="full")
            elif current.valid:
                current = self._catalog[step] = dataclasses.replace(
                    current, valid=False, checked="full", problem=check.problem or "invalid")
                self._log.event("checkpoint.invalid", step=step, name=current.name, problem=current.problem,
                                kept=True, note="failed a full read; no longer served or counted by retention")
        return Verification(current, check.manifest if check.valid and current.valid else None)

    def resume(self) -> Resumed | None:
        """Read the newest checkpoint back in full, as a trainer resuming from it would.

        Newest first, every byte hashed against the manifest (:meth:`verify`); every newer
        checkpoint passed over — failing now or known invalid before — is named in
        ``skipped`` (never silently passed over) and the next one is tried. None when no
        checkpoint verifies. A checkpoint retired by retention while it was read is skipped
        without blame: it is no longer under a final name.
        """
        started = time.monotonic()
        skipped: list[tuple[int, str]] = []
        for entry in reversed(self.entries()):
            found = self.verify(entry.step)
            if found is None:
                continue
            if found.manifest is not None:
                m = found.manifest
                return Resumed(self.ordinal, entry.step, m.digest(), m.total_bytes,
                               round(time.monotonic() - started, 6), tuple(skipped))
            problem = found.entry.problem or "invalid"
            skipped.append((entry.step, problem))
            self._log.event("resume.skipped", step=entry.step, problem=problem)
        return None

    # ---- publishing ----------------------------------------------------------------------
    def reserve(self, step: int | None) -> int:
        """Claim a step: explicit ones must exceed every published or reserved step, by at
        most :data:`STEP_WINDOW`."""
        with self._lock:
            if self._closing:
                raise PublishError(503, "writer is shutting down; nothing was published")
            if step is None:
                step = self._reserved + 1
            elif step <= self._reserved:
                raise PublishError(409, f"step {step} is not greater than the last published or reserved step "
                                        f"{self._reserved}; use a larger step or omit it")
            elif step > self._reserved + STEP_WINDOW:
                raise PublishError(400, f"step {step} is too far ahead: a step may be at most {STEP_WINDOW} above "
                                        f"the last published or reserved step {self._reserved}, so at most "
                                        f"{self._reserved + STEP_WINDOW} now; nothing was published")
            if step > layout.MAX_STEP:
                raise PublishError(409, f"step {step} exceeds the largest step {layout.MAX_STEP}")
            self._reserved = step
            self._in_flight += 1
            return step

    def publish(self, step: int | None, nbytes: int, shards: int, request_id: str | None = None) -> Published:
        try:
            layers = tensors.plan(nbytes, shards) if self._library is not None else ()
        except tensors.PlanError as exc:
            raise PublishError(400, f"{exc}; nothing was published") from None
        step = self.reserve(step)
        try:
            if self._library is not None:
                return self._publish_library(self._library, step, layers, request_id)
            return self._publish(step, nbytes, shards, request_id)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._idle.notify_all()

    def _publish(self, step: int, nbytes: int, shards: int, request_id: str | None) -> Published:
        started = time.monotonic()
        skip = self.unsafe_skip
        final = self.ckdir / layout.final_name(step)
        in_place = "atomic-rename" in skip
        work = final if in_place else self.ckdir / layout.temp_name(step, secrets.token_hex(4))
        try:
            self._disk.mkdir(work)
            pending: list[_Open] = []
            try:
                files = self._write_shards(work, step, _split(nbytes, shards), pending)
                m = manifest.Manifest(step, self.ordinal, self.epoch, self.volume_id, time.time(), request_id, files)
                fd = self._disk.create(work / layout.MANIFEST_NAME)
                pending.append(_Open(fd, None))
                self._disk.write_all(fd, m.encode())
                self._sync(pending, work)
            finally:
                for o in pending:
                    self._disk.close(o.fd)
            if not in_place:
                self._disk.rename_noreplace(work, final)
        except OSError as exc:
            self._disk.remove_tree(work)
            status = 507 if exc.errno in _NO_SPACE else 500
            what = "no space left on the volume" if status == 507 else f"I/O error: {exc}"
            self._log.event("checkpoint.failed", step=step, status=status, error=str(exc), published=False)
            raise PublishError(status, f"step {step}: {what}; nothing was published") from exc
        try:
            if "parent-fsync" not in skip:
                self._disk.fsync_dir(self.ckdir)
        except OSError as exc:
            hidden = self._unpublish(final, step)
            if not hidden:  # still under its final name with complete contents: list it
                entry = recovery.Entry(step, final.name, True, "written", m.digest(), request_id, nbytes)
                with self._lock:
                    self._catalog[step] = entry
            self._log.event("checkpoint.indeterminate", step=step, error=str(exc), moved_out_of_sight=hidden)
            raise PublishError(
                INDETERMINATE_STATUS,
                f"step {step}: parent directory fsync failed after the rename ({exc}); durability unknown",
                published=None,
            ) from exc
        durable_at = time.time()
        digest = m.digest()
        entry = recovery.Entry(step, final.name, True, "written", digest, request_id, nbytes)
        with self._lock:
            self._catalog[step] = entry
        if self.keep_last:
            self._reap_wanted.set()
        self._log.event(
            "checkpoint.published", step=step, bytes=nbytes, shards=shards, digest=digest,
            request_id=request_id, seconds=round(time.monotonic() - started, 6),
        )
        return Published(self.ordinal, step, digest, nbytes, self.epoch, durable_at, request_id)

    def _publish_library(self, lib: formats.Library, step: int, layers: tuple[tensors.Layer, ...],
                         request_id: str | None) -> Published:
        """A library format (docs/formats.md): the library saves; the default variant into the
        final name with nothing around it, the hardened one into a temp dir that is then fsynced
        throughout, renamed and made durable like a raw checkpoint."""
        started = time.monotonic()
        fmt = self.checkpoint_format
        hardened = formats.is_hardened(fmt)
        final = self.ckdir / layout.final_name(step)
        work = self.ckdir / layout.temp_name(step, secrets.token_hex(4)) if hardened else final
        stamp = formats.Stamp(step, self.ordinal, self.epoch, self.volume_id, time.time(), request_id)
        nbytes = sum(layer.nbytes for layer in layers)
        try:
            m = lib.save(work, fmt, layers, stamp, self._disk)
            if hardened:
                formats.fsync_tree(work, self._disk)
                self._disk.rename_noreplace(work, final)
        except (OSError, formats.LibraryError) as exc:
            cause = exc if isinstance(exc, OSError) else exc.cause
            status = 507 if cause is not None and cause.errno in _NO_SPACE else 500
            what = "no space left on the volume" if status == 507 else f"{fmt} save failed: {exc}"
            if hardened:  # nothing is under the final name: definitely not published
                self._disk.remove_tree(work)
                self._log.event("checkpoint.failed", step=step, status=status, error=str(exc), published=False)
                raise PublishError(status, f"step {step}: {what}; nothing was published") from exc
            # the library wrote under the final name and stopped somewhere: whatever it left is
            # there (as a trainer's failed save leaves it), so the outcome is not ours to promise
            self._log.event("checkpoint.indeterminate", step=step, error=str(exc), left_under_final_name=True)
            raise PublishError(INDETERMINATE_STATUS, f"step {step}: {what}; the library may have left part of it "
                                                     "under the final name", published=None) from exc
        if hardened:
            try:
                self._disk.fsync_dir(self.ckdir)
            except OSError as exc:
                hidden = self._unpublish(final, step)
                self._log.event("checkpoint.indeterminate", step=step, error=str(exc), moved_out_of_sight=hidden)
                raise PublishError(
                    INDETERMINATE_STATUS,
                    f"step {step}: parent directory fsync failed after the rename ({exc}); durability unknown",
                    published=None,
                ) from exc
        durable_at = time.time()
        digest = m.digest()
        with self._lock:
            self._catalog[step] = recovery.Entry(step, final.name, True, "written", digest, request_id, nbytes)
        if self.keep_last:
            self._reap_wanted.set()
        self._log.event(
            "checkpoint.published", step=step, bytes=nbytes, shards=len(layers), digest=digest,
            request_id=request_id, format=fmt, seconds=round(time.monotonic() - started, 6),
        )
        return Published(self.ordinal, step, digest, nbytes, self.epoch, durable_at, request_id)

    def _write_shards(
        self, work: Path, step: int, sizes: list[int], pending: list[_Open]
    ) -> tuple[manifest.FileEntry, ...]:
        """Small checkpoints: written here, their fsyncs left in ``pending`` to run together
        with the manifest's and the temp dir's. Large ones: one pool task per shard, each
        fsyncing its own file as soon as it is written."""
        cancel = threading.Event()
        if len(sizes) <= INLINE_MAX_SHARDS and (not self._parallel or sum(sizes) < PARALLEL_MIN_BYTES):
            return tuple(
                self._write_shard(work, step, i, size, cancel, pending=pending) for i, size in enumerate(sizes)
            )
        futures = [
            self._pool.submit(self._write_shard, work, step, i, size, cancel, pending=None)
            for i, size in enumerate(sizes)
        ]
        first_error: BaseException | None = None
        for fut in concurrent.futures.as_completed(futures):
            exc = fut.exception()
            if exc is not None and not isinstance(exc, _Cancelled) and first_error is None:
                first_error = exc
                cancel.set()
        if first_error is not None:
            raise first_error
        return tuple(f.result() for f in futures)

    def _write_shard(
        self, work: Path, step: int, index: int, size: int, cancel: threading.Event, *, pending: list[_Open] | None
    ) -> manifest.FileEntry:
        """Write one shard; fsync it now (``pending`` None) or hand its open fd to ``pending``."""
        name = layout.shard_name(index)
        source = payload.ShardPayload(self.volume_id, self.epoch, step, index)
        hold_tail = "flush" in self.unsafe_skip
        h = blake3.blake3()
        tail: payload.Buffer | None = None
        fd = self._disk.create(work / name)
        handed_over = False
        try:
            offset = 0
            while offset < size:
                if cancel.is_set():
                    raise _Cancelled
                n = min(self._chunk, size - offset)
                data = source.chunk(offset, n)
                h.update(data)
                offset += n
                if hold_tail and offset >= size:
                    tail = data  # negative control: the "buffered" tail reaches the file after fsync
                else:
                    self._disk.write_all(fd, data)
            if pending is not None:
                pending.append(_Open(fd, tail))
                handed_over = True
            else:
                self._sync([_Open(fd, tail)], None)
        finally:
            if not handed_over:
                self._disk.close(fd)
        return manifest.FileEntry(name, size, h.hexdigest())

    def _sync(self, files: list[_Open], directory: Path | None) -> None:
        """fsync ``files`` and ``directory`` concurrently and wait for all (the kernel folds
        concurrent fsyncs into one journal commit); the first error wins and is never retried.
        Then write any negative-control tails, which therefore miss the fsync."""
        jobs: list[Callable[[], None]] = []
        if "file-fsync" not in self.unsafe_skip:
            jobs += [functools.partial(self._disk.fsync, f.fd) for f in files]
        if directory is not None and "tmpdir-fsync" not in self.unsafe_skip:
            jobs.append(functools.partial(self._disk.fsync_dir, directory))
        if jobs:
            futures = [self._sync_pool.submit(job) for job in jobs[1:]]
            errors: list[BaseException] = []
            try:
                jobs[0]()
            except OSError as exc:
                errors.append(exc)
            for fut in futures:
                failure = fut.exception()
                if failure is not None:
                    errors.append(failure)
            if errors:
                raise errors[0]
        for f in files:
            if f.tail is not None:
                self._disk.write_all(f.fd, f.tail)

    def _unpublish(self, final: Path, step: int) -> bool:
        """Move a not-durably-published checkpoint out of sight; True when that worked."""
        trash = self.ckdir / layout.temp_name(step, secrets.token_hex(4), "failed")
        try:
            self._disk.rename(final, trash)
        except OSError:
            return False
        self._disk.remove_tree(trash)
        return True

    # ---- retention -----------------------------------------------------------------------
    def _victims(self) -> list[recovery.Entry]:
        """Valid checkpoints older than the K-th newest *verified* one (see the module doc)."""
        with self._lock:
            verified = sorted((s for s, e in self._catalog.items() if e.valid and e.checked != "structure"),
                              reverse=True)
            if len(verified) < self.keep_last:
                return []
            keep_from = verified[self.keep_last - 1]
            older = [s for s, e in self._catalog.items() if e.valid and s < keep_from]
            return [self._catalog.pop(s) for s in sorted(older)]

    def _verify_newest(self) -> None:
        """Re-hash structure-checked checkpoints, newest first, until K verified valid ones
        are known (or none is left); stops early when the store closes."""
        verified = 0
        for entry in reversed(self.entries()):
            if verified >= self.keep_last or self._closing:
                return
            valid = entry.valid
            if valid and entry.checked == "structure":
                found = self.verify(entry.step)
                valid = found is not None and found.manifest is not None
            if valid:
                verified += 1

    def reap_now(self) -> int:
        """One retention pass (the reaper's body); returns how many checkpoints it removed."""
        if not self.keep_last:
            return 0
        self._verify_newest()
        victims = self._victims()
        if not victims:
            return 0
        trashed: list[Path] = []
        for v in victims:
            trash = self.ckdir / layout.temp_name(v.step, secrets.token_hex(4), "reap")
            try:
                self._disk.rename(self.ckdir / v.name, trash)
            except OSError as exc:
                self._log.event("retention.failed", step=v.step, error=str(exc))
                continue
            trashed.append(trash)
        if trashed:
            try:
                self._disk.fsync_dir(self.ckdir)
            except OSError as exc:
                self._log.event("retention.failed", error=f"parent fsync: {exc}")
            for t in trashed:
                self._disk.remove_tree(t)
            self._log.event("retention.removed", steps=[v.step for v in victims], keep_last=self.keep_last)
        return len(trashed)

    def _reap_loop(self) -> None:
        while True:
            self._reap_wanted.wait()
            self._reap_wanted.clear()
            try:
                self.reap_now()  # also once more when closing, so a clean shutdown leaves K checkpoints
            except Exception as exc:  # the reaper must outlive one bad pass; the next publish retries
                self._log.event("retention.failed", error=repr(exc))
            # a publish's signal always precedes close(); if it came after this pass's clear(),
            # the event is still set and one more pass runs before the reaper exits
            if self._closing and not self._reap_wanted.is_set():
                return

    # ---- shutdown ------------------------------------------------------------------------
    def close(self, drain_seconds: float = 20.0) -> bool:
        """Refuse new checkpoints, wait for in-flight ones; True when all finished in time."""
        deadline = time.monotonic() + drain_seconds
        with self._lock:
            self._closing = True
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
            drained = self._in_flight == 0
        self._reap_wanted.set()
        self._reaper.join(timeout=5)
        self._pool.shutdown(wait=drained)
        self._sync_pool.shutdown(wait=drained)
        return drained


def _split(nbytes: int, shards: int) -> list[int]:
    base, extra = divmod(nbytes, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]
