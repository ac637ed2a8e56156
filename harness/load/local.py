"""Checkpoint writers as plain local processes, for load tests and the load bench.

Each writer is ``python -m harness writer serve --data-dir DIR --port 0`` with ``POD_NAME``
set so its ordinal is right, in its own process group, its event log going to a file (a
pipe nobody reads would fill up and stall the writer). The real port comes from the
``listening`` event; readiness from ``GET /readyz``. Everything is ended by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import tenacity

from harness.load import preflight


class LocalWriterError(Exception):
    """A local writer did not start, or did not become ready, within its deadline."""


def _listening_port(log_path: Path) -> int | None:
    try:
        text = log_path.read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("event") == "listening":
            return int(event["port"])
    return None


class LocalWriter:
    """One writer process for one ordinal, restartable on a new port."""

    def __init__(
        self, data_dir: Path, ordinal: int, *, statefulset: str = "ckpt", namespace: str = "default",
        keep_last: int = 0, log_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0,
    ) -> None:
        self.data_dir = data_dir
        #: where to listen; port 0 picks a free port at every start (a restart moves)
        self.host = host
        self.listen_port = port
        self.ordinal = ordinal
        self.statefulset = statefulset
        self.namespace = namespace
        self.keep_last = keep_last
        self.log_dir = log_dir or data_dir.parent
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.starts = 0

    @property
    def pod(self) -> str:
        return f"{self.statefulset}-{self.ordinal}"

    @property
    def url(self) -> str:
        if self.port is None:
            raise LocalWriterError(f"writer {self.pod} is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.pod}.{self.starts}.log"

    def start(self, deadline_s: float = 30.0) -> LocalWriter:
        """Start the process and wait until it listens and reports ready."""
        if self.proc is not None and self.proc.poll() is None:
            raise LocalWriterError(f"writer {self.pod} is already running (pid {self.proc.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.port = None
        env = {
            **os.environ,
            "POD_NAME": self.pod,
            "POD_NAMESPACE": self.namespace,
            "POD_INDEX": str(self.ordinal),
            "LISTEN_HOST": self.host,
            "KEEP_LAST": str(self.keep_last),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "harness", "writer", "serve",
                    "--data-dir", str(self.data_dir), "--port", str(self.listen_port),
                ],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        self._await_ready(deadline_s)
        return self

    def _await_ready(self, deadline_s: float) -> None:
        last: list[str] = ["nothing yet"]

        def check() -> bool:
            proc = self.proc
            if proc is not None and proc.poll() is not None:
                raise LocalWriterError(
                    f"writer {self.pod} exited with {proc.returncode} while starting; see {self.log_path}"
                )
            if self.port is None:
                self.port = _listening_port(self.log_path)
                if self.port is None:
                    last[0] = "no listening event in its log"
                    return False
            try:
                status, body = preflight.readyz(self.url)
            except OSError as exc:
                last[0] = f"/readyz: {exc}"
                return False
            last[0] = f"/readyz {status} {body.get('state', '')}"
            return status == 200

        def give_up(state: tenacity.RetryCallState) -> None:
            self.stop()
            raise LocalWriterError(
                f"writer {self.pod} not ready within {deadline_s:.0f}s (last: {last[0]}); see {self.log_path}"
            )

        tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda ready: not ready),
            wait=tenacity.wait_exponential(multiplier=0.01, max=0.2),
            stop=tenacity.stop_before_delay(deadline_s),
            retry_error_callback=give_up,
        )(check)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the writer's process group and reap it (SIGKILL: no drain, no goodbye)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (the writer drains in-flight checkpoints), SIGKILL if it takes too long."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LocalWriter:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LocalWriters:
    """Several ordinals' writers under one root folder (``<root>/data-<n>``, logs in ``<root>/logs``)."""

    def __init__(self, root: Path, ordinals: int, *, statefulset: str = "ckpt", keep_last: int = 0) -> None:
        self.root = root
        self.writers = [
            LocalWriter(root / f"data-{n}", n, statefulset=statefulset, keep_last=keep_last, log_dir=root / "logs")
            for n in range(ordinals)
        ]

    def start(self, deadline_s: float = 60.0) -> LocalWriters:
        started = time.monotonic()
        try:
            for writer in self.writers:
                writer.start(max(5.0, deadline_s - (time.monotonic() - started)))
        except BaseException:
            self.stop()
            raise
        return self

    def urls(self) -> dict[int, str]:
        return {w.ordinal: w.url for w in self.writers if w.proc is not None and w.proc.poll() is None}

    def stop(self) -> None:
        for writer in self.writers:
            writer.stop()

    def __enter__(self) -> LocalWriters:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
