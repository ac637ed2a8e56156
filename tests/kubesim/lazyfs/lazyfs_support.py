"""What the lazyfs tests share: a mount handle, the skip line, and the syscalls tests are made of."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import lazyfs
from kubesim.lazyfs import mountinfo


@dataclasses.dataclass
class Lazy:
    """One mount: ``mnt`` is where tests write, ``backing`` what a disk would hold after power loss."""

    backing: Path
    mnt: Path
    state: Path
    mount: lazyfs.Mount | None = None

    def p(self, rel: str) -> str:
        return str(self.mnt / rel)

    def b(self, rel: str) -> Path:
        return self.backing / rel

    def power_loss(self) -> dict[str, int]:
        assert self.mount is not None
        dropped = lazyfs.power_loss(self.mount)
        self.mount = None
        return dropped

    def status(self) -> dict[str, int]:
        assert self.mount is not None
        return lazyfs.status(self.mount)

    def remount(self) -> None:
        assert self.mount is None, "still mounted"
        self.mount = lazyfs.mount(self.backing, self.mnt, self.state)

    def tree(self) -> dict[str, bytes | None]:
        """The backing directory after power loss: relative path -> content (None: a directory)."""
        out: dict[str, bytes | None] = {}
        for root, dirs, files in os.walk(self.backing):
            for d in dirs:
                out[os.path.relpath(os.path.join(root, d), self.backing)] = None
            for f in files:
                full = os.path.join(root, f)
                out[os.path.relpath(full, self.backing)] = Path(full).read_bytes()
        return out


@contextlib.contextmanager
def lazy_at(root: Path) -> Iterator[Lazy]:
    """A mount under ``root`` (backing/, mnt/, state/); nothing stays mounted afterwards."""
    require_lazyfs()
    for d in ("backing", "mnt", "state"):
        (root / d).mkdir(parents=True)
    fs = Lazy(root / "backing", root / "mnt", root / "state")
    fs.remount()
    try:
        yield fs
    finally:
        lazyfs.cleanup(fs.state, live=True)
        assert not mountinfo.anything_at(fs.mnt), f"{fs.mnt} is still mounted after the test"


def require_lazyfs() -> None:
    reason = lazyfs.unavailable_reason()
    if reason is not None:
        pytest.skip(f"lazyfs cannot mount here: {reason}")


# ---- syscalls ------------------------------------------------------------------------------
def write_file(path: str, data: bytes, *, fsync: bool = True, flags: int = 0) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(src: str, dst: str, flags: int) -> None:
    """renameat2(2) as the writer calls it (harness/workload/fsutil.py), raising OSError."""
    if _libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), ctypes.c_uint(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), src)


class Writer:
    """The real checkpoint writer (``python -m harness.workload serve``) on a directory, in its
    own process group, with the environment tests/integration/conftest.py gives it. A thread
    reads its event lines as they come (an unread pipe would block the writer)."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POD_", "LISTEN_", "KEEP_", "WRITER_"))}
        env.update(POD_NAME="ckpt-0", POD_NAMESPACE="chaos-test", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.workload", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
             "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, start_new_session=True,
        )
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unparsed", "line": line}
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def await_event(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first ``name`` event; fails with the last events when the writer exits or the
        deadline passes first."""
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events if e.get("event") == name), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None or self._eof, timeout):
                raise AssertionError(f"writer logged no {name!r} within {timeout}s: {self.events[-5:]}")
            event = found()
        if event is None:
            raise AssertionError(f"writer exited (rc={self.proc.wait()}) before {name!r}: {self.events[-5:]}")
        return event

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
