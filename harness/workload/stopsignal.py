"""Waiting in the main thread for SIGTERM/SIGINT (or an internal stop) without ever missing it.

Why not ``threading.Event.wait()`` with a handler that sets the event: the kernel delivers a
process-directed signal to any thread that does not block it. When it lands on a busy worker
thread (the writer's HTTP or shard threads during a large checkpoint), CPython's C handler
runs there and only flags the signal; a main thread blocked in a lock acquire (which is what
``Event.wait()`` is) is never interrupted, so the Python handler never runs and the process
ignores SIGTERM until the grace period ends in SIGKILL. That was the writer hanging on
shutdown about one time in eight.

``signal.set_wakeup_fd`` closes the gap: the C handler, on whichever thread it runs, writes
the signal number to a socket, and the main thread waits by reading that socket. Stopping for
an internal reason (a fatal boot) writes to the same socket, so there is one wait for both.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Final

#: written by :meth:`StopSignal.request`; not a valid signal number
_INTERNAL: Final = 0


class StopSignal:
    """Owns the process's wakeup fd while entered; only the main thread may enter it."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._signals = tuple(signals)
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._lock = threading.Lock()
        self._closed = False
        self._previous_fd = -1
        self._previous_handlers: dict[signal.Signals, object] = {}
        self.received: signal.Signals | None = None

    def __enter__(self) -> StopSignal:
        # the C handler writes the signal number here; a Python handler must still be set,
        # or the default disposition would end the process before anyone reads it
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in self._signals:
            self._previous_handlers[sig] = signal.signal(sig, _ignore)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_fd)
        with self._lock:
            self._closed = True
            self._reader.close()
            self._writer.close()

    def request(self) -> None:
        """Stop without a signal (any thread): wakes :meth:`wait` like a signal would."""
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError):
                self._writer.send(bytes([_INTERNAL]))

    def wait(self) -> signal.Signals | None:
        """Block until a watched signal or :meth:`request`; returns the signal (None: a request)."""
        while True:
            select.select([self._reader], [], [])
            try:
                data = self._reader.recv(64)
            except BlockingIOError:
                continue
            for number in data:
                if number == _INTERNAL:
                    return None
                if number in self._signals:
                    self.received = signal.Signals(number)
                    return self.received


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The stop is read from the wakeup fd; the handler only keeps the default action away."""
    del signum, frame
