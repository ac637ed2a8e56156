"""The control channel: one JSON request line, one JSON answer line, over a Unix socket in the
state directory.

Why a socket and not LazyFS's FIFO: the caller of "power loss now" must know when the drop is
complete before it looks at the disk; LazyFS needs a second FIFO for that answer
(``fifo_path_completed``), a socket answers on the same connection and fails fast
(ECONNREFUSED) when the daemon is gone instead of blocking a writer on a FIFO nobody reads.

Socket paths are limited to 107 bytes and test directories are longer, so both ends reach the
socket through ``/proc/self/fd/<dir fd>/<name>`` (always short).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

COMMANDS: Final = ("status", "sync", "power-loss", "unmount")


class ControlError(RuntimeError):
    """The daemon could not be asked (gone, refused) or answered with an error."""


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A path to ``path`` short enough for AF_UNIX, valid while the context is open."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def listen(path: Path) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with short_path(path) as short:
        sock.bind(short)
    os.chmod(path, 0o600)
    sock.listen(8)
    return sock


def request(path: Path, command: str, timeout: float) -> dict[str, Any]:
    """Send ``command``, return the daemon's answer; ControlError when it cannot be had."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock, \
                short_path(path) as short:
            sock.settimeout(timeout)
            sock.connect(short)
            sock.sendall(json.dumps({"command": command}).encode() + b"\n")
            raw = sock.makefile("rb").readline()
    except OSError as exc:
        raise ControlError(f"lazyfs daemon at {path} did not answer {command!r}: {exc}") from exc
    if not raw:
        raise ControlError(f"lazyfs daemon at {path} closed the connection without answering {command!r}")
    answer: dict[str, Any] = json.loads(raw)
    if not answer.get("ok"):
        raise ControlError(f"lazyfs {command!r} failed: {answer.get('error')}")
    return answer


def read_request(conn: socket.socket) -> str | None:
    raw = conn.makefile("rb").readline(4096)
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    command = doc.get("command") if isinstance(doc, dict) else None
    return command if command in COMMANDS else None


def answer(conn: socket.socket, body: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(body, sort_keys=True).encode() + b"\n")
