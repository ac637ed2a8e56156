"""The identity stamp: which StatefulSet ordinal a volume belongs to.

Written once, on an empty volume, before anything else; checked at every later boot so a
swapped or foreign volume makes the pod loudly unready instead of silently serving (and
overwriting) someone else's checkpoints. The check happens before boot recovery touches the
volume, so a wrong volume is never modified.

A matching stamp is made durable again at every boot (its file and the data dir fsynced):
the boot that wrote it may have crashed, or had its directory fsync fail, between the rename
and that fsync. The stamp is then visible (the page cache survives a process crash) but not
durable, and nothing would ever fsync it again; a power loss later would take the stamp and
leave its checkpoints — a volume no writer adopts any more.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from pathlib import Path
from typing import Literal

from harness import facts
from harness.workload import config, fsutil, layout

Outcome = Literal["stamped", "matched", "mismatch"]


class StampError(ValueError):
    """The stamp file exists but cannot be read as a stamp."""


@dataclasses.dataclass(frozen=True, slots=True)
class IdentityResult:
    outcome: Outcome
    stamp: facts.IdentityStamp | None
    expected: config.PodIdentity
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "mismatch"


def read_stamp(data_dir: Path) -> facts.IdentityStamp | None:
    """None when there is no stamp; StampError when there is one we cannot parse."""
    try:
        raw = (data_dir / layout.STAMP_NAME).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StampError(f"identity stamp unreadable: {exc.strerror}") from exc
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise TypeError("not an object")
        stamp = facts.IdentityStamp(
            statefulset=doc["statefulset"],
            namespace=doc["namespace"],
            ordinal=doc["ordinal"],
            claim=doc["claim"],
            volume_id=doc["volume_id"],
        )
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # ValueError: also int()'s digit limit
        raise StampError(f"identity stamp is malformed ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(stamp.ordinal, int) or not all(
        isinstance(v, str) for v in (stamp.statefulset, stamp.namespace, stamp.claim, stamp.volume_id)
    ):
        raise StampError("identity stamp has fields of the wrong type")
    return stamp


def establish(data_dir: Path, expected: config.PodIdentity, disk: fsutil.Disk) -> IdentityResult:
    """Stamp an empty volume, or compare an existing stamp with who we are."""
    for name in os.listdir(data_dir):
        if name.startswith(layout.STAMP_TEMP_PREFIX):  # a stamp write interrupted before its rename
            os.unlink(data_dir / name)
    try:
        stamp = read_stamp(data_dir)
    except StampError as exc:
        return IdentityResult("mismatch", None, expected, str(exc))
    if stamp is not None:
        diffs = _differences(stamp, expected)
        if diffs:
            return IdentityResult("mismatch", stamp, expected, "volume stamp names another owner: " + "; ".join(diffs))
        # ours: finish what an interrupted write_stamp may have left undone (see the module doc)
        disk.fsync_file(data_dir / layout.STAMP_NAME)
        disk.fsync_dir(data_dir)
        return IdentityResult("matched", stamp, expected)
    foreign = _foreign_entries(data_dir)
    if foreign:
        return IdentityResult(
            "mismatch", None, expected,
            f"volume has no identity stamp but is not empty (holds {', '.join(foreign[:3])}); refusing to adopt it",
        )
    stamp = facts.IdentityStamp(
        statefulset=expected.statefulset,
        namespace=expected.namespace,
        ordinal=expected.ordinal,
        claim=expected.claim,
        volume_id=secrets.token_hex(16),
    )
    write_stamp(data_dir, stamp, disk)
    return IdentityResult("stamped", stamp, expected)


def write_stamp(data_dir: Path, stamp: facts.IdentityStamp, disk: fsutil.Disk) -> None:
    """tmp + fsync + rename + dir fsync: after a crash the stamp is either whole or absent."""
    body = {**dataclasses.asdict(stamp), "format": 1, "created_at": time.time()}
    tmp = data_dir / f"{layout.STAMP_TEMP_PREFIX}{secrets.token_hex(4)}"
    fd = disk.create(tmp)
    try:
        disk.write_all(fd, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
        disk.fsync(fd)
    finally:
        disk.close(fd)
    disk.rename(tmp, data_dir / layout.STAMP_NAME)
    disk.fsync_dir(data_dir)


def _differences(stamp: facts.IdentityStamp, expected: config.PodIdentity) -> list[str]:
    pairs = (
        ("ordinal", stamp.ordinal, expected.ordinal),
        ("statefulset", stamp.statefulset, expected.statefulset),
        ("namespace", stamp.namespace, expected.namespace),
        ("claim", stamp.claim, expected.claim),
    )
    return [f"{name} {have!r} (this pod: {want!r})" for name, have, want in pairs if have != want]


def _foreign_entries(data_dir: Path) -> list[str]:
    found: list[str] = []
    for name in sorted(os.listdir(data_dir)):
        if name in layout.FRESH_VOLUME_ENTRIES:
            continue
        if name == layout.CHECKPOINTS_DIR and (data_dir / name).is_dir() and not os.listdir(data_dir / name):
            continue
        found.append(name)
    return found
