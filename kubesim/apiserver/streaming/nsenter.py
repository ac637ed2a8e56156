"""Run a command inside a running container: ``python -S -E nsenter.py STATUS_FD SPEC_JSON``.

The API server starts this helper (stdlib only, like the sandbox shim) with the exec's stdin,
stdout and stderr (pipes, or a pty for ``tty``); ``SPEC_JSON`` is ``{"pid": PID 1 of the
container (host pid), "start": its start time (field 22 of /proc/<pid>/stat), "argv": [...],
"tty": bool}``. A process of its own because ``setns(2)`` into a user namespace needs a
single-threaded caller and into a mount namespace one that shares no fs state with other
threads — the API server has many threads.

What it does, as ``nsenter --target PID --all --root --wd`` plus the container's identity:

1. checks that PID is still the container's PID 1 (start time), opens its ``/proc/PID/root``,
   ``/proc/PID/cwd`` and every namespace it does not share with us (user first — owning it gives
   the capabilities to join the others — then ipc, uts, net, pid, mnt) and joins them;
2. changes root to PID 1's root (the container's built root; skipped when it is ours: a
   container without namespaces) and forks — the child is the first of this helper's processes
   inside the container's PID namespace;
3. the child starts a session with the pty as controlling terminal (``tty``), moves to PID 1's
   working directory, takes PID 1's user, group and supplementary groups (unless we joined its
   user namespace, where we already are the user it runs as), dies with this helper
   (``PR_SET_PDEATHSIG``), and executes ``argv`` with PID 1's initial environment
   (``/proc/PID/environ``: the image's and the pod's variables), looking ``argv[0]`` up on that
   environment's PATH inside the container's root;
4. this helper waits and exits as the command did (its code, or 128+signal).

Failures before the command runs are one JSON line on STATUS_FD, ``{"error": "..."}``, with
``{"exec": "..."}`` for runc's ``exec: "x": executable file not found in $PATH``-style reasons;
on success STATUS_FD closes silently (close-on-exec).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import signal
import sys
import termios
from typing import Any

_NAMESPACES = ("user", "ipc", "uts", "net", "pid", "mnt")
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


class EnterError(Exception):
    pass


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def _status_ids(pid: int) -> tuple[int, int, list[int]]:
    uid = gid = 0
    groups: list[int] = []
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key == "Uid":
                uid = int(value.split()[0])
            elif key == "Gid":
                gid = int(value.split()[0])
            elif key == "Groups":
                groups = [int(g) for g in value.split()]
    return uid, gid, groups


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        raw = fh.read()
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, 0) != 0:
        err = ctypes.get_errno()
        raise EnterError(f"setns into the container's {what} namespace: {os.strerror(err)}")


def _same_file(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _report(fd: int, doc: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(doc) + "\n").encode())


def exec_reason(argv0: str, exc: OSError) -> str:
    """runc's wording for a command that cannot be started."""
    if exc.errno == errno.ENOENT:
        if "/" in argv0:
            return f'exec: "{argv0}": stat {argv0}: no such file or directory'
        return f'exec: "{argv0}": executable file not found in $PATH'
    if exc.errno == errno.EACCES:
        return f'exec: "{argv0}": permission denied'
    return f'exec: "{argv0}": {(exc.strerror or str(exc)).lower()}'


Creds = tuple[int, int, list[int]]


def _child(spec: dict[str, Any], status_fd: int, cwd_fd: int, env: dict[str, str], creds: Creds | None) -> None:
    argv = [str(a) for a in spec["argv"]]
    try:
        if spec.get("tty"):
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        try:
            os.fchdir(cwd_fd)
        except OSError:
            os.chdir("/")
        os.close(cwd_fd)
        if creds is not None:
            uid, gid, groups = creds
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            _report(status_fd, {"exec": exec_reason(argv[0], exc)})
            os._exit(127)
    except BaseException as exc:  # the command never ran: say why, never return into the helper's code
        _report(status_fd, {"error": f"{type(exc).__name__}: {exc}"})
        os._exit(126)


def run(spec: dict[str, Any], status_fd: int) -> int:
    pid = int(spec["pid"])
    try:
        fields = _stat_fields(pid)
    except OSError:
        fields = []
    if len(fields) < 20 or fields[19] != str(spec.get("start")) or fields[0] == "Z":
        raise EnterError(f"container process {pid} is not running")
    env = _environ(pid)
    uid, gid, groups = _status_ids(pid)
    root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    cwd_fd = os.open(f"/proc/{pid}/cwd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    own_root = _same_file(f"/proc/{pid}/root", "/proc/self/root")
    joined: dict[str, int] = {}
    for ns in _NAMESPACES:
        target, ours = f"/proc/{pid}/ns/{ns}", f"/proc/self/ns/{ns}"
        try:
            if _same_file(target, ours):
                continue
        except OSError:
            continue  # a namespace kind this kernel does not have
        joined[ns] = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
    for ns in _NAMESPACES:
        if ns in joined:
            _setns(joined[ns], ns)
            os.close(joined[ns])
    if not own_root:
        os.fchdir(root_fd)
        os.chroot(".")
    os.close(root_fd)
    creds: tuple[int, int, list[int]] | None = None
    if "user" not in joined and (uid, gid, sorted(groups)) != (os.getuid(), os.getgid(), sorted(os.getgroups())):
        creds = (uid, gid, groups)  # in a joined user namespace we already are who PID 1 is (its root)
    child = os.fork()
    if child == 0:
        _child(spec, status_fd, cwd_fd, env, creds)
    os.close(cwd_fd)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # only the command holds the exec's streams: EOF when it (and its children) close them
        os.dup2(null, fd)
    os.close(null)
    os.close(status_fd)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    try:
        status_fd = int(argv[1])
        spec = json.loads(argv[2])
    except (IndexError, ValueError):
        print(f"usage: {argv[0] if argv else 'nsenter.py'} STATUS_FD SPEC_JSON", file=sys.stderr)
        return 2
    os.set_inheritable(status_fd, False)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the API server's session ends: so do we
    try:
        return run(spec, status_fd)
    except (EnterError, OSError) as exc:
        _report(status_fd, {"error": str(exc)})
        return 126


if __name__ == "__main__":
    sys.exit(main(sys.argv))
