"""The filesystem calls the publish protocol is made of, behind one small seam.

:class:`Disk` is the real thing; tests subclass it to inject ENOSPC or EIO at a chosen call
(a real full filesystem is tested too, on a size-limited tmpfs). Everything here raises
``OSError`` unchanged: the store decides what an error means for the checkpoint.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path
from typing import Final

_AT_FDCWD: Final = -100
_RENAME_NOREPLACE: Final = 1


def _load_renameat2() -> ctypes._NamedFuncPointer | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


class Disk:
    """Thin wrappers over the syscalls; one method per protocol primitive."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path, 0o755)

    def create(self, path: Path) -> int:
        """A new file that must not exist yet (a leftover would be a bug, never overwritten)."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def write_all(self, fd: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_file(self, path: Path) -> None:
        """fsync a file by name; read-only is enough (Linux writes back its data and inode alike)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename_noreplace(self, src: Path, dst: Path) -> None:
        """rename(2) that fails with EEXIST instead of replacing ``dst`` (an empty directory
        would otherwise be silently replaced). Uses renameat2(RENAME_NOREPLACE) where the
        kernel and filesystem support it, else an existence check (the store's step
        reservation already makes a clash impossible from inside the writer)."""
        if _renameat2 is not None:
            rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
            if rc == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOSYS):
                raise OSError(err, os.strerror(err), str(src), None, str(dst))
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "final name already exists", str(dst))
        os.rename(src, dst)

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)

    def remove_tree(self, path: Path) -> None:
        """Best effort: a leftover is a temp dir boot recovery removes."""
        shutil.rmtree(path, ignore_errors=True)


def tree_bytes(path: Path) -> int:
    """Bytes of regular files under ``path`` (not following symlinks); 0 when it vanished."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_size
    return total
