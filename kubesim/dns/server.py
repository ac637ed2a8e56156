"""The cluster DNS server: UDP and TCP on one address, answers from :class:`kubesim.dns.records.Resolver`.

One asyncio loop on a thread of its own serves both transports (UDP datagrams; TCP messages
with their two-byte length prefix, several per connection, RFC 7766). Until ``ready()`` says the
caches behind the resolver have synced it answers SERVFAIL (CoreDNS waits for its informers too),
so a pod started with the control plane retries instead of caching a false NXDOMAIN. A query it
cannot read gets FORMERR, an opcode other than QUERY NOTIMP, a class other than IN REFUSED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import typing
from collections.abc import Callable

from kubesim.dns import records, wire

log = logging.getLogger("kubesim.dns")

TCP_IDLE_TIMEOUT = 10.0


def answer(resolver: records.Resolver, data: bytes, *, udp: bool, ready: Callable[[], bool]) -> bytes | None:
    """The reply to one message (None: not even a header to answer)."""
    try:
        query = wire.parse_query(data)
    except wire.FormatError:
        if len(data) < 12:
            return None
        ident, flags = struct.unpack("!HH", data[:4])
        return wire.response(wire.Query(ident, flags, None), wire.FORMERR)
    limit = query.udp_size if udp else None
    if query.opcode != wire.QUERY:
        return wire.response(query, wire.NOTIMP, limit=limit)
    question = query.question
    if question is None:
        return wire.response(query, wire.FORMERR, limit=limit)
    if question.qclass not in (wire.IN, wire.ANY):
        return wire.response(query, wire.REFUSED, limit=limit)
    if not ready():
        return wire.response(query, wire.SERVFAIL, limit=limit)
    try:
        result = resolver.resolve(question.name, question.qtype)
    except Exception:
        log.exception("resolving %s %s failed", question.name, wire.TYPE_NAMES.get(question.qtype, question.qtype))
        return wire.response(query, wire.SERVFAIL, limit=limit)
    return wire.response(query, result.rcode, result.answers, result.authority, result.additional, limit=limit,
                         authoritative=result.authoritative)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(self.server.resolver, data, udp=True, ready=self.server.ready)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """Serves ``resolver`` on ``host:port`` (UDP and TCP) from :meth:`start` until :meth:`stop`."""

    def __init__(self, resolver: records.Resolver, host: str, port: int, ready: Callable[[], bool]) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self.ready = ready
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._closers: list[Callable[[], None]] = []

    def start(self) -> None:
        """Bind both sockets (OSError if the address cannot be had), then serve on a thread."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((self.host, self.port))
            tcp.bind((self.host, udp.getsockname()[1]))  # port 0 (tests): TCP on the port UDP got
            tcp.listen(64)
        except OSError:
            udp.close()
            tcp.close()
            raise
        if self.port == 0:
            self.port = udp.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(udp, tcp), name=f"dns {self.host}:{self.port}",
                                        daemon=True)
        self._thread.start()

    def _run(self, udp: socket.socket, tcp: socket.socket) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            transport, _protocol = await self._loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
            server = await asyncio.start_server(self._tcp_client, sock=tcp)
            self._closers += [transport.close, server.close]

        self._loop.run_until_complete(serve())
        self._loop.run_forever()
        # open TCP connections: cancel them and let them finish, so no coroutine outlives the loop
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                data = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), TCP_IDLE_TIMEOUT)
                reply = answer(self.resolver, data, udp=False, ready=self.ready)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def stop(self) -> None:
        if self._thread is None:
            return

        def shut() -> None:
            for close in self._closers:
                close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shut)
        self._thread.join(timeout=5)
        self._thread = None
