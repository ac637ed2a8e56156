"""A small single-threaded event loop for one upgraded connection, and its non-blocking endpoints.

Every streaming session (port-forward, exec, attach) runs in the connection's own handler thread:
after the 101 answer the TLS socket turns non-blocking and this loop multiplexes it with the pod
sockets, pipes or pty of the session. One thread owns the TLS socket for both directions, so
OpenSSL never sees concurrent reads and writes from two threads, and backpressure is plain:
an endpoint whose outbound buffer passes :data:`HIGH` pauses whoever feeds it until it drains
below :data:`LOW` (a slow client stops the pod socket from being read, and the other way round).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import heapq
import itertools
import logging
import os
import selectors
import socket
import ssl
import time
from collections.abc import Callable

log = logging.getLogger("kubesim.apiserver.streaming")

HIGH = 4 * 1024 * 1024
LOW = 1024 * 1024
READ_SIZE = 256 * 1024
MAX_READ_PER_WAKEUP = 4 * 1024 * 1024
"""An endpoint yields to the others after this many bytes in one wake-up (no starvation)."""

Callback = Callable[[], None]


class Timer:
    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Reactor:
    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._io: dict[int, tuple[object, Callback | None, Callback | None]] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._soon: collections.deque[Callback] = collections.deque()
        self._stopped = False

    # ----- registration ------------------------------------------------------------------

    def _update(self, fileobj: object, fd: int, reader: Callback | None, writer: Callback | None) -> None:
        events = (selectors.EVENT_READ if reader else 0) | (selectors.EVENT_WRITE if writer else 0)
        known = fd in self._io
        if not events:
            if known:
                del self._io[fd]
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._sel.unregister(fd)
            return
        self._io[fd] = (fileobj, reader, writer)
        if known:
            self._sel.modify(fd, events)
        else:
            self._sel.register(fd, events)

    def set_reader(self, fileobj: socket.socket | int, callback: Callback | None) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd < 0:
            return
        _obj, _r, writer = self._io.get(fd, (fileobj, None, None))
        self._update(fileobj, fd, callback, writer)

    def set_writer(self, fileobj: socket.socket | int, callback: Callback | None) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd < 0:
            return
        _obj, reader, _w = self._io.get(fd, (fileobj, None, None))
        self._update(fileobj, fd, reader, callback)

    def forget(self, fileobj: socket.socket | int) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd >= 0:
            self._update(fileobj, fd, None, None)

    def call_soon(self, callback: Callback) -> None:
        self._soon.append(callback)

    def call_later(self, delay: float, callback: Callback) -> Timer:
        timer = Timer(time.monotonic() + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    # ----- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stopped:
                self._run_once()
        finally:
            self._sel.close()

    def _run_once(self) -> None:
        timeout: float | None = None
        if self._soon:
            timeout = 0
        elif self._timers:
            timeout = max(0.0, self._timers[0][0] - time.monotonic())
        for key, events in self._sel.select(timeout):
            entry = self._io.get(key.fd)
            if entry is None:
                continue
            _obj, reader, writer = entry
            if events & selectors.EVENT_WRITE and writer is not None:
                writer()
                entry = self._io.get(key.fd)
                reader = entry[1] if entry else None
            if events & selectors.EVENT_READ and reader is not None:
                reader()
            if self._stopped:
                return
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _when, _seq, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
        for _ in range(len(self._soon)):
            self._soon.popleft()()


class Endpoint:
    """A non-blocking byte endpoint: reads go to ``on_data`` / ``on_eof``, writes are buffered.

    ``on_drain`` is called once the outbound buffer, having passed :data:`HIGH`, drops below
    :data:`LOW`; ``on_error`` with a message when the endpoint fails (then it is closed).
    """

    def __init__(self, reactor: Reactor, name: str) -> None:
        self.reactor = reactor
        self.name = name
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_eof: Callback = lambda: None
        self.on_drain: Callback | None = None
        self.on_error: Callable[[str], None] = lambda why: None
        self._out: collections.deque[bytes] = collections.deque()
        self._out_offset = 0
        self._buffered = 0
        self._above_high = False
        self._reading = False
        self._paused = False
        self._finish_after_flush = False
        self.closed = False
        self.eof_seen = False
        self.write_closed = False

    # --- subclass hooks -----------------------------------------------------------------------

    def _fileobj(self) -> socket.socket | int:
        raise NotImplementedError

    def _recv(self) -> bytes | None:
        """Some bytes, b"" at EOF, None if nothing is ready."""
        raise NotImplementedError

    def _send(self, data: memoryview) -> int | None:
        """Bytes written, None if it would block."""
        raise NotImplementedError

    def _shutdown_write(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _has_pending(self) -> bool:
        return False

    # --- reading ---------------------------------------------------------------------------------

    def start_reading(self) -> None:
        if self.closed or self.eof_seen:
            return
        self._reading = True
        if not self._paused:
            self.reactor.set_reader(self._fileobj(), self._readable)
            if self._has_pending():
                self.reactor.call_soon(self._readable)

    def pause_reading(self) -> None:
        if self._paused or self.closed:
            return
        self._paused = True
        if self._reading:
            self.reactor.set_reader(self._fileobj(), None)

    def resume_reading(self) -> None:
        if not self._paused or self.closed:
            return
        self._paused = False
        if self._reading and not self.eof_seen:
            self.reactor.set_reader(self._fileobj(), self._readable)
            self.reactor.call_soon(self._readable)  # TLS may hold decrypted bytes select() cannot see

    def _readable(self) -> None:
        got = 0
        while not self.closed and not self._paused and not self.eof_seen:
            try:
                data = self._recv()
            except OSError as exc:
                self._fail(f"read failed: {exc}")
                return
            if data is None:
                return
            if not data:
                self.eof_seen = True
                if not self.closed:
                    self.reactor.set_reader(self._fileobj(), None)
                self.on_eof()
                return
            got += len(data)
            self.on_data(data)
            if got >= MAX_READ_PER_WAKEUP:
                if self._has_pending():
                    self.reactor.call_soon(self._readable)
                return

    # --- writing ---------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._buffered

    def write(self, data: bytes) -> None:
        if self.closed or self.write_closed or not data:
            return
        self._out.append(data)
        self._buffered += len(data)
        if len(self._out) == 1:
            self._flush()
        if self._buffered > HIGH:
            self._above_high = True

    def finish_writing(self) -> None:
        """Half-close once everything buffered is out (FIN on a socket, close on a pipe)."""
        if self.closed or self.write_closed:
            return
        self._finish_after_flush = True
        if not self._out:
            self._do_finish()

    def _do_finish(self) -> None:
        self.write_closed = True
        self._finish_after_flush = False
        try:
            self._shutdown_write()
        except OSError as exc:
            log.debug("%s: half-close failed: %s", self.name, exc)

    def _flush(self) -> None:
        while self._out and not self.closed:
            chunk = self._out[0]
            view = memoryview(chunk)[self._out_offset:self._out_offset + READ_SIZE]
            try:
                sent = self._send(view)
            except OSError as exc:
                self._fail(f"write failed: {exc}")
                return
            finally:
                view.release()
            if sent is None:
                self.reactor.set_writer(self._fileobj(), self._flush)
                return
            self._buffered -= sent
            self._out_offset += sent
            if self._out_offset >= len(chunk):
                self._out.popleft()
                self._out_offset = 0
        if self.closed:
            return
        self.reactor.set_writer(self._fileobj(), None)
        if self._above_high and self._buffered < LOW:
            self._above_high = False
            if self.on_drain is not None:
                self.on_drain()
        if not self._out and self._finish_after_flush:
            self._do_finish()

    # --- ending ------------------------------------------------------------------------------------

    def _fail(self, why: str) -> None:
        if self.closed:
            return
        log.debug("%s: %s", self.name, why)
        self.close()
        self.on_error(why)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, ValueError):
            self.reactor.forget(self._fileobj())
        self._out.clear()
        self._buffered = 0
        with contextlib.suppress(OSError):
            self._close()


class SocketEndpoint(Endpoint):
    """A plain TCP socket (to a pod)."""

    def __init__(self, reactor: Reactor, sock: socket.socket, name: str) -> None:
        super().__init__(reactor, name)
        self.sock = sock
        sock.setblocking(False)
        self._fd = sock.fileno()

    def _fileobj(self) -> socket.socket | int:
        return self._fd

    def _recv(self) -> bytes | None:
        try:
            return self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None

    def _send(self, data: memoryview) -> int | None:
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return None

    def _shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def _close(self) -> None:
        self.sock.close()


def connect(reactor: Reactor, address: tuple[str, int], name: str, timeout: float,
            done: Callable[[SocketEndpoint | None, OSError | None], None]) -> Callback:
    """Non-blocking TCP connect; ``done(endpoint, None)`` or ``done(None, error)``. Returns a canceller."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finished = [False]

    def finish(error: OSError | None) -> None:
        if finished[0]:
            return
        finished[0] = True
        timer.cancel()
        with contextlib.suppress(OSError, ValueError):
            reactor.forget(sock)
        if error is not None:
            sock.close()
            done(None, error)
        else:
            done(SocketEndpoint(reactor, sock, name), None)

    def writable() -> None:
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        finish(OSError(code, os.strerror(code)) if code else None)

    def expired() -> None:
        finish(TimeoutError(errno.ETIMEDOUT, "i/o timeout"))

    def cancel() -> None:
        if not finished[0]:
            finished[0] = True
            timer.cancel()
            with contextlib.suppress(OSError, ValueError):
                reactor.forget(sock)
            sock.close()

    timer = reactor.call_later(timeout, expired)
    code = sock.connect_ex(address)
    if code in (0, errno.EISCONN):
        reactor.call_soon(lambda: finish(None))
    elif code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        reactor.set_writer(sock, writable)
    else:
        error = OSError(code, os.strerror(code))
        reactor.call_soon(lambda: finish(error))
    return cancel


class TLSEndpoint(Endpoint):
    """The client's TLS connection, switched to non-blocking."""

    def __init__(self, reactor: Reactor, sock: ssl.SSLSocket, name: str = "client") -> None:
        super().__init__(reactor, name)
        self.sock = sock
        sock.setblocking(False)
        self._fd = sock.fileno()

    def _fileobj(self) -> socket.socket | int:
        return self._fd

    def _has_pending(self) -> bool:
        try:
            return self.sock.pending() > 0
        except (OSError, ValueError):
            return False

    def _recv(self) -> bytes | None:
        try:
            return self.sock.recv(READ_SIZE)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError):
            return b""

    def _send(self, data: memoryview) -> int | None:
        try:
            return self.sock.send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return None

    def _shutdown_write(self) -> None:
        """TLS has no half-close we can rely on; the session closes the whole connection instead."""

    def _close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.sock.shutdown(socket.SHUT_RDWR)


class FdEndpoint(Endpoint):
    """A pipe end or pty master (``os.read`` / ``os.write``); EIO on a pty master is EOF."""

    def __init__(self, reactor: Reactor, fd: int, name: str) -> None:
        super().__init__(reactor, name)
        self.fd = fd
        os.set_blocking(fd, False)

    def _fileobj(self) -> socket.socket | int:
        return self.fd

    def _recv(self) -> bytes | None:
        try:
            return os.read(self.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno == errno.EIO:  # the pty's slave side has no process left
                return b""
            raise

    def _send(self, data: memoryview) -> int | None:
        try:
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return None

    def _shutdown_write(self) -> None:
        self.close()

    def _close(self) -> None:
        os.close(self.fd)
