"""Starting and stopping containers (each a shim process group) and the node's container record.

All shims are forked from one long-lived launcher thread: ``PR_SET_PDEATHSIG`` fires when the
*thread* that forked a process ends, so forking from short-lived pod workers would kill
containers whenever a worker finishes. ``containers.json`` lists every live container so
``kubesim node crash`` can SIGKILL them too and a restarted kubelet can clear leftovers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import queue
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubesim import state

log = logging.getLogger("kubesim.kubelet")
SANDBOX = Path(__file__).with_name("sandbox.py")


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """What the shim needs (serialised to its stdin)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    rootfs: str
    mounts: list[dict[str, Any]]
    makedirs: list[str]
    uid: int | None
    gid: int | None
    groups: list[int]
    hostname: str
    pause: bool
    mode: str
    traverse: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()


@dataclasses.dataclass(frozen=True)
class StartFailure:
    stage: str  # "create" | "start"
    message: str


class Process:
    """One running container instance: the shim (process group leader) and the container's PID 1."""

    def __init__(self, shim: subprocess.Popen[bytes], init_pid: int, mode: str, container_id: str) -> None:
        self.shim = shim
        self.init_pid = init_pid
        self.mode = mode
        self.container_id = container_id
        self.started_mono = time.monotonic()
        self.exited = threading.Event()
        self.returncode: int | None = None

    @property
    def pgid(self) -> int:
        return self.shim.pid

    def wait(self) -> int:
        rc = self.shim.wait()
        self.returncode = rc
        self.exited.set()
        return rc

    @property
    def exit_code(self) -> int:
        rc = self.returncode if self.returncode is not None else 0
        return rc if rc >= 0 else 128 - rc

    def signal_main(self, sig: int) -> None:
        """SIGTERM goes to the container's PID 1 only, as a container runtime sends it."""
        if self.exited.is_set():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.init_pid, sig)

    def kill(self) -> None:
        if self.exited.is_set():
            return
        for target in (-self.pgid, self.init_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)


class Launcher:
    """Forks shims from one thread that lives as long as the kubelet."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[list[str], int, int, concurrent.futures.Future[subprocess.Popen[bytes]]]]
        self._requests = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="launcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            argv, log_fd, status_w, fut = self._requests.get()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log_fd, stderr=log_fd,
                                        pass_fds=(status_w,), start_new_session=True, close_fds=True,
                                        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd="/")
            except BaseException as exc:  # handed to the waiting caller
                fut.set_exception(exc)
            else:
                fut.set_result(proc)

    def launch(self, spec: LaunchSpec, log_path: Path, timeout: float = 60.0) -> Process | StartFailure:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        status_r, status_w = os.pipe()
        fut: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        argv = [sys.executable, "-S", "-E", str(SANDBOX), str(status_w), str(os.getpid())]
        self._requests.put((argv, log_fd, status_w, fut))
        try:
            proc = fut.result()
        except OSError as exc:
            os.close(status_r)
            return StartFailure("create", f"cannot start the container sandbox: {exc}")
        finally:
            os.close(status_w)
            os.close(log_fd)
        try:
            assert proc.stdin is not None
            proc.stdin.write(spec.to_json())
            proc.stdin.close()
        except OSError:
            pass
        lines = _read_all(status_r, timeout)
        init_pid = 0
        mode = "none"
        failure: StartFailure | None = None
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if "pid" in doc:
                init_pid = int(doc["pid"])
                mode = str(doc.get("mode") or "none")
            elif "stage" in doc:
                failure = StartFailure(str(doc["stage"]), str(doc.get("message") or ""))
        if failure is not None or not init_pid:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return failure or StartFailure("create", f"container sandbox exited with {proc.returncode} before "
                                                     "it started the container")
        return Process(proc, init_pid, mode, new_container_id())


def new_container_id() -> str:
    return secrets.token_hex(32)


def _read_all(fd: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace").splitlines()


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


class Registry:
    """``nodes/<node>/containers.json``: {"<ns>/<pod>/<container>": {pid, pgid, uid, start, start_time, id}}.

    ``pid`` is the container's PID 1 as the host sees it, ``pgid`` the shim's process group;
    ``start`` / ``start_time`` are field 22 of /proc/<pgid|pid>/stat, so a recycled pid is never signalled.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._live: dict[str, dict[str, Any]] = {}

    def clear_leftovers(self) -> int:
        """SIGKILL process groups a previous kubelet of this node left (pid reuse guarded by start time)."""
        try:
            old = json.loads(self.path.read_text())
        except (OSError, ValueError):
            old = {}
        killed = 0
        for key, entry in old.items() if isinstance(old, dict) else []:
            pgid = int(entry.get("pgid") or 0)
            if pgid > 1 and entry.get("start") and _start_time(pgid) == entry.get("start"):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                    killed += 1
                    log.info("killed leftover container %s (process group %d)", key, pgid)
                except ProcessLookupError:
                    pass
        self._write()
        return killed

    def add(self, key: str, proc: Process, uid: str) -> None:
        with self._lock:
            self._live[key] = {"pid": proc.init_pid, "pgid": proc.pgid, "uid": uid,
                               "start": _start_time(proc.pgid), "start_time": _start_time(proc.init_pid),
                               "id": proc.container_id}
            self._write_locked()

    def remove(self, key: str, proc: Process) -> None:
        with self._lock:
            if self._live.get(key, {}).get("pgid") == proc.pgid:
                del self._live[key]
                self._write_locked()

    def _write(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state.atomic_write(self.path, (json.dumps(self._live, indent=1, sort_keys=True) + "\n").encode())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._live)
