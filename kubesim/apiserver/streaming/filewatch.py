"""Wake up when a file changes: inotify through ctypes (Linux), or nothing (callers then poll).

logs.go waits on fsnotify with a 1 s forced re-check; this is the same: the descriptor becomes
readable on a write to the watched file, and callers still re-check on a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVE_SELF = 0x800
IN_DELETE_SELF = 0x400

_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - every Linux libc has it
    _libc = None


class FileWatch:
    """``fd`` is readable after the file changed (-1 when inotify is unavailable: poll instead)."""

    def __init__(self, path: Path) -> None:
        self.fd = -1
        if _libc is None:
            return
        fd = int(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            return
        if int(_libc.inotify_add_watch(fd, str(path).encode(), _MASK)) < 0:
            os.close(fd)
            return
        self.fd = fd

    def drain(self) -> None:
        """Consume the pending events (they only say "look again")."""
        if self.fd < 0:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            while os.read(self.fd, 65536):
                pass

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
