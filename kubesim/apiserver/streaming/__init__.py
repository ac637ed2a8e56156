"""The streaming subresources: pods/portforward, pods/exec, pods/attach, pods/proxy, services/proxy,
and pods/log with ``follow=true``.

Upstream the API server proxies these to the kubelet's streaming server, which hands exec and
port-forward to the container runtime. Here the kubelets are processes on this same machine (and,
with a per-cluster network namespace, the API server sits in the namespace the pods' addresses
live in), so the API server serves them itself: it splices port-forward streams straight to the
pod's IP, enters the container's namespaces for exec (:mod:`nsenter`, a helper process: setns
needs a single-threaded caller), follows the container log files the kubelet's sandbox shims
write, and proxies HTTP to pod addresses. Why not a kubelet HTTP server: one hop less on every
byte of a port-forward (the harness pushes checkpoint load through it), no second TLS server and
CA per node, and nothing the kubelet knows that its record (``containers.json``) and log files
do not already say. The price is fidelity of *where* errors come from, not of what they say:
each error keeps the status code and wording upstream's API server, kubelet or runtime gives.

:func:`claims` picks the requests (server.py asks it right after authentication, before the
body is read: proxy bodies stream and upgrade requests have none); :func:`serve` answers them.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesim.apiserver import errors

if TYPE_CHECKING:
    from kubesim.apiserver import server

log = logging.getLogger("kubesim.apiserver.streaming")

_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<kind>pods|services)/(?P<name>[^/]+)"
                   r"/(?P<sub>exec|attach|portforward|proxy|log)(?P<rest>/.*)?$")

class Config:
    state_dir: Path | None = None
    """The kubesim state directory (node records and container logs); None on an API server without one."""


config = Config()


def install(root: Path) -> None:
    """Serve streaming requests with this state directory's kubelet records (the API server's seam)."""
    config.state_dir = root.resolve()


class TextError(Exception):
    """A failure answered the way the kubelet answers it: a status code and a text/plain body."""

    def __init__(self, code: int, body: str) -> None:
        super().__init__(body)
        self.code = code
        self.body = body


def _match(raw_path: str) -> re.Match[str] | None:
    return _PATH.match(urllib.parse.urlsplit(raw_path).path)


def claims(method: str, raw_path: str) -> bool:
    """True for the requests this package answers (before the request body is read)."""
    m = _match(raw_path)
    if m is None:
        return False
    kind, sub = m.group("kind"), m.group("sub")
    if kind == "services":
        return sub == "proxy"
    if sub == "proxy":
        return True
    if m.group("rest"):
        return False
    if sub == "log":
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(raw_path).query)
        return method == "GET" and (query.get("follow") or [""])[-1].lower() in ("true", "1")
    return True


def serve(handler: server.Handler, method: str) -> int:
    """Answer a claimed request; returns the status code for the access log (101 once upgraded)."""
    m = _match(handler.path)
    assert m is not None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query, keep_blank_values=True)
    namespace = urllib.parse.unquote(m.group("ns"))
    name = urllib.parse.unquote(m.group("name"))
    sub, kind = m.group("sub"), m.group("kind")
    try:
        if sub == "proxy":
            from kubesim.apiserver.streaming import proxy

            return proxy.serve(handler, method, kind, namespace, name, rest_path=m.group("rest") or "")
        if sub == "log":
            from kubesim.apiserver.streaming import logs_follow

            return logs_follow.serve(handler, namespace, name, query)
        if method not in ("GET", "POST"):
            raise errors.method_not_allowed()
        if sub == "portforward":
            from kubesim.apiserver.streaming import sessions

            return sessions.serve_portforward(handler, namespace, name, query)
        from kubesim.apiserver.streaming import sessions

        return sessions.serve_remote_command(handler, sub, namespace, name, query)
    except TextError as exc:
        handler.close_connection = True
        send_text(handler, exc.code, exc.body)
        return exc.code


def send_text(handler: server.Handler, code: int, body: str) -> None:
    handler._send(code, body.encode(), "text/plain; charset=utf-8")


def header_values(handler: server.Handler, name: str) -> list[str]:
    values: Any = handler.headers.get_all(name) or []
    return [str(v) for v in values]

