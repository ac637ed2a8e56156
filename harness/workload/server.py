"""The writer's HTTP API, on the standard library's threading HTTP server.

Why the stdlib server: the writer's image should hold nothing but Python, blake3 and this
package; request rates are modest (a checkpoint costs at least three fsyncs, so a few thousand
requests per second is the ceiling of the disk, not of the server) and a thread per
connection suits blocking file I/O. HTTP/1.1 keep-alive is kept (every answer has a
Content-Length), so a load generator does not pay a TCP handshake per checkpoint.

Endpoints::

    POST /checkpoints          {bytes, shards, step?, request_id?} -> 200 after the publish protocol
    GET  /checkpoints          every checkpoint under a final name, with validity
    GET  /checkpoints/<step>   that checkpoint's manifest, once every byte was read back against it:
                               422 with the problem when they do not match (the step is listed
                               invalid from then on), 404 when there is no such step
    GET  /resume               the newest checkpoint read back in full and verified (as a trainer resumes)
    GET  /identity             the volume stamp vs who this pod is (409 on mismatch)
    GET  /healthz              live (the process serves)
    GET  /readyz               ready: identity matched and boot recovery done; latest valid step

Definite failures (nothing was published) carry ``{"error": ..., "published": false}`` with
400 (bad input, also an explicit step more than ``store.STEP_WINDOW`` = 1,000,000 above the
last published/reserved one), 409 (step not above the last published/reserved one), 503 (not
ready, shutting down, or too many connections), 507 (no space) or 500 (I/O error). 520 means
the outcome is unknown. Every number in a request (path step, Content-Length, JSON integers) is
parsed as ASCII digits of bounded length, so a malformed one is a one-line 400, never an
exception that drops the connection (str.isdigit() accepts '²', which int() refuses; int()
refuses 4300+ digits).

Connections: each has its own thread, so their time and their number are both bounded —
otherwise every idle, half-open or slow client would pin a thread for good.

* Timeout (``--connection-timeout`` / env ``WRITER_CONNECTION_TIMEOUT``, default 30 s): a
  connection may wait that long for its next request's first byte (idle keep-alive), and
  from that byte on the whole request, head and body, must arrive within it: one deadline per
  request, not per read, so a client dripping a byte a second cannot hold on. Past it the
  connection is closed (408 when a POST body was cut short). Each write of an answer is
  bounded by the same timeout (a client that never reads).
* Bound (``--max-connections`` / env ``WRITER_MAX_CONNECTIONS``, default 256): a connection
  beyond it is answered 503 (``published: false``) and closed straight from the accept loop —
  a non-blocking send, no thread — and refusals are logged as ``connections.refused`` at
  most every 10 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import io
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from harness.workload import api, app, layout, store

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHECKPOINT_PREFIX: Final = "/checkpoints/"
_ASCII_DIGITS: Final = re.compile(r"[0-9]+")
#: at most one ``connections.refused`` event this often (a flood must not flood the log too)
REFUSAL_LOG_SECONDS: Final = 10.0


class WriterHTTPServer(http.server.ThreadingHTTPServer):
    """``slots`` bounds the connections served at once; pass one server's ``slots`` to another
    (serve.py's extra loopback listener) to share one bound between them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, writer: app.WriterApp,
                 slots: threading.BoundedSemaphore | None = None) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.writer = writer
        self.connection_timeout = writer.cfg.connection_timeout
        self.max_connections = writer.cfg.max_connections
        self.slots = slots if slots is not None else threading.BoundedSemaphore(self.max_connections)
        self.refused = 0
        self._refusal_logged_at = -REFUSAL_LOG_SECONDS
        #: requests whose first byte has arrived and whose answer is not yet written, by handler:
        #: their request_id once the body is parsed (None before, or when the client sent none)
        self._answering: dict[int, str | None] = {}
        self._answered = threading.Condition()
        body = json.dumps({"error": f"too many connections (at most {self.max_connections}); retry shortly",
                           "published": False}) + "\n"
        self._refusal = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{body}").encode()
        super().__init__((host, port), WriterHandler)

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """Runs in the accept loop: a thread for the connection if a slot is free, else a refusal."""
        if not self.slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()  # no thread was started to release it
            raise

    def process_request_thread(self, request: socket.socket | tuple[bytes, socket.socket],
                               client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _refuse(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        """503 and close, without blocking the accept loop on a client that does not read."""
        self.refused += 1
        now = time.monotonic()
        if now - self._refusal_logged_at >= REFUSAL_LOG_SECONDS:
            self._refusal_logged_at = now
            self.writer.log.event("connections.refused", refused_total=self.refused, limit=self.max_connections,
                                  note="every connection slot is taken; answered 503 and closed")
        if isinstance(request, socket.socket):
            with contextlib.suppress(OSError):
                request.setblocking(False)
                request.send(self._refusal)
                # read what the client already sent: closing with unread data resets the
                # connection, which can discard the 503 before the client reads it
                for _ in range(4):
                    if not request.recv(65536):
                        break
        self.shutdown_request(request)

    def request_started(self, handler: object) -> None:
        with self._answered:
            self._answering[id(handler)] = None

    def request_identified(self, handler: object, request_id: str | None) -> None:
        with self._answered:
            if id(handler) in self._answering:
                self._answering[id(handler)] = request_id

    def request_done(self, handler: object) -> None:
        with self._answered:
            self._answering.pop(id(handler), None)
            self._answered.notify_all()

    def in_flight(self) -> tuple[list[str], int]:
        """The request_ids of the requests that have arrived and await their answer, and how many
        more have no id yet (still arriving, or sent without one): what a stop must answer."""
        with self._answered:
            ids = sorted(r for r in self._answering.values() if r is not None)
            return ids, len(self._answering) - len(ids)

    def wait_answered(self, timeout: float) -> int:
        """At shutdown, after the listener closed: wait until every request that arrived has its
        answer written (a daemon handler thread dies mid-answer when the process exits, leaving
        the client a cut answer or none). Returns how many were still unanswered at ``timeout``."""
        with self._answered:
            self._answered.wait_for(lambda: not self._answering, timeout=timeout)
            return len(self._answering)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """A client that reset, vanished or timed out is routine: no traceback for it."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _RequestReader(io.RawIOBase):
    """The connection's read side, with a deadline per request instead of per read.

    A socket timeout alone bounds each recv, which a client sending a byte a second never
    reaches. Here the wait for a request's first byte (an idle keep-alive connection) is
    bounded by ``timeout``, and from that byte on the rest of the request must arrive within
    ``timeout`` in total; a read past the deadline raises TimeoutError.
    """

    def __init__(self, sock: socket.socket, timeout: float, on_first_byte: Callable[[], object]) -> None:
        super().__init__()
        self._sock = sock
        self._timeout = timeout
        self._deadline: float | None = None
        self._on_first_byte = on_first_byte
        #: a request's first byte arrived and its handling has not ended
        self.in_request = False

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        """Between requests: the next read waits for a first byte (the idle timeout)."""
        self._deadline = None

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._deadline is None:
            wait = self._timeout
        else:
            wait = self._deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError(f"request not received within {self._timeout:g}s")
        self._sock.settimeout(wait)
        n = self._sock.recv_into(buffer)
        if self._deadline is None and n:
            self._deadline = time.monotonic() + self._timeout
            if not self.in_request:
                self.in_request = True
                self._on_first_byte()
        return n


class WriterHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WriterHTTPServer
    server_version = "ckpt-writer/1"
    _reader: _RequestReader

    # ---- plumbing ----------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # headers and body leave in separate writes; without NODELAY, Nagle + the client's
        # delayed ACK add ~40 ms to every answer on a keep-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # replace the stdlib's reader (closing it drops its hold on the socket) with one that
        # enforces the per-request deadline; see the module doc
        self.rfile.close()
        self._reader = _RequestReader(self.connection, self.server.connection_timeout,
                                      lambda: self.server.request_started(self))
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        """The stdlib's, with the deadline reset for each request (it closes on TimeoutError),
        counted from its first byte to its answer for :meth:`WriterHTTPServer.wait_answered`."""
        self._reader.next_request()
        try:
            super().handle_one_request()
        finally:
            if self._reader.in_request:
                self._reader.in_request = False
                self.server.request_done(self)

    def log_message(self, format: str, *args: object) -> None:
        """Access logs would drown the events; outcomes are logged by the store."""

    def _send(self, status: int, body: object) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        try:
            # a reader's deadline may have left a short timeout; an answer gets the full one
            self.connection.settimeout(self.server.connection_timeout)
            self.send_response(status, "Outcome Unknown" if status == store.INDETERMINATE_STATUS else None)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.writer.readiness().state == "stopping":
                # Draining: each connection gets this one answer and is closed, so no client sends
                # its next request down a connection the exit is about to cut.
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # reset, broken pipe, or a client that does not read its answer (timeout)
            self.close_connection = True

    def _fail(self, status: int, message: str, published: bool | None = False) -> None:
        self._send(status, {"error": message, "published": published})

    @property
    def writer(self) -> app.WriterApp:
        return self.server.writer

    # ---- routing -----------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, {"live": True, "state": self.writer.readiness().state})
        elif path == "/readyz":
            self._readyz()
        elif path == "/identity":
            self._identity()
        elif path == "/resume":
            self._resume()
        elif path == "/checkpoints":
            self._list()
        elif path.startswith(_CHECKPOINT_PREFIX):
            self._manifest(path[len(_CHECKPOINT_PREFIX):])
        else:
            self._send(404, {"error": f"no such endpoint {path}"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if body is None:
            return
        if path != "/checkpoints":
            self._send(404, {"error": f"no such endpoint {path}"})
            return
        self._post_checkpoint(body)

    def _read_body(self) -> bytes | None:
        raw_len = (self.headers.get("Content-Length") or "").strip()
        if not _ASCII_DIGITS.fullmatch(raw_len):  # not isdigit(): it accepts '²', which int() refuses
            self.close_connection = True
            self._fail(400, f"Content-Length header required (a JSON body), in ASCII digits; got {raw_len[:40]!r}")
            return None
        if len(raw_len) > len(str(api.MAX_BODY_BYTES)) or int(raw_len) > api.MAX_BODY_BYTES:
            self.close_connection = True  # we will not read it, so the connection is out of sync
            shown = raw_len if len(raw_len) <= 20 else f"{raw_len[:20]}... ({len(raw_len)} digits)"
            self._fail(400, f"body of {shown} bytes exceeds {api.MAX_BODY_BYTES}; send only bytes/shards/step")
            return None
        length = int(raw_len)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            self._fail(408, f"request body not received within {self.server.connection_timeout:g}s; "
                            "nothing was published")
            return None
        if len(body) < length:  # the client closed mid-body: nobody is left to answer
            self.close_connection = True
            return None
        return body

    # ---- endpoints ---------------------------------------------------------------------
    def _readyz(self) -> None:
        r = self.writer.readiness()
        st = self.writer.ready_store()
        body = {
            "ready": r.ready,
            "state": r.state,
            "reason": r.reason,
            "ordinal": self.writer.pod.ordinal,
            "epoch": self.writer.epoch,
            "latest_step": st.latest_valid_step() if st else None,
            "recovery_seconds": self.writer.recovery.seconds if self.writer.recovery else None,
            "boot_seconds": self.writer.boot_seconds,
            "unsafe_skip": sorted(self.writer.cfg.unsafe_skip),
            "format": self.writer.cfg.format,
        }
        self._send(200 if r.ready else 503, body)

    def _identity(self) -> None:
        result = self.writer.identity
        if result is None:
            self._send(503, {"error": "identity not checked yet (boot in progress)", "match": None})
            return
        body = {
            "match": result.ok,
            "outcome": result.outcome,
            "stamp": dataclasses.asdict(result.stamp) if result.stamp else None,
            "expected": dataclasses.asdict(result.expected),
            "epoch": self.writer.epoch,
            "unsafe_skip": sorted(self.writer.cfg.unsafe_skip),
            "format": self.writer.cfg.format,
        }
        if not result.ok:
            body["error"] = result.problem
        self._send(200 if result.ok else 409, body)

    def _resume(self) -> None:
        st = self.writer.ready_store()
        if st is None:
            self._fail(503, f"not ready: {self.writer.readiness().reason}")
            return
        done = st.resume()
        if done is None:
            self._send(404, {"error": "no checkpoint verifies: nothing to resume from", "ordinal": st.ordinal})
            return
        body = dataclasses.asdict(done)
        body["skipped"] = [{"step": step, "problem": problem} for step, problem in done.skipped]
        self._send(200, body)

    def _list(self) -> None:
        st = self.writer.ready_store()
        if st is None:
            self._fail(503, f"not ready: {self.writer.readiness().reason}")
            return
        entries = st.entries()
        self._send(200, {
            "ordinal": st.ordinal,
            "epoch": st.epoch,
            "latest_valid_step": max((e.step for e in entries if e.valid), default=None),
            "checkpoints": [dataclasses.asdict(e) for e in entries],
        })

    def _manifest(self, raw_step: str) -> None:
        """Served only after a full read: a manifest alone says nothing about the bytes (boot
        re-hashes only the newest checkpoint, and any may have been damaged since)."""
        st = self.writer.ready_store()
        if st is None:
            self._fail(503, f"not ready: {self.writer.readiness().reason}")
            return
        step = layout.parse_step(raw_step)
        if step is None:
            self._send(400, {"error": f"step must be an integer 0..{layout.MAX_STEP} in ASCII digits, "
                                      f"got {raw_step[:40]!r}"})
            return
        found = st.verify(step)
        if found is None:
            self._send(404, {"error": f"no checkpoint for step {step}"})
        elif found.manifest is None:
            self._send(422, {"error": f"step {step}: {found.entry.problem}", "step": step, "valid": False})
        else:
            self._send(200, found.manifest.to_dict())

    def _post_checkpoint(self, body: bytes) -> None:
        st = self.writer.ready_store()
        if st is None:
            self._fail(503, f"not ready: {self.writer.readiness().reason}; nothing was published")
            return
        try:
            req = api.parse_checkpoint_request(body, self.writer.cfg.max_bytes)
        except api.BadRequest as exc:
            self._fail(400, str(exc))
            return
        self.server.request_identified(self, req.request_id)
        try:
            done = st.publish(req.step, req.bytes, req.shards, req.request_id)
        except store.PublishError as exc:
            self._fail(exc.status, exc.message, exc.published)
            return
        self._send(200, dataclasses.asdict(done))


def start(server: WriterHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    t.start()
    return t
