"""Fixtures that run the real checkpoint writer as a subprocess (fixtures are named writer_*)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import tenacity

from harness.clusters import base, embedded

#: the lean entry point (same flags as `harness writer serve`, starts ~4x faster)
LEAN_ENTRY = [sys.executable, "-m", "harness.workload", "serve"]
CLI_ENTRY = [sys.executable, "-m", "harness", "writer", "serve"]


def writer_env(ordinal: int = 0, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POD_", "LISTEN_", "KEEP_", "WRITER_"))}
    env.update(POD_NAME=f"ckpt-{ordinal}", POD_NAMESPACE="chaos-test", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class WriterProcess:
    """One writer process in its own process group; its stdout events are collected as they come."""

    def __init__(self, data_dir: Path, args: list[str], env: Mapping[str, str], entry: list[str]) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [*entry, "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            text=True,
            start_new_session=True,
        )
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._port: int | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unparsed", "line": line}
            self.events.append(event)
            self._queue.put(event)
        self._queue.put(None)

    def await_event(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """Block until the writer logs ``name`` (or exits / the timeout passes)."""
        for event in self.events:
            if event.get("event") == name:
                return event
        while True:
            try:
                event = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"writer logged no {name!r} event within {timeout}s; "
                                     f"last events: {self.events[-3:]}") from None
            if event is None:
                raise AssertionError(f"writer exited (rc={self.proc.wait()}) before logging {name!r}; "
                                     f"stderr: {self.stderr()!r}; last events: {self.events[-3:]}")
            if event.get("event") == name:
                return event

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = int(self.await_event("listening")["port"])
        return self._port

    def connect(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, Any]]:
        conn = self.connect()
        try:
            payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            conn.request(method, path, payload, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def await_ready(self, timeout: float = 15.0) -> dict[str, Any]:
        """Poll /readyz until 200; on timeout say what the last answer was."""
        last: list[object] = []

        def probe() -> bool:
            try:
                status, body = self.request("GET", "/readyz")
            except OSError as exc:
                last[:] = [repr(exc)]
                return False
            last[:] = [status, body]
            return status == 200

        ready = tenacity.Retrying(
            stop=tenacity.stop_before_delay(timeout),
            wait=tenacity.wait_fixed(0.005),
            retry=tenacity.retry_if_result(lambda ok: not ok),
            retry_error_callback=lambda _state: False,
        )(probe)
        if not ready:
            raise AssertionError(f"writer not ready within {timeout}s; last /readyz: {last}; "
                                 f"events: {self.events[-3:]}")
        return dict(last[1]) if len(last) > 1 and isinstance(last[1], dict) else {}

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.terminate_wait(timeout)

    def terminate_wait(self, timeout: float = 30.0) -> int:
        """Wait for an exit already asked for; its events are all read once this returns."""
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return rc

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def writer_spawn() -> Iterator[Any]:
    """Factory: ``writer_spawn(data_dir, *args, ordinal=0, env=None, cli=False)``; every process
    it started is killed (by its process group) at teardown, even when the test failed."""
    started: list[WriterProcess] = []

    def spawn(data_dir: Path, *args: str, ordinal: int = 0, env: Mapping[str, str] | None = None,
              cli: bool = False) -> WriterProcess:
        proc = WriterProcess(data_dir, list(args), env or writer_env(ordinal), CLI_ENTRY if cli else LEAN_ENTRY)
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        proc.close()


@pytest.fixture
def writer_command() -> Any:
    """``writer_command(cli=False)``: the argv prefix that starts a writer (lean or via the harness CLI)."""
    return lambda cli=False: list(CLI_ENTRY if cli else LEAN_ENTRY)


@pytest.fixture
def writer_environment() -> Any:
    """``writer_environment(ordinal, **extra)``: the environment a pod spec would give the writer."""
    return writer_env


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.EmbeddedCluster]:
    """A one-node embedded cluster for one test module (skipped where kubesim cannot run here)."""
    cluster = embedded.EmbeddedCluster(state_dir=tmp_path_factory.mktemp("kubesim-one-node"), node_count=1)
    try:
        with base.running(cluster):
            yield cluster
    except base.ClusterUnavailable as exc:
        pytest.skip(str(exc))
