"""Locust users that write checkpoints and record every request as history ops.

Runs only inside a locust process (``python -m locust -f harness/load/locustfile.py``,
started by :mod:`harness.load.runner`): importing locust monkey-patches gevent, which
breaks a pytest or kubernetes-client process. Never imports the Kubernetes client; the
only view of the cluster is the endpoints file the harness rewrites as pods move.

Per request, on the user's own Jepsen process ``<host>.<pid>-u<n>``:

1. record ``invoke`` (:class:`harness.ops.WriteInvoke`) *before* the POST is sent;
2. POST ``/checkpoints`` with a fresh request id (the writer assigns the step);
3. record exactly one completion, decided by :mod:`harness.load.classify`: ``ok`` with the
   writer's receipt only on a valid 200, ``fail`` only on a "nothing was published"
   answer, ``info`` for everything else — including the load stopping mid-request;
4. fire locust's own request event so its CSV/HTML/JSON stats stay meaningful.

Before each request a user checks whether the endpoints file was replaced (a ``stat``;
the JSON is parsed only after a rewrite), so load follows a pod that came back elsewhere,
and users are re-assigned when ordinals appear or disappear. While an ordinal keeps failing
at an unchanged address the user backs off (50 ms doubling to 1 s) instead of flooding the
history with refused connections. SIGUSR1 (the runner's abort) stops every user at once;
each request in flight is then recorded as ``info``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import select
import signal
import socket
import time
import urllib.parse
import uuid
from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import Any, ClassVar, cast

import gevent
from locust import User, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.user.wait_time import constant_throughput

from harness import history, ops
from harness.load import classify, endpoints, metrics, plan

log = logging.getLogger("harness.load")

#: Stats name prefix; the ordinal is appended so locust's report shows load per ordinal.
REQUEST_NAME = "/checkpoints"
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 1.0
#: Reconnect instead of reusing a keep-alive connection idle for longer than this.
IDLE_RECONNECT_S = 5.0


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle keep-alive connection that is readable has been closed by the server (or sent
    something unasked): a request sent down it would be lost, so it is not reused (urllib3's check)."""
    poller = select.poll()  # not select.select: it refuses descriptors above 1023
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class CheckpointWriteError(Exception):
    """What locust's stats show for a request that did not end ``ok``."""


class RequestDeadline(Exception):
    """The whole request (connect, send, wait, read) took longer than --ckpt-timeout."""


def _add_options(parser: ArgumentParser) -> None:
    # Custom options travel from a --master to its workers in the spawn message.
    group = parser.add_argument_group("checkpoint load (harness)")
    group.add_argument("--ckpt-endpoints", default="", help="endpoints file (ordinal -> URL), rewritten as pods move")
    group.add_argument("--ckpt-history-dir", default="", help="folder for this process's history JSONL file")
    group.add_argument("--ckpt-metrics-dir", default="", help="folder for this process's load metrics JSON")
    group.add_argument("--ckpt-bytes", type=int, default=1 << 20, help="checkpoint size in bytes")
    group.add_argument("--ckpt-shards", type=int, default=1, help="shard files per checkpoint")
    group.add_argument("--ckpt-rate-per-ordinal", type=float, default=0.0, help="checkpoints/s per ordinal; 0 = max")
    group.add_argument("--ckpt-workers", type=int, default=1, help="locust processes sharing the rate")
    group.add_argument("--ckpt-timeout", type=float, default=60.0, help="seconds before a request is info")
    group.add_argument("--ckpt-stages", default="", help="DURATION:USERS[@RATE],... (with -f ...,shape.py)")


class _Process:
    """Per locust process: the recorder, the endpoints view, the options and the tallies.

    Created on the first user start, not at import, because a distributed worker only
    receives the master's options with its first spawn message, and a master never
    records at all (it runs no users).
    """

    instance: ClassVar[_Process | None] = None

    def __init__(self, options: Namespace) -> None:
        if not options.ckpt_endpoints or not options.ckpt_history_dir:
            raise ValueError("--ckpt-endpoints and --ckpt-history-dir are required")
        if options.ckpt_bytes < 1 or options.ckpt_shards < 1 or options.ckpt_timeout <= 0:
            raise ValueError("--ckpt-bytes, --ckpt-shards and --ckpt-timeout must be positive")
        self.worker_id = f"{socket.gethostname().split('.')[0]}.{os.getpid()}"
        self.options = options
        self.follower = endpoints.Follower(Path(options.ckpt_endpoints))
        self.recorder = history.HistoryWriter(Path(options.ckpt_history_dir), f"{self.worker_id}-load")
        self.metrics = metrics.LoadMetrics(worker=self.worker_id)
        self.metrics_dir = Path(options.ckpt_metrics_dir) if options.ckpt_metrics_dir else None
        self.next_user = 0

    @classmethod
    def get(cls, environment: Environment) -> _Process:
        if cls.instance is None:
            if environment.parsed_options is None:
                raise ValueError("locust started without parsed options (run it through the locust CLI)")
            cls.instance = _Process(environment.parsed_options)
        return cls.instance

    def record(self, type: history.OpType, value: history.JsonValue, error: str | None, process: str) -> None:
        started = time.perf_counter()
        self.recorder.record(type, ops.WRITE, value, error, process=process)
        self.metrics.record_seconds += time.perf_counter() - started

    def close(self) -> None:
        self.recorder.close()
        if self.metrics_dir is not None:
            metrics.dump(self.metrics, self.metrics_dir)


def _on_quit(**_: Any) -> None:
    # locust fires ``quit`` after stopping every user (``quitting`` fires before, while
    # users may still be recording), so no op can arrive after the file is closed.
    proc = _Process.instance
    if proc is not None:
        _Process.instance = None
        proc.close()


#: The harness's "abort now" signal (locust's own SIGTERM waits --stop-timeout for users).
ABORT_SIGNAL = signal.SIGUSR1


def _install_abort(environment: Environment, **_: Any) -> None:
    """On SIGUSR1: kill every user at once — each in-flight request records ``info`` as it
    dies — then hand over to locust's SIGTERM shutdown, which writes the reports."""

    def abort() -> None:
        log.info("abort requested: stopping users now; in-flight requests become info")
        runner = environment.runner
        if runner is not None:
            runner.user_greenlets.kill(block=True, timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)

    gevent.signal_handler(ABORT_SIGNAL, abort)


events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_install_abort)  # type: ignore[no-untyped-call]
events.quit.add_listener(_on_quit)  # type: ignore[no-untyped-call]


def _as_json(value: ops.WriteInvoke | ops.WriteOk) -> history.JsonValue:
    """A write op's value as the history's JSON type (a copy: the history never aliases)."""
    return cast(history.JsonValue, dict(value))


class CheckpointWriter(User):
    """One Jepsen process: writes checkpoints to its ordinals in turn, one request at a time."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._proc: _Process | None = None
        self._conns: dict[str, http.client.HTTPConnection] = {}
        self._last_used: dict[str, float] = {}
        self._ordinals: tuple[int, ...] = ()
        self._planned_for: tuple[int, ...] = ()
        self._k = 0
        self._planned_users = 1
        self._turn = 0
        self._backoff: dict[int, float] = {}
        self._pacer: Any = None
        self.process = ""

    def on_start(self) -> None:
        try:
            proc = _Process.get(self.environment)
        except (ValueError, endpoints.EndpointsError) as exc:
            log.error("checkpoint load cannot start: %s", exc)
            raise StopUser() from exc
        self._proc = proc
        k = proc.next_user
        proc.next_user += 1
        self.process = f"{proc.worker_id}-u{k}"
        runner = self.environment.runner
        self._k = k
        self._planned_users = max(1, runner.target_user_count if runner is not None else 1, k + 1)
        if not proc.follower.current.ordinals:
            log.error("checkpoint load cannot start: endpoints file %s lists no ordinals", proc.follower.path)
            raise StopUser()
        self._plan(proc.follower.current.ordinals)

    def _plan(self, ordinals: tuple[int, ...]) -> None:
        """(Re)assign this user's ordinals: at start, and whenever the endpoints file gains or
        loses an ordinal (a pod gone, back, scaled), so every present ordinal keeps its load."""
        proc = self._proc
        assert proc is not None, "on_start sets the process context"
        self._planned_for = ordinals
        if not ordinals:
            self._ordinals = ()
            return
        k, users = self._k, self._planned_users
        self._ordinals = plan.ordinals_for_user(k, users, ordinals)
        rate = plan.user_rate(k, users, ordinals, proc.options.ckpt_rate_per_ordinal, proc.options.ckpt_workers)
        self._pacer = constant_throughput(rate) if rate > 0 else None
        log.info("user %s writes to ordinals %s at %s/s", self.process, self._ordinals, rate or "max")

    def wait_time(self) -> float:
        pacer = self._pacer
        return float(pacer(self)) if pacer is not None else 0.0

    def on_stop(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    @task
    def write_checkpoint(self) -> None:
        proc = self._proc
        assert proc is not None, "on_start sets the process context"
        proc.follower.refresh()  # a stat; re-reads only a rewritten file
        runner = self.environment.runner
        target = runner.target_user_count if runner is not None else 0
        if target > 0 and max(target, self._k + 1) != self._planned_users:
            # a shape changed the user count: spread and pace for the new count
            self._planned_users = max(target, self._k + 1)
            self._planned_for = ()
        if proc.follower.current.ordinals != self._planned_for:
            self._plan(proc.follower.current.ordinals)
        if not self._ordinals:
            self._pause(-1)  # no ordinal has an address right now
            return
        ordinal = self._ordinals[self._turn % len(self._ordinals)]
        self._turn += 1
        self._write(ordinal)

    def _write(self, ordinal: int) -> None:
        proc = self._proc
        assert proc is not None, "on_start sets the process context"
        url = proc.follower.url(ordinal)
        if url is None:
            # The ordinal left the endpoints file (scaled away): nothing was sent, nothing recorded.
            proc.follower.refresh()
            self._pause(ordinal)
            return
        invoke: ops.WriteInvoke = {
            "ordinal": ordinal,
            "request_id": uuid.uuid4().hex,
            "bytes": proc.options.ckpt_bytes,
            "shards": proc.options.ckpt_shards,
            "url": url,
        }
        payload = json.dumps(
            {"bytes": invoke["bytes"], "shards": invoke["shards"], "request_id": invoke["request_id"]}
        ).encode()
        proc.record("invoke", _as_json(invoke), None, self.process)
        started = time.perf_counter()
        body = b""
        deadline = RequestDeadline(f"no answer within {proc.options.ckpt_timeout}s")
        try:
            with gevent.Timeout(proc.options.ckpt_timeout, deadline):
                status, body = self._post(url, payload, proc.options.ckpt_timeout)
            outcome = classify.classify_response(status, body, invoke)
        except gevent.GreenletExit:
            # The load is stopping under us: the writer may still publish this checkpoint.
            proc.record("info", _as_json(invoke), "load stopped while the request was in flight", self.process)
            self._drop(url)
            raise
        except Exception as exc:
            outcome = classify.classify_exception(exc)
            self._drop(url)
        elapsed = time.perf_counter() - started
        proc.record(outcome.type, _as_json(outcome.value or invoke), outcome.error, self.process)
        proc.metrics.count(outcome.type, elapsed, invoke["bytes"])
        self.environment.events.request.fire(
            request_type="POST",
            name=f"{REQUEST_NAME} ordinal {ordinal}",
            response_time=elapsed * 1000.0,
            response_length=len(body),
            exception=None if outcome.type == "ok" else CheckpointWriteError(f"{outcome.type}: {outcome.error}"),
            context={"ordinal": ordinal, "outcome": outcome.type},
        )
        if outcome.type == "ok":
            self._backoff.pop(ordinal, None)
        else:
            if proc.follower.refresh():
                log.info("endpoints file %s changed (version %d)", proc.follower.path, proc.follower.current.version)
            if proc.follower.url(ordinal) == url:
                self._pause(ordinal)

    def _pause(self, ordinal: int) -> None:
        """Back off a failing ordinal whose address has not changed (exponential, capped)."""
        delay = min(BACKOFF_MAX_S, self._backoff.get(ordinal, BACKOFF_MIN_S / 2) * 2)
        self._backoff[ordinal] = delay
        gevent.sleep(delay)

    def _post(self, url: str, payload: bytes, timeout: float) -> tuple[int, bytes]:
        conn = self._conns.get(url)
        now = time.monotonic()
        if conn is not None and now - self._last_used.get(url, now) > IDLE_RECONNECT_S:
            # A server or port-forward may have dropped an idle keep-alive connection; a request
            # failing on it would be recorded as info although it never arrived.
            self._drop(url)
            conn = None
        if conn is not None and conn.sock is not None and _closed_by_peer(conn.sock):
            self._drop(url)  # the server closed it while idle (a writer that stopped): reconnect
            conn = None
        self._last_used[url] = now
        if conn is None:
            parts = urllib.parse.urlsplit(url)
            factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = factory(parts.hostname or "", parts.port, timeout=timeout)
            self._conns[url] = conn
        if conn.sock is None:
            # Opened apart from the request, so a refused or unreachable address is told apart
            # from a request that was sent and then lost: only the latter is indeterminate.
            try:
                conn.connect()
            except OSError as exc:
                raise classify.NotSent(exc) from exc
        conn.request("POST", "/checkpoints", body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.will_close:
            self._drop(url)
        return response.status, body

    def _drop(self, url: str) -> None:
        conn = self._conns.pop(url, None)
        if conn is not None:
            conn.close()
