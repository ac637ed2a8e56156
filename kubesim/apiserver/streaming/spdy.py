"""SPDY/3.1 framing, server side, without I/O: the subset Kubernetes' streaming protocols use.

client-go speaks SPDY through moby/spdystream (``spdy/`` there holds the framer): the client
opens streams with SYN_STREAM (headers such as ``streamtype``, ``port``, ``requestid``), the
server answers each with SYN_REPLY, both sides send DATA frames and half-close a stream with a
DATA frame carrying FLAG_FIN, RST_STREAM cancels a stream, PING is echoed, GOAWAY ends the
session. spdystream does no flow control (WINDOW_UPDATE and SETTINGS are read and ignored), so
neither do we.

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams, one per direction for the
whole connection, primed with the SPDY/3 dictionary and flushed with Z_SYNC_FLUSH after every
block; the block itself is a 32-bit count, then per header a 32-bit length + name, a 32-bit
length + value (several values joined by NUL).

Frame layouts (all integers big-endian):

* control: ``1 | version(15) | type(16) | flags(8) | length(24) | payload``;
* data: ``0 | stream-id(31) | flags(8) | length(24) | payload``.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6

MAX_FRAME = 1 << 24
"""Lengths are 24 bits; a frame cannot be longer."""

DATA_CHUNK = 64 * 1024
"""The largest DATA payload we send (a bigger one would only add latency before the first byte)."""

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
    "keep-alive", "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)

DICTIONARY = b"".join(struct.pack("!I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
"""The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1):
length-prefixed common header words, then a run of common values."""


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1 (the session ends with GOAWAY)."""


Headers = dict[str, list[str]]


def encode_headers(headers: Headers) -> bytes:
    block = [struct.pack("!I", len(headers))]
    for name, values in headers.items():
        raw_name = name.lower().encode()
        raw_value = "\0".join(values).encode()
        block += [struct.pack("!I", len(raw_name)), raw_name, struct.pack("!I", len(raw_value)), raw_value]
    return b"".join(block)


def decode_headers(block: bytes) -> Headers:
    try:
        (count,) = struct.unpack_from("!I", block, 0)
        pos = 4
        out: Headers = {}
        for _ in range(count):
            (n,) = struct.unpack_from("!I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode("latin-1").lower()
            pos += 4 + n
            (n,) = struct.unpack_from("!I", block, pos)
            value = block[pos + 4:pos + 4 + n].decode("latin-1")
            pos += 4 + n
            out.setdefault(name, []).extend(value.split("\0"))
    except struct.error:
        raise ProtocolError("truncated header block") from None
    return out


class HeaderCompressor:
    """Our direction's zlib context (one per connection)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._z.compress(encode_headers(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The peer's zlib context (one per connection)."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zlib.MAX_WBITS, DICTIONARY)

    def decompress(self, data: bytes) -> Headers:
        try:
            return decode_headers(self._z.decompress(data))
        except zlib.error as exc:
            raise ProtocolError(f"header block does not decompress: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Data:
    stream_id: int
    fin: bool
    payload: bytes


@dataclasses.dataclass(frozen=True)
class SynStream:
    stream_id: int
    associated: int
    fin: bool
    unidirectional: bool
    headers: Headers

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower()) or [""]
        return values[0]


@dataclasses.dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclasses.dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclasses.dataclass(frozen=True)
class GoAway:
    last_stream_id: int
    status: int


@dataclasses.dataclass(frozen=True)
class Other:
    """A frame we read and ignore (SETTINGS, WINDOW_UPDATE, SYN_REPLY/HEADERS from a client)."""

    frame_type: int
    stream_id: int
    fin: bool


Frame = Data | SynStream | RstStream | Ping | GoAway | Other


class Parser:
    """Incremental frame parser over the byte stream from the client."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        buf = self._buf
        out: list[Frame] = []
        pos, end = 0, len(buf)
        while end - pos >= 8:
            first, flags_len = struct.unpack_from("!II", buf, pos)
            flags, length = flags_len >> 24, flags_len & 0xFFFFFF
            if end - pos < 8 + length:
                break
            body = bytes(buf[pos + 8:pos + 8 + length])
            pos += 8 + length
            if first & 0x80000000:
                version, ftype = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version} is not supported (want {VERSION})")
                out.append(self._control(ftype, flags, body))
            else:
                out.append(Data(first & 0x7FFFFFFF, bool(flags & FLAG_FIN), body))
        if pos:
            del buf[:pos]
        return out

    def _control(self, ftype: int, flags: int, body: bytes) -> Frame:
        fin = bool(flags & FLAG_FIN)
        try:
            if ftype == SYN_STREAM:
                sid, assoc = struct.unpack_from("!II", body, 0)
                headers = self._headers.decompress(body[10:])
                return SynStream(sid & 0x7FFFFFFF, assoc & 0x7FFFFFFF, fin, bool(flags & FLAG_UNIDIRECTIONAL),
                                 headers)
            if ftype in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from("!I", body, 0)
                self._headers.decompress(body[4:])  # keeps the shared zlib context in step
                return Other(ftype, sid & 0x7FFFFFFF, fin)
            if ftype == RST_STREAM:
                sid, status = struct.unpack_from("!II", body, 0)
                return RstStream(sid & 0x7FFFFFFF, status)
            if ftype == PING:
                (pid,) = struct.unpack_from("!I", body, 0)
                return Ping(pid)
            if ftype == GOAWAY:
                last, status = struct.unpack_from("!II", body, 0) if len(body) >= 8 else (0, 0)
                return GoAway(last & 0x7FFFFFFF, status)
            if ftype == WINDOW_UPDATE:
                (sid,) = struct.unpack_from("!I", body, 0)
                return Other(ftype, sid & 0x7FFFFFFF, False)
        except struct.error:
            raise ProtocolError(f"truncated control frame of type {ftype}") from None
        return Other(ftype, 0, fin)


def _control(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


class Writer:
    """Encodes our frames; owns the compressor, so one per connection."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def syn_reply(self, stream_id: int, headers: Headers | None = None, *, fin: bool = False) -> bytes:
        block = self._headers.compress(headers or {})
        return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack("!I", stream_id) + block)

    def syn_stream(self, stream_id: int, headers: Headers, *, fin: bool = False) -> bytes:
        """Only used by tests acting as a client."""
        block = self._headers.compress(headers)
        return _control(SYN_STREAM, FLAG_FIN if fin else 0, struct.pack("!IIBB", stream_id, 0, 0, 0) + block)

    @staticmethod
    def data(stream_id: int, payload: bytes = b"", *, fin: bool = False) -> bytes:
        return struct.pack("!II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload

    @staticmethod
    def rst_stream(stream_id: int, status: int = CANCEL) -> bytes:
        return _control(RST_STREAM, 0, struct.pack("!II", stream_id, status))

    @staticmethod
    def ping(ping_id: int) -> bytes:
        return _control(PING, 0, struct.pack("!I", ping_id))

    @staticmethod
    def goaway(last_stream_id: int, status: int = 0) -> bytes:
        return _control(GOAWAY, 0, struct.pack("!II", last_stream_id, status))
