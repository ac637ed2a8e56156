"""The daemon: one process per mount, serving FUSE in its main thread and the control channel in
another. Started by :func:`kubesim.lazyfs.manage.mount` (``python -m kubesim.lazyfs daemon``).

It ends, and its mount with it, on: ``unmount`` or ``power-loss`` on the control channel (a
lazy detach of the mount point; if something still holds it, the daemon exits, which aborts
the FUSE connection), SIGTERM / SIGINT / SIGHUP (libfuse's handlers leave the loop and unmount), and the death of
its owner process when one was named (watched through a pidfd, so even a SIGKILLed test run
leaves nothing mounted). A SIGKILL of the daemon itself leaves a dead mount that the next
:func:`~kubesim.lazyfs.manage.cleanup` of the same state directory detaches.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import select
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Final

from kubesim.lazyfs import control, fs, mountinfo

log = logging.getLogger("kubesim.lazyfs")

#: how long a detached mount may stay busy before its connection is aborted
DETACH_GRACE: Final = 2.0


def run(backing: Path, mountpoint: Path, sock_path: Path, fsname: str, *, owner_pid: int | None,
        ready_fd: int | None) -> int:
    os.umask(0)  # modes come from the callers (the kernel already applied their umask)
    level = logging.DEBUG if os.environ.get("LAZYFS_DEBUG") else logging.INFO  # DEBUG: every failed operation
    logging.basicConfig(level=level, format="%(asctime)s lazyfs[%(process)d] %(levelname)s %(message)s")
    finished = threading.Event()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack to the log

    def ready() -> None:
        log.info("mounted %s over %s", mountpoint, backing)
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, b"ready\n")
                os.close(ready_fd)

    class Ops(fs.LazyOps):
        def destroy(self, path: str) -> None:
            finished.set()

    ops = Ops(backing, ready)
    server = control.listen(sock_path)
    threading.Thread(target=_serve_control, args=(server, ops, mountpoint, finished, sock_path), name="control",
                     daemon=True).start()
    if owner_pid is not None:
        threading.Thread(target=_watch_owner, args=(owner_pid, mountpoint, finished, sock_path), name="owner",
                         daemon=True).start()
    try:
        fs.LazyFuse(ops, str(mountpoint), foreground=True, allow_other=True, default_permissions=True,
                    hard_remove=True, fsname=fsname, subtype="lazyfs")
    except RuntimeError as exc:  # libfuse's own unmount after our detach finds nothing: not a failure
        log.info("FUSE loop ended: %s", exc)
    finally:
        finished.set()
        server.close()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        if not ops.lost_power:
            ops.finish()  # a clean unmount keeps the live state (R13); the graveyard is not needed
        log.info("unmounted %s (power lost: %s)", mountpoint, ops.lost_power)
    return 0


def _serve_control(server: socket.socket, ops: fs.LazyOps, mountpoint: Path, finished: threading.Event,
                   sock_path: Path) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            command = control.read_request(conn)
            body: dict[str, Any]
            try:
                if command == "status":
                    body = {"ok": True, "undurable": ops.status(), "pid": os.getpid()}
                elif command == "sync":
                    body = {"ok": True, "made_durable": ops.sync_all()}
                elif command == "power-loss":
                    body = {"ok": True, "dropped": ops.power_loss()}
                    log.warning("power loss: dropped %s", body["dropped"])
                elif command == "unmount":
                    body = {"ok": True}
                else:
                    body = {"ok": False, "error": f"unknown command; known: {', '.join(control.COMMANDS)}"}
            except Exception as exc:  # the answer must say what went wrong; the daemon lives on
                log.exception("%s failed", command)
                body = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            control.answer(conn, body)
        if body.get("ok") and command in ("power-loss", "unmount"):
            detach(mountpoint, finished, sock_path)
            return


def _watch_owner(owner_pid: int, mountpoint: Path, finished: threading.Event, sock_path: Path) -> None:
    """Unmount (cleanly: an owner's death is no power loss) when the owner process ends."""
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        log.warning("owner %d is already gone: unmounting", owner_pid)
        detach(mountpoint, finished, sock_path)
        return
    try:
        select.select([pidfd], [], [])
    finally:
        os.close(pidfd)
    if not finished.is_set():
        log.warning("owner %d exited: unmounting %s", owner_pid, mountpoint)
        detach(mountpoint, finished, sock_path)


def detach(mountpoint: Path, finished: threading.Event, sock_path: Path) -> None:
    """Lazily unmount; if the FUSE loop has not ended after the grace (a process still holds a
    file or its cwd there, so the kernel keeps the file system alive), end the process: closing
    /dev/fuse aborts the connection, and every further request of those processes fails."""
    mountinfo.umount_detach(mountpoint)
    if finished.wait(DETACH_GRACE):
        return
    log.warning("%s is still in use after detaching it: ending the daemon (the connection aborts)", mountpoint)
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    logging.shutdown()
    os._exit(0)
