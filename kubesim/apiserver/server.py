"""The HTTPS front end: TLS, bearer-token authentication, body limits, routing, watch streaming.

Why the standard library (``http.server`` + ``ssl``) and not an async framework: a thread per
connection gives kubectl and urllib3 pipelined keep-alive and lets a watch block on the
store's condition variable without an event loop; the measured speed (``python -m kubesim
bench``) clears the targets without a new dependency. The TLS handshake runs in the
connection's own thread (not in ``accept``), so a client that never finishes its handshake
cannot stall the listener, and every handler failure becomes a 500 Status rather than a dead
thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import http.server
import json
import logging
import select
import socket
import ssl
import threading
import time
import traceback
import urllib.parse
from pathlib import Path
from typing import Any

from kubesim.apiserver import (
    authn,
    authz,
    deletion,
    discovery,
    errors,
    eviction,
    fieldcheck,
    listing,
    openapi,
    openapi_v2,
    protobuf,
    resources,
    rest,
    reviews,
    satokens,
    store,
    streaming,
    subresources,
    tables,
    watch,
)

log = logging.getLogger("kubesim.apiserver")

MAX_BODY = 3 * 1024 * 1024
"""Upstream's request-body limit (``MaxRequestBodyBytes``, 3 MiB): larger bodies get 413."""

_PUBLIC = frozenset({"/healthz", "/livez", "/readyz", "/version"})
"""Paths a real apiserver shows anonymous clients (system:public-info-viewer)."""

_REASONS = {200: "OK", 414: "Request-URI Too Long", 431: "Request Header Fields Too Large",
            501: "Not Implemented", 505: "HTTP Version Not Supported",
            201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
            409: "Conflict", 410: "Gone", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclasses.dataclass(frozen=True)
class Route:
    target: rest.Target
    watch: bool = False


def route(path: str, query: dict[str, str]) -> Route | None:
    """Map a URL path to a resource target; None if it names no served resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest_parts = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest_parts = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest_parts) and rest_parts[0] == "watch"
    if legacy_watch:
        rest_parts = rest_parts[1:]
    if not rest_parts:
        return None
    namespace = ""
    if rest_parts[0] == "namespaces" and len(rest_parts) >= 3:
        candidate = resources.by_gvr(group, version, rest_parts[2])
        if candidate is not None and candidate.namespaced:
            namespace = rest_parts[1]
            rest_parts = rest_parts[2:]
    res = resources.by_gvr(group, version, rest_parts[0])
    if res is None or len(rest_parts) > 3:
        return None
    if namespace and not res.namespaced:
        return None
    name = rest_parts[1] if len(rest_parts) > 1 else ""
    sub = rest_parts[2] if len(rest_parts) > 2 else ""
    if sub and res.subresource(sub) is None:
        return None
    if not res.namespaced and namespace:
        return None
    return Route(rest.Target(res, namespace, name, sub),
                 watch=legacy_watch or query.get("watch", "").lower() in ("1", "true"))


def api_group_path(path: str) -> bool:
    """True if a served group/version's web service claims the path (``/api/v1/...``, ``/apis/apps/v1/...``).

    Upstream (``k8s.io/apiserver/pkg/server/handler.go``, the director) hands such paths to
    go-restful, whose 404 for an unknown resource becomes a ``Status`` (``serviceErrorHandler``:
    NotFound, "the server could not find the requested resource"); any other path, such as a group
    the server does not serve (``/apis/authorization.k8s.io/v1/...``), reaches the NotFoundHandler,
    which answers plain text ``404 page not found``.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return parts[1] == "v1"
    if len(parts) >= 3 and parts[0] == "apis":
        return (parts[1], parts[2]) in resources.group_versions()
    return False


class ApiServer:
    """Everything a request handler needs (shared by all connection threads).

    ``state_dir`` (the server's state directory) enables the named users of ``DIR/tokens.csv`` and
    ``keys`` the service-account tokens (:mod:`kubesim.apiserver.authn`); the admin token always works.
    """

    def __init__(self, api: rest.Api, token: str, watch_settings: watch.Settings, *,
                 state_dir: Path | None = None, keys: satokens.Keys | None = None) -> None:
        self.api = api
        self.token = token.encode()
        self.watch_settings = watch_settings
        self.address = ""
        self.keys = keys
        self.static_tokens = authn.StaticTokens(state_dir / authn.TOKEN_FILE) if state_dir is not None else None
        self.authorizer = authz.Authorizer(api.store)

    def authenticated(self, header: str | None) -> bool:
        return self.authenticate(header) is not None

    def authenticate(self, header: str | None) -> authn.UserInfo | None:
        """The user an ``Authorization`` header names (None: no token, or one no authenticator accepts)."""
        token = authn.bearer(header)
        return self.authenticate_token(token) if token is not None else None

    def authenticate_token(self, token: str) -> authn.UserInfo | None:
        if hmac.compare_digest(token.encode(), self.token):
            return authn.ADMIN
        if self.static_tokens is not None:
            user = self.static_tokens.lookup(token)
            if user is not None:
                return user.with_authenticated()
        if self.keys is not None and token.count(".") == 2:
            found = satokens.authenticate(self.api.store, self.keys, token)
            if isinstance(found, authn.UserInfo):
                return found.with_authenticated()
            if isinstance(found, satokens.Rejected):
                log.info("service account token rejected: %s", found.reason)
        return None

    def impersonate(self, user: authn.UserInfo, headers: Any) -> authn.UserInfo:
        """``WithImpersonation``: act as ``Impersonate-User`` (+ groups, uid, extra) if ``user`` may; 403 otherwise."""
        name = headers.get("Impersonate-User")
        groups = tuple(headers.get_all("Impersonate-Group") or ())
        uid = headers.get("Impersonate-Uid")
        extra: dict[str, tuple[str, ...]] = {}
        for key in headers:
            if key.lower().startswith("impersonate-extra-"):
                extra[urllib.parse.unquote(key[len("impersonate-extra-"):]).lower()] = tuple(headers.get_all(key))
        if name is None:
            if groups or uid or extra:
                raise errors.bad_request(f"requested {[*groups, *extra]} without impersonating a user")
            return user
        checks: list[authz.Attributes] = []
        sa = satokens.split_username(name)
        if sa is not None:
            checks.append(authz.Attributes(user, "impersonate", True, namespace=sa[0], resource="serviceaccounts",
                                           name=sa[1]))
        else:
            checks.append(authz.Attributes(user, "impersonate", True, resource="users", name=name))
        checks += [authz.Attributes(user, "impersonate", True, resource="groups", name=g) for g in groups]
        if uid is not None:
            checks.append(authz.Attributes(user, "impersonate", True, group="authentication.k8s.io", resource="uids",
                                           name=uid))
        checks += [authz.Attributes(user, "impersonate", True, group="authentication.k8s.io", resource="userextras",
                                    subresource=key, name=value) for key, values in extra.items() for value in values]
        for attrs in checks:
            decision = self.authorizer.authorize(attrs)
            if not decision.allowed:
                raise authz.forbidden(attrs, decision.reason)
        if sa is not None and not groups:
            groups = satokens.groups_of(sa[0])
        acting = authn.UserInfo(name, uid or "", groups, extra)
        return acting.with_authenticated() if name != "system:anonymous" else acting


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim"
    timeout = 600  # idle keep-alive connections are closed after this long
    server: TLSServer
    user: authn.UserInfo | None = None

    # -- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        head = (
            f"HTTP/1.1 {code} {_REASONS.get(code, 'Unknown')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-cache, private\r\n"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        for text in fieldcheck.warnings.get() or ():
            escaped = text.replace("\\", "\\\\").replace('"', '\\"')
            head += f'Warning: 299 - "{escaped}"\r\n'
        self.wfile.write(head.encode() + b"\r\n" + body)

    def _send_error(self, err: errors.ApiError) -> None:
        self._send(err.code, err.body())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level failures (bad request line, unknown method) as Status objects too."""
        self.close_connection = True
        reason = {400: "BadRequest", 414: "RequestURITooLong", 431: "RequestHeaderFieldsTooLarge",
                  501: "NotImplemented", 505: "HTTPVersionNotSupported"}.get(code, "BadRequest")
        with contextlib.suppress(OSError):
            self._send(code, errors.ApiError(code, reason, message or explain or _REASONS.get(code, "error")).body())

    def _discard_body(self, limit: int = 32 * 1024 * 1024) -> None:
        """Read and drop a rejected request's body so the client can read our answer (then we close)."""
        self.close_connection = True
        try:
            remaining = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if remaining > limit:
            return
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                return
            remaining -= len(chunk)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            raise errors.bad_request(f"invalid Content-Length {length_text!r}") from None
        if length > MAX_BODY:
            self._discard_body()
            raise errors.entity_too_large(MAX_BODY)
        if length < 0:
            self.close_connection = True
            raise errors.bad_request(f"invalid Content-Length {length_text!r}")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise errors.bad_request("malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            if len(out) + size > MAX_BODY:
                self.close_connection = True
                raise errors.entity_too_large(MAX_BODY)
            out += self.rfile.read(size)
            self.rfile.readline(1024)

    # -- dispatch -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        if not streaming.claims("HEAD", self.path):
            self.close_connection = True  # an error answer to HEAD carries a body: do not reuse the connection
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        fieldcheck.warnings.set([])
        code = 500
        try:
            code = self._serve(method)
        except errors.ApiError as err:
            code = err.code
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True
            return
        except Exception:  # a bug must cost one request, never the connection thread or the server
            log.warning("%s %s failed:\n%s", method, self.path, traceback.format_exc())
            self.close_connection = True
            try:
                self._send_error(errors.internal("unexpected server error; see apiserver.log"))
            except OSError:
                return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d (%.1f ms)", method, self.path, code, (time.perf_counter() - started) * 1000)

    def _serve(self, method: str) -> int:
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        user = app.authenticate(self.headers.get("Authorization"))
        if user is None and path not in _PUBLIC:
            if self.headers.get("Content-Length") not in (None, "0"):
                self._discard_body(MAX_BODY)
            raise errors.unauthorized()
        if user is not None:
            try:
                user = self._authorize(method, url.path, query, user)
            except errors.ApiError:
                if self.headers.get("Content-Length") not in (None, "0"):
                    self._discard_body(MAX_BODY)
                raise
        self.user = user
        authz.current_user.set(user)
        if streaming.claims(method, self.path):  # upgrades, proxies, log follow: they read the body themselves
            return streaming.serve(self, method)
        body = self._read_body()  # also for GET: unread bytes would corrupt the next keep-alive request
        if method == "GET":
            fixed = self._fixed(path, app)
            if fixed is not None:
                code, payload, ctype = fixed
                self._send(code, payload, ctype)
                return code
        found = route(path, query)
        if found is None:
            if not api_group_path(path):  # upstream's NotFoundHandler (http.NotFound), not a Status
                self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
                return 404
            raise errors.resource_not_found()
        # The body is decoded only once the URL names a served resource: upstream routes first
        # (an unknown resource is 404 whatever the body), then its handler decodes (415, 400).
        if body and method in ("POST", "PUT", "DELETE"):
            ctype = self.headers.get("Content-Type", "application/json").split(";", 1)[0].strip().lower()
            if ctype == protobuf.MEDIA_TYPE:
                body = store.dumps(protobuf.decode(body))
            elif ctype not in ("application/json", "", "*/*"):
                raise errors.unsupported_media_type(ctype, ("application/json", protobuf.MEDIA_TYPE))
        code, payload = self._resource(method, found, query, body)
        if code == 0:
            return 200  # a watch already streamed its response
        self._send(code, payload)
        return code

    def _authorize(self, method: str, raw_path: str, query: dict[str, str], user: authn.UserInfo) -> authn.UserInfo:
        """Impersonation, then the authorizers; 403 Forbidden with upstream's message. Returns the acting user."""
        app = self.server.app
        if any(k.lower().startswith("impersonate-") for k in self.headers):
            user = app.impersonate(user, self.headers)
        if authn.MASTERS in user.groups:
            return user  # the privileged-group authorizer allows everything: skip computing the attributes
        attrs = authz.request_attributes(method, urllib.parse.unquote(raw_path), query, user)
        decision = app.authorizer.authorize(attrs)
        if not decision.allowed:
            raise authz.forbidden(attrs, decision.reason)
        if attrs.resource == "pods" and attrs.subresource in ("exec", "attach", "portforward") and attrs.verb == "get":
            # AuthorizePodWebsocketUpgradeCreatePermission (beta, on since 1.35): a WebSocket upgrade needs create too
            create = dataclasses.replace(attrs, verb="create")
            decision = app.authorizer.authorize(create)
            if not decision.allowed:
                raise authz.forbidden(create, decision.reason)
        return user

    def _fixed(self, path: str, app: ApiServer) -> tuple[int, bytes, str] | None:
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, b"ok", "text/plain; charset=utf-8"
        if path == "/version":
            return 200, discovery.version(), "application/json"
        if path == "/api":
            return 200, discovery.core_versions(app.address), "application/json"
        if path == "/apis":
            return 200, discovery.group_list(), "application/json"
        if path == "/openapi/v2":
            return openapi_v2.serve(self.headers.get("Accept", ""))
        if path == "/openapi/v3":
            return 200, openapi.root(), "application/json"
        if path.startswith("/openapi/v3/"):
            spec = openapi.group_version_doc(path[len("/openapi/v3/"):])
            if spec is None:
                return 404, b"404 page not found\n", "text/plain; charset=utf-8"
            return 200, spec, "application/json"
        parts = path.strip("/").split("/")
        doc: bytes | None = None
        if parts == ["api", "v1"]:
            doc = discovery.resource_list("", "v1")
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(parts[1], parts[2])
        else:
            return None
        if doc is None:
            return 404, b"404 page not found\n", "text/plain; charset=utf-8"
        return 200, doc, "application/json"

    def _resource(self, method: str, found: Route, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
        app = self.server.app
        api = app.api
        t = found.target
        res = t.resource
        verbs = res.verbs
        if t.subresource:
            return self._subresource(method, t, query, body)
        as_table = method == "GET" and tables.wants_table(self.headers.get("Accept", ""))
        if method == "GET" and found.watch and t.name and "watch" in verbs:
            # watching one object (`.../pods/x?watch=1`, `/watch/.../pods/x`) = the collection filtered by name
            selector = ",".join(s for s in (query.get("fieldSelector", ""), f"metadata.name={t.name}") if s)
            plan = watch.prepare(api, dataclasses.replace(t, name=""), {**query, "fieldSelector": selector},
                                 app.watch_settings, as_table=as_table)
            self._stream(plan)
            return 0, b""
        if not t.name:
            if method == "GET" and found.watch and "watch" in verbs:
                plan = watch.prepare(api, t, query, app.watch_settings, as_table=as_table)
                self._stream(plan)
                return 0, b""
            if method == "GET" and "list" in verbs:
                body = listing.list_body(api, t, query, as_table=as_table)
                self._send(200, body, tables.CONTENT_TYPE if as_table else "application/json")
                return 0, b""
            if method == "POST" and reviews.handles(res) and (t.namespace or not res.namespaced):
                return reviews.create(res, t.namespace, body, user=self.user or authn.ADMIN,
                                      authorizer=app.authorizer, authenticate=app.authenticate_token)
            if method == "POST" and "create" in verbs and (t.namespace or not res.namespaced):
                return api.create(t, body, query)
            if method == "DELETE" and "deletecollection" in verbs:
                return listing.delete_collection(api, t, body, query)
            raise errors.method_not_allowed()
        if method == "GET" and "get" in verbs:
            if as_table:
                entry = api.lookup(t)
                presented = json.loads(api.present(res, entry))
                body = tables.table(res.kind, [(entry.obj, presented)],
                                    {"resourceVersion": str(entry.rv)}, query.get("includeObject", "Metadata"))
                self._send(200, body, tables.CONTENT_TYPE)
                return 0, b""
            return 200, api.get(t)
        if method == "PUT" and "update" in verbs:
            return api.update(t, body, query)
        if method == "PATCH" and "patch" in verbs:
            return api.patch(t, self.headers.get("Content-Type", ""), body, query)
        if method == "DELETE" and "delete" in verbs:
            return deletion.delete(api, t, body, query)
        raise errors.method_not_allowed()

    def _subresource(self, method: str, t: rest.Target, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
        api = self.server.app.api
        sub = t.subresource
        if sub == "status":
            if method == "GET":
                return 200, api.get(rest.Target(t.resource, t.namespace, t.name))
            if method == "PUT":
                return api.update(t, body, query)
            if method == "PATCH":
                return api.patch(t, self.headers.get("Content-Type", ""), body, query)
        elif sub == "scale":
            if method == "GET":
                return 200, subresources.scale_get(api, t)
            if method == "PUT":
                return 200, subresources.scale_put(api, t, body, query)
            if method == "PATCH":
                return 200, subresources.scale_patch(api, t, self.headers.get("Content-Type", ""), body, query)
        elif sub == "eviction" and method == "POST":
            return eviction.evict(api, t, body)
        elif sub == "binding" and method == "POST":
            return subresources.bind(api, t, body)
        elif sub == "token" and method == "POST" and self.server.app.keys is not None:
            request = rest.decode(body, "TokenRequest")
            answer = satokens.request_token(api.store, self.server.app.keys, t.namespace, t.name, request)
            return 201, store.dumps(answer)
        elif sub == "log" and method == "GET":
            payload = subresources.logs(api, t, query)
            self._send(200, payload, "text/plain")
            return 0, b""
        elif sub == "finalize" and method == "PUT":
            return 200, subresources.finalize(api, t, body)
        raise errors.method_not_allowed()

    def _stream(self, plan: watch.Plan) -> None:
        ctype = tables.CONTENT_TYPE if plan.as_table else "application/json"
        self.wfile.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n"
            "Cache-Control: no-cache, private\r\n\r\n".encode()
        )
        sock = self.connection

        def send(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def client_gone() -> bool:
            return _peer_closed(sock)

        try:
            plan.run(send, client_gone)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError, OSError):
            pass
        self.close_connection = True


def _peer_closed(sock: socket.socket) -> bool:
    """True if the client closed its side (a watch client sends nothing after its request)."""
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
        if not readable:
            return False
        previous = sock.gettimeout()
        sock.settimeout(0.05)  # a partial TLS record must not park the watch thread
        try:
            return sock.recv(1) == b""
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        finally:
            sock.settimeout(previous)
    except (OSError, ValueError):
        return True


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, app: ApiServer) -> None:
        self.context = context
        self.app = app
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's thread: do the TLS handshake here, with a deadline."""
        sock: socket.socket = request
        try:
            sock.settimeout(10)
            tls = self.context.wrap_socket(sock, server_side=True)
            tls.settimeout(Handler.timeout)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            Handler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("connection from %s failed:\n%s", client_address, traceback.format_exc())


def start(host: str, port: int, context: ssl.SSLContext, app: ApiServer) -> tuple[TLSServer, threading.Thread]:
    server = TLSServer((host, port), context, app)
    app.address = f"{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="apiserver-accept", daemon=True)
    thread.start()
    return server, thread
