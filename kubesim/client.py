"""The one HTTPS client of kubesim's controllers and kubelets: plain JSON over ``http.client``.

Why not the official ``kubernetes`` package: controllers need a small, thread-safe, keep-alive
client whose watch can be stopped from another thread and whose errors carry the Status
``reason`` (client-go's ``IsNotFound``/``IsConflict``) — and they must talk HTTPS exactly like
kube-controller-manager does, never call store internals, so a control-plane restart is survived
by re-listing.

Contract (used by the controllers and the kubelet):

* Objects are plain dicts (:data:`Obj`); ``plural`` is the resource plural (``"pods"``,
  ``"statefulsets"``; ``"events"`` is the core one), or ``"plural.group"`` to pick a group.
* Failures the server answered are :class:`ApiError` subclasses by status/reason. A server that
  cannot be reached (control plane down or restarting) is :class:`Unreachable` (status 0), also an
  ``ApiError`` so one ``except`` covers both; callers that must survive restarts retry on it.
* :meth:`Client.watch` raises :class:`Gone` when the server answers 410 or sends an in-stream
  ERROR with code 410 (resourceVersion too old); other in-stream ERRORs raise :class:`ApiError`.
  It yields ``(type, object)`` for ADDED / MODIFIED / DELETED / BOOKMARK and ends when the server
  ends the stream (timeoutSeconds). :meth:`WatchStream.close` may be called from another thread to
  stop a blocked watch.
* One keep-alive connection per thread (``threading.local``); each watch has its own connection.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from kubesim import state
from kubesim.apiserver import resources

Obj = dict[str, Any]
PatchType = Literal["merge", "strategic", "json", "apply"]

_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

_RETRYABLE_ON_REUSE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                       http.client.BadStatusLine, ssl.SSLEOFError)


class ApiError(Exception):
    """The server answered with a failure ``Status`` (or, for :class:`Unreachable`, did not answer)."""

    def __init__(self, status: int, reason: str, message: str, body: Obj | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body: Obj = body or {}


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409 with reason Conflict: a stale resourceVersion or failed precondition."""


class AlreadyExists(ApiError):
    pass


class Invalid(ApiError):
    pass


class TooManyRequests(ApiError):
    pass


class Gone(ApiError):
    """410: the resourceVersion is older than the server keeps; re-list."""


class Unreachable(ApiError):
    """No answer: connection refused/reset or timed out (status 0). Retry later."""


def error_from(status: int, body: bytes) -> ApiError:
    """Map an HTTP failure to the exception class client-go's helpers would classify it as."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    doc: Obj = parsed if isinstance(parsed, dict) else {}
    reason = str(doc.get("reason") or "")
    message = str(doc.get("message") or body[:200].decode(errors="replace"))
    code = int(doc.get("code") or status)
    cls: type[ApiError] = ApiError
    if code == 404:
        cls = NotFound
    elif code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code == 422:
        cls = Invalid
    elif code == 429:
        cls = TooManyRequests
    elif code == 410:
        cls = Gone
    return cls(code, reason, message, doc)


def resolve(plural: str) -> resources.Resource:
    """``pods`` / ``statefulsets`` / ``events`` (core) / ``events.events.k8s.io`` → the served resource."""
    name, _, group = plural.partition(".")
    rows = [r for r in resources.RESOURCES if r.plural == name and (not group or r.group == group)]
    if not rows:
        raise ValueError(f"kubesim serves no resource {plural!r}")
    rows.sort(key=lambda r: r.group != "")  # the core group wins ("events")
    return rows[0]


def path_of(res: resources.Resource, namespace: str = "", name: str = "", subresource: str = "") -> str:
    base = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
    if res.namespaced and namespace:
        base += f"/namespaces/{urllib.parse.quote(namespace, safe='')}"
    base += f"/{res.plural}"
    if name:
        base += f"/{urllib.parse.quote(name, safe='')}"
    if subresource:
        base += f"/{subresource}"
    return base


def _query(params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v != ""}
    return "?" + urllib.parse.urlencode(kept) if kept else ""


class WatchStream:
    """An open watch: iterate for ``(type, object)``; ``close()`` from any thread ends it."""

    def __init__(self, conn: http.client.HTTPSConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[tuple[str, Obj]]:
        return self._events()

    def _events(self) -> Iterator[tuple[str, Obj]]:
        try:
            while not self._closed.is_set():
                try:
                    line = self._resp.readline()
                except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
                    # AttributeError: http.client's reader after close() from another thread dropped its fp
                    if self._closed.is_set():
                        return
                    raise Unreachable(0, "Unreachable", f"watch stream broke: {exc}") from exc
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                event = json.loads(line)
                etype = str(event.get("type"))
                obj = event.get("object") or {}
                if etype == "ERROR":
                    code = int(obj.get("code") or 500)
                    raise error_from(code, json.dumps(obj).encode())
                yield etype, obj
        finally:
            self.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()


class Client:
    """A thread-safe kubesim API client (one keep-alive connection per thread)."""

    def __init__(self, host: str, port: int, ca_pem: bytes, token: str, *, timeout: float = 30.0) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self._ssl = ssl.create_default_context(cadata=ca_pem.decode())
        self._local = threading.local()
        self.port_file: Path | None = None

    # ----- construction -----------------------------------------------------------------------

    @classmethod
    def from_state(cls, state_dir: Path) -> Client:
        """From ``kubesim up``'s state directory: its CA, token and the port the server listens on."""
        layout = state.Layout(Path(state_dir).resolve())
        port = state.read_state(layout).get("port")
        if not isinstance(port, int):
            try:
                port = int(layout.port_file.read_text().strip())
            except (OSError, ValueError):
                raise ValueError(f"{layout.root} has no listening port recorded; is kubesim up?") from None
        out = cls("127.0.0.1", port, layout.ca_cert.read_bytes(), layout.token.read_text().strip())
        out.port_file = layout.port_file
        return out

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Client:
        cfg = yaml.safe_load(Path(path).read_text())
        cluster = cfg["clusters"][0]["cluster"]
        url = urllib.parse.urlsplit(cluster["server"])
        ca = base64.b64decode(cluster["certificate-authority-data"])
        return cls(url.hostname or "127.0.0.1", url.port or 443, ca, cfg["users"][0]["user"]["token"])

    # ----- transport ----------------------------------------------------------------------------

    def _new_conn(self, timeout: float | None) -> http.client.HTTPSConnection:
        if self.port_file is not None:
            # A restarted control plane may listen on another port (its old one taken): follow the file it
            # writes, so kubelets and other long-lived clients of a state directory reconnect by themselves.
            with contextlib.suppress(OSError, ValueError):
                self.port = int(self.port_file.read_text().strip())
        return http.client.HTTPSConnection(self.host, self.port, context=self._ssl, timeout=timeout)

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                   "User-Agent": "kubesim-client"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def request(self, method: str, path: str, body: Obj | list[Any] | None = None, *,
                content_type: str = "application/json") -> Obj:
        """Send one request; the decoded JSON answer, or the matching :class:`ApiError`."""
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        headers = self._headers(content_type if data is not None else None)
        for attempt in range(2):
            conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self._local.conn = self._new_conn(self.timeout)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except _RETRYABLE_ON_REUSE as exc:
                conn.close()
                self._local.conn = None
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection; nothing was processed
                raise Unreachable(0, "Unreachable", f"{method} {path}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                raise Unreachable(0, "Unreachable", f"{method} {path}: {exc}") from exc
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                self._local.conn = None
            if resp.status >= 400:
                raise error_from(resp.status, raw)
            if not raw:
                return {}
            out = json.loads(raw)
            return out if isinstance(out, dict) else {"items": out}
        raise AssertionError("unreachable")

    def raw_get(self, path: str) -> bytes:
        """GET returning bytes (pods/log)."""
        conn = self._new_conn(self.timeout)
        try:
            conn.request("GET", path, headers=self._headers(None))
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(0, "Unreachable", f"GET {path}: {exc}") from exc
        finally:
            conn.close()
        if resp.status >= 400:
            raise error_from(resp.status, raw)
        return raw

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ----- verbs --------------------------------------------------------------------------------

    def get(self, plural: str, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        return self.request("GET", path_of(resolve(plural), namespace, name, subresource))

    def list(self, plural: str, namespace: str = "", *, label_selector: str = "",
             field_selector: str = "") -> tuple[builtins.list[Obj], str]:
        """All matching objects and the list's resourceVersion (the point a watch continues from)."""
        res = resolve(plural)
        out = self.request("GET", path_of(res, namespace) + _query(
            {"labelSelector": label_selector, "fieldSelector": field_selector}))
        items = out.get("items") or []
        kind = res.kind if res.group != "events.k8s.io" else "Event"
        for item in items:  # list items carry no apiVersion/kind on the wire; controllers like them set
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", kind)
        return items, str((out.get("metadata") or {}).get("resourceVersion") or "")

    def create(self, plural: str, obj: Obj, namespace: str = "") -> Obj:
        res = resolve(plural)
        ns = namespace or str((obj.get("metadata") or {}).get("namespace") or "")
        return self.request("POST", path_of(res, ns), obj)

    def update(self, plural: str, obj: Obj, *, subresource: str = "") -> Obj:
        """PUT: namespace and name come from ``obj.metadata``; a stale resourceVersion raises :class:`Conflict`."""
        meta = obj.get("metadata") or {}
        res = resolve(plural)
        return self.request("PUT", path_of(res, str(meta.get("namespace") or ""), str(meta["name"]), subresource),
                            obj)

    def patch(self, plural: str, name: str, body: Obj | builtins.list[Any], namespace: str = "", *,
              patch_type: PatchType = "merge", subresource: str = "") -> Obj:
        return self.request("PATCH", path_of(resolve(plural), namespace, name, subresource), body,
                            content_type=_CONTENT_TYPES[patch_type])

    def delete(self, plural: str, name: str, namespace: str = "", *, grace_period_seconds: int | None = None,
               propagation_policy: str | None = None, preconditions: Obj | None = None) -> Obj | None:
        """DELETE; the answer is the object (graceful/finalizers pending) or ``None`` when a Status came back."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions is not None:
            options["preconditions"] = preconditions
        out = self.request("DELETE", path_of(resolve(plural), namespace, name), options)
        return None if out.get("kind") == "Status" else out

    def post_subresource(self, plural: str, name: str, namespace: str, subresource: str, body: Obj) -> Obj:
        """POST pods/binding, pods/eviction."""
        return self.request("POST", path_of(resolve(plural), namespace, name, subresource), body)

    def watch(self, plural: str, namespace: str = "", *, resource_version: str = "", label_selector: str = "",
              field_selector: str = "", timeout_seconds: int = 300, allow_bookmarks: bool = True) -> WatchStream:
        """Open a watch; raises :class:`Gone` at once if the server refuses the resourceVersion with 410."""
        res = resolve(plural)
        params = {"watch": "1", "resourceVersion": resource_version, "labelSelector": label_selector,
                  "fieldSelector": field_selector, "timeoutSeconds": str(timeout_seconds),
                  "allowWatchBookmarks": "true" if allow_bookmarks else ""}
        path = path_of(res, namespace) + _query(params)
        conn = self._new_conn(timeout_seconds + 30.0)
        try:
            conn.request("GET", path, headers=self._headers(None))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Unreachable(0, "Unreachable", f"watch {path}: {exc}") from exc
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise error_from(resp.status, raw)
        return WatchStream(conn, resp)


def meta(obj: Obj) -> Obj:
    """``obj["metadata"]`` (created if absent): the one place controllers reach into metadata untyped."""
    out = obj.setdefault("metadata", {})
    assert isinstance(out, dict)
    return out


def key_of(obj: Obj) -> str:
    """The workqueue key: ``namespace/name`` or ``name`` for cluster-scoped objects."""
    m = obj.get("metadata") or {}
    ns = m.get("namespace") or ""
    return f"{ns}/{m.get('name')}" if ns else str(m.get("name"))
