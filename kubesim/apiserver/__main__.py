"""The API server process: ``python -m kubesim.apiserver --state DIR --port N [--netns-fd FD]``.

Started in the background by ``kubesim up`` (which generates certificates and token first);
runs until SIGTERM/SIGINT, then stops accepting, ends open watches and closes the store.
``kubesim.controlplane`` runs this same server with its controller manager in one process
through the ``after_listen`` hook (started once the port is known, stopped before the server).

``--netns-fd FD`` (a cluster with ``--network private``, see :mod:`kubesim.network`): FD is an
inherited descriptor of the cluster's network namespace. Before anything else (:func:`publish`)
the process binds 127.0.0.1:PORT on the host — a listening socket keeps the namespace it was
created in, so this one stays the host's: the published address of the kubeconfig and the only
thing of the cluster the host can reach —, then moves into the cluster's namespace (its main
thread, while it is the only thread, so every thread it starts later is inside: handlers,
watches, the controllers, the store's compactor, port-forward connections to pods) and listens
on 127.0.0.1:PORT there too, the same address, so kubelets, controllers and ``kubesim net exec``
use the kubeconfig's port as the host does. If PORT is free on the host but taken inside (a pod
bound it), ``--port-fallback`` / port 0 pick another port free in both.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from kubesim import network, servicenet, state, stopsignal
from kubesim.apiserver import admission, bootstrap, nslifecycle, rest, server, serviceips, store, streaming, watch
from kubesim.apiserver import identity as api_identity

HOST = "127.0.0.1"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesim.apiserver")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-fallback", action="store_true",
                        help="if --port is taken, listen on a free port instead of failing")
    parser.add_argument("--watch-window", type=int,
                        default=int(os.environ.get("KUBESIM_WATCH_WINDOW", "10000")),
                        help="watch events kept; older resourceVersions get 410 Expired")
    parser.add_argument("--bookmark-interval", type=float,
                        default=float(os.environ.get("KUBESIM_BOOKMARK_INTERVAL", "60")))
    parser.add_argument("--log-level", default=os.environ.get("KUBESIM_LOG_LEVEL", "INFO"))
    parser.add_argument("--default-toleration-seconds", type=int,
                        default=int(os.environ.get("KUBESIM_DEFAULT_TOLERATION_SECONDS", "300")),
                        help="tolerationSeconds of the not-ready/unreachable tolerations added to new pods")
    parser.add_argument("--netns-fd", type=int, default=None,
                        help="an inherited fd of the cluster's network namespace: listen on the host first, then "
                             "enter it and listen there too (kubesim up --network private)")
    parser.add_argument("--no-root-ca-publisher", dest="root_ca_publisher", action="store_false",
                        help="do not publish the kube-root-ca.crt ConfigMap in every namespace (a controller-manager "
                             "controller upstream: kubesim.controlplane passes this with --controllers none)")
    return parser.parse_args(argv)


class ListenError(Exception):
    pass


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as TLSServer.allow_reuse_address
        sock.bind((HOST, port))
        sock.listen(server.TLSServer.request_queue_size)
    except OSError:
        sock.close()
        raise
    return sock


def publish(argv: list[str] | None) -> list[socket.socket]:
    """Listen on 127.0.0.1:PORT on the host and, with ``--netns-fd``, on the same address inside the cluster's network.

    Call it first in the process, from the main thread while it is the only thread: it ends with the
    process inside the cluster's network, so every thread started later (request handlers, watches,
    controllers, the store's compactor, port-forward connections to pods) is in it, while the host
    socket keeps the host's namespace it was created in. It goes back to the host's namespace only
    to take another host port when PORT turns out to be taken inside (``--port-fallback`` / port 0).
    """
    args = _args(argv)
    ports = [args.port] + ([0] * 20 if args.port_fallback or args.port == 0 else [])  # each 0: a new free port
    host_ns = None
    if args.netns_fd is not None:
        if threading.active_count() != 1:
            raise ListenError("a thread started before the process entered the cluster's network (a kubesim bug)")
        host_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    problem = "no port to try"
    try:
        for port in ports:
            if host_ns is not None:
                network.enter(host_ns)
            try:
                outside = _listening_socket(port)
            except OSError as exc:
                problem = f"cannot listen on {HOST}:{port}: {exc}"
                continue
            if args.netns_fd is None:
                return [outside]
            network.enter(args.netns_fd)
            try:
                return [outside, _listening_socket(outside.getsockname()[1])]
            except OSError as exc:
                problem = (f"listening on {HOST}:{outside.getsockname()[1]} on the host, but that port is taken "
                           f"inside the cluster's network: {exc}")
                outside.close()
        raise ListenError(problem)
    finally:
        if host_ns is not None:
            os.close(host_ns)
            os.close(args.netns_fd)


class _Listening(server.TLSServer):
    """The API server on a socket :func:`publish` bound and put in listening state already."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, app: server.ApiServer) -> None:
        self._listening = sock
        super().__init__(sock.getsockname(), context, app)

    def server_bind(self) -> None:  # socketserver's hook: adopt the socket instead of binding a new one
        self.socket.close()
        self.socket = self._listening
        host, port = self.socket.getsockname()
        self.server_address = (host, port)
        self.server_name, self.server_port = str(host), int(port)

    def server_activate(self) -> None:
        pass  # listening already


AfterListen = Callable[[int, stopsignal.StopSignal], Callable[[], None]]
"""Called with the port and the process's stop once the server listens; returns what to run at shutdown.

``stop.set()`` ends the process (the controller manager failing to start); ``stop.event`` is what
threads poll.
"""


def main(argv: list[str] | None = None, after_listen: AfterListen | None = None,
         listening: list[socket.socket] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; ``listening``: what :func:`publish` returned, if the caller published already."""
    args = _args(argv)
    if listening is None:
        try:
            listening = publish(argv)
        except ListenError as exc:
            print(f"kubesim apiserver: {exc}", file=sys.stderr)
            return 2
    layout = state.Layout(args.state.resolve())
    logging.basicConfig(
        filename=str(layout.log), level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    log = logging.getLogger("kubesim.apiserver")
    token = layout.token.read_text().strip()
    streaming.install(layout.root)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(layout.root / "apiserver.crt"), str(layout.root / "apiserver.key"))
    context.set_alpn_protocols(["http/1.1"])
    db = store.Store(layout.db, window=args.watch_window)
    api = rest.Api(db, admission_base=admission.AdmissionConfig(
        not_ready_toleration_seconds=args.default_toleration_seconds,
        unreachable_toleration_seconds=args.default_toleration_seconds,
    ))
    api.service_ips = serviceips.for_network(servicenet.for_state(layout.root))  # --service-cluster-ip-range
    bootstrap.ensure_defaults(api)
    app = api_identity.install(api, layout.root, token, watch.Settings(bookmark_interval=args.bookmark_interval))
    listeners = [_Listening(sock, context, app) for sock in listening]
    port = listeners[0].server_address[1]
    app.address = f"{HOST}:{port}"
    for httpd in listeners:
        threading.Thread(target=httpd.serve_forever, name="apiserver-accept", daemon=True).start()
    state.atomic_write(layout.port_file, f"{port}\n".encode())
    log.info("serving https://%s:%d%s (store %s, resourceVersion %d)", HOST, port,
             f" on the host and in the cluster's network {network.ns_id('self')}" if len(listeners) > 1 else "",
             layout.db, db.resource_version)
    with stopsignal.StopSignal() as stop:
        nslifecycle.start(api, stop.event)
        api_identity.start_controllers(api, layout.root, stop.event, root_ca=args.root_ca_publisher)
        cleanup = after_listen(port, stop) if after_listen is not None else None
        stop.wait()
        log.info("shutting down (%s)", stop.received.name if stop.received is not None else "requested")
        if cleanup is not None:
            cleanup()
        stoppers = [threading.Thread(target=httpd.shutdown, name="apiserver-shutdown") for httpd in listeners]
        for stopper in stoppers:  # at once: each waits up to a poll interval (0.5 s) for its accept loop
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        db.close()
        for httpd in listeners:
            with contextlib.suppress(OSError):
                httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
