"""The main thread's wait for SIGTERM/SIGINT (or an internal stop) that no signal can slip past.

Why not a handler that sets a ``threading.Event`` the main thread waits on: the kernel hands a
process-directed signal to any thread that does not block it. When it lands on a worker thread
(the kubelet's pod workers, the API server's request threads), CPython's C-level handler runs
on that thread and only flags the signal for the main thread; a main thread blocked in
``Event.wait()`` sits in a lock acquire that nothing interrupts, so the Python handler never
runs and the process ignores SIGTERM until someone SIGKILLs it (``kubesim down`` then waits out
its whole grace period, and whatever graceful shutdown the component had is skipped).

``signal.set_wakeup_fd`` closes that gap: the C handler, on whichever thread it runs, writes the
signal number to a socket, and the main thread waits by reading that socket. A stop asked for
from inside the process (:meth:`StopSignal.set`, e.g. the controller manager failing to start)
writes to the same socket, so there is one wait for both. Threads that only need to know whether
to stop read :attr:`StopSignal.event`.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading
import time
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Final

#: the byte :meth:`StopSignal.set` writes; 0 is no signal number
_REQUESTED: Final = 0


class StopSignal:
    """Owns the process's wakeup fd while entered; enter and :meth:`wait` from the main thread only."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._signals = frozenset(signals)
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)  # the C handler must never block on a full buffer
        self._lock = threading.Lock()
        self._closed = False
        self._previous_fd = -1
        self._previous_handlers: dict[signal.Signals, object] = {}
        self.event = threading.Event()
        self.received: signal.Signals | None = None

    def __enter__(self) -> StopSignal:
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in self._signals:
            # a Python handler must be installed: the C handler writes to the wakeup fd only then,
            # and the default action would end the process before anyone read the byte
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
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

    def set(self) -> None:
        """Ask the process to stop (any thread): wakes :meth:`wait` as a signal would."""
        self.event.set()
        with self._lock:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is already pending
                self._writer.send(bytes([_REQUESTED]))

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a watched signal arrives or :meth:`set` is called (True), or ``timeout`` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.event.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            ready, _, _ = select.select([self._reader], [], [], left)
            if ready:
                self._drain()
        return True

    def _drain(self) -> None:
        """Read the signal numbers the C handler wrote; a watched one (or a request) means stop."""
        try:
            data = self._reader.recv(256)
        except BlockingIOError:
            return
        for number in data:
            if number == _REQUESTED:
                self.event.set()
            elif number in self._signals:
                if self.received is None:
                    self.received = signal.Signals(number)
                self.event.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Runs on the main thread whenever it gets to it; the wakeup byte has already woken :meth:`wait`."""
        del frame
        if self.received is None:
            self.received = signal.Signals(signum)
        self.event.set()
