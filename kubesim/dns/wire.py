"""The DNS wire format (RFC 1035, RFC 2782 SRV, RFC 6891 OPT), as much as a cluster DNS needs.

Queries are parsed for their header and first question (compressed names accepted); answers
are built from :class:`Record` values with name compression against the question only (enough to
keep answers small). A UDP answer larger than the client allows (512 bytes, or its EDNS0 buffer
size) is cut to whole records and flagged TC, so the client retries over TCP (RFC 2181 §9).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Sequence

A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QUERY = 0
UDP_DEFAULT_SIZE = 512
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", TXT: "TXT", AAAA: "AAAA", SRV: "SRV",
              OPT: "OPT", ANY: "ANY"}


class FormatError(ValueError):
    """The message is not a DNS query this server can read."""


@dataclasses.dataclass(frozen=True)
class Question:
    name: str
    """Lower-case, without the trailing dot ("" is the root)."""
    qtype: int
    qclass: int


@dataclasses.dataclass(frozen=True)
class Query:
    id: int
    flags: int
    question: Question | None
    udp_size: int = UDP_DEFAULT_SIZE
    edns: bool = False

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def recursion_desired(self) -> bool:
        return bool(self.flags & 0x0100)


@dataclasses.dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    data: str | tuple[object, ...]
    """A/AAAA: the address; PTR/CNAME/NS: a name; TXT: the text; SRV: (priority, weight, port, target);
    SOA: (mname, rname, serial, refresh, retry, expire, minimum)."""


def _read_name(msg: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(msg):
            raise FormatError("name runs past the message")
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(msg):
                raise FormatError("truncated compression pointer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            jumps += 1
            if jumps > 64:
                raise FormatError("compression loop")
            continue
        if length & 0xC0:
            raise FormatError("unknown label type")
        offset += 1
        if length == 0:
            break
        labels.append(msg[offset:offset + length].decode("ascii", "replace").lower())
        offset += length
    return ".".join(labels), (end if end >= 0 else offset)


def parse_query(msg: bytes) -> Query:
    if len(msg) < 12:
        raise FormatError("shorter than a DNS header")
    ident, flags, qdcount, _an, _ns, arcount = struct.unpack("!6H", msg[:12])
    question = None
    offset = 12
    if qdcount:
        name, offset = _read_name(msg, offset)
        if offset + 4 > len(msg):
            raise FormatError("truncated question")
        qtype, qclass = struct.unpack("!HH", msg[offset:offset + 4])
        offset += 4
        question = Question(name, qtype, qclass)
    udp_size, edns = UDP_DEFAULT_SIZE, False
    if qdcount == 1 and arcount:
        try:
            for _ in range(arcount):
                _name, offset = _read_name(msg, offset)
                rtype, rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[offset:offset + 10])
                offset += 10 + rdlen
                if rtype == OPT:
                    edns, udp_size = True, max(UDP_DEFAULT_SIZE, rclass)
        except (FormatError, struct.error):
            pass  # a malformed additional section does not spoil the question
    return Query(ident, flags, question, udp_size, edns)


def _encode_name(name: str, question: str, question_offset: int) -> bytes:
    """A name, ending in a pointer to the question's name (or a suffix of it) where they share a suffix."""
    labels = [label for label in name.split(".") if label]
    out = b""
    for i in range(len(labels)):
        rest = ".".join(labels[i:])
        if question and (question == rest or question.endswith("." + rest)):
            skip = question[:len(question) - len(rest)]
            return out + struct.pack("!H", 0xC000 | (question_offset + len(skip.encode())))
        raw = labels[i].encode("ascii", "replace")[:63]
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def _rdata(record: Record, question: str) -> bytes:
    data = record.data
    if record.rtype == A:
        return ipaddress.IPv4Address(str(data)).packed
    if record.rtype == AAAA:
        return ipaddress.IPv6Address(str(data)).packed
    if record.rtype in (PTR, CNAME, NS):
        return _encode_name(str(data), "", 0)
    if record.rtype == TXT:
        raw = str(data).encode()[:255]
        return bytes([len(raw)]) + raw
    if record.rtype == SRV:
        assert isinstance(data, tuple)
        priority, weight, port, target = data
        return struct.pack("!HHH", int(str(priority)), int(str(weight)), int(str(port))) + \
            _encode_name(str(target), "", 0)
    if record.rtype == SOA:
        assert isinstance(data, tuple)
        mname, rname, *numbers = data
        return _encode_name(str(mname), "", 0) + _encode_name(str(rname), "", 0) + \
            struct.pack("!5I", *(int(str(n)) for n in numbers))
    raise ValueError(f"cannot encode record type {record.rtype}")


def _record(record: Record, question: str) -> bytes:
    rdata = _rdata(record, question)
    return _encode_name(record.name, question, 12) + struct.pack("!HHIH", record.rtype, IN, record.ttl,
                                                                 len(rdata)) + rdata


def response(query: Query, rcode: int, answers: Sequence[Record] = (), authority: Sequence[Record] = (),
             additional: Sequence[Record] = (), *, limit: int | None = None, authoritative: bool = True) -> bytes:
    """The answer to ``query``; with ``limit`` (UDP) records that do not fit are dropped and TC set."""
    flags = 0x8000 | (query.opcode << 11) | (0x0400 if authoritative else 0) | (query.flags & 0x0100) | rcode
    qname = query.question.name if query.question else ""
    body = b""
    if query.question is not None:
        body += _encode_name(qname, "", 0) + struct.pack("!HH", query.question.qtype, query.question.qclass)
    sections = [[_record(r, qname) for r in answers], [_record(r, qname) for r in authority],
                [_record(r, qname) for r in additional]]
    opt = struct.pack("!BHHIH", 0, OPT, UDP_DEFAULT_SIZE * 8, 0, 0) if query.edns else b""
    counts = [len(s) for s in sections]
    truncated = False
    if limit is not None:
        room = limit - 12 - len(body) - len(opt)
        for index, section in enumerate(sections):
            kept = 0
            for rr in section:
                if len(rr) > room:
                    break
                room -= len(rr)
                kept += 1
            if kept < len(section):
                if index == 0:
                    truncated = True
                counts[index] = kept
                for later in range(index + 1, 3):
                    counts[later] = 0
                break
    if truncated:
        flags |= 0x0200
    payload = b"".join(b"".join(sections[i][:counts[i]]) for i in range(3))
    header = struct.pack("!6H", query.id, flags, 1 if query.question else 0, counts[0], counts[1],
                         counts[2] + (1 if opt else 0))
    return header + body + payload + opt


def build_query(ident: int, name: str, qtype: int, *, recursion: bool = True) -> bytes:
    """A plain query (for tests and ``python -m kubesim.dns``-style probes)."""
    flags = 0x0100 if recursion else 0
    return struct.pack("!6H", ident, flags, 1, 0, 0, 0) + _encode_name(name.rstrip(".").lower(), "", 0) + \
        struct.pack("!HH", qtype, IN)


@dataclasses.dataclass(frozen=True)
class Answer:
    """A parsed answer (for tests): rcode, flags and (name, type, data) of the answer section."""

    id: int
    rcode: int
    truncated: bool
    authoritative: bool
    records: list[tuple[str, int, object]]
    authority: list[tuple[str, int, object]]
    additional: list[tuple[str, int, object]]


def parse_answer(msg: bytes) -> Answer:
    ident, flags, qdcount, ancount, nscount, arcount = struct.unpack("!6H", msg[:12])
    offset = 12
    for _ in range(qdcount):
        _name, offset = _read_name(msg, offset)
        offset += 4
    sections: list[list[tuple[str, int, object]]] = [[], [], []]
    for index, count in enumerate((ancount, nscount, arcount)):
        for _ in range(count):
            name, offset = _read_name(msg, offset)
            rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[offset:offset + 10])
            offset += 10
            rdata = msg[offset:offset + rdlen]
            value: object = rdata
            if rtype == A:
                value = str(ipaddress.IPv4Address(rdata))
            elif rtype == AAAA:
                value = str(ipaddress.IPv6Address(rdata))
            elif rtype in (PTR, CNAME, NS):
                value = _read_name(msg, offset)[0]
            elif rtype == SRV:
                priority, weight, port = struct.unpack("!HHH", rdata[:6])
                value = (priority, weight, port, _read_name(msg, offset + 6)[0])
            elif rtype == TXT:
                value = rdata[1:1 + rdata[0]].decode() if rdata else ""
            offset += rdlen
            if rtype != OPT:
                sections[index].append((name, rtype, value))
    return Answer(ident, flags & 0xF, bool(flags & 0x0200), bool(flags & 0x0400), *sections)
