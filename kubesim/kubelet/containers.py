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
from kubesim.kubelet import cgroups

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
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The container's ``resources`` (limits become its cgroup's settings)."""
    node_dir: str = ""
    """The node whose cgroups the container goes in (:func:`cgroups.for_node`); "" = no cgroup."""
    cgroups: list[str] = dataclasses.field(default_factory=list)
    """``cgroup.procs`` files PID 1 joins before it execs (the launcher fills them in)."""

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()


@dataclasses.dataclass(frozen=True)
class StartFailure:
    stage: str  # "create" | "start"
    message: str


class Process:
    """One running container instance: the shim (process group leader) and the container's PID 1."""

    def __init__(self, shim: subprocess.Popen[bytes], init_pid: int, mode: str, container_id: str,
                 cgroup: cgroups.ContainerCgroup | None = None) -> None:
        self.shim = shim
        self.init_pid = init_pid
        self.init_start = _start_time(init_pid)  # tells PID 1 from a later process that got its pid
        self.mode = mode
        self.container_id = container_id
        self.started_mono = time.monotonic()
        self.exited = threading.Event()
        self.returncode: int | None = None
        self.cgroup = cgroup
        self.oom_killed = False
        """Set before :attr:`exited`: the kernel's OOM killer ended this container (reason ``OOMKilled``)."""

    @property
    def pgid(self) -> int:
        return self.shim.pid

    def wait(self) -> int:
        rc = self.shim.wait()
        self._end_orphaned_init(rc)
        self.returncode = rc
        self._release_cgroup()
        self.exited.set()
        return rc

    def _release_cgroup(self) -> None:
        """Read the OOM verdict, then remove the container's cgroup (what is left inside is SIGKILLed first)."""
        if self.cgroup is None:
            return
        try:
            self.oom_killed = self.cgroup.oom_killed(self.exit_code)
        except OSError as exc:
            log.warning("container %s: cannot read its cgroup's OOM counter: %s", self.container_id[:12], exc)
        if self.oom_killed:
            log.info("container %s (pid %d) was OOM-killed (memory limit %s bytes)", self.container_id[:12],
                     self.init_pid, self.cgroup.memory_limit())
        self.cgroup.remove()

    def _init_running(self) -> bool:
        return _running_since(self.init_pid, self.init_start)

    def _end_orphaned_init(self, shim_rc: int) -> None:
        """The shim is gone, so PID 1 must be too: a container reported exited must never keep running.

        The shim only exits on its own after reaping PID 1, and a killed shim takes PID 1 with it
        (PDEATHSIG, already sent by the time we reap the shim). A PID 1 still running without a
        SIGKILL on its way escaped both; it is killed here and said loudly, since it is a kubesim bug.
        """
        if not self._init_running():
            return
        if not state.dying(self.init_pid):
            log.error("container PID 1 (pid %d) outlived its sandbox shim (pid %d, exit %d); killing it",
                      self.init_pid, self.pgid, shim_rc)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.init_pid, signal.SIGKILL)

    @property
    def exit_code(self) -> int:
        rc = self.returncode if self.returncode is not None else 0
        return rc if rc >= 0 else 128 - rc

    def signal_main(self, sig: int) -> None:
        """SIGTERM goes to the container's PID 1 only, as a container runtime sends it."""
        if self.exited.is_set() or not self._init_running():  # never a later process that got PID 1's pid
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.init_pid, sig)

    def kill(self) -> None:
        """SIGKILL the shim's group and PID 1 (which may have left the group with setsid)."""
        if not self.exited.is_set():  # once reaped, the group id may belong to someone else
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
        if self._init_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)


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
        container_id = new_container_id()
        cgroup: cgroups.ContainerCgroup | None = None
        if spec.node_dir:
            try:
                cgroup = cgroups.for_node(Path(spec.node_dir)).create(container_id, cgroups.limits_for(spec.resources))
            except OSError as exc:
                return StartFailure("create", f"failed to create the container's cgroup: {exc}")
            if cgroup is not None:
                spec = dataclasses.replace(spec, cgroups=cgroup.procs_files)
        started = self._launch(spec, log_path, timeout, container_id, cgroup)
        if isinstance(started, StartFailure) and cgroup is not None:
            cgroup.remove()
        return started

    def _launch(self, spec: LaunchSpec, log_path: Path, timeout: float, container_id: str,
                cgroup: cgroups.ContainerCgroup | None) -> Process | StartFailure:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        log_offset = os.fstat(log_fd).st_size  # anything after this, before PID 1 runs, is the shim's stderr
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
        init_pid, mode, failure = _parse_status(_read_all(status_r, timeout))
        if failure is not None or not init_pid:
            _reap(proc)
            said = _written_since(log_path, log_offset)
            return failure or StartFailure("create", silent_death(proc.returncode, said))
        return Process(proc, init_pid, mode, container_id, cgroup)


def _parse_status(lines: list[str]) -> tuple[int, str, StartFailure | None]:
    """(PID 1's host pid or 0, sandbox mode, the failure reported) from the shim's status lines."""
    init_pid, mode, failure = 0, "none", None
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
    return init_pid, mode, failure


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def silent_death(returncode: int | None, stderr: str) -> str:
    """Why a shim that never wrote a status line is gone: its exit status and whatever it printed.

    Only deaths no code in the shim sees end like this (a SIGKILL, the interpreter failing to start or to
    import), so the exit status and the interpreter's own words are all there is to show.
    """
    if returncode is None:
        how = "did not finish"
    elif returncode < 0:
        how = f"was killed by {_signal_name(-returncode)}"
    else:
        how = f"exited with code {returncode}"
    said = " | ".join(line.strip() for line in stderr.strip().splitlines()[-5:] if line.strip())
    return f"container sandbox {how} before it started the container" + (f": {said}" if said else "")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _written_since(path: Path, offset: int, limit: int = 4096) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(limit).decode(errors="replace")
    except OSError:
        return ""


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


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (0 = state, 19 = start time); [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else None


def _running_since(pid: int, start: object) -> bool:
    """``pid`` is still the process that started at ``start`` and has not exited (zombies have)."""
    fields = _stat(pid)
    return start is not None and len(fields) > 19 and fields[19] == str(start) and fields[0] != "Z"


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
            pgid, pid = int(entry.get("pgid") or 0), int(entry.get("pid") or 0)
            if pgid > 1 and entry.get("start") and _start_time(pgid) == entry.get("start"):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                    killed += 1
                    log.info("killed leftover container %s (process group %d)", key, pgid)
                except ProcessLookupError:
                    pass
            if pid > 1 and _running_since(pid, entry.get("start_time")):  # PID 1 may have left the group (setsid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    log.info("killed leftover container %s (PID 1, pid %d)", key, pid)
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
