"""RFC 6455 WebSocket, server side, without I/O: the handshake and an incremental frame codec.

The streaming subresources need only a small part of the protocol: the opening handshake with
subprotocol selection (``Sec-WebSocket-Protocol``), binary and text messages (possibly
fragmented: gorilla/websocket, which kubectl uses, splits a message larger than its write
buffer into continuation frames), ping/pong and close. No extension is negotiated (client-go
and websocket-client do not ask for permessage-deflate by default), so the reserved bits must
be zero. Frames from the client are masked (section 5.3); ours are not.

Why not a library: the ones that exist either own the socket and an event loop (``websockets``)
or want their own connection object; the API server's streaming sessions run their own
non-blocking loop over the TLS socket (:mod:`kubesim.apiserver.streaming.reactor`), so a
sans-I/O codec this size is the simplest fit.
"""

from __future__ import annotations

import base64
import dataclasses
import email.message
import hashlib
import struct
from collections.abc import Iterable, Mapping

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009

MAX_MESSAGE = 64 * 1024 * 1024
"""A message larger than this (assembled from fragments) ends the connection with 1009."""


class ProtocolError(Exception):
    """The peer broke the framing rules; ``code`` is the close status to answer with."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


def is_upgrade(headers: Mapping[str, str] | email.message.Message) -> bool:
    """``Upgrade: websocket`` with ``upgrade`` among the Connection tokens (wsstream.IsWebSocketRequest)."""
    if (headers.get("Upgrade") or "").strip().lower() != "websocket":
        return False
    return "upgrade" in [t.strip().lower() for t in (headers.get("Connection") or "").split(",")]


def requested_protocols(values: Iterable[str] | None) -> list[str]:
    """Every subprotocol the client offered, in its order (``values``: all Sec-WebSocket-Protocol headers)."""
    out: list[str] = []
    for value in values or ():
        out.extend(p.strip() for p in str(value).split(",") if p.strip())
    return out


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key.strip() + GUID).encode()).digest()).decode()


def handshake_response(key: str, protocol: str) -> bytes:
    """The 101 answer; ``protocol`` empty means none was selected (and none is echoed)."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_key(key)}"]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def encode(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One unmasked frame (server to client)."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def close_frame(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    return encode(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120])


def unmask(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR with the 4-byte key, done as one big-integer XOR (linear, in C) instead of a Python loop."""
    n = len(payload)
    if not n:
        return b""
    stream = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


@dataclasses.dataclass(frozen=True)
class Message:
    """A complete data message (text or binary) or a control frame."""

    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


class Decoder:
    """Incremental parser of client frames: feed bytes, get whole messages and control frames.

    With ``stream=True`` data frames are handed out as they arrive (fragments not assembled),
    for protocols where message boundaries mean nothing (SPDY tunnelled over WebSocket).
    """

    def __init__(self, *, require_mask: bool = True, stream: bool = False, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._require_mask = require_mask
        self._stream = stream
        self._max = max_message
        self._frag_op: int | None = None
        self._frags: list[bytes] = []
        self._frag_len = 0

    def feed(self, data: bytes) -> list[Message]:
        if data:
            self._buf += data
        out: list[Message] = []
        buf = self._buf
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            fin = bool(b0 & 0x80)
            if b0 & 0x70:
                raise ProtocolError("reserved bits set without a negotiated extension")
            opcode = b0 & 0x0F
            masked = bool(b1 & 0x80)
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if masked:
                head += 4
            elif self._require_mask:
                raise ProtocolError("client frames must be masked")
            if end - pos < head + length:
                if length > self._max:
                    raise ProtocolError(f"frame of {length} bytes is too big", CLOSE_TOO_BIG)
                break
            start = pos + head
            raw = memoryview(buf)[start:start + length]
            payload = unmask(raw, bytes(buf[start - 4:start])) if masked else bytes(raw)
            raw.release()
            pos = start + length
            self._frame(fin, opcode, payload, out)
        if pos:
            del buf[:pos]
        return out

    def _frame(self, fin: bool, opcode: int, payload: bytes, out: list[Message]) -> None:
        if opcode >= 0x8:
            if not fin or len(payload) > 125:
                raise ProtocolError("control frames must be final and at most 125 bytes")
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise ProtocolError(f"unknown control opcode {opcode:#x}")
            out.append(Message(opcode, payload))
            return
        if opcode == OP_CONTINUATION:
            if self._frag_op is None:
                raise ProtocolError("continuation frame without a message to continue")
            op = self._frag_op
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._frag_op is not None:
                raise ProtocolError("new data message before the previous one finished")
            op = opcode
        else:
            raise ProtocolError(f"unknown data opcode {opcode:#x}")
        if self._stream:
            self._frag_op = None if fin else op
            if payload:
                out.append(Message(op, payload))
            return
        if fin and opcode != OP_CONTINUATION:
            out.append(Message(op, payload))
            return
        self._frag_op = op
        self._frags.append(payload)
        self._frag_len += len(payload)
        if self._frag_len > self._max:
            raise ProtocolError(f"message of more than {self._max} bytes", CLOSE_TOO_BIG)
        if fin:
            out.append(Message(op, b"".join(self._frags)))
            self._frag_op, self._frags, self._frag_len = None, [], 0
