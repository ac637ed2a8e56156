"""Connection layers over the client's TLS endpoint: a WebSocket connection and a SPDY session.

* :class:`WebSocketConn` answers pings, echoes the close handshake and hands whole messages
  (or, in stream mode, every data frame) to its owner.
* :class:`SpdySession` runs SPDY/3.1 streams over any byte transport: the raw TLS connection
  after ``Upgrade: SPDY/3.1``, or the payload of WebSocket binary messages when kubectl tunnels
  SPDY through WebSocket (``SPDY/3.1+portforward.k8s.io``, client-go's tunneling_connection.go:
  each WebSocket message carries an arbitrary slice of the SPDY byte stream).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kubesim.apiserver.streaming import reactor as rx
from kubesim.apiserver.streaming import spdy, websocket

log = logging.getLogger("kubesim.apiserver.streaming")

CLOSE_WAIT = 10.0
"""How long we wait for the peer's close frame (or EOF) after sending ours before dropping the connection."""


class WebSocketConn:
    def __init__(self, reactor: rx.Reactor, endpoint: rx.Endpoint, *, stream: bool = False) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.decoder = websocket.Decoder(stream=stream)
        self.on_message: Callable[[int, bytes], None] = lambda opcode, payload: None
        self.on_closed: Callable[[], None] = lambda: None
        self.close_sent = False
        self.done = False
        self._close_timer: rx.Timer | None = None
        endpoint.on_data = self._data
        endpoint.on_eof = self._gone
        endpoint.on_error = lambda why: self._gone()

    def start(self, initial: bytes = b"") -> None:
        if initial:
            self._data(initial)
        self.endpoint.start_reading()

    def send(self, payload: bytes, opcode: int = websocket.OP_BINARY) -> None:
        if not self.close_sent and not self.done:
            self.endpoint.write(websocket.encode(opcode, payload))

    def close(self, code: int = websocket.CLOSE_NORMAL, reason: str = "", *, wait: float = CLOSE_WAIT) -> None:
        """Send our close frame; the connection ends when the peer answers, hangs up, or after ``wait``."""
        if self.done:
            return
        if not self.close_sent:
            self.close_sent = True
            self.endpoint.write(websocket.close_frame(code, reason))
        if self._close_timer is None:
            self._close_timer = self.reactor.call_later(wait, self._gone)

    def _data(self, data: bytes) -> None:
        if self.done:
            return
        try:
            messages = self.decoder.feed(data)
        except websocket.ProtocolError as exc:
            log.debug("websocket protocol error from the client: %s", exc)
            self.close(exc.code, str(exc), wait=1.0)
            return
        for message in messages:
            if self.finished():
                return
            if message.opcode == websocket.OP_PING:
                if not self.close_sent:
                    self.endpoint.write(websocket.encode(websocket.OP_PONG, message.payload))
            elif message.opcode == websocket.OP_PONG:
                continue
            elif message.opcode == websocket.OP_CLOSE:
                if not self.close_sent:
                    self.close_sent = True
                    code = message.close_code or websocket.CLOSE_NORMAL
                    self.endpoint.write(websocket.close_frame(code))
                self._finish_after_flush()
                return
            elif not self.close_sent:
                self.on_message(message.opcode, message.payload)

    def finished(self) -> bool:
        """A method, not the attribute, inside loops: a callback may end the connection mid-loop."""
        return self.done

    def _finish_after_flush(self) -> None:
        """Both close frames are out: end once ours has been written (or the client is gone)."""
        if self.endpoint.buffered and not self.endpoint.closed:
            self.endpoint.on_drain = self._finish_after_flush
            self.reactor.call_later(0.05, self._finish_after_flush)
            return
        self._gone()

    def _gone(self) -> None:
        if self.done:
            return
        self.done = True
        if self._close_timer is not None:
            self._close_timer.cancel()
        self.endpoint.close()
        self.on_closed()


class SpdyStream:
    """One SPDY stream the client opened."""

    def __init__(self, session: SpdySession, syn: spdy.SynStream) -> None:
        self.session = session
        self.id = syn.stream_id
        self.headers = syn.headers
        self.remote_fin = syn.fin
        self.local_fin = False
        self.reset = False
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_fin: Callable[[], None] = lambda: None
        self.on_reset: Callable[[], None] = lambda: None

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    def write(self, data: bytes) -> None:
        if self.local_fin or self.reset or self.session.done:
            return
        for start in range(0, len(data), spdy.DATA_CHUNK):
            self.session.send(spdy.Writer.data(self.id, data[start:start + spdy.DATA_CHUNK]))

    def finish(self) -> None:
        """Half-close our side (DATA with FLAG_FIN)."""
        if self.local_fin or self.reset or self.session.done:
            return
        self.local_fin = True
        self.session.send(spdy.Writer.data(self.id, b"", fin=True))
        self.session.forget_if_done(self)

    def cancel(self) -> None:
        if self.reset or self.session.done:
            return
        self.reset = True
        self.session.send(spdy.Writer.rst_stream(self.id, spdy.CANCEL))
        self.session.streams.pop(self.id, None)


class SpdySession:
    """Server side of a SPDY/3.1 connection: accepts client streams, echoes pings, ends on GOAWAY."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.send = send
        self.parser = spdy.Parser()
        self.writer = spdy.Writer()
        self.streams: dict[int, SpdyStream] = {}
        self.last_stream_id = 0
        self.done = False
        self.accept: Callable[[SpdyStream], bool] = lambda stream: False
        """Asked for each new stream: True accepts it (SYN_REPLY), False refuses it (RST_STREAM). Must not write."""
        self.on_open: Callable[[SpdyStream], None] = lambda stream: None
        """Called once an accepted stream's SYN_REPLY is out: from here on the stream may be written."""
        self.on_end: Callable[[str], None] = lambda why: None

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        try:
            frames = self.parser.feed(data)
        except spdy.ProtocolError as exc:
            self.end(f"SPDY protocol error: {exc}", status=1)
            return
        for frame in frames:
            if self.finished():
                return
            self._frame(frame)

    def _frame(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.Data):
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                return
            if frame.payload:
                stream.on_data(frame.payload)
            if frame.fin and not stream.remote_fin:
                stream.remote_fin = True
                stream.on_fin()
                self.forget_if_done(stream)
        elif isinstance(frame, spdy.SynStream):
            if frame.stream_id <= self.last_stream_id or frame.stream_id % 2 == 0:
                self.send(spdy.Writer.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
                return
            self.last_stream_id = frame.stream_id
            stream = SpdyStream(self, frame)
            self.streams[stream.id] = stream
            if not self.accept(stream):
                stream.cancel()
                return
            self.send(self.writer.syn_reply(stream.id))
            self.on_open(stream)
            if stream.remote_fin and not self.done and not stream.reset:
                stream.on_fin()
        elif isinstance(frame, spdy.RstStream):
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None and not stream.reset:
                stream.reset = True
                stream.on_reset()
        elif isinstance(frame, spdy.Ping):
            if frame.ping_id % 2 == 1:  # the client's pings are odd; ours would be even
                self.send(spdy.Writer.ping(frame.ping_id))
        elif isinstance(frame, spdy.GoAway):
            self.end("the client sent GOAWAY", goaway=False)

    def finished(self) -> bool:
        """A method, not the attribute, inside loops: a callback may end the session mid-loop."""
        return self.done

    def forget_if_done(self, stream: SpdyStream) -> None:
        if stream.local_fin and stream.remote_fin:
            self.streams.pop(stream.id, None)

    def end(self, why: str, *, status: int = 0, goaway: bool = True) -> None:
        if self.done:
            return
        if goaway:
            self.send(spdy.Writer.goaway(self.last_stream_id, status))
        self.done = True
        for stream in list(self.streams.values()):
            if not stream.reset:
                stream.reset = True
                stream.on_reset()
        self.streams.clear()
        self.on_end(why)
