"""``harness writer serve``: the process that runs in every pod.

Order of events: refuse a missing or read-only data dir (one line, exit 2); import the
checkpoint format's library (torch, jax: seconds; one line and exit 2 when it fails); bind and log
``listening`` with the real port (port 0 picks a free one); boot in the background (identity,
then recovery, then ``ready``); on SIGTERM/SIGINT stop accepting, let in-flight checkpoints
finish (they were promised an answer) and exit 0.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from harness.workload import app, config, events, formats, fsutil, server, stopsignal

#: Kubernetes' default grace period is 30 s; finish in-flight writes well inside it
DRAIN_SECONDS: Final = 20.0


def check_data_dir(data_dir: Path) -> None:
    """Raise ConfigError with one line when the writer could not possibly use ``data_dir``."""
    if not data_dir.exists():
        raise config.ConfigError(f"data dir {data_dir} does not exist: mount the volume there or pass --data-dir")
    if not data_dir.is_dir():
        raise config.ConfigError(f"data dir {data_dir} is not a directory: pass the volume's mount point")
    if os.statvfs(data_dir).f_flag & os.ST_RDONLY or not os.access(data_dir, os.W_OK | os.X_OK):
        raise config.ConfigError(f"data dir {data_dir} is read-only: the writer needs a writable volume")


def serve(
    cfg: config.WriterConfig,
    env: Mapping[str, str],
    log: events.EventLog | None = None,
    disk: fsutil.Disk | None = None,
) -> int:
    """Run until a signal; returns the exit code. ConfigError propagates (the CLI prints it)."""
    log = log if log is not None else events.EventLog()
    pod = config.pod_identity_from_env(env)
    check_data_dir(cfg.data_dir)
    try:  # before anything is written: a format whose library does not import is a bad setting
        library = formats.load(cfg.format)
    except ImportError as exc:
        raise config.ConfigError(str(exc)) from None
    writer = app.WriterApp(cfg, pod, log, disk)
    if cfg.unsafe_skip:
        log.event(
            "UNSAFE-PROTOCOL",
            level="warning",
            skipped=sorted(cfg.unsafe_skip),
            note="NEGATIVE CONTROL: this writer skips publish-protocol steps and WILL lose or tear checkpoints",
        )
    try:
        httpd = server.WriterHTTPServer(cfg.host, cfg.port, writer)
        extra = [server.WriterHTTPServer(h, int(httpd.server_address[1]), writer, slots=httpd.slots)
                 for h in _also_listen_on(cfg.host)]
    except OSError as exc:
        raise config.ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}") from exc
    with stopsignal.StopSignal() as stop:
        host, port = httpd.server_address[:2]
        log.event(
            "listening", host=str(host), port=int(port), ordinal=pod.ordinal, pod=pod.pod, epoch=writer.epoch,
            data_dir=str(cfg.data_dir), keep_last=cfg.keep_last, max_bytes=cfg.max_bytes, pid=os.getpid(),
            format=cfg.format, library=library,
            pod_identity=dataclasses.asdict(pod),
        )
        http_thread = server.start(httpd)
        extra_threads = [server.start(h) for h in extra]
        threading.Thread(target=_boot_then_watch, args=(writer, stop), name="boot", daemon=True).start()
        received = stop.wait()
        # the handlers stay in place while draining: a second SIGTERM must not cut the drain short
        if received is not None:
            log.event("signal", signal=received.name)
        code = 1 if writer.fatal.is_set() else 0
        servers = [(httpd, http_thread), *zip(extra, extra_threads, strict=True)]
        # what this stop owes an answer to: a harness that stopped the writer holds it to exactly these
        held = [h.in_flight() for h, _t in servers]
        log.event("stopping", draining_seconds=DRAIN_SECONDS, in_flight=sorted(i for ids, _n in held for i in ids),
                  in_flight_without_id=sum(n for _ids, n in held))
        drained = writer.stop(DRAIN_SECONDS)
        for h, t in servers:
            h.shutdown()
            t.join(timeout=5)
            h.server_close()  # from here a new connection is refused: the client knows nothing was sent
        # then every request that did arrive gets its whole answer (503 for the ones after the stop)
        until = time.monotonic() + cfg.connection_timeout  # one deadline for all, inside the grace period
        unanswered = sum(h.wait_answered(max(0.0, until - time.monotonic())) for h, _t in servers)
        if unanswered:
            log.event("stopping.unanswered", requests=unanswered, waited_seconds=cfg.connection_timeout)
    log.event("stopped", drained=drained, exit_code=code)
    return code


def _also_listen_on(host: str) -> list[str]:
    """Loopback as well, when the pod's own address is a specific, non-loopback one.

    The StatefulSet sets LISTEN_HOST to the pod IP (downward API) so that on the embedded
    cluster, where pods share the host's network and each has its own 127.x address, no two
    pods fight over one port. On a real cluster the pod IP is not loopback, and ``kubectl
    port-forward`` connects to localhost inside the pod's network namespace: listening there
    too keeps port-forward working without binding the wildcard address.
    """
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return []  # a name such as "localhost": bind what it resolves to, nothing more
    if addr.is_loopback or addr.is_unspecified:
        return []
    return ["::1" if addr.version == 6 else "127.0.0.1"]


def _boot_then_watch(writer: app.WriterApp, stop: stopsignal.StopSignal) -> None:
    writer.boot()
    if writer.fatal.is_set():
        stop.request()
