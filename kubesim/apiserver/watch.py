"""WATCH: newline-delimited ``{"type","object"}`` events over one chunked HTTP response.

Semantics follow ``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go`` and the
watch cache (``storage/cacher``):

* ``resourceVersion`` "" or "0": synthetic ADDED events for the current objects, then changes.
  A numeric version: changes after it; one older than the kept window gets an in-stream ERROR
  event carrying a 410 Expired Status (what the cacher's error watcher sends).
* Selectors are applied to both the old and the new object, so an object that starts or stops
  matching is seen as ADDED or DELETED, as the cacher does.
* ``allowWatchBookmarks``: BOOKMARK events every ``bookmark_interval`` seconds carrying the
  newest resourceVersion the watcher has passed.
* ``sendInitialEvents=true`` (client-go's watch-list, default-on in recent client-go) is
  implemented rather than refused: initial ADDED events, then a BOOKMARK annotated
  ``k8s.io/initial-events-end: "true"``. As upstream validates it, it requires
  ``resourceVersionMatch=NotOlderThan`` and ``allowWatchBookmarks=true`` (422 otherwise).
* ``timeoutSeconds`` ends the stream cleanly; without it, after 30 minutes (upstream picks
  30-60 minutes at random).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from kubesim.apiserver import errors, fielderrors, listing, rest, store, tables

DEFAULT_TIMEOUT = 1800.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_POLL = 1.0  # how often an idle watch checks that its client is still there


@dataclasses.dataclass(frozen=True)
class Settings:
    bookmark_interval: float = 60.0


def _flag(query: rest.Query, key: str) -> bool | None:
    value = query.get(key)
    if value is None:
        return None
    return value.lower() in ("1", "true", "yes")


def _invalid(field: str, detail: str, value: object) -> errors.ApiError:
    return errors.invalid("", "ListOptions", "", [fielderrors.FieldError(
        type="FieldValueForbidden", field=field, detail=detail, value=value)])


@dataclasses.dataclass
class Plan:
    api: rest.Api
    target: rest.Target
    match: listing.Matcher
    start_rv: int | None  # None: begin with the current state
    initial_events: bool
    initial_end_bookmark: bool
    bookmarks: bool
    timeout: float
    settings: Settings
    as_table: bool = False
    include: str = "Metadata"
    _headers_sent: bool = False

    def _render(self, obj: dict[str, Any], raw: bytes) -> bytes:
        """The event's object: as stored/presented, or as a one-row Table (column headers only once)."""
        res = self.target.resource
        if not self.as_table:
            return raw
        presented = json.loads(raw) if res.group == "events.k8s.io" else obj
        meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
        out = tables.table(res.kind, [(obj, presented)], meta, self.include, headers=not self._headers_sent)
        self._headers_sent = True
        return out

    def _line(self, etype: str, raw: bytes) -> bytes:
        return b'{"type":"' + etype.encode() + b'","object":' + raw + b"}\n"

    def _bookmark(self, rv: int, initial_end: bool = False) -> bytes:
        res = self.target.resource
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return self._line("BOOKMARK", store.dumps({"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}))

    def run(self, send: Callable[[bytes], None], client_gone: Callable[[], bool]) -> None:
        """Stream events until the timeout, the client leaving or the server closing."""
        api, res = self.api, self.target.resource
        deadline = time.monotonic() + self.timeout
        if self.start_rv is None:
            items, pos = api.store.scan(self.target.rkey, self.target.namespace or None)
            if self.initial_events:
                batch = [self._line("ADDED", self._render(e.obj, api.present(res, e)))
                         for _k, e in items if self.match(e.obj)]
                for i in range(0, len(batch), 200):
                    send(b"".join(batch[i:i + 200]))
            if self.initial_end_bookmark:
                send(self._bookmark(pos, initial_end=True))
        else:
            pos = self.start_rv
        next_bookmark = time.monotonic() + self.settings.bookmark_interval
        rkey = self.target.rkey
        while True:
            now = time.monotonic()
            if now >= deadline or api.store.closed:
                return
            wait = min(deadline - now, _POLL)
            if self.bookmarks:
                wait = max(0.0, min(wait, next_bookmark - now))
            try:
                events = api.store.events_after(pos, wait)
            except store.Compacted as exc:
                send(self._line("ERROR", errors.too_old_resource_version(exc.requested, exc.oldest).body()))
                return
            out: list[bytes] = []
            for ev in events:
                pos = ev.rv
                if ev.rkey != rkey:
                    continue
                line = self._translate(ev)
                if line:
                    out.append(line)
            if out:
                send(b"".join(out))
            elif not events and client_gone():
                return
            if self.bookmarks and time.monotonic() >= next_bookmark:
                send(self._bookmark(pos))
                next_bookmark = time.monotonic() + self.settings.bookmark_interval

    def _translate(self, ev: store.Event) -> bytes | None:
        res = self.target.resource
        now_match = self.match(ev.obj)
        if ev.type == "MODIFIED":
            was = ev.prev is not None and self.match(ev.prev)
            if now_match and was:
                etype = "MODIFIED"
            elif now_match:
                etype = "ADDED"
            elif was:
                etype = "DELETED"
            else:
                return None
        elif now_match:
            etype = ev.type
        else:
            return None
        raw = ev.raw if res.group != "events.k8s.io" else self.api.present_obj(res, ev.obj)
        return self._line(etype, self._render(ev.obj, raw))


def prepare(api: rest.Api, t: rest.Target, query: rest.Query, settings: Settings, as_table: bool = False) -> Plan:
    """Validate the watch request (errors here are ordinary HTTP errors, before the stream starts)."""
    match = listing.matcher(t, query)
    if t.name:
        raise errors.method_not_allowed()
    rv_text = query.get("resourceVersion", "")
    send_initial = _flag(query, "sendInitialEvents")
    bookmarks = bool(_flag(query, "allowWatchBookmarks"))
    timeout_text = query.get("timeoutSeconds")
    timeout = DEFAULT_TIMEOUT
    if timeout_text:
        try:
            timeout = float(int(timeout_text))
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds {timeout_text!r}") from None
    if send_initial is not None:
        if query.get("resourceVersionMatch") != "NotOlderThan":
            raise _invalid("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to "
                           "NotOlderThan", query.get("resourceVersionMatch", ""))
        if send_initial and not bookmarks:
            raise _invalid("allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true",
                           False)
    start_rv: int | None = None
    if rv_text not in ("", "0"):
        try:
            start_rv = int(rv_text)
        except ValueError:
            raise errors.bad_request(f'resourceVersion: Invalid value: "{rv_text}": must be an integer') from None
    if send_initial:
        start_rv = None  # NotOlderThan: the current state is never older than what was asked for
        initial = True
    elif send_initial is False:
        initial = False
        if start_rv is None:
            start_rv = api.store.resource_version
    else:
        initial = start_rv is None
    return Plan(api, t, match, start_rv, initial, bool(send_initial), bookmarks, timeout, settings,
                as_table=as_table, include=query.get("includeObject", "Metadata"))
