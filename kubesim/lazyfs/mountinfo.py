"""What is mounted where, read from ``/proc/self/mountinfo`` (never by touching the mount point:
``stat`` on a FUSE mount whose daemon died fails with ENOTCONN, or hangs on a live but stuck one)."""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("kubesim.lazyfs")
_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclasses.dataclass(frozen=True, slots=True)
class MountEntry:
    mountpoint: str
    fstype: str
    source: str
    #: the device minor number: for FUSE, the connection id under /sys/fs/fuse/connections
    minor: int


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def entries() -> list[MountEntry]:
    out: list[MountEntry] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index("-")
            except ValueError:
                continue
            _major, minor = fields[2].split(":")
            out.append(MountEntry(_unescape(fields[4]), fields[sep + 1], _unescape(fields[sep + 2]), int(minor)))
    return out


def lazyfs_at(mountpoint: Path) -> MountEntry | None:
    """The lazyfs mount at ``mountpoint`` (the topmost one), if any."""
    where = canonical(mountpoint)
    found = None
    for entry in entries():
        if entry.mountpoint == where and entry.fstype == "fuse.lazyfs":
            found = entry
    return found


def lazyfs_with_source(source: str) -> list[MountEntry]:
    return [e for e in entries() if e.fstype == "fuse.lazyfs" and e.source == source]


def canonical(mountpoint: Path) -> str:
    """The path the kernel shows, resolving the parent only (the mount point itself may be dead)."""
    absolute = Path(os.path.abspath(mountpoint))
    return os.path.join(os.path.realpath(absolute.parent), absolute.name)


def anything_at(mountpoint: Path) -> bool:
    where = canonical(mountpoint)
    return any(e.mountpoint == where for e in entries())


def umount_detach(mountpoint: Path) -> bool:
    """umount2(MNT_DETACH): gone from the namespace now, released when its last user lets go."""
    libc = ctypes.CDLL(None, use_errno=True)
    mnt_detach = 2
    if libc.umount2(os.fsencode(mountpoint), mnt_detach) == 0:
        return True
    log.warning("umount2(%s, MNT_DETACH): %s", mountpoint, os.strerror(ctypes.get_errno()))
    return False
