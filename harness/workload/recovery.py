"""Boot recovery: make the volume's checkpoint directory trustworthy before serving.

Leftover temp dirs (writes and retention trash interrupted by a crash) are removed — nothing
under a temp name was ever acknowledged. Final names are validated newest first: fully
(every byte re-hashed) until the first valid one, which is the latest valid step the pod
reports; older ones get a structural check (manifest digest, file set, sizes) so boot time
does not grow with history. Those are not trusted beyond that: reads re-hash what they
serve, and retention re-hashes them in the background before it counts or deletes any. A
torn checkpoint under a final name is never deleted or skipped silently: it stays on disk as
evidence, is logged, and is listed as invalid.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Literal

from harness.workload import events, fsutil, layout, validate

Depth = Literal["full", "structure", "written"]


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One checkpoint under a final name, as the writer knows it."""

    step: int
    name: str
    valid: bool
    #: how validity was established: re-hashed ("full": at boot, or by a read since), only
    #: structure-checked at boot (unverified: retention does not count it toward keep-last), or
    #: written by this epoch
    checked: Depth
    digest: str | None = None
    request_id: str | None = None
    bytes: int | None = None
    problem: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RecoveryReport:
    entries: tuple[Entry, ...]
    removed_temp_dirs: int
    removed_temp_bytes: int
    seconds: float

    @property
    def latest_valid_step(self) -> int | None:
        return max((e.step for e in self.entries if e.valid), default=None)

    @property
    def highest_step(self) -> int:
        """Steps up to here have a final name (valid or not) and can never be published again."""
        return max((e.step for e in self.entries), default=0)


def recover(ckdir: Path, ordinal: int, disk: fsutil.Disk, log: events.EventLog) -> RecoveryReport:
    started = time.monotonic()
    removed_dirs = removed_bytes = 0
    finals: list[tuple[int, str]] = []
    for name in os.listdir(ckdir):
        if layout.is_temp_name(name):
            removed_bytes += fsutil.tree_bytes(ckdir / name)
            disk.remove_tree(ckdir / name)
            removed_dirs += 1
        elif (step := layout.parse_final_name(name)) is not None:
            finals.append((step, name))
        else:
            log.event("recovery.foreign-entry", name=name, note="not a checkpoint or temp dir; left alone")
    if removed_dirs:
        disk.fsync_dir(ckdir)
        log.event("recovery.temp-removed", dirs=removed_dirs, bytes=removed_bytes)
    entries: list[Entry] = []
    found_valid = False
    for step, name in sorted(finals, reverse=True):
        depth: validate.Depth = "structure" if found_valid else "full"
        check = validate.check_checkpoint(ckdir / name, step, ordinal, depth)
        m = check.manifest
        entries.append(
            Entry(
                step=step,
                name=name,
                valid=check.valid,
                checked=depth,
                digest=m.digest() if m else None,
                request_id=m.request_id if m else None,
                bytes=m.total_bytes if m else None,
                problem=check.problem,
            )
        )
        if check.valid:
            found_valid = True
        else:
            log.event("recovery.torn", step=step, name=name, problem=check.problem, kept=True)
    entries.sort(key=lambda e: e.step)
    return RecoveryReport(tuple(entries), removed_dirs, removed_bytes, time.monotonic() - started)
