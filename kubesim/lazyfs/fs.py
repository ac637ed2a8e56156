"""The FUSE operations: a pass-through over the backing directory that feeds :mod:`.state`, and
the power loss that turns the backing directory into its durable image.

Design (why write-through with undo, not LazyFS's page cache): every operation is applied to
the backing directory at once, so reads, sizes, ``stat`` and directory listings are simply the
backing file system's (no second page cache to keep coherent), memory does not grow with the
amount of un-fsynced data (checkpoints are gigabytes), and the data path costs one ``pwrite``.
What a power loss must restore is kept aside only when it is about to be destroyed, which the
checkpoint writer (it only ever creates new files) never does:

* overwriting or truncating bytes of a file's durable content first copies them into an undo
  file (``<backing>/.lazyfs-private/undo/<node>``, same offsets, sparse);
* removing the last live name of a file that still has a durable name (unlink, rename over it)
  first hard-links it into ``<backing>/.lazyfs-private/grave/<node>`` (O(1), no copy);
* directories need nothing on disk: their durable entries live in the model.

The private directory lives inside the backing directory so that hard links always work (same
file system) and so that one ``rmtree`` removes every trace; the mount hides it. On power loss
(:meth:`LazyOps.power_loss`) every surviving file is hard-linked into a staging directory (and
truncated / patched back to its durable content), everything else in the backing directory is
removed, and the durable tree is rebuilt from the staged inodes: O(entries), no data copied.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import mfusepy

from kubesim.lazyfs import state

log = logging.getLogger("kubesim.lazyfs")

#: reserved name in the backing root: graveyard, undo files, staging (hidden by the mount)
PRIVATE: Final = ".lazyfs-private"
RENAME_NOREPLACE: Final = 1
_AT_FDCWD: Final = -100
_STAT_KEYS: Final = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_rdev", "st_blocks",
                     "st_blksize")
#: open(2) flags handled by the file system itself, never passed to the backing open
_OWN_FLAGS: Final = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_APPEND


def _libc_renameat2() -> Callable[..., int]:
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _libc_renameat2()


def _err(code: int) -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(code)


class LazyOps(mfusepy.Operations):  # type: ignore[misc]
    """mfusepy operations; paths are mount-relative (``/a/b``)."""

    use_ns = True
    # operations on unlinked-but-open files (hard_remove) arrive with a NULL path
    flag_nullpath_ok = True
    flag_nopath = True

    def __init__(self, backing: Path, on_ready: Callable[[], None] | None = None) -> None:
        self.root = os.path.realpath(backing)
        self.private = os.path.join(self.root, PRIVATE)
        self.grave = os.path.join(self.private, "grave")
        self.undo = os.path.join(self.private, "undo")
        shutil.rmtree(self.private, ignore_errors=True)  # a dead daemon's leftovers
        os.makedirs(self.grave)
        os.makedirs(self.undo)
        self.model = _scan(self.root)
        self.ns = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self.files: dict[int, state.Node] = {}
        self.dirs: dict[int, state.Node] = {}
        self.down = False
        self.lost_power = False
        self._on_ready = on_ready

    # ---- helpers -----------------------------------------------------------------------
    def _b(self, path: str) -> str:
        return self.root + path if path != "/" else self.root

    def _up(self) -> None:
        """After a power loss the disk is gone: every operation fails (R12)."""
        if self.down:
            raise _err(errno.EIO)

    @staticmethod
    def _hidden(path: str | None) -> bool:
        return path is not None and (path == "/" + PRIVATE or path.startswith("/" + PRIVATE + "/"))

    def _lock(self, node: state.Node) -> threading.Lock:
        return self._locks.setdefault(node.id, threading.Lock())

    def _resolve(self, path: str | None) -> state.Node:
        node = None if path is None or self._hidden(path) else self.model.resolve(path)
        if node is None:
            raise _err(errno.ENOENT)
        return node

    def _parent(self, path: str) -> tuple[state.Node, str]:
        if self._hidden(path):
            raise _err(errno.EACCES)
        try:
            return self.model.parent(path)
        except FileNotFoundError:
            raise _err(errno.ENOENT) from None
        except NotADirectoryError:
            raise _err(errno.ENOTDIR) from None
        except PermissionError:
            raise _err(errno.EBUSY) from None

    @staticmethod
    def _caller() -> tuple[int, int]:
        uid, gid, _pid = mfusepy.fuse_get_context()
        return int(uid), int(gid)

    def _undo_path(self, node: state.Node) -> str:
        return os.path.join(self.undo, str(node.id))

    def _grave_path(self, node: state.Node) -> str:
        return os.path.join(self.grave, str(node.id))

    def _before_change(self, node: state.Node, fd: int, start: int, end: int) -> None:
        """About to change bytes ``[start, end)`` (or the size) of ``fd``: mark the file dirty
        and copy aside the durable bytes in that range not saved yet. Caller holds the node lock."""
        dirt = node.dirt if node.dirt is not None else self.model.make_dirty(node, os.fstat(fd).st_size)
        ranges = dirt.to_save(start, end)
        if not ranges:
            return
        ufd = os.open(self._undo_path(node), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            for a, b in ranges:
                data = os.pread(fd, b - a, a)
                # bytes past the live end were saved when the file shrank (a truncate is a change too)
                _pwrite_all(ufd, data, a)
                dirt.saved.add(a, a + len(data))
        finally:
            os.close(ufd)

    def _forget(self, released: list[state.Node]) -> None:
        """Nodes no name (live or durable) references: their graveyard copy and undo go."""
        for node in released:
            if node.buried:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._grave_path(node))
                node.buried = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._undo_path(node))

    # ---- lifecycle ---------------------------------------------------------------------
    def init(self, path: str) -> None:
        if self._on_ready is not None:
            self._on_ready()

    def destroy(self, path: str) -> None:
        """Unmounted: nothing needs keeping aside any more (a clean unmount keeps the live
        state, as a clean shutdown flushes the page cache: R13)."""

    def finish(self) -> None:
        shutil.rmtree(self.private, ignore_errors=True)

    # ---- attributes and reads ----------------------------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        self._up()
        if fh is not None and (fh in self.files or fh in self.dirs):
            st = os.fstat(fh)
        else:
            if path is None or self._hidden(path):
                raise _err(errno.ENOENT)
            st = os.lstat(self._b(path))
        attrs: dict[str, Any] = {k: getattr(st, k) for k in _STAT_KEYS}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return attrs

    def readlink(self, path: str) -> str:
        self._up()
        return os.readlink(self._b(path))

    def statfs(self, path: str) -> dict[str, int]:
        self._up()
        sv = os.statvfs(self.root)
        return {k: getattr(sv, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                                            "f_ffree", "f_favail", "f_flag", "f_namemax")}

    def opendir(self, path: str) -> int:
        """The handle is a descriptor of the backing directory: listings and fsyncs of it need
        no path (libfuse passes none to handle operations, nullpath_ok)."""
        self._up()
        with self.ns:
            node = self._resolve(path)
            if node.kind != "dir":
                raise _err(errno.ENOTDIR)
            fd = os.open(self._b(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.dirs[fd] = node
        return fd

    def releasedir(self, path: str | None, fh: int) -> int:
        if self.dirs.pop(fh, None) is not None:
            os.close(fh)
        return 0

    def readdir(self, path: str | None, fh: int) -> list[str]:
        self._up()
        node = self.dirs.get(fh)
        if node is None:
            raise _err(errno.EBADF)
        names = os.listdir(fh)
        if node is self.model.root:
            names = [n for n in names if n != PRIVATE]
        return [".", "..", *names]

    def open(self, path: str, flags: int) -> int:
        self._up()
        with self.ns:
            node = self._resolve(path)
            fd = os.open(self._b(path), _backing_flags(flags))
            self.files[fd] = node
        if flags & os.O_TRUNC:
            self._truncate(node, fd, 0)
        return fd

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        self._up()
        return os.pread(fh, size, offset)

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def release(self, path: str | None, fh: int) -> int:
        self.files.pop(fh, None)
        os.close(fh)
        return 0

    # ---- data (R1, R2) -----------------------------------------------------------------
    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        node = self.files[fh]
        with self._lock(node):
            self._up()
            self._before_change(node, fh, offset, offset + len(data))
            _pwrite_all(fh, data, offset)
        return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self._up()
        if fh is not None and fh in self.files:
            self._truncate(self.files[fh], fh, length)
            return 0
        with self.ns:
            node = self._resolve(path)
        fd = os.open(self._b(path or "/"), os.O_RDWR | os.O_CLOEXEC)
        try:
            self._truncate(node, fd, length)
        finally:
            os.close(fd)
        return 0

    def _truncate(self, node: state.Node, fd: int, length: int) -> None:
        with self._lock(node):
            self._up()
            size = os.fstat(fd).st_size
            self._before_change(node, fd, min(size, length), max(size, length))
            os.ftruncate(fd, length)

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        """fsync and fdatasync alike make the file's content and size durable (R1), never its
        names (R3). The backing file is not fsynced: the host does not lose power, only the
        modelled disk does."""
        node = self.files.get(fh)
        if node is None:
            raise _err(errno.EBADF)
        with self._lock(node):
            self._up()
            self.model.sync_file(node)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._undo_path(node))
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        """The directory's entries as they are now become durable (R4, R6)."""
        with self.ns:
            self._up()
            node = self.dirs.get(fh) or self._resolve(path)
            self._forget(self.model.sync_dir(node))
        return 0

    # ---- namespace (R3-R9) -------------------------------------------------------------
    def create(self, path: str, mode: int, flags: int) -> int:
        with self.ns:
            self._up()
            parent, name = self._parent(path)
            existing = parent.live.get(name)
            fd = os.open(self._b(path), _backing_flags(flags) | (flags & os.O_EXCL) | os.O_CREAT, mode)
            if existing is None:
                uid, gid = self._caller()
                with contextlib.suppress(OSError):
                    os.fchown(fd, uid, gid)
                node = self.model.new_node("file", mode, uid, gid)
                self.model.add_entry(parent, name, node)
            else:
                node = existing
            self.files[fd] = node
        if existing is not None and flags & os.O_TRUNC:
            self._truncate(node, fd, 0)
        return fd

    def mknod(self, path: str, mode: int, dev: int) -> int:
        with self.ns:
            self._up()
            parent, name = self._parent(path)
            os.mknod(self._b(path), mode, dev)
            uid, gid = self._caller()
            with contextlib.suppress(OSError):
                os.lchown(self._b(path), uid, gid)
            if stat.S_ISREG(mode):
                node = self.model.new_node("file", stat.S_IMODE(mode), uid, gid)
            else:
                node = self.model.new_node("special", mode, uid, gid, rdev=dev)
            self.model.add_entry(parent, name, node)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        with self.ns:
            self._up()
            parent, name = self._parent(path)
            os.mkdir(self._b(path), mode)
            uid, gid = self._caller()
            with contextlib.suppress(OSError):
                os.lchown(self._b(path), uid, gid)
            self.model.add_entry(parent, name, self.model.new_node("dir", stat.S_IMODE(mode), uid, gid))
        return 0

    def symlink(self, path: str, target: str) -> int:
        with self.ns:
            self._up()
            parent, name = self._parent(path)
            os.symlink(target, self._b(path))
            uid, gid = self._caller()
            with contextlib.suppress(OSError):
                os.lchown(self._b(path), uid, gid)
            self.model.add_entry(parent, name, self.model.new_node("symlink", 0o777, uid, gid, target=target))
        return 0

    def link(self, path: str, existing: str) -> int:
        with self.ns:
            self._up()
            node = self._resolve(existing)
            parent, name = self._parent(path)
            os.link(self._b(existing), self._b(path))
            self.model.add_entry(parent, name, node)
        return 0

    def unlink(self, path: str) -> int:
        with self.ns:
            self._up()
            parent, name = self._parent(path)
            node = parent.live.get(name)
            if node is None:
                raise _err(errno.ENOENT)
            buried = self._bury_if_needed(node, path)
            try:
                os.unlink(self._b(path))
            except OSError:
                self._unbury(node, buried)
                raise
            _node, released = self.model.remove_entry(parent, name)
            self._forget(released)
        return 0

    def rmdir(self, path: str) -> int:
        with self.ns:
            self._up()
            parent, name = self._parent(path)
            if name not in parent.live:
                raise _err(errno.ENOENT)
            os.rmdir(self._b(path))
            _node, released = self.model.remove_entry(parent, name)
            self._forget(released)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        """rename(2)/renameat2(2). RENAME_NOREPLACE is enforced atomically (the namespace lock
        is held and the backing rename itself is NOREPLACE); other flags are refused (R7)."""
        if flags & ~RENAME_NOREPLACE:
            raise _err(errno.EINVAL)
        with self.ns:
            self._up()
            src, sname = self._parent(old)
            dst, dname = self._parent(new)
            node = src.live.get(sname)
            if node is None:
                raise _err(errno.ENOENT)
            replaced = dst.live.get(dname)
            if flags & RENAME_NOREPLACE and replaced is not None:
                raise _err(errno.EEXIST)
            buried = replaced is not None and replaced is not node and self._bury_if_needed(replaced, new)
            try:
                if flags & RENAME_NOREPLACE:
                    if _renameat2(_AT_FDCWD, os.fsencode(self._b(old)), _AT_FDCWD, os.fsencode(self._b(new)),
                                  RENAME_NOREPLACE) != 0:
                        raise _err(ctypes.get_errno())
                else:
                    os.rename(self._b(old), self._b(new))
            except OSError:
                if replaced is not None:
                    self._unbury(replaced, buried)
                raise
            self._forget(self.model.rename(src, sname, dst, dname))
        return 0

    def _bury_if_needed(self, node: state.Node, path: str) -> bool:
        """Keep a file's content for its durable name before its last live name (``path``) goes."""
        if not self.model.needs_burial(node):
            return False
        os.link(self._b(path), self._grave_path(node), follow_symlinks=False)
        node.buried = True
        return True

    def _unbury(self, node: state.Node, buried: bool) -> None:
        if buried:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._grave_path(node))
            node.buried = False

    # ---- attributes passed through (R10: never undone) ---------------------------------
    def _node_and_target(self, path: str | None, fh: int | None) -> tuple[state.Node, int | str]:
        """The node and what to pass to os.* (an open descriptor when there is one: an unlinked
        open file has no path)."""
        if fh is not None and fh in self.files:
            return self.files[fh], fh
        if fh is not None and fh in self.dirs:
            return self.dirs[fh], fh
        return self._resolve(path), self._b(path or "/")

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> int:
        self._up()
        with self.ns:
            node, target = self._node_and_target(path, fh)
            if isinstance(target, int):
                os.fchmod(target, stat.S_IMODE(mode))
            else:
                os.chmod(target, stat.S_IMODE(mode), follow_symlinks=False)
            node.mode = stat.S_IMODE(mode)
        return 0

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> int:
        self._up()
        with self.ns:
            node, target = self._node_and_target(path, fh)
            if isinstance(target, int):
                os.fchown(target, uid, gid)
            else:
                os.lchown(target, uid, gid)
            node.uid = uid if uid != -1 else node.uid
            node.gid = gid if gid != -1 else node.gid
        return 0

    def utimens(self, path: str | None, times: tuple[int | None, int | None] | None = None,
                fh: int | None = None) -> int:
        self._up()
        _node, target = self._node_and_target(path, fh)
        if times is None:
            now = time.time_ns()
            ns = (now, now)
        else:  # UTIME_OMIT (None): keep that one as it is
            st = os.stat(target, follow_symlinks=False) if isinstance(target, str) else os.fstat(target)
            ns = (st.st_atime_ns if times[0] is None else times[0], st.st_mtime_ns if times[1] is None else times[1])
        if isinstance(target, int):
            os.utime(target, ns=ns)
        else:
            os.utime(target, ns=ns, follow_symlinks=False)
        return 0

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self._up()
        os.setxattr(self._b(path), name, value, options, follow_symlinks=False)
        return 0

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        self._up()
        try:
            return os.getxattr(self._b(path), name, follow_symlinks=False)
        except OSError as exc:
            raise _err(exc.errno or errno.EIO) from None

    def listxattr(self, path: str) -> list[str]:
        self._up()
        return os.listxattr(self._b(path), follow_symlinks=False)

    def removexattr(self, path: str, name: str) -> int:
        self._up()
        os.removexattr(self._b(path), name, follow_symlinks=False)
        return 0

    # ---- control -----------------------------------------------------------------------
    def status(self) -> dict[str, int]:
        with self.ns:
            return self.model.undurable().as_dict()

    def sync_all(self) -> dict[str, int]:
        """Everything becomes durable (``sync``; LazyFS's ``cache-checkpoint``)."""
        with self.ns:
            self._up()
            before = self.model.undurable().as_dict()
            stack = [self.model.root]
            seen: set[int] = set()
            released: list[state.Node] = []
            while stack:
                d = stack.pop()
                if d.id in seen:
                    continue
                seen.add(d.id)
                released += self.model.sync_dir(d)
                for child in d.live.values():
                    if child.kind == "dir":
                        stack.append(child)
                    elif child.dirt is not None:
                        with self._lock(child):
                            self.model.sync_file(child)
            self._forget(released)
            shutil.rmtree(self.undo, ignore_errors=True)
            os.makedirs(self.undo, exist_ok=True)
            return before

    def power_loss(self) -> dict[str, int]:
        """Drop everything not durable: the backing directory becomes the durable image.

        Operations still in flight finish first (their node locks are taken), later ones fail
        with EIO. Returns what was undurable just before.
        """
        self.down = True
        with self.ns, _all_held(list(self._locks.values())):
            lost = self.model.undurable().as_dict()
            _rebuild(self.root, self.private, self.model)
            self.lost_power = True
        return lost


@contextlib.contextmanager
def _all_held(locks: list[threading.Lock]) -> Iterator[None]:
    for lock in locks:
        lock.acquire()
    try:
        yield
    finally:
        for lock in locks:
            lock.release()


def _backing_flags(flags: int) -> int:
    """The flags the backing file is opened with: never O_CREAT/O_EXCL/O_TRUNC/O_APPEND (the
    file system does those itself: a truncate must save durable bytes first, an append's offset
    comes from the kernel and Linux pwrite ignores offsets on O_APPEND descriptors), and readable
    when writable (durable bytes are read back before they are overwritten)."""
    flags &= ~_OWN_FLAGS
    if flags & os.O_ACCMODE == os.O_WRONLY:
        flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
    return flags | os.O_CLOEXEC


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _scan(root: str) -> state.Model:
    """The model of what the backing directory holds at mount: all of it durable (a mount is a
    boot; whatever survived the last power loss is on disk)."""
    st = os.lstat(root)
    model = state.Model(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    by_inode: dict[int, state.Node] = {}
    stack: list[tuple[str, state.Node]] = [(root, model.root)]
    while stack:
        path, directory = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                if path == root and entry.name == PRIVATE:
                    continue
                est = entry.stat(follow_symlinks=False)
                node = by_inode.get(est.st_ino) if est.st_nlink > 1 and not stat.S_ISDIR(est.st_mode) else None
                if node is None:
                    node = _node_for(model, entry.path, est)
                    by_inode[est.st_ino] = node
                model.adopt(directory, entry.name, node)
                if node.kind == "dir":
                    stack.append((entry.path, node))
    return model


def _node_for(model: state.Model, path: str, st: os.stat_result) -> state.Node:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return model.new_node("dir", stat.S_IMODE(mode), st.st_uid, st.st_gid)
    if stat.S_ISREG(mode):
        return model.new_node("file", stat.S_IMODE(mode), st.st_uid, st.st_gid, durable_content=True)
    if stat.S_ISLNK(mode):
        return model.new_node("symlink", 0o777, st.st_uid, st.st_gid, target=os.readlink(path))
    return model.new_node("special", mode, st.st_uid, st.st_gid, rdev=st.st_rdev)


def _rebuild(root: str, private: str, model: state.Model) -> None:
    """Make ``root`` hold exactly the durable image (see the module docstring for the steps)."""
    image = model.durable_image()
    live = model.live_paths()
    staging = os.path.join(private, "stage")
    os.makedirs(staging, exist_ok=True)
    staged: dict[int, str] = {}
    for _path, node in image:
        if node.kind != "file" or node.id in staged:
            continue
        where = os.path.join(private, "grave", str(node.id)) if node.buried else \
            os.path.join(root, *live[node.id])
        target = os.path.join(staging, str(node.id))
        os.link(where, target, follow_symlinks=False)
        if node.dirt is not None:
            _restore(target, node.dirt, os.path.join(private, "undo", str(node.id)))
        staged[node.id] = target
    for name in os.listdir(root):
        if name == PRIVATE:
            continue
        full = os.path.join(root, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)
    for path, node in image:
        full = os.path.join(root, *path)
        if node.kind == "dir":
            os.mkdir(full, node.mode)
            os.chmod(full, node.mode)
            os.lchown(full, node.uid, node.gid)
        elif node.kind == "file":
            os.link(staged[node.id], full)
        elif node.kind == "symlink":
            os.symlink(node.target or "", full)
            os.lchown(full, node.uid, node.gid)
        else:
            os.mknod(full, node.mode, node.rdev)
            os.lchown(full, node.uid, node.gid)
    os.chmod(root, model.root.mode)
    shutil.rmtree(private)


def _restore(path: str, dirt: state.FileDirt, undo: str) -> None:
    """Give a file back its durable content: its durable size, then the saved ranges."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, dirt.durable_size)
        if len(dirt.saved):
            ufd = os.open(undo, os.O_RDONLY | os.O_CLOEXEC)
            try:
                for a, b in dirt.saved:
                    end = min(b, dirt.durable_size)
                    if a < end:
                        _pwrite_all(fd, os.pread(ufd, end - a, a), a)
            finally:
                os.close(ufd)
    finally:
        os.close(fd)


class LazyFuse(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy's FUSE with the two arguments it drops passed on: rename's flags (so
    RENAME_NOREPLACE can be honoured, R7) and truncate's file handle (ftruncate of an
    unlinked open file has no path)."""

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return self.operations.rename(  # type: ignore[no-any-return]
            old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags
        )

    def _path(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        return self.operations.truncate(self._path(path), length, _fh(fip))  # type: ignore[no-any-return]

    def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
        return self.operations.chmod(self._path(path), mode, _fh(fip))  # type: ignore[no-any-return]

    def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
        # -1 ("leave as is") arrives as an unsigned all-ones value
        uid = -1 if uid == 0xFFFFFFFF else uid
        gid = -1 if gid == 0xFFFFFFFF else gid
        return self.operations.chown(self._path(path), uid, gid, _fh(fip))  # type: ignore[no-any-return]

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        times = None
        if buf:
            pair = buf.contents
            times = (_timespec_ns(pair.actime), _timespec_ns(pair.modtime))
        return self.operations.utimens(self._path(path), times, _fh(fip))  # type: ignore[no-any-return]


_UTIME_NOW: Final = (1 << 30) - 1
_UTIME_OMIT: Final = (1 << 30) - 2


def _timespec_ns(ts: Any) -> int | None:
    """Nanoseconds, or None for UTIME_OMIT (keep), the current time for UTIME_NOW."""
    if ts.tv_nsec == _UTIME_OMIT:
        return None
    if ts.tv_nsec == _UTIME_NOW:
        return time.time_ns()
    return int(ts.tv_sec) * 10**9 + int(ts.tv_nsec)


def _fh(fip: Any) -> int | None:
    return int(fip.contents.fh) if fip else None
