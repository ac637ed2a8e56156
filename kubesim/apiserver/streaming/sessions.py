"""The upgrade itself: checks made before the 101, protocol negotiation, and handing the
connection over to a session running on :mod:`reactor`.

Order of checks (what a real cluster answers, and from where):

1. the pod exists (404) and, for exec/attach, the container is valid (400) — the API server;
2. the pod has a node (400 ``pod X does not have a host assigned``) — the API server;
3. the request is an upgrade at all (400 ``Upgrade request required``) — the API server's proxy;
4. protocol negotiation and the kubelet's own parameters (``ports`` for WebSocket port-forward:
   400 text) — the kubelet;
5. the pod's sandbox / the container is running (500 text from the kubelet, or, for exec over
   ``v5.channel.k8s.io``, where upstream's API server upgrades the client before it dials the
   kubelet, a Status on the error channel) — the kubelet / runtime.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING

from kubesim.apiserver import errors, rest
from kubesim.apiserver import streaming as pkg
from kubesim.apiserver.streaming import conn, portforward, reactor, targets, websocket

if TYPE_CHECKING:
    from kubesim.apiserver import server

log = logging.getLogger("kubesim.apiserver.streaming")

Query = dict[str, list[str]]


def _api(handler: server.Handler) -> rest.Api:
    return handler.server.app.api


def is_spdy_upgrade(handler: server.Handler) -> bool:
    upgrade = (handler.headers.get("Upgrade") or "").lower()
    connection = (handler.headers.get("Connection") or "").lower()
    return "spdy/3.1" in upgrade and "upgrade" in connection


def spdy_protocols(handler: server.Handler) -> list[str]:
    return websocket.requested_protocols(pkg.header_values(handler, "X-Stream-Protocol-Version"))


def negotiate_spdy(handler: server.Handler, supported: list[str]) -> str:
    """httpstream.Handshake: the first protocol the client lists that we accept."""
    offered = spdy_protocols(handler)
    if not offered:
        raise pkg.TextError(400, "unable to upgrade: X-Stream-Protocol-Version is required")
    for protocol in offered:
        if protocol in supported:
            return protocol
    raise pkg.TextError(403, f"unable to upgrade: unable to negotiate protocol: client supports "
                             f"[{' '.join(offered)}], server accepts [{' '.join(supported)}]")


def negotiate_websocket(handler: server.Handler, supported: list[str]) -> str:
    """wsstream's handshake: the client's first offer we support; "" when it offered none and "" is allowed."""
    offered = websocket.requested_protocols(pkg.header_values(handler, "Sec-WebSocket-Protocol")) or [""]
    for protocol in offered:
        if protocol in supported:
            return protocol
    # golang.org/x/net/websocket answers a failed subprotocol handshake with a bare 403
    raise pkg.TextError(403, "")


def take_over(handler: server.Handler, response: bytes) -> tuple[reactor.Reactor, reactor.TLSEndpoint, bytes]:
    """Send the 101 and turn the connection into a non-blocking endpoint; also returns bytes the
    client already sent after its request (they sit in the handler's read buffer)."""
    handler.wfile.write(response)
    handler.close_connection = True
    sock = handler.connection
    assert isinstance(sock, ssl.SSLSocket)
    sock.setblocking(False)
    leftover = b""
    try:
        leftover = handler.rfile.read1(1 << 20) or b""
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, TypeError):
        leftover = b""
    rx = reactor.Reactor()
    return rx, reactor.TLSEndpoint(rx, sock), leftover


def run(rx: reactor.Reactor, client: reactor.Endpoint, what: str) -> None:
    try:
        rx.run()
    except Exception:
        log.exception("%s session failed", what)
    finally:
        client.close()


# ----- pods/portforward ---------------------------------------------------------------------------


def serve_portforward(handler: server.Handler, namespace: str, name: str, query: Query) -> int:
    api = _api(handler)
    pod = targets.get_pod(api, namespace, name)
    targets.require_node(pod)
    meta = pod.get("metadata") or {}
    view = portforward.PodView(api, pkg.config.state_dir, namespace, name, str(meta.get("uid")),
                               targets.sandbox_id(pod))
    if websocket.is_upgrade(handler.headers):
        offered = websocket.requested_protocols(pkg.header_values(handler, "Sec-WebSocket-Protocol"))
        tunnel = [p for p in offered if p.startswith(portforward.TUNNEL_PREFIX) and p.endswith(".k8s.io")]
        if tunnel:
            spdy_wanted = [p[len(portforward.TUNNEL_PREFIX):] for p in tunnel]
            if portforward.PORTFORWARD_PROTOCOL not in spdy_wanted:
                raise pkg.TextError(403, f"unable to upgrade: unable to negotiate protocol: client supports "
                                         f"[{' '.join(spdy_wanted)}], server accepts "
                                         f"[{portforward.PORTFORWARD_PROTOCOL}]")
            _require_sandbox(pod)
            key = handler.headers.get("Sec-WebSocket-Key") or ""
            protocol = portforward.TUNNEL_PREFIX + portforward.PORTFORWARD_PROTOCOL
            rx, client, leftover = take_over(handler, websocket.handshake_response(key, protocol))
            ws = conn.WebSocketConn(rx, client, stream=True)
            portforward.SpdyPortForward(rx, client, view, ws)
            ws.start(leftover)
            run(rx, client, "port-forward (SPDY over WebSocket)")
            return 101
        ports = portforward.parse_ports(query.get("ports") or query.get("port") or [])
        protocol = negotiate_websocket(handler, [portforward.V4_BINARY, portforward.V4_BASE64, ""])
        _require_sandbox(pod)
        key = handler.headers.get("Sec-WebSocket-Key") or ""
        rx, client, leftover = take_over(handler, websocket.handshake_response(key, protocol))
        ws = conn.WebSocketConn(rx, client)
        session = portforward.ChannelPortForward(rx, client, view, ws, ports=ports,
                                                 base64_codec=protocol == portforward.V4_BASE64)
        session.start()
        ws.start(leftover)
        run(rx, client, "port-forward (WebSocket)")
        return 101
    if is_spdy_upgrade(handler):
        protocol = negotiate_spdy(handler, [portforward.PORTFORWARD_PROTOCOL])
        _require_sandbox(pod)
        response = ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                    f"X-Stream-Protocol-Version: {protocol}\r\n\r\n").encode()
        rx, client, leftover = take_over(handler, response)
        spdy_session = portforward.SpdyPortForward(rx, client, view, None)
        if leftover:
            spdy_session.spdy.feed(leftover)
        client.start_reading()
        run(rx, client, "port-forward (SPDY)")
        return 101
    raise errors.bad_request("Upgrade request required")


def _require_sandbox(pod: targets.Obj) -> None:
    """The runtime refuses a port-forward into a pod whose sandbox is not running (kubelet: 500, text)."""
    if not targets.sandbox_ready(pkg.config.state_dir, pod):
        raise pkg.TextError(500, "rpc error: code = Unknown desc = sandbox container is not running")


# ----- pods/exec, pods/attach ------------------------------------------------------------------------


def serve_remote_command(handler: server.Handler, sub: str, namespace: str, name: str, query: Query) -> int:
    from kubesim.apiserver.streaming import execution

    return execution.serve(handler, sub, namespace, name, query)

