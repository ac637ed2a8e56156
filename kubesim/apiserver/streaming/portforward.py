"""pods/portforward: splice client streams to TCP connections to the pod's IP.

Three wire protocols reach the same splice:

* **SPDY tunnelled over WebSocket** (kubectl >= 1.31 by default; client-go
  ``tools/portforward/tunneling_dialer.go``): a WebSocket upgrade offering
  ``SPDY/3.1+portforward.k8s.io``; every binary message carries a slice of a SPDY/3.1 byte
  stream. The API server upstream translates it to SPDY towards the kubelet
  (``apiserver/pkg/util/proxy/streamtunnel.go``); here the SPDY session is served directly.
* **plain SPDY/3.1** (``Upgrade: SPDY/3.1``, ``X-Stream-Protocol-Version: portforward.k8s.io``),
  what kubectl falls back to when the WebSocket upgrade fails (fallback_dialer.go).
* **WebSocket channels** (``v4.channel.k8s.io`` / ``v4.base64.channel.k8s.io``; the Python
  client's ``portforward()``): the ports come from the ``ports`` query parameter; port *i* gets
  data channel 2i and error channel 2i+1, and the server's first frame on each is the port as
  two bytes little-endian (kubelet ``cri/streaming/portforward/websocket.go``). One TCP
  connection per port per WebSocket.

With SPDY, every forwarded connection is a pair of client-opened streams sharing a
``requestid`` header: ``streamtype: error`` (the client half-closes it at once and reads it to
the end) and ``streamtype: data``; both carry the ``port`` header. When both exist the server
connects to ``<podIP>:<port>`` (httpstream.go ``httpStreamHandler``). Failures are written to
the error stream as ``error forwarding port <p> to pod <sandbox>, uid : <why>`` — kubectl then
prints it and ends the whole forward ("lost connection to pod"), as against a real cluster.

Half-closes are honoured both ways: a client FIN on the data stream becomes ``shutdown(SHUT_WR)``
towards the pod, and the pod's EOF becomes a FIN on the data stream followed by the end of the
error stream. Throughput: one thread per session, pod sockets read in 256 KiB slices, SPDY DATA
frames of up to 64 KiB, backpressure as :mod:`reactor` describes.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import struct
import time
from collections.abc import Callable
from pathlib import Path

from kubesim.apiserver import errors, rest
from kubesim.apiserver.streaming import conn, reactor, targets, websocket

log = logging.getLogger("kubesim.apiserver.streaming")

CONNECT_TIMEOUT = 10.0
LINGER = 60.0
"""After the client half-closed, how long the pod may stay silent before the connection is ended
(containerd gives the other direction 1 s; an answer still streaming keeps it open)."""
STREAM_CREATION_TIMEOUT = 30.0
"""kubelet's default: a request whose second stream does not arrive in time gets an error."""

TUNNEL_PREFIX = "SPDY/3.1+"
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
V4_BINARY = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"


@dataclasses.dataclass
class PodView:
    """What a session needs about the pod; re-read for every new forwarded connection."""

    api: rest.Api
    state_dir: Path | None
    namespace: str
    name: str
    uid: str
    sandbox: str

    def check(self) -> tuple[str, str]:
        """(pod IP, "") if the pod can take a connection now, else ("", why) in containerd's words."""
        try:
            pod = targets.get_pod(self.api, self.namespace, self.name)
        except errors.ApiError:
            pod = {}
        if (pod.get("metadata") or {}).get("uid") != self.uid:
            return "", f'failed to find sandbox "{self.sandbox}" in store: not found'
        if not targets.sandbox_ready(self.state_dir, pod):
            return "", "sandbox container is not running"
        return targets.pod_ip(pod), ""


def _go_error(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:] if text else "unknown error"


def connect_failure(ip: str, port: int, sandbox: str, exc: OSError) -> str:
    """containerd's portForward wording for a dial that failed (sandbox_portforward_linux.go)."""
    if isinstance(exc, TimeoutError):
        dial = f"dial tcp4 {ip}:{port}: i/o timeout"
    else:
        dial = f"dial tcp4 {ip}:{port}: connect: {_go_error(exc)}"
    return f'failed to connect to {ip}:{port} inside namespace "{sandbox}", IPv4: {dial} IPv6 <nil> '


def forward_error(port: int, sandbox: str, why: str) -> str:
    return f"error forwarding port {port} to pod {sandbox}, uid : {why}"


class Splice:
    """One forwarded connection: client side (callbacks) <-> a TCP connection to the pod."""

    def __init__(self, session: Session, port: int, *, send: Callable[[bytes], None], fin: Callable[[], None],
                 report: Callable[[str], None], done: Callable[[], None]) -> None:
        self.session = session
        self.port = port
        self._send = send
        self._fin = fin
        self._report = report
        self._done_cb = done
        self.pod: reactor.SocketEndpoint | None = None
        self._pending: list[bytes] = []
        self._client_fin = False
        self.finished = False
        self._cancel_connect: Callable[[], None] | None = None
        self._linger: reactor.Timer | None = None
        self._heard = 0.0

    def start(self) -> None:
        ip, why = self.session.pod.check()
        if why:
            self.fail(why)
            return
        self._cancel_connect = reactor.connect(self.session.reactor, (ip, self.port), f"pod:{self.port}",
                                               CONNECT_TIMEOUT, lambda ep, err: self._connected(ip, ep, err))

    def _connected(self, ip: str, endpoint: reactor.SocketEndpoint | None, error: OSError | None) -> None:
        self._cancel_connect = None
        if self.finished:
            if endpoint is not None:
                endpoint.close()
            return
        if endpoint is None:
            assert error is not None
            self.fail(connect_failure(ip, self.port, self.session.pod.sandbox, error))
            return
        self.pod = endpoint
        endpoint.on_data = self._from_pod
        endpoint.on_eof = self._pod_eof
        endpoint.on_error = self._pod_error
        endpoint.on_drain = self.session.pod_drained
        self.session.track(endpoint)
        for chunk in self._pending:
            endpoint.write(chunk)
        self._pending.clear()
        if self._client_fin:
            endpoint.finish_writing()
        if self.session.client_congested():
            endpoint.pause_reading()
        endpoint.start_reading()

    # client -> pod
    def from_client(self, data: bytes) -> None:
        if self.finished:
            return
        if self.pod is None:
            self._pending.append(data)
            return
        self.pod.write(data)
        if self.pod.buffered > reactor.HIGH:
            self.session.pause_client()

    def client_fin(self) -> None:
        self._client_fin = True
        if self.pod is not None:
            self.pod.finish_writing()
        self._arm_linger()

    def _arm_linger(self) -> None:
        self._heard = time.monotonic()
        if self._linger is None and not self.finished:
            self._linger = self.session.reactor.call_later(LINGER, self._lingered)

    def _lingered(self) -> None:
        quiet = time.monotonic() - self._heard
        if quiet < LINGER:  # the pod spoke meanwhile: look again when it has been quiet long enough
            self._linger = self.session.reactor.call_later(LINGER - quiet, self._lingered)
            return
        self._linger = None
        self._fin()
        self.finish()

    def client_reset(self) -> None:
        self.finish(notify=False)

    # pod -> client
    def _from_pod(self, data: bytes) -> None:
        self._send(data)
        self.session.after_client_write()
        if self._client_fin:
            self._heard = time.monotonic()

    def _pod_eof(self) -> None:
        self._fin()
        self.finish()

    def _pod_error(self, why: str) -> None:
        self.fail(why)

    def fail(self, why: str) -> None:
        if self.finished:
            return
        log.info("port-forward %s/%s:%d: %s", self.session.pod.namespace, self.session.pod.name, self.port, why)
        self._report(forward_error(self.port, self.session.pod.sandbox, why))
        self._fin()
        self.finish()

    def finish(self, *, notify: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        if self._linger is not None:
            self._linger.cancel()
        if self._cancel_connect is not None:
            self._cancel_connect()
            self._cancel_connect = None
        if self.pod is not None:
            self.session.untrack(self.pod)
            self.pod.close()
        if notify:
            self._done_cb()


class Session:
    """What the three protocols share: the reactor, the client endpoint and backpressure."""

    def __init__(self, rx: reactor.Reactor, client: reactor.Endpoint, pod: PodView) -> None:
        self.reactor = rx
        self.client = client
        self.pod = pod
        self._pods: set[reactor.Endpoint] = set()
        self._client_paused = False
        client.on_drain = self._client_drained

    def track(self, endpoint: reactor.Endpoint) -> None:
        self._pods.add(endpoint)

    def untrack(self, endpoint: reactor.Endpoint) -> None:
        self._pods.discard(endpoint)
        self.pod_drained()

    def client_congested(self) -> bool:
        return self.client.buffered > reactor.HIGH

    def after_client_write(self) -> None:
        if self.client.buffered > reactor.HIGH:
            for endpoint in self._pods:
                endpoint.pause_reading()

    def _client_drained(self) -> None:
        for endpoint in list(self._pods):
            endpoint.resume_reading()

    def pause_client(self) -> None:
        if not self._client_paused:
            self._client_paused = True
            self.client.pause_reading()

    def pod_drained(self) -> None:
        if self._client_paused and all(e.buffered <= reactor.LOW for e in self._pods):
            self._client_paused = False
            self.client.resume_reading()

    def close_all(self) -> None:
        for endpoint in list(self._pods):
            endpoint.close()
        self._pods.clear()


# ----- SPDY (plain or tunnelled) ---------------------------------------------------------------


@dataclasses.dataclass
class _Pair:
    request_id: str
    port: int
    error: conn.SpdyStream | None = None
    data: conn.SpdyStream | None = None
    splice: Splice | None = None
    timer: reactor.Timer | None = None


class SpdyPortForward(Session):
    def __init__(self, rx: reactor.Reactor, client: reactor.Endpoint, pod: PodView,
                 ws: conn.WebSocketConn | None) -> None:
        super().__init__(rx, client, pod)
        self.ws = ws
        self.spdy = conn.SpdySession(self._send)
        self.spdy.accept = self._accept
        self.spdy.on_open = self._open
        self.spdy.on_end = self._end
        self.pairs: dict[str, _Pair] = {}
        if ws is not None:
            ws.on_message = lambda opcode, payload: self.spdy.feed(payload)
            ws.on_closed = lambda: self._end("the client closed the WebSocket")
        else:
            client.on_data = self.spdy.feed
            client.on_eof = lambda: self._end("the client hung up")
            client.on_error = self._end

    def _send(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.send(data)
        else:
            self.client.write(data)

    def _accept(self, stream: conn.SpdyStream) -> bool:
        """httpStreamReceived: a valid ``port`` and ``streamtype`` are required, else the stream is reset."""
        port_text, kind = stream.header("port"), stream.header("streamtype")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            log.info("port-forward: rejected stream %d with port %r", stream.id, port_text)
            return False
        if kind not in ("error", "data"):
            log.info("port-forward: rejected stream %d with streamtype %r", stream.id, kind)
            return False
        return True

    def _request_id(self, stream: conn.SpdyStream) -> str:
        request_id = stream.header("requestid")
        if request_id:
            return request_id
        # clients older than the requestid header: error stream N, data stream N+2 (httpstream.go requestID)
        return str(stream.id if stream.header("streamtype") == "error" else stream.id - 2)

    def _open(self, stream: conn.SpdyStream) -> None:
        request_id = self._request_id(stream)
        port = int(stream.header("port"))
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id, port)
            pair.timer = self.reactor.call_later(STREAM_CREATION_TIMEOUT, lambda: self._timed_out(pair))
        kind = stream.header("streamtype")
        if (kind == "error" and pair.error is not None) or (kind == "data" and pair.data is not None):
            message = f"error processing stream for request {request_id}: {kind} stream already assigned"
            if pair.error is not None:
                pair.error.write(message.encode())
            stream.cancel()
            return
        if kind == "error":
            pair.error = stream
            stream.on_reset = lambda: self._pair_reset(pair)
        else:
            pair.data = stream
        if pair.error is not None and pair.data is not None:
            if pair.timer is not None:
                pair.timer.cancel()
            self._start(pair)

    def _timed_out(self, pair: _Pair) -> None:
        if pair.splice is None and self.pairs.get(pair.request_id) is pair:
            if pair.error is not None:
                pair.error.write(f"(conn=kubesim, request={pair.request_id}) timed out waiting for streams".encode())
                pair.error.finish()
            self.pairs.pop(pair.request_id, None)

    def _start(self, pair: _Pair) -> None:
        error, data = pair.error, pair.data
        assert error is not None
        assert data is not None

        def done() -> None:
            error.finish()
            self.pairs.pop(pair.request_id, None)

        splice = Splice(self, pair.port, send=data.write, fin=data.finish,
                        report=lambda message: error.write(message.encode()), done=done)
        pair.splice = splice
        data.on_data = splice.from_client
        data.on_fin = splice.client_fin
        data.on_reset = splice.client_reset
        splice.start()

    def _pair_reset(self, pair: _Pair) -> None:
        if pair.splice is not None:
            pair.splice.client_reset()
        self.pairs.pop(pair.request_id, None)

    def _end(self, why: str) -> None:
        if self.reactor.stopped:
            return
        log.debug("port-forward %s/%s session ends: %s", self.pod.namespace, self.pod.name, why)
        for pair in list(self.pairs.values()):
            if pair.splice is not None:
                pair.splice.finish(notify=False)
            if pair.timer is not None:
                pair.timer.cancel()
        self.pairs.clear()
        self.close_all()
        if self.ws is not None and not self.ws.done:
            self.spdy.done = True
            self.ws.on_closed = self.reactor.stop
            self.ws.close()
            return
        self.client.close()
        self.reactor.stop()


# ----- WebSocket channels (v4) --------------------------------------------------------------------


class ChannelPortForward(Session):
    def __init__(self, rx: reactor.Reactor, client: reactor.Endpoint, pod: PodView, ws: conn.WebSocketConn, *,
                 ports: list[int], base64_codec: bool) -> None:
        super().__init__(rx, client, pod)
        self.ws = ws
        self.ports = ports
        self.base64 = base64_codec
        self.splices: list[Splice] = []
        self.remaining = len(ports)
        ws.on_message = self._message
        ws.on_closed = self._closed

    def _frame(self, channel: int, payload: bytes) -> None:
        if self.base64:
            self.ws.send(bytes([ord("0") + channel]) + base64.b64encode(payload), websocket.OP_TEXT)
        else:
            self.ws.send(bytes([channel]) + payload)

    def start(self) -> None:
        for index, port in enumerate(self.ports):
            data_channel, error_channel = 2 * index, 2 * index + 1
            self._frame(data_channel, struct.pack("<H", port))
            self._frame(error_channel, struct.pack("<H", port))

            splice = Splice(self, port, send=self._sender(data_channel), fin=lambda: None,
                            report=self._reporter(error_channel), done=self._one_done)
            self.splices.append(splice)
        for splice in self.splices:
            splice.start()

    def _sender(self, channel: int) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            for start in range(0, len(data), 1 << 20):
                self._frame(channel, data[start:start + (1 << 20)])
        return send

    def _reporter(self, channel: int) -> Callable[[str], None]:
        return lambda message: self._frame(channel, message.encode())

    def _message(self, opcode: int, payload: bytes) -> None:
        if not payload:
            return
        channel = payload[0] - (ord("0") if self.base64 else 0)
        data = payload[1:]
        if self.base64:
            try:
                data = base64.b64decode(data)
            except ValueError:
                return
        if channel % 2 or channel // 2 >= len(self.splices):
            return  # error channels are write-only; unknown channels are ignored (wsstream)
        self.splices[channel // 2].from_client(data)

    def _one_done(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.ws.on_closed = self.reactor.stop
            self.ws.close()

    def _closed(self) -> None:
        for splice in self.splices:
            splice.finish(notify=False)
        self.close_all()
        self.reactor.stop()


def parse_ports(values: list[str]) -> list[int]:
    """NewV4Options: every ``ports`` value, comma lists allowed, each 1..65535."""
    if not values:
        raise errors.bad_request('query parameter "port" is required')
    ports: list[int] = []
    for value in values:
        if not value:
            raise errors.bad_request('query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or int(part) > 65535:
                raise errors.bad_request(f'unable to parse "{value}" as a port: strconv.ParseUint: parsing '
                                         f'"{part}": invalid syntax')
            if int(part) < 1:
                raise errors.bad_request(f'port "{value}" must be > 0')
            ports.append(int(part))
    return ports


