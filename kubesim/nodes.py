"""Kubelet processes and node faults: what ``docker kill`` / ``docker start`` are to kind.

``kubesim up --nodes N`` starts one ``python -m kubesim.kubelet --state DIR --node NAME`` per
node (names ``kubesim-worker``, ``kubesim-worker2``, … as kind names its workers), each in its own
session, and records it in ``state.json`` as ``kubelet/<node>`` with its command line, so
``kubesim node restore`` can start the same kubelet again after ``kubesim node crash``.

Contract with the kubelet (helper K5, ``kubesim/kubelet``):

* The kubelet writes ``DIR/nodes/<node>/containers.json`` — ``{"<ns>/<pod>/<container>": {"pid",
  "pgid", "uid", "start"?}}`` for every live container, rewritten atomically whenever a
  container starts or ends. Each container is its own process group (``pgid``); ``start`` (field
  22 of ``/proc/<pgid>/stat``, the group leader's start time; ``start_time`` is the same for
  ``pid``) lets us refuse to signal a recycled pid.
* ``node crash`` SIGKILLs the kubelet's process group and then every recorded container group —
  a machine that stops, though its page cache survives (whatever was written reaches the disk).
  ``node power-loss`` is the machine losing power: the kubelet and its containers are frozen
  (SIGSTOP), every lazy volume of the node (the `lazy` class, ``kubesim/kubelet/lazyvolumes.py``)
  drops what was never made durable, then everything is SIGKILLed as by ``crash``; ``restore``
  is the reboot (the kubelet mounts the volumes again). Containers must ALSO die when their kubelet dies by
  any other means (a SIGKILL not sent by us): the kubelet's sandbox should arrange
  ``PR_SET_PDEATHSIG(SIGKILL)`` for the process it forks (or an in-group supervisor that kills the
  group when its parent goes), so an orphaned container never keeps writing to a volume another
  node now owns.
* ``down`` stops kubelets first (SIGTERM, grace, SIGKILL), then SIGKILLs whatever container groups
  their ``containers.json`` still lists, then stops the control plane. Last it looks for anything of
  the cluster still running (:func:`sweep`: the recorded pids, groups and command lines read before
  stopping, and any process whose root or working directory is inside the state directory — a
  container whose records went with its shim) and SIGKILLs it by pid, saying so.
* Network: with ``--network private`` kubelets start inside the cluster's network namespace
  (``nsenter --net``, :func:`kubesim.network.popen`), so their containers are in it too; a restored
  kubelet joins the same namespace. ``down``'s final check also takes every process still in that
  namespace for part of the cluster (the namespace is held open meanwhile, so its identity cannot be
  reused by another one).
* Settings: kubelets get the cluster's ``KUBESIM_*`` environment
  (:class:`kubesim.controllers.settings.ControllerSettings`), recorded in ``state.json`` under
  ``settings`` so a restored kubelet uses the same periods.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import tenacity
import typer

from kubesim import client, network, state
from kubesim.controllers import settings as settings_mod
from kubesim.kubelet import lazyvolumes
from kubesim.lazyfs import manage as lazyfs
from kubesim.lazyfs import mountinfo

app = typer.Typer(name="node", help="Node faults: crash/restore a kubelet, signal a container, list nodes.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

StateOpt = Annotated[Path, typer.Option("--state", help="state directory of a running kubesim")]
PREFIX = "kubelet/"


def node_name(index: int) -> str:
    """kind's worker names: kubesim-worker, kubesim-worker2, kubesim-worker3, …"""
    return "kubesim-worker" if index == 0 else f"kubesim-worker{index + 1}"


def node_dir(layout: state.Layout, node: str) -> Path:
    return layout.root / "nodes" / node


def kubelet_cmd(layout: state.Layout, node: str) -> list[str]:
    """``python -m kubesim.kubelet --state DIR --node NAME``; ``KUBESIM_KUBELET_CMD`` replaces the program part.

    The override lets the node tooling be tested with a scripted kubelet, independent of the real one.
    """
    program = shlex.split(os.environ.get("KUBESIM_KUBELET_CMD", "")) or [sys.executable, "-m", "kubesim.kubelet"]
    return [*program, "--state", str(layout.root), "--node", node]


def cluster_env(layout: state.Layout) -> dict[str, str]:
    """The environment a component of this cluster runs with: ours plus the recorded settings."""
    recorded = state.read_state(layout).get("settings") or {}
    env = dict(os.environ)
    env.update(settings_mod.ControllerSettings.from_json(recorded).to_env())
    return env


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"kubesim: {message}", err=True)
    return typer.Exit(code)


def _layout(path: Path) -> state.Layout:
    if not path.is_dir():
        raise _fail(f"--state {path} is not a kubesim state directory; pass the one given to `kubesim up`")
    return state.Layout(path.resolve())


def tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ----- processes ------------------------------------------------------------------------------


def kubelet_pid(layout: state.Layout, node: str) -> int | None:
    """The running kubelet of ``node`` (None if not running or the recorded pid is someone else's now)."""
    info = state.read_state(layout)["components"].get(PREFIX + node) or {}
    pid = info.get("pid")
    return pid if isinstance(pid, int) and state.is_ours(layout, pid) else None


def recorded_nodes(layout: state.Layout) -> list[str]:
    names = [n[len(PREFIX):] for n in state.read_state(layout)["components"] if n.startswith(PREFIX)]
    return sorted(names, key=_node_order)


def _node_order(name: str) -> tuple[int, str]:
    suffix = name.removeprefix("kubesim-worker")
    return (int(suffix) if suffix.isdigit() else 1 if suffix == "" else 10**6, name)


def start_kubelet(layout: state.Layout, node: str, env: dict[str, str] | None = None) -> int:
    """Start ``node``'s kubelet in its own session and record it; returns its pid.

    Under the state lock, and a no-op returning the running pid if the node's kubelet already runs:
    two concurrent restores must not leave a second, unrecorded kubelet heartbeating for the node.
    """
    env = env if env is not None else cluster_env(layout)
    with state.updating_state(layout) as data:
        info = data["components"].get(PREFIX + node) or {}
        running = info.get("pid")
        if isinstance(running, int) and state.is_ours(layout, running):
            return running
        cmd = info.get("cmd") or kubelet_cmd(layout, node)
        directory = node_dir(layout, node)
        directory.mkdir(parents=True, exist_ok=True)
        out = open(directory / "kubelet.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = network.popen(layout, cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True, close_fds=True, env=env)
        finally:
            out.close()
        _await_identifiable(layout, proc, cmd[0])
        data["components"][PREFIX + node] = {"pid": proc.pid, "cmd": cmd}
    return proc.pid


def _await_identifiable(layout: state.Layout, proc: subprocess.Popen[bytes], program: str,
                        timeout: float = 10.0) -> None:
    """Wait until ``/proc/<pid>/cmdline`` shows the new kubelet, ``program`` itself (or it has exited).

    Why: Popen returns once exec closed the close-on-exec pipe, but the kernel maps the new argv only
    after that, so for a moment (long on a loaded machine) the cmdline is empty and
    :func:`state.is_ours` says "not ours". In that window ``restore``'s Ready wait reported "the
    kubelet exited" and a ``crash`` would find "kubelet (was not running)" and kill nothing. In a
    private network the pid first runs ``nsenter``, whose own exec of the kubelet opens the same
    window a second time: so the wait is for the kubelet's program, not just for our state dir.
    """
    def settled() -> bool:
        if proc.poll() is not None:
            return True
        try:
            first = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            return False
        return first == program.encode() and state.is_ours(layout, proc.pid)

    def gave_up(_state: tenacity.RetryCallState) -> None:
        with contextlib.suppress(ProcessLookupError):  # never leave an unrecorded kubelet running
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_kubelet): the whole group
            proc.kill()
        proc.wait()
        raise RuntimeError(f"kubelet pid {proc.pid} never showed its command line ({proc.args!r}) "
                           f"within {timeout:.0f}s")

    tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.001),
                      retry=tenacity.retry_if_result(lambda ok: not ok), retry_error_callback=gave_up)(settled)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state, 2 = pgrp, 19 = starttime)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def read_containers(layout: state.Layout, node: str) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((node_dir(layout, node) / "containers.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def signal_group(entry: dict[str, Any], sig: int) -> bool:
    """Signal one recorded container's process group; refuses a pid whose start time shows it was recycled."""
    pid, pgid = entry.get("pid"), entry.get("pgid")
    if not isinstance(pgid, int) or pgid <= 1:
        return False
    if isinstance(pid, int):
        fields = _proc_stat(pid)
        if fields is not None and (fields[2] != str(pgid) or (
                entry.get("start_time") is not None and fields[19] != str(entry["start_time"]))):
            return False  # the pid now belongs to another process
    leader = _proc_stat(pgid)
    if leader is not None and entry.get("start") is not None and leader[19] != str(entry["start"]):
        return False  # the group leader's pid was recycled: not our group any more
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def freeze(layout: state.Layout, data: dict[str, Any], node: str) -> None:
    """SIGSTOP the node's kubelet (its process group) and every recorded container: nothing of the node runs
    on, so nothing it does after this moment can be seen (the first instant of a power loss)."""
    info = data["components"].get(PREFIX + node)
    recorded = info.get("pid") if isinstance(info, dict) else None
    if isinstance(recorded, int) and state.is_ours(layout, recorded):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(recorded, signal.SIGSTOP)
    for entry in read_containers(layout, node).values():
        signal_group(entry, signal.SIGSTOP)
        _kill_recorded_pid(entry, signal.SIGSTOP)


def kill_containers(layout: state.Layout, node: str) -> int:
    """SIGKILL every container group ``node``'s kubelet recorded; returns how many were signalled.

    PID 1 is also killed on its own (when it is still the recorded process): a container may have
    left the shim's process group with ``setsid``.
    """
    killed = 0
    for entry in read_containers(layout, node).values():
        killed += signal_group(entry, signal.SIGKILL)
        _kill_recorded_pid(entry)
    return killed


def _kill_recorded_pid(entry: dict[str, Any], sig: int = signal.SIGKILL) -> None:
    """SIGKILL (or ``sig``) a container's PID 1 if it is still the process recorded (start time)."""
    pid, start = entry.get("pid"), entry.get("start_time")
    if not isinstance(pid, int) or pid <= 1 or start is None:
        return
    fields = _proc_stat(pid)
    if fields is not None and fields[19] == str(start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def crash(layout: state.Layout, node: str) -> tuple[int | None, int]:
    """SIGKILL the kubelet (its whole process group) and all its containers; returns (kubelet pid, containers).

    Under the state lock, so a restore running at the same time either finishes first (and its
    kubelet is the one killed) or starts after (and its pid is not erased by this crash's record).
    """
    with state.updating_state(layout) as data:
        return _crash_locked(layout, data, node)


def _crash_locked(layout: state.Layout, data: dict[str, Any], node: str) -> tuple[int | None, int]:
    """:func:`crash`'s work, in the caller's ``updating_state``."""
    info = data["components"].get(PREFIX + node)
    recorded = info.get("pid") if isinstance(info, dict) else None
    pid = recorded if isinstance(recorded, int) and state.is_ours(layout, recorded) else None
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    killed = kill_containers(layout, node)
    if isinstance(info, dict):
        info.pop("pid", None)
        info["crashed"] = True
    return pid, killed


@dataclasses.dataclass(frozen=True)
class PowerLoss:
    """What ``node power-loss`` did: the crash, and per lazy volume (mount point) what was dropped."""

    kubelet: int | None
    containers: int
    dropped: dict[str, dict[str, int]]
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"kubelet": self.kubelet, "containers": self.containers, "volumes": self.dropped,
                "dropped": {k: sum(d.get(k, 0) for d in self.dropped.values())
                            for k in sorted({k for d in self.dropped.values() for k in d})},
                "problems": self.problems}


def power_loss(layout: state.Layout, node: str, timeout: float = 60.0) -> PowerLoss:
    """The node loses power: freeze its kubelet and containers, drop every un-durable change of its lazy
    volumes, SIGKILL everything as :func:`crash` does, and wait until the volumes are unmounted.

    The order is the point. Frozen processes make no more requests, so what each volume drops is exactly
    what was not durable at one instant; a kubelet killed *before* the drop would take its volumes down
    cleanly (their daemons unmount when their owner dies, keeping everything, as a clean shutdown would).
    Whatever fails in between, the crash still happens (nothing stays frozen); failures are listed.
    """
    dropped: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    mounts: list[lazyfs.Mount] = []
    with state.updating_state(layout) as data:
        try:
            freeze(layout, data, node)
            # listed once the kubelet is frozen: it cannot add a mount after this
            mounts = [m for m in lazyvolumes.mounts_of(layout.root, node_dir(layout, node)) if lazyfs.alive(m)]
            for m in mounts:
                try:
                    dropped[str(m.mountpoint)] = lazyfs.drop(m, timeout)
                except lazyfs.LazyFSError as exc:
                    if mountinfo.lazyfs_at(m.mountpoint) is not None:
                        problems.append(f"{m.mountpoint}: {exc}")
                    # else: not mounted (yet, or any more): nothing was written through it to drop
        finally:
            pid, killed = _crash_locked(layout, data, node)
    for m in mounts:
        try:
            lazyfs.await_off(m, timeout)
        except lazyfs.LazyFSError as exc:
            problems.append(f"{m.mountpoint}: {exc}")
    return PowerLoss(pid, killed, dropped, problems)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_kubelet(layout: state.Layout, node: str, grace: float) -> bool:
    """SIGTERM the kubelet's group, SIGKILL after ``grace``, then SIGKILL leftover containers. True if it ran."""
    pid = kubelet_pid(layout, node)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and state.is_ours(layout, pid):
            _reap(pid)
            time.sleep(0.05)
        if state.is_ours(layout, pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    kill_containers(layout, node)
    return pid is not None


# ----- what `down` must not leave behind -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What a cluster's records name, read before ``down`` stops it (stopping rewrites the records)."""

    components: dict[int, str]  # recorded component pid -> name (checked by command line, as is_ours does)
    containers: dict[int, tuple[str, str]]  # container PID 1 -> (its recorded start time, which container)
    groups: dict[int, str]  # a live shim's process group / session -> which container
    cmds: dict[tuple[str, ...], str]  # a component's exact command line -> its name
    netns: str | None = None  # the cluster's private network namespace ("net:[inode]"), if it has one
    lazyfs: dict[int, str] = dataclasses.field(default_factory=dict)  # a lazy volume's daemon pid -> its mount point


def recorded(layout: state.Layout, netns: str | None = None) -> Recorded:
    """``netns``: the cluster's namespace, only when the caller holds it open (:func:`kubesim.network.pinned`) —
    a recorded identity alone may name a namespace freed long ago whose inode another cluster's now has."""
    rec = Recorded({}, {}, {}, {}, netns)
    for name, info in state.read_state(layout)["components"].items():
        if not isinstance(info, dict):
            continue
        if isinstance(info.get("pid"), int):
            rec.components[info["pid"]] = name
        if isinstance(info.get("cmd"), list):
            rec.cmds[tuple(str(a) for a in info["cmd"])] = name
    rec.cmds.setdefault(tuple(network.holder_cmd(layout)), network.COMPONENT)  # a holder even if its record is lost
    for m in lazyfs.find(layout.root):
        rec.lazyfs[m.pid] = str(m.mountpoint)
    for node in recorded_nodes(layout):
        for key, entry in read_containers(layout, node).items():
            pid, pgid = entry.get("pid"), entry.get("pgid")
            if isinstance(pid, int) and pid > 1 and entry.get("start_time") is not None:
                rec.containers[pid] = (str(entry["start_time"]), f"container {key} (PID 1)")
            if not isinstance(pgid, int) or pgid <= 1:
                continue
            leader = _proc_stat(pgid)
            if leader is not None and entry.get("start") is not None and leader[19] == str(entry["start"]):
                rec.groups[pgid] = f"container {key} (its sandbox's process group)"
    return rec


@dataclasses.dataclass(frozen=True)
class Leftover:
    """A process of the cluster still running; ``start`` pins its identity until it is killed."""

    pid: int
    start: str
    why: str
    uid: str
    cmd: str

    def describe(self) -> str:
        return f"pid {self.pid} (uid {self.uid}): {self.cmd} [{self.why}]"


def _link(pid: int, name: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/{name}").removesuffix(" (deleted)")
    except OSError:
        return ""


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _ancestors() -> set[int]:
    """This process and the ones it runs under (a shell or test cd'd into the state dir is not the cluster)."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        fields = _proc_stat(pid)
        pid = int(fields[1]) if fields is not None else 0
    return out


def _cmdline(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1])


def _why_ours(layout: state.Layout, rec: Recorded, pid: int, fields: list[str]) -> str | None:
    """Why ``pid`` belongs to this cluster, or None. Identity is checked (start time, command line), never a name."""
    if pid in rec.components and state.is_ours(layout, pid):
        return rec.components[pid]
    if pid in rec.containers and rec.containers[pid][0] == fields[19]:
        return rec.containers[pid][1]
    for group in (int(fields[2]), int(fields[3])):  # process group, session: a shim leads both
        if group in rec.groups:
            return rec.groups[group]
    cmd = _cmdline(pid)
    if cmd in rec.cmds:
        return f"an unrecorded {rec.cmds[cmd]}"
    if lazyfs.is_daemon_of(layout.root, cmd):  # by its --fsname, recorded or not
        where = rec.lazyfs.get(pid)
        return f"the lazyfs daemon of {where}" if where else "an unrecorded lazyfs daemon of this cluster"
    root, cwd = _link(pid, "root"), _link(pid, "cwd")
    if _within(root, str(layout.root)):
        return f"a container process: its root is {root}"
    if _within(cwd, str(layout.root)) and _link(pid, "ns/mnt") != _link(os.getpid(), "ns/mnt"):
        return f"a container process: its working directory is {cwd}"
    if rec.netns is not None and _link(pid, "ns/net") == rec.netns:
        return f"in the cluster's network namespace {rec.netns}"
    return None


def find_leftovers(layout: state.Layout, rec: Recorded) -> list[Leftover]:
    """Every live process that is part of this cluster: by recorded pid, group or command line, by a root or
    working directory inside the state directory (a container whose records are already gone), or by being in
    the cluster's private network namespace (a ``net exec`` command, anything else started inside it)."""
    mine = _ancestors()
    found: list[Leftover] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        fields = _proc_stat(pid)
        if fields is None or len(fields) < 20 or fields[0] in ("Z", "X"):
            continue
        why = _why_ours(layout, rec, pid, fields)
        if why is not None:
            found.append(Leftover(pid, fields[19], why, _uid(pid), " ".join(_cmdline(pid)) or "?"))
    return found


def _uid(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("\nUid:", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _kill_exactly(leftover: Leftover) -> None:
    """SIGKILL the process found, not a later one that got its pid: a pidfd pins it while its start is checked."""
    try:
        fd = os.pidfd_open(leftover.pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfds (kernel < 5.3): the start-time check alone
        fields = _proc_stat(leftover.pid)
        if fields is not None and fields[19] == leftover.start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)
        return
    try:
        fields = _proc_stat(leftover.pid)
        if fields is not None and fields[19] == leftover.start:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)


def sweep(layout: state.Layout, rec: Recorded, settle: float = 10.0) -> list[Leftover]:
    """After stopping: SIGKILL whatever of the cluster still runs; returns what had to be killed.

    A process already dying (a container its kubelet or PID namespace just SIGKILLed) is only waited
    for; any other is a survivor nothing was going to stop, which is a kubesim bug.
    """
    deadline = time.monotonic() + settle
    killed: dict[int, Leftover] = {}
    while True:
        left = find_leftovers(layout, rec)
        for leftover in left:
            if leftover.pid not in killed and not state.dying(leftover.pid):
                killed[leftover.pid] = leftover
                _kill_exactly(leftover)
        if not left or time.monotonic() >= deadline:
            stuck = [lo for lo in left if lo.pid not in killed]
            return [*killed.values(), *(dataclasses.replace(lo, why=f"{lo.why}; still exiting {settle:.0f}s "
                                                                 "after its SIGKILL") for lo in stuck)]
        time.sleep(0.05)


# ----- readiness ------------------------------------------------------------------------------


def ready_condition(node: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def wait_ready(layout: state.Layout, names: list[str], timeout: float, since: float | None = None) -> None:
    """Wait until every named Node is Ready; RuntimeError naming those that are not (and why) otherwise.

    ``since`` (epoch seconds): only a heartbeat at or after it counts — a Node object left Ready by a
    kubelet that has since died (``down``, ``node crash``) must not pass for the new kubelet.
    """
    floor = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(since))) if since is not None else ""
    api = client.Client.from_state(layout.root)
    last: dict[str, str] = dict.fromkeys(names, "not registered")

    def check() -> bool:
        for name in names:
            if kubelet_pid(layout, name) is None:
                log = node_dir(layout, name)
                raise RuntimeError(f"the kubelet of {name} exited; last output:\n"
                                   f"{tail(log / 'kubelet.out') or tail(log / 'kubelet.log') or '(none)'}")
        try:
            items, _rv = api.list("nodes")
        except client.ApiError as exc:
            last.update(dict.fromkeys(names, f"API unreachable: {exc.message}"))
            return False
        seen = {str(n["metadata"]["name"]): n for n in items}
        for name in names:
            node = seen.get(name)
            cond = ready_condition(node) if node is not None else None
            if node is None:
                last[name] = "not registered"
            elif cond is None:
                last[name] = "no Ready condition yet"
            elif cond.get("status") == "True" and str(cond.get("lastHeartbeatTime") or "") < floor:
                last[name] = f"Ready only by a heartbeat from before its kubelet started ({cond['lastHeartbeatTime']})"
            elif cond.get("status") == "True":
                last.pop(name, None)
            else:
                last[name] = f"Ready={cond.get('status')} ({cond.get('reason')}: {cond.get('message')})"
        return not last

    def gave_up(_state: tenacity.RetryCallState) -> bool:
        detail = "; ".join(f"{n}: {why}" for n, why in sorted(last.items()))
        raise RuntimeError(f"nodes not Ready within {timeout:.0f}s: {detail}")

    try:
        tenacity.Retrying(stop=tenacity.stop_before_delay(timeout), wait=tenacity.wait_fixed(0.1),
                          retry=tenacity.retry_if_result(lambda ok: not ok), retry_error_callback=gave_up)(check)
    finally:
        api.close()


# ----- commands -------------------------------------------------------------------------------


def _known_node(layout: state.Layout, node: str) -> None:
    if node not in recorded_nodes(layout):
        known = ", ".join(recorded_nodes(layout)) or "none (start with `kubesim up --nodes N`)"
        raise _fail(f"no node {node!r} in {layout.root}; nodes: {known}")


@app.command("crash")
def crash_cmd(node: Annotated[str, typer.Argument(help="node name, e.g. kubesim-worker2")],
              state_dir: StateOpt) -> None:
    """SIGKILL the node's kubelet and every container it runs (like `docker kill` of a kind node)."""
    layout = _layout(state_dir)
    _known_node(layout, node)
    pid, killed = crash(layout, node)
    what = f"kubelet pid {pid}" if pid is not None else "kubelet (was not running)"
    typer.echo(f"crashed {node}: killed {what} and {killed} container process group(s)")


@app.command("power-loss")
def power_loss_cmd(node: Annotated[str, typer.Argument(help="node name, e.g. kubesim-worker2")],
                   state_dir: StateOpt,
                   as_json: Annotated[bool, typer.Option("--json", help="print what was done as one JSON "
                                                                         "object")] = False) -> None:
    """Cut the node's power: crash it (as `node crash`) AND drop every change its `lazy` volumes never made
    durable. `node restore` is the reboot: the kubelet mounts the volumes again."""
    layout = _layout(state_dir)
    _known_node(layout, node)
    reason = lazyfs.unavailable_reason()
    if reason is not None:
        raise _fail(f"cannot cut the power of {node}: {reason} (the lazy file system is what drops un-durable "
                    "writes; without it this would only be `node crash`)")
    done = power_loss(layout, node)
    if as_json:
        typer.echo(json.dumps({"node": node, **done.to_json()}, sort_keys=True))
    else:
        what = f"kubelet pid {done.kubelet}" if done.kubelet is not None else "kubelet (was not running)"
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in done.to_json()["dropped"].items())
        typer.echo(f"power loss on {node}: killed {what} and {done.containers} container process group(s); "
                   f"{len(done.dropped)} lazy volume(s) dropped what was not durable ({counts or 'nothing'})")
    if done.problems:
        raise _fail(f"power loss on {node} incomplete: {'; '.join(done.problems)}", 1)


@app.command("restore")
def restore_cmd(
    node: Annotated[str, typer.Argument(help="node name, e.g. kubesim-worker2")], state_dir: StateOpt,
    wait: Annotated[bool, typer.Option(help="wait until the Node is Ready again")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait for Ready")] = 60.0,
) -> None:
    """Start the node's kubelet again (after `node crash`) and wait until the Node is Ready."""
    layout = _layout(state_dir)
    _known_node(layout, node)
    running = kubelet_pid(layout, node)
    if running is not None:
        typer.echo(f"{node}: kubelet already running (pid {running})")
        since = None
    else:
        since = time.time()
        try:
            pid = start_kubelet(layout, node)
        except network.NetworkError as exc:
            raise _fail(str(exc), 1) from None
        typer.echo(f"{node}: kubelet started (pid {pid})")
    if wait:
        try:
            wait_ready(layout, [node], timeout, since)
        except RuntimeError as exc:
            raise _fail(str(exc), 1) from None
        typer.echo(f"{node}: Ready")


def parse_signal(text: str) -> signal.Signals:
    name = text.strip().upper()
    if name.isdigit():
        try:
            return signal.Signals(int(name))
        except ValueError:
            pass
    else:
        try:
            return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        except KeyError:
            pass
    raise ValueError(f"--signal {text!r} is not a signal; use a name like KILL, TERM, INT or a number")


@app.command("kill-container")
def kill_container_cmd(
    pod: Annotated[str, typer.Argument(help="pod name")],
    container: Annotated[str, typer.Argument(help="container name")],
    state_dir: StateOpt,
    namespace: Annotated[str, typer.Option("-n", "--namespace", help="the pod's namespace")] = "default",
    sig: Annotated[str, typer.Option("--signal", help="signal name or number")] = "KILL",
) -> None:
    """Signal one container's process group (the kubelet then restarts it per restartPolicy)."""
    layout = _layout(state_dir)
    try:
        signum = parse_signal(sig)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    key = f"{namespace}/{pod}/{container}"
    for node in recorded_nodes(layout):
        entry = read_containers(layout, node).get(key)
        if entry is not None:
            at = time.time()  # wall clock, so a history's ops can be placed before or after the signal
            if not signal_group(entry, signum):
                raise _fail(f"container {key} on {node} is no longer running (pid {entry.get('pid')})", 1)
            typer.echo(f"sent {signum.name} to {key} on {node} (process group {entry.get('pgid')}) at {at:.6f}")
            return
    raise _fail(f"no running container {container!r} of pod {namespace}/{pod} on any node of {layout.root}", 1)


@app.command("list")
def list_cmd(state_dir: StateOpt) -> None:
    """Each node: kubelet process, Ready condition, running containers."""
    layout = _layout(state_dir)
    names = recorded_nodes(layout)
    if not names:
        typer.echo("no nodes (start with `kubesim up --nodes N`)")
        return
    ready: dict[str, str] = {}
    try:
        api = client.Client.from_state(layout.root)
        items, _rv = api.list("nodes")
        api.close()
        for node in items:
            cond = ready_condition(node) or {}
            ready[str(node["metadata"]["name"])] = str(cond.get("status", "Unknown"))
    except (client.ApiError, ValueError, OSError):
        pass
    typer.echo(f"{'NODE':<20} {'KUBELET':<16} {'READY':<8} CONTAINERS")
    for name in names:
        pid = kubelet_pid(layout, name)
        proc = f"running ({pid})" if pid is not None else "stopped"
        typer.echo(f"{name:<20} {proc:<16} {ready.get(name, '?'):<8} {len(read_containers(layout, name))}")
