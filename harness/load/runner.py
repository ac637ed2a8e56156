"""Run the checkpoint load as locust processes, never inside the caller's process.

Importing locust monkey-patches gevent, which breaks a process that already imported ssl
or urllib3 (pytest with the kubernetes client does): so the load is always the ``locust``
CLI in child processes (``python -m locust --headless``), each in its own process group,
ended by pid with a deadline. One process (``workers=0``) or, for load beyond one core,
a ``--master`` with N ``--worker`` processes on this machine.

What a run leaves in the run folder::

    history/<host>.<pid>-load-*.jsonl   one history file per load process (read_history merges)
    load/locust_stats.csv ...            locust's CSVs (--csv-full-history)
    load/locust.html, load/locust.json   locust's own report and stats
    load/metrics/<host>.<pid>.json       ok/fail/info tallies, acknowledged bytes, recording time
    load/locust.log, load/worker-<i>.log the processes' logs

Several machines: start the master here with ``workers=0``-style options plus
``--master --expect-workers N`` (see :func:`locust_command`), and on every other machine
``python -m locust -f harness/load/locustfile.py --worker --master-host HOST``. The master
sends its ``--ckpt-*`` options to the workers, so the endpoints file and the history folder
must exist at the same path on each machine (a shared mount, or copy the endpoints file and
collect ``history/*.jsonl`` back into the run folder afterwards; the file names carry host
and pid, so they never collide). Pass ``--ckpt-workers`` = the number of worker processes
so a per-ordinal rate is split between them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from harness import history
from harness.load import metrics
from harness.load import stages as stages_mod

log = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SHAPEFILE = Path(__file__).with_name("shape.py")
LOAD_DIR = "load"
#: Time locust gets after the run for reports and for the master to collect worker stats.
REPORT_GRACE_S = 15.0
#: The locustfile's "stop users now" signal (locust's SIGTERM waits --stop-timeout).
ABORT_SIGNAL = signal.SIGUSR1
#: Time a process gets between SIGUSR1/SIGTERM and SIGKILL.
TERM_GRACE_S = 5.0


class LoadError(Exception):
    """The load processes could not run or did not finish within their deadline."""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to run. ``duration_s`` is the load time; in-flight requests then get up to
    ``request_timeout_s`` to finish (locust's --stop-timeout) so they end with a real answer
    rather than ``info``."""

    endpoints_file: Path
    run_dir: Path
    users: int
    spawn_rate: float
    duration_s: float
    size_bytes: int
    shards: int = 1
    rate_per_ordinal: float = 0.0
    workers: int = 0
    request_timeout_s: float = 60.0
    #: a changing load (LoadTestShape); when given, ``users`` and ``duration_s`` are unused
    stages: tuple[stages_mod.Stage, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1:
            problems.append(f"users must be >= 1 (got {self.users})")
        if self.spawn_rate <= 0:
            problems.append(f"spawn rate must be > 0 (got {self.spawn_rate})")
        if self.duration_s <= 0:
            problems.append(f"duration must be > 0 seconds (got {self.duration_s})")
        if self.size_bytes < 1:
            problems.append(f"checkpoint size must be >= 1 byte (got {self.size_bytes})")
        if self.shards < 1:
            problems.append(f"shards must be >= 1 (got {self.shards})")
        if self.rate_per_ordinal < 0:
            problems.append(f"rate per ordinal must be >= 0 (got {self.rate_per_ordinal})")
        if self.workers < 0:
            problems.append(f"workers must be >= 0 (got {self.workers})")
        if self.request_timeout_s <= 0:
            problems.append(f"request timeout must be > 0 (got {self.request_timeout_s})")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def load_dir(self) -> Path:
        return self.run_dir / LOAD_DIR

    @property
    def history_dir(self) -> Path:
        return self.run_dir / history.HISTORY_DIR

    @property
    def deadline_s(self) -> float:
        """Longest a run may take from start to exit before it is killed."""
        load_s = stages_mod.total_s(self.stages) if self.stages else self.duration_s
        return load_s + self.request_timeout_s + REPORT_GRACE_S + (30.0 if self.workers else 0.0)


@dataclasses.dataclass(frozen=True, slots=True)
class LoadResult:
    """What a finished run produced. ``requests`` is locust's own count (its JSON stats);
    ``metrics`` the history-side tallies of every load process."""

    exit_code: int
    requests: int
    failures: int
    metrics: metrics.LoadMetrics
    elapsed_s: float
    html: Path
    json: Path
    csv_prefix: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def locust_command(spec: LoadSpec, role: str = "local", master_port: int = 0) -> list[str]:
    """The argv of one locust process; ``role`` is local, master or worker."""
    load = spec.load_dir.resolve()
    files = f"{LOCUSTFILE},{SHAPEFILE}" if spec.stages else str(LOCUSTFILE)
    cmd = [sys.executable, "-m", "locust", "-f", files, "--loglevel", "INFO"]
    if role == "worker":
        # Workers take every --ckpt-* option from the master's spawn message.
        return [*cmd, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
    cmd.append("--headless")
    if spec.stages:
        # The shape decides users and duration (locust ignores --users/--run-time with one).
        cmd += ["--ckpt-stages", ",".join(f"{s.duration_s}s:{s.users}@{s.spawn_rate}" for s in spec.stages)]
    else:
        cmd += [
            "--users", str(spec.users),
            "--spawn-rate", str(spec.spawn_rate),
            "--run-time", f"{max(1, round(spec.duration_s))}s",
        ]
    cmd += [
        "--stop-timeout", f"{math.ceil(spec.request_timeout_s)}s",
        "--csv", str(load / "locust"),
        "--csv-full-history",
        "--html", str(load / "locust.html"),
        "--json-file", str(load / "locust"),
        "--exit-code-on-error", "0",
        "--ckpt-endpoints", str(spec.endpoints_file.resolve()),
        "--ckpt-history-dir", str(spec.history_dir.resolve()),
        "--ckpt-metrics-dir", str((load / "metrics").resolve()),
        "--ckpt-bytes", str(spec.size_bytes),
        "--ckpt-shards", str(spec.shards),
        "--ckpt-rate-per-ordinal", str(spec.rate_per_ordinal),
        "--ckpt-workers", str(max(1, spec.workers)),
        "--ckpt-timeout", str(spec.request_timeout_s),
    ]
    if role == "master":
        cmd += [
            "--master",
            "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(master_port),
            "--expect-workers", str(spec.workers),
            "--expect-workers-max-wait", "30",
        ]
    return cmd


def _child_env() -> dict[str, str]:
    """The caller's environment, with the harness importable whatever the cwd."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LoadRun:
    """A running load: start it, then :meth:`wait` for it (or :meth:`stop` it early).

    Use as a context manager: leaving the block by any path ends every process it
    started, by process group (see :meth:`stop`).
    """

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._started = 0.0

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p in self._procs]

    def start(self) -> LoadRun:
        spec = self.spec
        spec.load_dir.mkdir(parents=True, exist_ok=True)
        spec.history_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        if spec.workers:
            port = _free_port()
            self._spawn("locust", locust_command(spec, "master", port))
            for i in range(spec.workers):
                self._spawn(f"worker-{i}", locust_command(spec, "worker", port))
        else:
            self._spawn("locust", locust_command(spec, "local"))
        log.info("load started: %d users for %.0fs, pids %s", spec.users, spec.duration_s, self.pids)
        return self

    def _spawn(self, name: str, cmd: list[str]) -> None:
        logfile = self.spec.load_dir / f"{name}.log"
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.spec.load_dir,
                env=_child_env(),
                start_new_session=True,
            )
        self._procs.append((name, proc))

    def wait(self) -> LoadResult:
        """Wait for the run to end by itself within its deadline, then collect results."""
        if not self._procs:
            raise LoadError("load was never started")
        deadline = self._started + self.spec.deadline_s
        main = self._procs[0][1]
        try:
            main.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            raise LoadError(
                f"locust did not finish within {self.spec.deadline_s:.0f}s (see {self.spec.load_dir / 'locust.log'})"
            ) from None
        # The master tells workers to quit as it exits; give them the grace, then make sure.
        for _, proc in self._procs[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(1.0, min(TERM_GRACE_S * 2, deadline - time.monotonic())))
        self.stop()
        return self.collect(main.returncode)

    def finish(self) -> LoadResult:
        """End the load now, gracefully: locust's SIGTERM lets every in-flight request finish
        (up to ``request_timeout_s``) so it gets a real answer, not ``info``; then collect.

        Scenarios run the load for as long as their faults take and end it this way.
        """
        if not self._procs:
            raise LoadError("load was never started")
        main = self._procs[0][1]
        if main.poll() is None:
            _signal_group(main, signal.SIGTERM)
        try:
            main.wait(timeout=self.spec.request_timeout_s + REPORT_GRACE_S)
        except subprocess.TimeoutExpired:
            self.stop()
            raise LoadError(
                f"locust did not stop within {self.spec.request_timeout_s + REPORT_GRACE_S:.0f}s of SIGTERM "
                f"(see {self.spec.load_dir / 'locust.log'})"
            ) from None
        for _, proc in self._procs[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=TERM_GRACE_S * 2)
        self.stop()
        return self.collect(main.returncode)

    def stop(self) -> None:
        """End every process still running, users first.

        Processes that run users get SIGUSR1 (the locustfile's abort: users die at once and
        each in-flight request is recorded as ``info``, then locust shuts down and writes its
        reports); a master then gets SIGTERM. Anything still alive after the grace: SIGKILL.
        """
        users = [(n, p) for n, p in self._procs if p.poll() is None and self._runs_users(n)]
        masters = [(n, p) for n, p in self._procs if p.poll() is None and not self._runs_users(n)]
        self._signal_and_reap(users, ABORT_SIGNAL)
        self._signal_and_reap(masters, signal.SIGTERM)

    def _runs_users(self, name: str) -> bool:
        return name.startswith("worker-") or not self.spec.workers

    def _signal_and_reap(self, procs: list[tuple[str, subprocess.Popen[bytes]]], sig: signal.Signals) -> None:
        for _, proc in procs:
            _signal_group(proc, sig)
        end = time.monotonic() + TERM_GRACE_S
        for name, proc in procs:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("load process %s (pid %d) ignored %s; killing it", name, proc.pid, sig.name)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()

    def collect(self, exit_code: int) -> LoadResult:
        load = self.spec.load_dir
        stats_file = load / "locust.json"
        requests = failures = 0
        if stats_file.exists():
            for entry in json.loads(stats_file.read_text() or "[]"):
                requests += int(entry.get("num_requests", 0))
                failures += int(entry.get("num_failures", 0))
        elif exit_code == 0:
            raise LoadError(f"locust exited 0 but wrote no stats at {stats_file}")
        metrics_dir = load / "metrics"
        tallies = metrics.read_dir(metrics_dir) if metrics_dir.is_dir() else metrics.LoadMetrics(worker="all")
        return LoadResult(
            exit_code=exit_code,
            requests=requests,
            failures=failures,
            metrics=tallies,
            elapsed_s=time.monotonic() - self._started,
            html=load / "locust.html",
            json=stats_file,
            csv_prefix=load / "locust",
        )

    def __enter__(self) -> LoadRun:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def run(spec: LoadSpec) -> LoadResult:
    """Run the load to completion (blocking) and return what it produced."""
    with LoadRun(spec) as load:
        return load.wait()
