"""Idle, half-open and slow clients cannot pin the writer's threads (against the real process).

The connection timeout and bound come from the environment here (``WRITER_CONNECTION_TIMEOUT``,
``WRITER_MAX_CONNECTIONS``; the flags are ``--connection-timeout``/``--max-connections``), so a
test takes a few seconds instead of the 30 s default. No test sleeps for a guessed time: each
waits on its sockets (select) until the condition holds or a deadline passes, and the deadlines
are generous upper bounds that a passing run never reaches.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from pathlib import Path

import pytest
import tenacity

pytestmark = [pytest.mark.slow]

TIMEOUT = 3.0
#: the slowloris drips one byte this often: well inside TIMEOUT, so only a per-request
#: deadline (not a per-read timeout) can end it
DRIP_EVERY = 0.5


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_all_until_closed(socks: list[socket.socket], within: float) -> list[bytes | None]:
    """Each socket's bytes until the writer closed it; None for one still open after ``within`` s."""
    got: dict[socket.socket, bytes] = {s: b"" for s in socks}
    open_ = set(socks)
    deadline = time.monotonic() + within
    while open_ and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(list(open_), [], [], left)
        for s in readable:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            got[s] += chunk
            if not chunk:
                open_.discard(s)
    return [None if s in open_ else got[s] for s in socks]


def keep_alive_get(s: socket.socket, path: str = "/healthz") -> bytes:
    """One request on an open connection; returns the answer's head (the body is tiny)."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = lengths[0] if lengths else 0
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_idle_half_open_and_slowloris_connections_are_closed_without_blocking_others(
    tmp_path: Path, writer_spawn, writer_environment
) -> None:
    """Regression: without a socket timeout each idle, half-open or slow connection pinned a
    server thread for good."""
    w = writer_spawn(tmp_path, env=writer_environment(0, WRITER_CONNECTION_TIMEOUT=str(TIMEOUT)))
    w.await_ready()
    opened = time.monotonic()
    idle = [connect(w.port) for _ in range(8)]
    half = connect(w.port)  # a request whose body never comes
    half.sendall(b"POST /checkpoints HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    slow = connect(w.port)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    status, ready = w.request("GET", "/readyz")
    assert (status, ready["ready"]) == (200, True), "a normal request waited behind the slow clients"
    everyone = [*idle, half, slow]
    readable, _, _ = select.select(everyone, [], [], 0)
    assert not readable, "a slow client was answered or closed before the timeout: the test tests nothing"

    answers: dict[socket.socket, bytes] = {s: b"" for s in everyone}
    closed_after: dict[socket.socket, float] = {}
    deadline = opened + 2 * TIMEOUT + 15
    while len(closed_after) < len(everyone) and time.monotonic() < deadline:
        if slow not in closed_after:
            try:
                slow.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed_after[slow] = time.monotonic() - opened
        waiting = [s for s in everyone if s not in closed_after]
        readable, _, _ = select.select(waiting, [], [], DRIP_EVERY)
        for s in readable:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            answers[s] += chunk
            if not chunk:
                closed_after[s] = time.monotonic() - opened
    still_open = len(everyone) - len(closed_after)
    assert still_open == 0, f"{still_open} of {len(everyone)} slow connections still open {deadline - opened:.0f}s in"
    early = sorted(t for t in closed_after.values() if t < TIMEOUT)
    assert not early, f"closed before the {TIMEOUT}s timeout: after {early}s"
    assert all(answers[s] == b"" for s in idle), "an idle connection got an answer to a request it never sent"
    assert answers[half].startswith(b"HTTP/1.1 408 "), answers[half][:80]
    assert w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})[0] == 200
    for s in everyone:
        s.close()
    assert w.terminate() == 0
    assert "Traceback" not in w.stderr()


def test_connections_beyond_the_bound_are_refused_at_once_without_a_thread_each(
    tmp_path: Path, writer_spawn, writer_environment
) -> None:
    """Regression: every connection got its own thread, with no bound on how many."""
    limit = 4
    w = writer_spawn(tmp_path, env=writer_environment(0, WRITER_CONNECTION_TIMEOUT="60",
                                                      WRITER_MAX_CONNECTIONS=str(limit)))
    w.await_ready()
    held: list[socket.socket] = []

    def hold_one() -> bool:
        """A connection the writer has accepted and served (so it holds a slot now)."""
        s = connect(w.port)
        try:
            if keep_alive_get(s).startswith(b"HTTP/1.1 200 "):
                held.append(s)
                return True
        except OSError:
            pass
        s.close()  # refused: a slot of an earlier, closed connection was not released yet
        return False

    retry = tenacity.Retrying(stop=tenacity.stop_after_delay(15), wait=tenacity.wait_fixed(0.01),
                              retry=tenacity.retry_if_result(lambda ok: not ok), reraise=True)
    for _ in range(limit):
        assert retry(hold_one), "could not hold a connection within 15s"
    before = threads_of(w.proc.pid)
    refused = [connect(w.port) for _ in range(40)]
    started = time.monotonic()
    answers = read_all_until_closed(refused, within=15)
    took = time.monotonic() - started
    for s in refused:
        s.close()
    assert None not in answers, f"{answers.count(None)} of 40 connections beyond the bound were kept open"
    assert all(a is not None and a.startswith(b"HTTP/1.1 503 ") for a in answers), {(a or b"")[:40] for a in answers}
    first = answers[0]
    assert first is not None
    refusal = json.loads(first.partition(b"\r\n\r\n")[2])
    assert "too many connections" in refusal["error"]
    assert refusal["published"] is False
    assert took < 30, f"refusals took {took:.1f}s: they waited for something"
    assert threads_of(w.proc.pid) <= before, "refused connections got threads"
    assert all(keep_alive_get(s).startswith(b"HTTP/1.1 200 ") for s in held), "held connections stopped working"
    held.pop().close()  # a slot comes free once its connection ends

    def post_once() -> bool:
        try:
            return bool(w.request("POST", "/checkpoints", {"bytes": 10, "shards": 1})[0] == 200)
        except OSError:
            return False

    assert retry(post_once), "a freed slot never became usable"
    for s in held:
        s.close()
    assert w.terminate() == 0
