"""Recording core/v1 Events the way client-go's ``record.EventRecorder`` does.

An event names the involved object, a reason and a message; a repeat of the same (source,
object, type, reason, message) within the process bumps ``count`` and ``lastTimestamp`` of the
existing Event instead of creating a new one (client-go ``events_cache.go`` EventCorrelator). Events
are sent from one background thread: recording never blocks or fails a reconcile (upstream's
broadcaster is asynchronous too and drops events when its queue is full). Cluster-scoped objects
(Nodes) get their events in the ``default`` namespace, as upstream.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from typing import Any, Literal

from kubesim import client, timestamps

EventType = Literal["Normal", "Warning"]

log = logging.getLogger("kubesim.events")

_QUEUE_SIZE = 1000


_now = timestamps.now


class _Sender:
    """The one thread that writes events for every recorder sharing it."""

    def __init__(self, api: client.Client) -> None:
        self.api = api
        self.pending: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(_QUEUE_SIZE)
        self.seen: dict[tuple[str, ...], tuple[str, str, int]] = {}  # key -> (namespace, name, count)
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.in_flight = 0
        self.thread: threading.Thread | None = None

    def submit(self, component: str, event: dict[str, Any]) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="event-sender", daemon=True)
                self.thread.start()
            self.in_flight += 1
        try:
            self.pending.put_nowait((component, event))
        except queue.Full:
            with self.lock:
                self.in_flight -= 1
                self.idle.notify_all()
            log.warning("event queue full, dropping %s %s", event["reason"], event["message"])

    def _run(self) -> None:
        while True:
            item = self.pending.get()
            if item is None:
                return
            try:
                self._send(*item)
            except client.ApiError as exc:
                log.info("could not record event %s: %s", item[1].get("reason"), exc)
            except Exception:
                log.exception("recording event failed")
            finally:
                with self.lock:
                    self.in_flight -= 1
                    self.idle.notify_all()

    def _send(self, component: str, event: dict[str, Any]) -> None:
        inv = event["involvedObject"]
        key = (component, inv.get("uid", ""), inv.get("namespace", ""), inv.get("name", ""), event["type"],
               event["reason"], event["message"])
        previous = self.seen.get(key)
        if previous is not None:
            ns, name, count = previous
            try:
                self.api.patch("events", name, {"count": count + 1, "lastTimestamp": event["lastTimestamp"]}, ns)
                self.seen[key] = (ns, name, count + 1)
                return
            except client.NotFound:
                pass
        created = self.api.create("events", event, event["metadata"]["namespace"])
        meta = created.get("metadata") or {}
        self.seen[key] = (str(meta.get("namespace")), str(meta.get("name")), 1)
        if len(self.seen) > 4096:  # client-go's LRU holds 4096 entries
            self.seen.pop(next(iter(self.seen)))

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted event was sent (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True


class Recorder:
    """``event(obj, type, reason, message)`` for one component (``source.component`` of the Event)."""

    def __init__(self, api: client.Client, component: str = "kubesim-controller-manager", host: str = "",
                 *, _sender: _Sender | None = None) -> None:
        self.component = component
        self.host = host
        self._sender = _sender or _Sender(api)

    def with_component(self, component: str, host: str = "") -> Recorder:
        """A recorder for another component sharing this one's sender thread and dedup cache."""
        return Recorder(self._sender.api, component, host, _sender=self._sender)

    def event(self, obj: dict[str, Any], type_: EventType, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        stamp = _now()
        involved = {
            "kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
            "name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", ""),
        }
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {
                # client-go: fmt.Sprintf("%v.%x", ref.Name, t.UnixNano()); a uuid suffix keeps names unique
                # across processes that record in the same nanosecond.
                "name": f"{meta.get('name', 'unknown')}.{time.time_ns():x}{uuid.uuid4().hex[:4]}",
                "namespace": namespace,
            },
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        self._sender.submit(self.component, event)

    def normal(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, "Normal", reason, message)

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, "Warning", reason, message)

    def flush(self, timeout: float = 10.0) -> bool:
        return self._sender.flush(timeout)
