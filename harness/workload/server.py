"""The writer's HTTP API, on the standard library's threading HTTP server.

Why the stdlib server: the writer's image should hold nothing but Python, blake3 and this
package; request rates are modest (a checkpoint costs at least three fsyncs, so a few thousand
requests per second is the ceiling of the disk, not of the server) and a thread per
connection suits blocking file I/O. HTTP/1.1 keep-alive is kept (every answer has a
Content-Length), so a load generator does not pay a TCP handshake per checkpoint.

Endpoints::

    POST /checkpoints          {bytes, shards, step?, request_id?} -> 200 after the publish protocol
    GET  /checkpoints          every checkpoint under a final name, with validity
    GET  /checkpoints/<step>   that checkpoint's manifest
    GET  /resume               the newest checkpoint read back in full and verified (as a trainer resumes)
    GET  /identity             the volume stamp vs who this pod is (409 on mismatch)
    GET  /healthz              live (the process serves)
    GET  /readyz               ready: identity matched and boot recovery done; latest valid step

Definite failures (nothing was published) carry ``{"error": ..., "published": false}`` with
400 (bad input), 409 (step not above the last published/reserved one), 503 (not ready or
shutting down), 507 (no space) or 500 (I/O error). 520 means the outcome is unknown.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
from typing import Final

from harness.workload import api, app, layout, manifest, store

_CHECKPOINT_PREFIX: Final = "/checkpoints/"


class WriterHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, writer: app.WriterApp) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.writer = writer
        super().__init__((host, port), WriterHandler)


class WriterHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WriterHTTPServer
    server_version = "ckpt-writer/1"

    # ---- plumbing ----------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # headers and body leave in separate writes; without NODELAY, Nagle + the client's
        # delayed ACK add ~40 ms to every answer on a keep-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Access logs would drown the events; outcomes are logged by the store."""

    def _send(self, status: int, body: object) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        try:
            self.send_response(status, "Outcome Unknown" if status == store.INDETERMINATE_STATUS else None)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
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
        raw_len = self.headers.get("Content-Length")
        if raw_len is None or not raw_len.strip().isdigit():
            self.close_connection = True
            self._fail(400, "Content-Length header required (a JSON body)")
            return None
        length = int(raw_len)
        if length > api.MAX_BODY_BYTES:
            self.close_connection = True  # we will not read it, so the connection is out of sync
            self._fail(400, f"body of {length} bytes exceeds {api.MAX_BODY_BYTES}; send only bytes/shards/step")
            return None
        return self.rfile.read(length)

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
        st = self.writer.ready_store()
        if st is None:
            self._fail(503, f"not ready: {self.writer.readiness().reason}")
            return
        if not raw_step.isdigit() or int(raw_step) > layout.MAX_STEP:
            self._send(400, {"error": f"step must be a non-negative integer, got {raw_step!r}"})
            return
        step = int(raw_step)
        if not st.has(step):
            self._send(404, {"error": f"no checkpoint for step {step}"})
            return
        path = st.ckdir / layout.final_name(step) / layout.MANIFEST_NAME
        try:
            m = manifest.decode(path.read_bytes())
        except FileNotFoundError:
            self._send(404, {"error": f"step {step} has no manifest (torn or removed by retention)"})
        except (OSError, manifest.ManifestError) as exc:
            self._send(422, {"error": f"step {step}: {exc}"})
        else:
            self._send(200, m.to_dict())

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
