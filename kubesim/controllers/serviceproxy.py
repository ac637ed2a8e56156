"""``kube-proxy``: a Service's ClusterIP reaches its endpoints (TCP), inside the cluster's network.

kind runs kube-proxy on every node, turning each ``clusterIP:port`` into iptables rules that DNAT
to a ready endpoint. kubesim's nodes share one network (the cluster's namespace, or the host's
with ``--network host``), so one proxy in the control plane does for all of them: for every TCP
port of every Service with a ClusterIP it listens on ``clusterIP:port`` and splices each accepted
connection to an endpoint picked at random (iptables mode picks at random too), with half-closes
passed on both ways. Endpoints come from the Service's EndpointSlices, as kube-proxy reads them:
those with ``ready: true``, else — when none is ready — those still ``serving`` while
``terminating`` (ProxyTerminatingEndpoints); the endpoint port is the slice port named like the
service port. A Service with no usable endpoint has no listener, so a client is refused
(kube-proxy REJECTs such traffic with ICMP port unreachable: ``connection refused`` too).

Differences from kube-proxy: a connection is accepted before the endpoint is dialled, so an
endpoint that refuses makes the proxy try the next one and, when none answers, reset the client
connection (iptables would have handed the client the refusal); UDP and SCTP ports, NodePorts,
externalIPs, session affinity and traffic policies are not implemented; the proxy only exists
while the control plane runs (kube-proxy's rules outlive kube-proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import threading
from typing import Any

from kubesim.controllers import runtime

Obj = dict[str, Any]
log = logging.getLogger("kubesim.controllers.serviceproxy")

SERVICE_INDEX = "service"
CONNECT_TIMEOUT = 5.0
BUFFER = 256 * 1024
BIND_RETRY = 5.0


def _slice_service(es: Obj) -> list[str]:
    meta = es.get("metadata") or {}
    name = (meta.get("labels") or {}).get("kubernetes.io/service-name")
    return [f"{meta.get('namespace') or ''}/{name}"] if name else []


def backends(slices: list[Obj], port_name: str, protocol: str) -> list[tuple[str, int]]:
    """The (address, port) pairs a service port forwards to: ready endpoints, else serving terminating ones."""
    ready: list[tuple[str, int]] = []
    fallback: list[tuple[str, int]] = []
    for es in slices:
        number = next((int(p["port"]) for p in es.get("ports") or []
                       if str(p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
                       and p.get("port") is not None), None)
        if number is None:
            continue
        for endpoint in es.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            pairs = [(str(a), number) for a in endpoint.get("addresses") or []]
            if conditions.get("ready") is not False:
                ready += pairs
            elif conditions.get("serving") and conditions.get("terminating"):
                fallback += pairs
    return ready or fallback


class _Listener:
    def __init__(self, owner: str, server: asyncio.Server, targets: list[tuple[str, int]]) -> None:
        self.owner = owner
        self.server = server
        self.targets = targets


class ServiceProxy:
    name = "kube-proxy"

    def setup(self, mgr: runtime.Manager) -> None:
        self.mgr = mgr
        self.services = mgr.informer("services")
        self.slices = mgr.informer("endpointslices")
        self.slices.add_index(SERVICE_INDEX, _slice_service)
        self.services.add_handler(on_add=self._service, on_update=lambda _o, n: self._service(n),
                                  on_delete=self._service)
        self.slices.add_handler(on_add=self._slice, on_update=lambda _o, n: self._slice(n), on_delete=self._slice)
        self.listeners: dict[tuple[str, int], _Listener] = {}
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="kube-proxy", daemon=True).start()

    def _service(self, svc: Obj) -> None:
        meta = svc.get("metadata") or {}
        self.mgr.enqueue(self, f"{meta.get('namespace') or ''}/{meta.get('name') or ''}")

    def _slice(self, es: Obj) -> None:
        for key in _slice_service(es):
            self.mgr.enqueue(self, key)

    def desired(self, key: str) -> dict[tuple[str, int], list[tuple[str, int]]]:
        namespace, name = runtime.split_key(key)
        svc = self.services.get(namespace, name)
        if svc is None:
            return {}
        spec = svc.get("spec") or {}
        ips = [str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
        if spec.get("type") == "ExternalName" or not ips:
            return {}
        slices = self.slices.by_index(SERVICE_INDEX, key)
        out: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for port in spec.get("ports") or []:
            protocol = str(port.get("protocol") or "TCP")
            if protocol != "TCP":
                continue
            targets = backends(slices, str(port.get("name") or ""), protocol)
            if targets:
                for ip in ips:
                    out[(ip, int(port["port"]))] = targets
        return out

    def reconcile(self, key: str) -> float | None:
        wanted = self.desired(key)
        for address, listener in list(self.listeners.items()):
            if listener.owner == key and address not in wanted:
                self._close(address)
        retry = None
        for address, targets in wanted.items():
            current = self.listeners.get(address)
            if current is not None and current.owner == key:
                current.targets[:] = targets
                continue
            if current is not None:
                retry = BIND_RETRY  # another Service still holds the address (it changed meanwhile)
                continue
            try:
                server = asyncio.run_coroutine_threadsafe(self._listen(address, targets), self.loop).result(10)
            except OSError as exc:
                log.warning("Service %s: cannot listen on %s:%d (%s); retrying", key, *address, exc.strerror)
                retry = BIND_RETRY
                continue
            self.listeners[address] = _Listener(key, server, list(targets))
            log.info("Service %s: %s:%d -> %s", key, *address, ", ".join(f"{h}:{p}" for h, p in targets))
        return retry

    async def _listen(self, address: tuple[str, int], targets: list[tuple[str, int]]) -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._splice(address, reader, writer)

        return await asyncio.start_server(handle, address[0], address[1], reuse_address=True)

    def _close(self, address: tuple[str, int]) -> None:
        listener = self.listeners.pop(address)
        self.loop.call_soon_threadsafe(listener.server.close)
        log.info("Service %s: %s:%d closed (no ready endpoint or port gone)", listener.owner, *address)

    async def _splice(self, address: tuple[str, int], reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        listener = self.listeners.get(address)
        targets = list(listener.targets) if listener is not None else []
        random.shuffle(targets)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for host, port in targets:
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
                break
            except (OSError, TimeoutError):
                continue
        if upstream is None:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # a reset, as close to iptables' refusal as an accepted connection gets
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        for w in (writer, up_writer):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(BUFFER)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


def new() -> ServiceProxy:
    return ServiceProxy()
