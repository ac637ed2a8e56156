"""Resume like a trainer would, after each heal: read the newest checkpoint back in full.

A pod that is Ready and lists its checkpoints has not yet shown that a trainer can continue
from it. ``GET /resume`` makes the writer read its newest checkpoint byte for byte and verify
it; the answer (step and digest) is recorded as a ``resume`` op, which the resume checker holds
against what was acknowledged before the fault. Retried until it answers or a deadline
passes, every attempt recorded, so the report can say how long after the heal the ordinal
became resumable and what it said before.

Stdlib HTTP, like the probe: it runs in the pytest process beside the kubernetes client.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import cast

from harness import history, ops


def resume_process(ordinal: int) -> str:
    return f"resume-{ordinal}"


def _get_resume(url: str, timeout_s: float) -> tuple[int, dict[str, object]]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", "/resume")
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    body = json.loads(raw) if raw else {}
    return resp.status, body if isinstance(body, dict) else {}


def attempt(recorder: history.HistoryWriter, ordinal: int, url: str | None, after_fault: int | None,
            *, timeout_s: float = 30.0) -> bool:
    """One resume, recorded; True when the writer answered with a verified checkpoint."""
    process = resume_process(ordinal)
    invoke: ops.ResumeInvoke = {"ordinal": ordinal, "after_fault": after_fault}
    payload = cast(history.JsonValue, dict(invoke))
    recorder.record("invoke", ops.RESUME, payload, process=process)
    if url is None:
        recorder.record("fail", ops.RESUME, payload, error="no endpoint for the ordinal", process=process)
        return False
    try:
        status, body = _get_resume(url, timeout_s)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        recorder.record("info", ops.RESUME, payload, error=f"{type(exc).__name__}: {exc}", process=process)
        return False
    if status != 200:
        recorder.record("fail", ops.RESUME, payload, error=f"HTTP {status}: {body.get('error')}", process=process)
        return False
    skipped = body.get("skipped")
    value: ops.ResumeOk = {
        "ordinal": ordinal,
        "after_fault": after_fault,
        "step": int(cast(int, body["step"])),
        "digest": str(body["digest"]),
        "bytes": int(cast(int, body["bytes"])),
        "read_seconds": float(cast(float, body["read_seconds"])),
        "skipped": [f"{s.get('step')}: {s.get('problem')}" for s in skipped if isinstance(s, dict)]
        if isinstance(skipped, list) else [],
    }
    recorder.record("ok", ops.RESUME, cast(history.JsonValue, dict(value)), process=process)
    return True


def until_resumed(recorder: history.HistoryWriter, ordinals: list[int], endpoints: Callable[[], Mapping[int, str]],
                  after_fault: int | None, *, deadline_s: float, interval_s: float = 0.5) -> list[int]:
    """Resume every ordinal, retrying each until it answers or the deadline; returns those that
    never did (the checker judges them; the run goes on)."""
    pending = sorted(set(ordinals))
    stop = threading.Event()  # never set: waiting on it is the retry interval, not a guess
    end = time.monotonic() + deadline_s
    while pending:
        urls = endpoints()
        pending = [o for o in pending if not attempt(recorder, o, urls.get(o), after_fault)]
        if not pending or time.monotonic() + interval_s > end:
            break
        stop.wait(interval_s)
    return pending
