"""The availability probe records what a reader saw: ready with a step, not ready, or no answer."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import history, ops, probe, waiting


class _Readyz(http.server.BaseHTTPRequestHandler):
    status = 200
    body: dict[str, object] = {"ready": True, "latest_step": 7}

    def do_GET(self) -> None:
        raw = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probe_records_ready_step_not_ready_and_unreachable(tmp_path: Path, server: http.server.ThreadingHTTPServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    dead = f"http://127.0.0.1:{_closed_port()}"
    with history.HistoryWriter(tmp_path / "h", "probe") as rec:
        p = probe.Probe(rec, lambda: {0: url, 1: dead})
        p.sample_once()
        monkeypatch.setattr(_Readyz, "status", 503)
        monkeypatch.setattr(_Readyz, "body", {"ready": False, "latest_step": None})
        p.sample_once()
    done = {(op.process, op.type, json.dumps(op.value, sort_keys=True)) for op in history.read_history(tmp_path / "h")
            if op.type != "invoke"}
    assert done == {
        ("probe-0", "ok", json.dumps({"latest_step": 7, "ordinal": 0, "ready": True}, sort_keys=True)),
        ("probe-0", "ok", json.dumps({"latest_step": None, "ordinal": 0, "ready": False}, sort_keys=True)),
        ("probe-1", "fail", json.dumps({"ordinal": 1})),
    }
    assert all(op.f == ops.READ for op in history.read_history(tmp_path / "h"))


def test_probe_thread_stops_and_records_nothing_after(tmp_path: Path, server: http.server.ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with history.HistoryWriter(tmp_path / "h", "probe") as rec:
        with probe.Probe(rec, lambda: {0: url}, interval_s=0.01) as p:
            waiting.until("three probe rounds", lambda: (p.rounds >= 3, f"rounds={p.rounds}"), timeout=10,
                          interval=0.01)
        n = len(history.read_history(tmp_path / "h"))
        assert n == len(history.read_history(tmp_path / "h"))
    assert n >= 6


def test_an_expected_ordinal_without_an_address_is_a_fail_sample_so_its_outage_counts(
        tmp_path: Path, server: http.server.ThreadingHTTPServer) -> None:
    """A drained ordinal leaves the endpoints file; the probe must go on recording it as down."""
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with history.HistoryWriter(tmp_path / "h", "probe") as rec:
        probe.Probe(rec, lambda: {0: url}, expected=[0, 1]).sample_once()
    done = [op for op in history.read_history(tmp_path / "h") if op.type != "invoke"]
    assert [(op.process, op.type) for op in sorted(done, key=lambda op: op.process)] == [
        ("probe-0", "ok"), ("probe-1", "fail")]
    assert "no ready endpoint" in (next(op for op in done if op.process == "probe-1").error or "")
