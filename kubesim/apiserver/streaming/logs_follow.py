"""pods/log with ``follow=true``: a chunked response that grows with the container's log.

As the kubelet's ``ReadLogs`` with follow: the (tailLines/since/timestamps/limitBytes/stream-
filtered) log is sent, then every record written after it, until the container instance that
writes the file is gone (its sandbox shim exited: all its output is in the file) — or the client
went away, or ``limitBytes`` is used up. A newer instance (a restart) does not continue the
stream, as upstream. ``previous=true`` with follow returns the previous instance's whole log.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kubesim import podlogs
from kubesim.apiserver import streaming as pkg
from kubesim.apiserver import subresources
from kubesim.apiserver.streaming import filewatch, targets

if TYPE_CHECKING:
    from kubesim.apiserver import server

log = logging.getLogger("kubesim.apiserver.streaming")

RECHECK = 1.0
"""logForceCheckPeriod: look at the file and the container at least this often."""


def client_gone(sock: socket.socket) -> bool:
    """The client closed its side (a log follower sends nothing after its request)."""
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
        if not readable:
            return False
        previous = sock.gettimeout()
        sock.settimeout(0.05)
        try:
            return sock.recv(1) == b""
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        finally:
            sock.settimeout(previous)
    except (OSError, ValueError):
        return True


def serve(handler: server.Handler, namespace: str, name: str, query: dict[str, list[str]]) -> int:
    api = handler.server.app.api
    values = podlogs.first_values(query)
    pod = targets.get_pod(api, namespace, name)
    opts = podlogs.options(values, name)
    container = targets.validate_container(pod, values.get("container", ""))
    if not (pod.get("spec") or {}).get("nodeName"):
        handler._send(200, b"", "text/plain")  # LogLocation: no host yet -> an empty log
        return 200
    state_dir = pkg.config.state_dir
    if state_dir is None:
        out = subresources.log_source(pod, container, values)
        handler._send(200, out or b"", "text/plain")
        return 200
    path = podlogs.log_file(state_dir, pod, container, opts.previous)
    follower = podlogs.Follower(path, opts)
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                        b"Cache-Control: no-cache, private\r\n\r\n")
    handler.close_connection = True

    def send(data: bytes) -> None:
        if data:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    try:
        if opts.previous:
            send(follower.read_rest())
        else:
            follow(follower, send, lambda: _writer_alive(state_dir, pod, container, path),
                   lambda: client_gone(handler.connection), handler.connection.fileno())
        handler.wfile.write(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError, OSError):
        pass
    finally:
        follower.close()
    return 200


def _writer_alive(state_dir: Path, pod: targets.Obj, container: str, path: Path) -> bool:
    """The instance writing ``path`` still runs: it is the newest file and the container's shim lives."""
    newest = podlogs.instances(path.parent)
    if not newest or newest[-1][1] != path:
        return False
    return targets.shim_alive(state_dir, pod, container)


def follow(follower: podlogs.Follower, send: Callable[[bytes], None], alive: Callable[[], bool],
           gone: Callable[[], bool], client_fd: int) -> None:
    """Send what the file gains until the writer is gone; wake on a file change, the client, or a timeout."""
    watch = filewatch.FileWatch(follower.path)
    try:
        while True:
            send(follower.read_new())
            if follower.writer.exhausted:
                return
            if not alive():
                send(follower.read_rest())
                return
            waiting = [client_fd] + ([watch.fd] if watch.fd >= 0 else [])
            ready: list[int] = []
            with contextlib.suppress(InterruptedError):
                ready, _w, _x = select.select(waiting, [], [], RECHECK if watch.fd >= 0 else 0.2)
            watch.drain()
            if client_fd in ready and gone():
                return
    finally:
        watch.close()
