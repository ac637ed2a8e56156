"""At most one pending timed re-check per key, for K4's controllers (node lifecycle, taint eviction, disruption).

Why: a reconcile's return value becomes ``WorkQueue.add_after(key, seconds)``, which (unlike
client-go's delaying queue, whose ``AddAfter`` keeps only the earliest time per key) stacks a new
timer per call. A node reconciled on every Lease renewal that always asks for a re-check at its
grace deadline would pile up timers without bound, each waking a reconcile that asks for another.
:meth:`Rechecks.request` returns the delay to hand back to the runtime only when no re-check at
that time or earlier is already pending, so every key keeps a single timer chain.
"""

from __future__ import annotations

import threading
import time

_SLACK = 0.01


class Rechecks:
    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def request(self, key: str, delay: float | None) -> float | None:
        """The delay to return from ``reconcile`` (None when an earlier-or-equal re-check is already pending)."""
        if delay is None:
            return None
        now = time.monotonic()
        due = now + max(0.0, delay)
        with self._lock:
            pending = self._due.get(key)
            if pending is not None and now < pending <= due + _SLACK:
                return None
            self._due[key] = due
        return delay

    def forget(self, key: str) -> None:
        with self._lock:
            self._due.pop(key, None)
