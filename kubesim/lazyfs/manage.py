"""Mount, power loss, unmount and cleanup, as a library (the tests and kubesim) and behind the CLI.

Every mount is a daemon process recorded under ``<state_dir>/lazyfs/<slug>.json`` (with its
control socket ``.sock`` and log ``.log``). Nothing is ever left mounted half-way:

* :func:`mount` waits for the daemon to say it is mounted (a pipe it writes to from FUSE's
  ``init``), and on any failure or timeout kills the daemon it just started (by pid) and
  detaches whatever it mounted;
* the daemon unmounts itself on SIGTERM/SIGINT and when its owner process (by default the
  caller of :func:`mount`) dies, however it dies;
* :func:`cleanup` (called by every :func:`mount`, and meant for ``kubesim up/down``) detaches
  the mounts of daemons that died (SIGKILL), and with ``live=True`` unmounts the live ones too.

Processes are only ever signalled by pid, and only when ``/proc/<pid>/cmdline`` still carries the
mount's unique file system name (a recycled pid is never hit).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import dataclasses
import hashlib
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from kubesim.lazyfs import control, mountinfo

STATE_SUBDIR: Final = "lazyfs"
PRIVATE: Final = ".lazyfs-private"  # same as fs.PRIVATE (fs imports mfusepy; this module must not)
_children: dict[int, subprocess.Popen[bytes]] = {}


class LazyFSError(RuntimeError):
    """A mount, power loss or unmount did not happen; the message says what to do."""


class LazyFSUnavailable(LazyFSError):
    """This machine cannot mount a lazy file system; the message is one line naming what is missing."""


def unavailable_reason() -> str | None:
    """None when mounting can work here, else one line naming what is missing."""
    if not sys.platform.startswith("linux"):
        return "lazyfs needs Linux (FUSE)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse: this kernel or container offers no FUSE"
    if os.geteuid() != 0:
        return "lazyfs needs root (allow_other, umount2 and /sys/fs/fuse/connections)"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse 3 is missing: apt-get install fuse3 libfuse3-3 (make test/run do this when root)"
    if importlib.util.find_spec("mfusepy") is None:
        return "the Python package mfusepy is missing: pip install -e . (it is a dependency)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return f"/dev/fuse cannot be opened: {exc.strerror}"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Mount:
    backing: Path
    mountpoint: Path
    state_dir: Path
    pid: int
    fsname: str

    @property
    def slug(self) -> str:
        return self.fsname.rsplit("-", 1)[-1]

    @property
    def record(self) -> Path:
        return self.state_dir / STATE_SUBDIR / f"{self.slug}.json"

    @property
    def socket(self) -> Path:
        return self.state_dir / STATE_SUBDIR / f"{self.slug}.sock"

    @property
    def log(self) -> Path:
        return self.state_dir / STATE_SUBDIR / f"{self.slug}.log"

    def to_json(self) -> str:
        return json.dumps({"backing": str(self.backing), "mountpoint": str(self.mountpoint),
                           "state_dir": str(self.state_dir), "pid": self.pid, "fsname": self.fsname})

    @classmethod
    def from_record(cls, path: Path) -> Mount:
        doc = json.loads(path.read_text())
        return cls(Path(doc["backing"]), Path(doc["mountpoint"]), Path(doc["state_dir"]), int(doc["pid"]),
                   str(doc["fsname"]))


def _hash(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _state_prefix(state_dir: Path) -> str:
    return f"lazyfs-{_hash(str(state_dir.resolve()), 8)}-"


def _fsname(state_dir: Path, mountpoint: Path) -> str:
    return _state_prefix(state_dir) + _hash(mountinfo.canonical(mountpoint), 16)


# ---- mount -------------------------------------------------------------------------------
def mount(backing: Path, mountpoint: Path, state_dir: Path, *, owner_pid: int | None = None,
          timeout: float = 15.0) -> Mount:
    """Mount a lazy file system over ``backing`` at ``mountpoint``; returns once it serves.

    ``owner_pid`` (default: this process) is watched by the daemon, which unmounts when it
    dies; pass ``0`` for a mount that outlives its caller (the CLI), ended by :func:`unmount`
    or :func:`cleanup`.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise LazyFSUnavailable(reason)
    cleanup(state_dir, live=False)
    backing = backing.resolve()
    mountpoint = Path(mountinfo.canonical(mountpoint))
    if not backing.is_dir():
        raise LazyFSError(f"backing directory {backing} does not exist or is not a directory")
    if not mountpoint.is_dir():
        raise LazyFSError(f"mount point {mountpoint} does not exist or is not a directory: create it first")
    if backing == mountpoint or backing in mountpoint.parents or mountpoint in backing.parents:
        raise LazyFSError(f"mount point {mountpoint} and backing directory {backing} must not contain each other")
    fsname = _fsname(state_dir, mountpoint)
    for old in find(state_dir):
        # One daemon per mount point: a previous one still ending (its owner died, it is detaching) would
        # otherwise share the record, the socket and the backing directory's undo data with the new one.
        if old.fsname == fsname and _daemon_alive(old):
            _stop(old, timeout, force=True)
    if mountinfo.anything_at(mountpoint):
        raise LazyFSError(f"{mountpoint} is already a mount point; unmount it first")
    owner = os.getpid() if owner_pid is None else owner_pid
    (state_dir / STATE_SUBDIR).mkdir(parents=True, exist_ok=True)
    draft = Mount(backing, mountpoint, state_dir.resolve(), 0, fsname)
    read_end, write_end = os.pipe()
    try:
        with open(draft.log, "ab") as logf:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kubesim.lazyfs", "daemon", "--backing", str(backing),
                 "--mountpoint", str(mountpoint), "--socket", str(draft.socket), "--fsname", fsname,
                 "--ready-fd", str(write_end), *(["--owner-pid", str(owner)] if owner else [])],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, pass_fds=(write_end,),
                start_new_session=True,
            )
    finally:
        os.close(write_end)
    _children[proc.pid] = proc
    m = dataclasses.replace(draft, pid=proc.pid)
    _write_record(m)
    try:
        _await_ready(read_end, m, timeout)
    except BaseException:
        _stop(m, timeout=5.0, force=True)
        raise
    finally:
        os.close(read_end)
    return m


def _write_record(m: Mount) -> None:
    tmp = m.record.with_suffix(".json.tmp")
    tmp.write_text(m.to_json())
    tmp.replace(m.record)


def _await_ready(fd: int, m: Mount, timeout: float) -> None:
    """Block until the daemon writes "ready" (FUSE's init ran: the mount serves), it exits, or
    the deadline passes."""
    readable, _, _ = select.select([fd], [], [], timeout)
    line = os.read(fd, 64) if readable else b""
    if line.startswith(b"ready"):
        return
    what = "exited" if readable else f"did not mount within {timeout:.0f}s"
    raise LazyFSError(f"lazyfs daemon for {m.mountpoint} {what}; its log {m.log} ends: {_log_tail(m)}")


def _log_tail(m: Mount, lines: int = 5) -> str:
    try:
        return " | ".join(m.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---- control -----------------------------------------------------------------------------
def status(m: Mount, timeout: float = 10.0) -> dict[str, int]:
    """What a power loss now would drop (counts)."""
    undurable: dict[str, int] = control.request(m.socket, "status", timeout)["undurable"]
    return undurable


def sync(m: Mount, timeout: float = 30.0) -> dict[str, int]:
    """Make everything durable (as sync(2) on a real disk); returns what was undurable."""
    made: dict[str, int] = control.request(m.socket, "sync", timeout)["made_durable"]
    return made


def power_loss(m: Mount, timeout: float = 60.0) -> dict[str, int]:
    """Drop everything not durable and end the mount (the machine is off). When this returns the
    backing directory holds exactly what survived and nothing is mounted; :func:`mount` again to
    go on (a reboot). Processes still using the mount get EIO, then ENOTCONN."""
    dropped = drop(m, timeout)
    await_off(m, timeout)
    return dropped


def drop(m: Mount, timeout: float = 60.0) -> dict[str, int]:
    """The first half of :func:`power_loss`: everything not durable is dropped when this returns, and
    every later operation on the mount fails; the daemon then ends the mount as soon as nothing holds
    it. For a machine's power loss: freeze its processes, :func:`drop` each of its mounts, kill the
    processes (they hold the mounts), then :func:`await_off` each."""
    try:
        dropped: dict[str, int] = control.request(m.socket, "power-loss", timeout)["dropped"]
    except control.ControlError as exc:
        raise LazyFSError(str(exc)) from None
    return dropped


def await_off(m: Mount, timeout: float = 60.0) -> None:
    """The second half of :func:`power_loss`: wait until the daemon is gone, and nothing stays mounted."""
    _await_gone(m, timeout)


def alive(m: Mount) -> bool:
    """The mount's daemon is running (its mount serves, or is being ended)."""
    return _daemon_alive(m)


def unmount(m: Mount, timeout: float = 15.0) -> None:
    """Clean unmount: the live state stays (a clean shutdown writes everything back)."""
    _stop(m, timeout, force=False)


@contextlib.contextmanager
def mounted(backing: Path, mountpoint: Path, state_dir: Path, *, timeout: float = 15.0) -> Iterator[Mount]:
    """``with mounted(...) as m:`` — unmounted on the way out, however the block ends (a power
    loss inside the block already ended the mount; then there is nothing to do)."""
    m = mount(backing, mountpoint, state_dir, timeout=timeout)
    try:
        yield m
    finally:
        _stop(m, timeout, force=True)


# ---- stopping ----------------------------------------------------------------------------
def _daemon_alive(m: Mount) -> bool:
    """The recorded pid is still this mount's daemon (not a zombie, not a recycled pid)."""
    if m.pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{m.pid}/cmdline").read_bytes().split(b"\0")
        stat_fields = Path(f"/proc/{m.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return m.fsname.encode() in cmdline and stat_fields[0] not in ("Z", "X")


def _signal(m: Mount, sig: signal.Signals) -> None:
    if _daemon_alive(m):
        with contextlib.suppress(ProcessLookupError):
            os.kill(m.pid, sig)


def _await_exit(m: Mount, timeout: float) -> bool:
    """Wait (on a pidfd, no polling) until the daemon has exited; True when it has."""
    child = _children.get(m.pid)
    if child is not None:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        _children.pop(m.pid, None)
        return True
    try:
        pidfd = os.pidfd_open(m.pid)
    except ProcessLookupError:
        return True
    try:
        deadline = time.monotonic() + timeout
        while _daemon_alive(m):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([pidfd], [], [], left)
    finally:
        os.close(pidfd)
    return True


def _await_gone(m: Mount, timeout: float) -> None:
    if not _await_exit(m, timeout):
        raise LazyFSError(f"lazyfs daemon {m.pid} for {m.mountpoint} did not exit within {timeout:.0f}s; "
                          f"see {m.log}")
    _detach_stale(m)
    _forget_record(m)


def _stop(m: Mount, timeout: float, *, force: bool) -> None:
    """Unmount via the control channel; failing that SIGTERM (libfuse unmounts); with ``force``
    SIGKILL last. Whatever happened, nothing stays mounted and the record goes."""
    if _daemon_alive(m):
        try:
            control.request(m.socket, "unmount", timeout)
        except control.ControlError:
            _signal(m, signal.SIGTERM)
        if not _await_exit(m, timeout):
            _signal(m, signal.SIGTERM)
            if not _await_exit(m, timeout / 2) and force:
                _signal(m, signal.SIGKILL)
                _await_exit(m, timeout / 2)
    if _daemon_alive(m):
        raise LazyFSError(f"lazyfs daemon {m.pid} for {m.mountpoint} did not stop; see {m.log}")
    _detach_stale(m)
    _forget_record(m)


def _detach_stale(m: Mount) -> list[str]:
    """After the daemon is gone: detach a mount it left (it was SIGKILLed) and drop its private
    directory, whose graveyard and undo data no longer mean anything."""
    done: list[str] = []
    for entry in mountinfo.lazyfs_with_source(m.fsname):
        mountinfo.umount_detach(Path(entry.mountpoint))
        done.append(f"detached dead mount {entry.mountpoint}")
    private = m.backing / PRIVATE
    if private.exists():
        shutil.rmtree(private, ignore_errors=True)
        done.append(f"{m.backing}: its daemon died, so its un-durable writes could not be dropped; "
                    "the backing directory keeps everything written (as after a clean shutdown)")
    return done


def _forget_record(m: Mount) -> None:
    for p in (m.record, m.socket):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def find(state_dir: Path) -> list[Mount]:
    """The mounts recorded under ``state_dir`` (live or not)."""
    d = state_dir / STATE_SUBDIR
    out: list[Mount] = []
    for rec in sorted(d.glob("*.json")) if d.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError):
            out.append(Mount.from_record(rec))
    return out


def cleanup(state_dir: Path, *, live: bool = True, timeout: float = 15.0) -> list[str]:
    """Remove what mounts under ``state_dir`` left: dead daemons' mounts always, live mounts too
    when ``live`` (``kubesim down``). Returns one line per thing done."""
    done: list[str] = []
    for m in find(state_dir):
        if _daemon_alive(m):
            if not live:
                continue
            _stop(m, timeout, force=True)
            done.append(f"unmounted {m.mountpoint} (daemon {m.pid})")
        else:
            done += _detach_stale(m)
            _forget_record(m)
    if live:
        prefix = _state_prefix(state_dir)
        for entry in mountinfo.entries():
            if entry.fstype == "fuse.lazyfs" and entry.source.startswith(prefix):
                mountinfo.umount_detach(Path(entry.mountpoint))
                done.append(f"detached unrecorded mount {entry.mountpoint}")
    return done


def state_prefix(state_dir: Path) -> str:
    """The file system name prefix of every mount made for ``state_dir`` (``/proc/self/mountinfo``'s source,
    the daemon's ``--fsname``): how a mount or daemon whose record is lost is still known as this state's."""
    return _state_prefix(state_dir)


def mounted_under(state_dir: Path) -> list[mountinfo.MountEntry]:
    """Every lazyfs mount of ``state_dir`` still in this mount namespace, recorded or not."""
    prefix = _state_prefix(state_dir)
    return [e for e in mountinfo.entries() if e.fstype == "fuse.lazyfs" and e.source.startswith(prefix)]


def is_daemon_of(state_dir: Path, cmdline: tuple[str, ...]) -> bool:
    """``cmdline`` is a lazyfs daemon serving a mount of ``state_dir`` (by its ``--fsname``)."""
    prefix = _state_prefix(state_dir)
    return "kubesim.lazyfs" in cmdline and "daemon" in cmdline and any(a.startswith(prefix) for a in cmdline)


def describe(m: Mount) -> dict[str, Any]:
    return {"mountpoint": str(m.mountpoint), "backing": str(m.backing), "pid": m.pid, "log": str(m.log)}
