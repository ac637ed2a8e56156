"""The API server process: ``python -m kubesim.apiserver --state DIR --port N``.

Started in the background by ``kubesim up`` (which generates certificates and token first);
runs until SIGTERM/SIGINT, then stops accepting, ends open watches and closes the store.
``kubesim.controlplane`` runs this same server with its controller manager in one process
through the ``after_listen`` hook (started once the port is known, stopped before the server).
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

from kubesim import state, stopsignal
from kubesim.apiserver import admission, bootstrap, nslifecycle, rest, server, store, watch


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
    return parser.parse_args(argv)


AfterListen = Callable[[int, stopsignal.StopSignal], Callable[[], None]]
"""Called with the port and the process's stop once the server listens; returns what to run at shutdown.

``stop.set()`` ends the process (the controller manager failing to start); ``stop.event`` is what
threads poll.
"""


def main(argv: list[str] | None = None, after_listen: AfterListen | None = None) -> int:
    args = _args(argv)
    layout = state.Layout(args.state.resolve())
    logging.basicConfig(
        filename=str(layout.log), level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    log = logging.getLogger("kubesim.apiserver")
    token = layout.token.read_text().strip()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(layout.root / "apiserver.crt"), str(layout.root / "apiserver.key"))
    context.set_alpn_protocols(["http/1.1"])
    db = store.Store(layout.db, window=args.watch_window)
    api = rest.Api(db, admission_base=admission.AdmissionConfig(
        not_ready_toleration_seconds=args.default_toleration_seconds,
        unreachable_toleration_seconds=args.default_toleration_seconds,
    ))
    bootstrap.ensure_defaults(api)
    app = server.ApiServer(api, token, watch.Settings(bookmark_interval=args.bookmark_interval))
    try:
        httpd, _thread = server.start("127.0.0.1", args.port, context, app)
    except OSError as exc:
        if not args.port_fallback or args.port == 0:
            print(f"kubesim apiserver: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
            return 2
        httpd, _thread = server.start("127.0.0.1", 0, context, app)
    port = httpd.server_address[1]
    state.atomic_write(layout.port_file, f"{port}\n".encode())
    log.info("serving https://127.0.0.1:%d (store %s, resourceVersion %d)", port, layout.db, db.resource_version)
    with stopsignal.StopSignal() as stop:
        nslifecycle.start(api, stop.event)
        cleanup = after_listen(port, stop) if after_listen is not None else None
        stop.wait()
        log.info("shutting down (%s)", stop.received.name if stop.received is not None else "requested")
        if cleanup is not None:
            cleanup()
        httpd.shutdown()
        db.close()
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
