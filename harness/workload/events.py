"""One JSON line per event on stdout: what the pod did, for ``kubectl logs`` and the tests.

A line is written with a single ``write`` under a lock so concurrent request threads never
interleave, and flushed at once so a SIGKILL loses at most the line being written.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO


class EventLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def event(self, name: str, /, **fields: object) -> None:
        line = json.dumps({"ts": round(time.time(), 6), "event": name, **fields}, default=str, sort_keys=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class NullLog(EventLog):
    """For in-process benchmarks: measuring the store, not the terminal."""

    def event(self, name: str, /, **fields: object) -> None:
        return None
