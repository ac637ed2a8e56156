"""pods/proxy and services/proxy: HTTP requests relayed to a pod's address.

``/api/v1/namespaces/NS/pods/[scheme:]NAME[:PORT]/proxy[/PATH]`` reaches the pod's IP on PORT (by
default its first declared container port; a port name is resolved against the containers' ports),
``.../services/[scheme:]NAME[:PORT]/proxy[/PATH]`` a ready endpoint of the service
(``pkg/registry/core/service/storage/storage.go`` ``ResourceLocation``): a port *number* must be
one of the service's ports (else 503 ``no service port N found for service "x"``), and the
endpoint comes from the service's Endpoints object when there is one, else — kubesim runs no
endpoints controller — from the Ready, running, not terminating pods its selector matches, on the
port's ``targetPort`` (a name resolved against the pod's container ports); none: 503 ``no
endpoints available for service "x"``.

The request is relayed as upstream's proxy handler does: method, path (``path.Join`` of the
location and PATH, keeping a trailing slash), query and headers, minus hop-by-hop headers and the
caller's ``Authorization`` (the authentication filter removes it upstream), plus
``X-Forwarded-For``; bodies stream both ways (Content-Length or chunked). A pod that cannot be
reached is a 503 ``error trying to reach service: dial tcp IP:PORT: connect: ...``. Not done:
rewriting links in HTML answers (``kubectl proxy``'s web UI case) and upgrades (WebSocket)
through the proxy. Pod addresses are loopback addresses in kubesim, which upstream refuses
(``address not allowed`` for anything but global unicast): they are allowed here.
"""

from __future__ import annotations

import http.client
import logging
import posixpath
import random
import ssl
import urllib.parse
from typing import TYPE_CHECKING, Any

from kubesim.apiserver import errors, rest
from kubesim.apiserver.streaming import targets

if TYPE_CHECKING:
    from kubesim.apiserver import server

log = logging.getLogger("kubesim.apiserver.streaming")

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "authorization", "host", "content-length"})
TIMEOUT = 60.0
CHUNK = 256 * 1024


def service_unavailable(message: str) -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable", message)


def split_scheme_name_port(ident: str) -> tuple[str, str, str]:
    """utilnet.SplitSchemeNamePort: ``name``, ``name:port``, ``scheme:name:port`` (scheme http or https)."""
    parts = ident.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise errors.bad_request(f'invalid pod request "{ident}"')
    if not name or scheme not in ("", "http", "https"):
        raise errors.bad_request(f'invalid pod request "{ident}"')
    return scheme or "http", name, port


def _container_port(pod: targets.Obj, name: str) -> str:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name:
                return str(port.get("containerPort"))
    return name


def pod_location(api: rest.Api, namespace: str, ident: str) -> tuple[str, str, int]:
    scheme, name, port = split_scheme_name_port(ident)
    pod = targets.get_pod(api, namespace, name)
    if not port:
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("ports"):
                port = str(container["ports"][0].get("containerPort"))
                break
    elif not port.isdigit():
        port = _container_port(pod, port)
    ip = targets.pod_ip(pod)
    if not ip:
        raise errors.bad_request("address not allowed")
    if not port:
        port = "443" if scheme == "https" else "80"
    if not port.isdigit():
        raise service_unavailable(f'error trying to reach service: dial tcp: lookup {ip}:{port}: invalid port')
    return scheme, ip, int(port)


def _ready(pod: targets.Obj) -> bool:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not targets.pod_ip(pod):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _selects(selector: dict[str, str], pod: targets.Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_location(api: rest.Api, namespace: str, ident: str) -> tuple[str, str, int]:
    scheme, name, port_text = split_scheme_name_port(ident)
    svc = targets.get_service(api, namespace, name)
    ports = (svc.get("spec") or {}).get("ports") or []
    chosen: dict[str, Any] | None = None
    if port_text.isdigit():
        chosen = next((p for p in ports if int(p.get("port") or 0) == int(port_text)), None)
        if chosen is None:
            raise service_unavailable(f'no service port {port_text} found for service "{name}"')
        port_name = str(chosen.get("name") or "")
    else:
        port_name = port_text
        chosen = next((p for p in ports if str(p.get("name") or "") == port_name), None)
    endpoints = targets.get_endpoints(api, namespace, name)
    if endpoints is not None:
        subsets = endpoints.get("subsets") or []
        if not subsets:
            raise service_unavailable(f'no endpoints available for service "{name}"')
        for subset in random.sample(subsets, len(subsets)):
            addresses = subset.get("addresses") or []
            for port in subset.get("ports") or []:
                if str(port.get("name") or "") == port_name and addresses:
                    return scheme, str(random.choice(addresses)["ip"]), int(port["port"])
        raise service_unavailable(f'no endpoints available for service "{ident}"')
    selector = (svc.get("spec") or {}).get("selector") or {}
    pods = [p for p in targets.list_pods(api, namespace) if _selects(selector, p) and _ready(p)]
    if not pods:
        raise service_unavailable(f'no endpoints available for service "{name}"')
    if chosen is None:
        raise service_unavailable(f'no endpoints available for service "{ident}"')
    pod = random.choice(pods)
    target = chosen.get("targetPort", chosen.get("port"))
    if isinstance(target, str) and not target.isdigit():
        target = _container_port(pod, target)
    if not str(target).isdigit():
        raise service_unavailable(f'no endpoints available for service "{ident}"')
    return scheme, targets.pod_ip(pod), int(str(target))


def serve(handler: server.Handler, method: str, kind: str, namespace: str, ident: str, *, rest_path: str) -> int:
    api = handler.server.app.api
    if method not in METHODS:
        raise errors.method_not_allowed()
    if kind == "pods":
        scheme, ip, port = pod_location(api, namespace, urllib.parse.unquote(ident))
    else:
        scheme, ip, port = service_location(api, namespace, urllib.parse.unquote(ident))
    raw = urllib.parse.urlsplit(handler.path)
    path = posixpath.normpath("/" + rest_path.lstrip("/")) if rest_path.strip("/") else "/"
    if raw.path.endswith("/") and not path.endswith("/"):
        path += "/"
    target = path + (f"?{raw.query}" if raw.query else "")
    return relay(handler, method, scheme, (ip, port), target)


def relay(handler: server.Handler, method: str, scheme: str, address: tuple[str, int], target: str) -> int:
    ip, port = address
    upstream: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        upstream = http.client.HTTPSConnection(ip, port, timeout=TIMEOUT, context=context)
    else:
        upstream = http.client.HTTPConnection(ip, port, timeout=TIMEOUT)
    chunked = handler.headers.get("Transfer-Encoding", "").lower() == "chunked"
    length = int(handler.headers.get("Content-Length") or 0) if not chunked else 0
    try:
        upstream.connect()
    except OSError as exc:
        handler.close_connection = True
        _discard(handler, chunked, length)
        raise service_unavailable(f"error trying to reach service: dial tcp {ip}:{port}: connect: "
                                  f"{_go(exc)}") from None
    try:
        upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", f"{ip}:{port}")
        for key, value in handler.headers.items():
            if key.lower() not in HOP_BY_HOP:
                upstream.putheader(key, value)
        upstream.putheader("X-Forwarded-For", handler.client_address[0])
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        elif length or method in ("POST", "PUT", "PATCH"):
            upstream.putheader("Content-Length", str(length))
        upstream.endheaders()
        if chunked:
            _copy_chunked(handler, upstream)
        elif length:
            _copy_body(handler, upstream, length)
        response = upstream.getresponse()
    except OSError as exc:
        handler.close_connection = True
        upstream.close()
        raise service_unavailable(f"error trying to reach service: {_go(exc)}") from None
    try:
        return _answer(handler, method, response)
    finally:
        upstream.close()


def _go(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _discard(handler: server.Handler, chunked: bool, length: int) -> None:
    if not chunked and 0 < length <= 32 * 1024 * 1024:
        while length > 0:
            got = handler.rfile.read(min(length, CHUNK))
            if not got:
                return
            length -= len(got)


def _copy_body(handler: server.Handler, upstream: http.client.HTTPConnection, length: int) -> None:
    while length > 0:
        data = handler.rfile.read(min(length, CHUNK))
        if not data:
            raise ConnectionResetError("the client's request body ended early")
        upstream.send(data)
        length -= len(data)


def _copy_chunked(handler: server.Handler, upstream: http.client.HTTPConnection) -> None:
    while True:
        line = handler.rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ConnectionResetError("malformed chunked request body") from None
        if size == 0:
            while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            upstream.send(b"0\r\n\r\n")
            return
        data = handler.rfile.read(size)
        handler.rfile.readline(1024)
        upstream.send(b"%x\r\n%s\r\n" % (len(data), data))


def _answer(handler: server.Handler, method: str, response: http.client.HTTPResponse) -> int:
    """Relay the pod's answer: status, end-to-end headers, body (length-delimited, else chunked)."""
    head = [f"HTTP/1.1 {response.status} {response.reason}"]
    for key, value in response.getheaders():
        if key.lower() not in HOP_BY_HOP:
            head.append(f"{key}: {value}")
    no_body = method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
    length = response.getheader("Content-Length")
    framed = response.getheader("Transfer-Encoding", "").lower() != "chunked" and length is not None
    if no_body:
        if length is not None:
            head.append(f"Content-Length: {length}")
    elif framed:
        head.append(f"Content-Length: {length}")
    else:
        head.append("Transfer-Encoding: chunked")
    if handler.close_connection:
        head.append("Connection: close")
    handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if no_body:
        return response.status
    while True:
        data = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
        if not data:
            break
        handler.wfile.write(data if framed else b"%x\r\n%s\r\n" % (len(data), data))
    if not framed:
        handler.wfile.write(b"0\r\n\r\n")
    return response.status

