"""The availability probe: what a reader of each ordinal saw while the run went on.

A background thread asks every ordinal's ``/readyz`` at a fixed interval and records a
``read`` op per ordinal (process ``probe-<n>``): ``ok`` with whether the pod was ready and
the latest valid step it serves, ``fail`` when it could not answer. The availability
checker turns these into unavailability windows and recovery times. Endpoints come from the
same file the load follows, so the probe follows pods that move; an ordinal the run expects to
exist but that has no address (evicted, Pending, not yet ready) is a ``fail`` sample too, so its
outage is measured rather than skipped.

Stdlib HTTP on purpose: the probe runs inside the pytest process, next to the kubernetes
client, where locust's gevent patching must never be imported.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import cast

from harness import history, ops


def probe_process(ordinal: int) -> str:
    return f"probe-{ordinal}"


def _get_readyz(url: str, timeout_s: float) -> tuple[int, dict[str, object]]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    body = json.loads(raw) if raw else {}
    return resp.status, body if isinstance(body, dict) else {}


class Probe:
    """Samples every ordinal until stopped; one op pair per ordinal per interval.

    ``endpoints`` is called at each round so a rewritten endpoints file is picked up.
    The thread is a daemon only as a last resort: :meth:`stop` (or the ``with`` block)
    joins it so no op is recorded after the run's history is read.
    """

    def __init__(
        self,
        recorder: history.HistoryWriter,
        endpoints: Callable[[], Mapping[int, str]],
        *,
        expected: Iterable[int] = (),
        interval_s: float = 0.25,
        timeout_s: float = 1.0,
    ) -> None:
        self._recorder = recorder
        self._endpoints = endpoints
        self._expected = frozenset(expected)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="availability-probe", daemon=True)
        self._lock = threading.Lock()
        self.rounds = 0

    def _sample(self, ordinal: int, url: str) -> None:
        process = probe_process(ordinal)
        self._recorder.record("invoke", ops.READ, {"ordinal": ordinal}, process=process)
        try:
            status, body = _get_readyz(url, self._timeout_s)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._recorder.record("fail", ops.READ, {"ordinal": ordinal}, error=f"{type(exc).__name__}: {exc}",
                                  process=process)
            return
        latest = body.get("latest_step")
        value: ops.ProbeOk = {
            "ordinal": ordinal,
            "ready": status == 200 and bool(body.get("ready")),
            "latest_step": latest if isinstance(latest, int) else None,
        }
        self._recorder.record("ok", ops.READ, cast(history.JsonValue, dict(value)), process=process)

    def _unreachable(self, ordinal: int) -> None:
        process = probe_process(ordinal)
        self._recorder.record("invoke", ops.READ, {"ordinal": ordinal}, process=process)
        self._recorder.record("fail", ops.READ, {"ordinal": ordinal},
                              error="no address: the ordinal has no ready endpoint to ask", process=process)

    def sample_once(self) -> None:
        """One round over every ordinal (the thread's body; public for tests)."""
        with self._lock:
            urls = self._endpoints()
            for ordinal in sorted(self._expected | set(urls)):
                url = urls.get(ordinal)
                if url is None:
                    self._unreachable(ordinal)
                else:
                    self._sample(ordinal, url)
            self.rounds += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            # The interval is the sampling period itself, not a wait for a condition.
            self._stop.wait(self._interval_s)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout_s * 4 + self._interval_s + 5)

    def __enter__(self) -> Probe:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
