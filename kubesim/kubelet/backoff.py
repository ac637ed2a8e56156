"""CrashLoopBackOff / image pull back-off: client-go's ``flowcontrol.Backoff`` as the kubelet uses it.

Per key (a container of a pod, or a pod's image): the first failure sets the delay to ``base``
without waiting (the kubelet restarts a container the first time at once); while ``now - since``
is below the current delay the key is "in back-off"; every further attempt doubles the delay up
to ``cap``. An entry untouched for ``2 * cap`` is forgotten (flowcontrol's GC rule; with the
default 300 s cap that is the "10 minutes of running resets the back-off" users see).
"""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass
class _Entry:
    delay: float
    updated: float


class Backoff:
    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = max(cap, base)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and now - entry.updated > 2 * self.cap:
            del self._entries[key]
            return None
        return entry

    def delay(self, key: str, now: float) -> float:
        """The current back-off of ``key`` (0 when it has none)."""
        with self._lock:
            entry = self._live(key, now)
            return entry.delay if entry else 0.0

    def in_backoff_since(self, key: str, since: float, now: float) -> bool:
        """True while ``now`` is within the current delay after ``since`` (when the container finished)."""
        with self._lock:
            entry = self._live(key, now)
            return entry is not None and now - since < entry.delay

    def in_backoff_since_update(self, key: str, now: float) -> float:
        """Seconds left of the current delay counted from the last attempt (0 when none is pending)."""
        with self._lock:
            entry = self._live(key, now)
            if entry is None:
                return 0.0
            return max(0.0, entry.updated + entry.delay - now)

    def next(self, key: str, now: float) -> float:
        """Record an attempt: the first sets ``base``, later ones double up to ``cap``; the new delay."""
        with self._lock:
            entry = self._live(key, now)
            if entry is None:
                entry = self._entries[key] = _Entry(self.base, now)
            else:
                entry.delay = min(entry.delay * 2, self.cap)
                entry.updated = now
            return entry.delay

    def reset(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for the messages upstream prints (10s, 1m20s, 5m0s, 500ms)."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    sec_text = f"{round(secs, 9):g}s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text
