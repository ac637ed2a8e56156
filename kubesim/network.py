"""A cluster's network: ``--network host`` (the host's, with an address range of its own) or ``private``.

**private** — what a kind cluster has: the control plane, the kubelets and every pod of the
cluster live in ONE network namespace of that cluster, with only a loopback interface (nothing can
leave the machine; pods still bind their own 127.x addresses, see :mod:`kubesim.kubelet.podip`).
The namespace is held by a small process (:mod:`kubesim.netholder`, component ``network`` in
``state.json``); the namespace's identity (``net:[inode]``) is recorded beside it, and a process
is only ever joined to it after its ``/proc/<pid>/ns/net`` shows that identity (pids are reused).
The holder keeps the namespace across a SIGKILLed control plane: ``up`` starts the new control
plane into it, ``node restore`` starts kubelets into it. If the holder itself died while
kubelets still run in the namespace, the next ``up`` starts a holder *into that namespace* (found
through any live recorded process of the cluster), never a second one. Once the holder and every
process of the cluster are gone the kernel frees the namespace, so nothing stale can outlive a
SIGKILL of everything; ``down`` stops the holder last and its final check covers every process
still in the namespace. Joining: kubelets are started under ``nsenter --net`` (whatever program
``KUBESIM_KUBELET_CMD`` names runs inside, as anything in a kind node container does); the API
server binds its host socket first and then enters (``--netns-fd``, see
``kubesim/apiserver/__main__.py``): the only thing of a private cluster the host can reach is the
API server on 127.0.0.1:PORT, published exactly where the kubeconfig says. Inside, the same
address is served too, so the kubeconfig works unchanged in the namespace (``net exec``). Pods get
127.10.<node>.x — the same in every private cluster, as every kind cluster's nodes get
172.18.0.x on their own network.

**host** — every process in the host's network namespace (no root needed), as kubesim always
ran; the host reaches pod IPs directly. To keep two such clusters on one machine (``make run``
beside ``make test``, two checkouts, parallel test workers) from handing out the same address,
each takes a host-wide lease on an index ``C`` in 32..254 and its pods live in 127.<C>.0.0/16:
lease files ``$KUBESIM_NETWORKS_DIR`` (default ``/tmp/kubesim-networks/``) ``127.<C>``, taken
under an exclusive lock on ``.lock`` there. A lease is held while the ``up`` that took it runs or
any process recorded in the owner's ``state.json`` is alive (checked by command line, as
:func:`kubesim.state.is_ours` does) and that ``state.json`` still records ``C``; otherwise it is
reclaimed. An index with any socket bound in 127.<C>.0.0/16 on the host is skipped as well
(something else listens there: an older kubesim gave node ``i`` 127.<10+i>.0.0/16, which is also why
the range starts at 32). ``up`` prefers the index the cluster had before; ``down`` gives it back.

``state.json`` records ``network``: ``{"mode", "index", "pods", "netns"?, "lease"?}``.

The way in: ``python -m kubesim net exec --state DIR -- CMD…`` (``docker exec`` into a kind
node), and for kubesim's own tests :func:`call` / :func:`run`, which run a callable or a command
inside (on a thread of its own: a thread's network namespace is its own, so the caller's process
stays on the host). In host mode both simply run on the host, which is the cluster's network.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kubesim import state

MODES = ("host", "private")
#: host until the harness reaches kubesim's pods through kubectl port-forward (its "pod-ip" reach mode cannot
#: reach a private cluster's pods); then private, with host kept for machines that refuse network namespaces.
DEFAULT_MODE = "private"
COMPONENT = "network"
PRIVATE_INDEX = 10
HOST_INDEXES = range(32, 255)
LEASES_ENV = "KUBESIM_NETWORKS_DIR"
DEFAULT_LEASES_DIR = Path("/tmp/kubesim-networks")
HOLDER = Path(__file__).with_name("netholder.py")
CLONE_NEWNET = 0x40000000
HOLDER_TIMEOUT = 10.0

T = TypeVar("T")


class NetworkError(RuntimeError):
    """One line saying what is wrong with the cluster's network and what to do."""


@dataclasses.dataclass(frozen=True)
class Network:
    mode: str
    index: int
    netns: str | None = None  # private: "net:[inode]" of the cluster's namespace
    lease: str | None = None  # host: the lease file

    @property
    def pods(self) -> str:
        return f"127.{self.index}.0.0/16"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "index": self.index, "pods": self.pods}
        if self.netns is not None:
            out["netns"] = self.netns
        if self.lease is not None:
            out["lease"] = self.lease
        return out

    @classmethod
    def from_json(cls, data: Any) -> Network | None:
        if not isinstance(data, dict) or data.get("mode") not in MODES or not isinstance(data.get("index"), int):
            return None
        netns, lease = data.get("netns"), data.get("lease")
        return cls(str(data["mode"]), int(data["index"]), netns if isinstance(netns, str) else None,
                   lease if isinstance(lease, str) else None)

    def describe(self) -> str:
        if self.mode == "private":
            return (f"private (network namespace {self.netns}; pods {self.pods}; only the API server is "
                    "published on the host)")
        return f"host (shared with the host; pods {self.pods}, leased in {self.lease})"


def recorded(layout: state.Layout) -> Network | None:
    return Network.from_json(state.read_state(layout).get("network"))


# ----- namespaces ----------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def enter(fd: int) -> None:
    """Move the calling THREAD into the network namespace ``fd`` refers to (setns(2)).

    A network namespace is per thread: threads and processes this thread starts afterwards are
    inside, the process's other threads are not. Call it from the main thread before any other
    thread exists to move a whole process.
    """
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


def ns_id(pid: int | str) -> str | None:
    """``net:[inode]`` of a process's network namespace (``self`` / ``thread-self`` work too)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _live_members(layout: state.Layout, data: dict[str, Any], netns: str) -> list[int]:
    """Recorded processes of the cluster (holder first) that are alive and inside ``netns``."""
    comps = data.get("components") or {}
    names = [COMPONENT, *sorted(n for n in comps if n != COMPONENT)]
    out = []
    for name in names:
        pid = (comps.get(name) or {}).get("pid")
        if isinstance(pid, int) and state.is_ours(layout, pid) and ns_id(pid) == netns:
            out.append(pid)
    return out


def open_namespace(layout: state.Layout) -> int:
    """An fd (close-on-exec) of the cluster's private namespace; NetworkError if it is not private or gone.

    Opened through a live recorded process and checked against the recorded identity after opening
    (a pid reused in between would show another inode), so the fd is the cluster's namespace or nothing.
    """
    data = state.read_state(layout)
    net = Network.from_json(data.get("network"))
    if net is None or net.mode != "private" or net.netns is None:
        raise NetworkError(f"the cluster in {layout.root} has no private network (see `kubesim status`)")
    for pid in _live_members(layout, data, net.netns):
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        if f"net:[{os.fstat(fd).st_ino}]" == net.netns:
            return fd
        os.close(fd)
    raise NetworkError(f"the cluster's network namespace {net.netns} is gone (no process of the cluster in "
                       f"{layout.root} runs in it any more); start the cluster again with `kubesim up`")


@contextlib.contextmanager
def pinned(layout: state.Layout) -> Iterator[str | None]:
    """Hold the cluster's private namespace open while the body runs; yields its ``net:[inode]`` (None: none live).

    ``down`` pins it while it stops the cluster and looks for leftovers, so the inode it compares
    ``/proc/<pid>/ns/net`` against is the cluster's for the whole time: it cannot be freed and handed to
    another namespace meanwhile. Without a live process of the cluster to open it through, the recorded
    identity proves nothing (the namespace may be long gone and its inode reused), so None.
    """
    try:
        fd = open_namespace(layout)
    except NetworkError:
        yield None
        return
    try:
        yield f"net:[{os.fstat(fd).st_ino}]"
    finally:
        os.close(fd)


def popen(layout: state.Layout, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in the cluster's network: under ``nsenter --net`` if it is private, as is otherwise."""
    net = recorded(layout)
    if net is None or net.mode != "private":
        return subprocess.Popen(cmd, **kwargs)
    fd = open_namespace(layout)
    try:
        # /proc/self/fd/N is nsenter's own inherited descriptor: no path a reused pid could redirect
        return subprocess.Popen(["nsenter", f"--net=/proc/self/fd/{fd}", "--", *cmd], pass_fds=(fd,), **kwargs)
    finally:
        os.close(fd)


def call(state_dir: Path | str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` inside the cluster's network and return its result (or raise its exception).

    For kubesim's tests (the host no longer reaches a private cluster's pods): the call runs on a
    new thread that enters the namespace, so sockets it opens and subprocesses it starts are
    inside, while the calling process stays on the host. Host mode: called directly.
    """
    layout = state.Layout(Path(state_dir).resolve())
    net = recorded(layout)
    if net is None or net.mode != "private":
        return fn(*args, **kwargs)
    fd = open_namespace(layout)
    result: list[T] = []
    failure: list[BaseException] = []

    def inside() -> None:
        try:
            enter(fd)
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)

    try:
        worker = threading.Thread(target=inside, name=f"in {net.netns}", daemon=True)
        worker.start()
        worker.join()
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return result[0]


def run(state_dir: Path | str, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(argv, **kwargs)`` inside the cluster's network."""
    return call(state_dir, subprocess.run, argv, **kwargs)


# ----- up / down -----------------------------------------------------------------------------


def ensure(layout: state.Layout, mode: str) -> Network:
    """Make the cluster's network exist in ``mode`` and record it (in ``state.json``); returns it.

    private: the running holder if its namespace is the recorded one; else a new holder *inside*
    the recorded namespace if any recorded process still runs in it; else a new namespace.
    host: the cluster's lease (the one it had, if still free). Switching modes drops the other one.
    """
    if mode not in MODES:
        raise NetworkError(f"--network {mode!r}: use host or private")
    if mode == "host":
        _stop_holder(layout, grace=2.0)
        index, lease = _take_lease(layout)
        net = Network("host", index, lease=str(lease))
        with state.updating_state(layout) as data:
            data["network"] = net.to_json()
        return net
    if shutil.which("nsenter") is None:
        raise NetworkError("--network private needs nsenter(1) (util-linux) to start kubelets inside the cluster's "
                           "network namespace; install it, or use --network host")
    release_lease(layout)
    data = state.read_state(layout)
    old = Network.from_json(data.get("network"))
    members = _live_members(layout, data, old.netns) if old is not None and old.netns is not None else []
    holder = (data.get("components") or {}).get(COMPONENT) or {}
    if old is not None and old.mode == "private" and members and members[0] == holder.get("pid"):
        return old
    join = open_namespace(layout) if members else None
    try:
        _pid, netns = _start_holder(layout, join)
    finally:
        if join is not None:
            os.close(join)
    net = Network("private", PRIVATE_INDEX, netns=netns)
    with state.updating_state(layout) as data:
        data["network"] = net.to_json()
    return net


def holder_cmd(layout: state.Layout) -> list[str]:
    """The holder's command line: always the same for a state directory (``down`` knows it even unrecorded)."""
    return [sys.executable, "-S", "-E", str(HOLDER), "--state", str(layout.root)]


def _start_holder(layout: state.Layout, join: int | None) -> tuple[int, str]:
    """Start a holder (recorded at once, before it is ready: an `up` killed meanwhile leaves nothing unknown)."""
    cmd = holder_cmd(layout)
    env = dict(os.environ, KUBESIM_NETNS_JOIN_FD=str(join)) if join is not None else None
    log = layout.root / "network.out"
    with open(log, "ab") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd="/", env=env,
                                start_new_session=True, pass_fds=(join,) if join is not None else ())
    with state.updating_state(layout) as data:
        data["components"][COMPONENT] = {"pid": proc.pid, "cmd": cmd}
    assert proc.stdout is not None
    with proc.stdout:
        ready, _, _ = select.select([proc.stdout], [], [], HOLDER_TIMEOUT)
        line = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
    if line.startswith("ready net:["):
        return proc.pid, line.split(" ", 1)[1]
    _kill(proc)
    with state.updating_state(layout) as data:
        data["components"].pop(COMPONENT, None)
    if line.startswith("error "):
        hint = "" if os.geteuid() == 0 else "; not root"
        raise NetworkError(f"--network private needs a network namespace of its own, which this machine refuses "
                           f"({line.removeprefix('error ')}{hint}); use --network host (the host's network with "
                           "an address range of this cluster's own)")
    why = f"no answer within {HOLDER_TIMEOUT:.0f}s" if not ready else f"it exited with code {proc.returncode}"
    raise NetworkError(f"the network namespace holder did not start ({why}); see {log}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def release(layout: state.Layout, grace: float) -> list[str]:
    """Stop the namespace holder and give the lease back; returns what was stopped (for ``down``'s report)."""
    stopped = _stop_holder(layout, grace)
    release_lease(layout)
    return stopped


def _stop_holder(layout: state.Layout, grace: float) -> list[str]:
    info = state.read_state(layout)["components"].get(COMPONENT) or {}
    pid = info.get("pid")
    stopped = []
    if isinstance(pid, int) and state.is_ours(layout, pid):
        _terminate(layout, pid, grace)
        stopped.append(f"{COMPONENT} (pid {pid})")
    with state.updating_state(layout) as data:
        data["components"].pop(COMPONENT, None)
    return stopped


def _terminate(layout: state.Layout, pid: int, grace: float) -> None:
    """SIGTERM (the holder exits at once), SIGKILL if it has not after ``grace``; waits for the exit itself."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not state.is_ours(layout, pid):  # the pid was reused before the pidfd pinned it
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, sig)
            if select.select([pidfd], [], [], wait)[0]:  # readable once the process has exited
                break
    finally:
        os.close(pidfd)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our own child when up and down run in one process (tests)


# ----- host-wide leases (host mode) ------------------------------------------------------------


def leases_dir() -> Path:
    return Path(os.environ.get(LEASES_ENV) or DEFAULT_LEASES_DIR)


@contextlib.contextmanager
def _leases_locked() -> Iterator[Path]:
    directory = leases_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if directory == DEFAULT_LEASES_DIR and directory.stat().st_uid == os.geteuid():
            directory.chmod(0o1777)  # every user's clusters share 127/8, so they share the leases
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # whatever the umask: other users' kubesims take leases here too
    except OSError as exc:
        raise NetworkError(f"cannot use the address leases in {directory}: {exc.strerror}; set {LEASES_ENV} "
                           "to a writable directory every kubesim on this machine uses") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _read_lease(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable or torn: judged by what it says, i.e. nothing, so reclaimable
    return data if isinstance(data, dict) else {}


def _lease_held(data: dict[str, Any], index: int) -> bool:
    """Someone else's lease on ``index`` is live: its ``up`` runs, or a recorded process of it does."""
    pid, start = data.get("pid"), data.get("start")
    if isinstance(pid, int) and start is not None and _start_time(pid) == str(start):
        return True
    owner = data.get("state")
    if not isinstance(owner, str):
        return False
    layout = state.Layout(Path(owner))
    try:
        recorded_state = state.read_state(layout)
    except PermissionError:
        return True  # another user's cluster we cannot inspect: never take it from them
    except (OSError, ValueError):
        return False
    net = Network.from_json(recorded_state.get("network"))
    if net is None or net.mode != "host" or net.index != index:
        return False
    return any(isinstance(info, dict) and isinstance(info.get("pid"), int) and state.is_ours(layout, info["pid"])
               for info in recorded_state["components"].values())


def _bound_indexes() -> set[int]:
    """Second octets of 127.x addresses in use on this host's network: TCP listening or connected, UDP bound."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/udp"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 2:
                continue
            address = socket.inet_ntoa(struct.pack("=I", int(fields[1].split(":")[0], 16)))
            first, second = address.split(".")[:2]
            if first == "127":
                found.add(int(second))
    return found


def _take_lease(layout: state.Layout) -> tuple[int, Path]:
    old = recorded(layout)
    preferred = [old.index] if old is not None and old.mode == "host" and old.index in HOST_INDEXES else []
    me = {"state": str(layout.root), "pid": os.getpid(), "start": _start_time(os.getpid())}
    with _leases_locked() as directory:
        bound = _bound_indexes()
        for index in [*preferred, *HOST_INDEXES]:
            path = directory / f"127.{index}"
            held = _read_lease(path)
            mine = held is not None and held.get("state") == str(layout.root)
            if not mine and (index in bound or (held is not None and _lease_held(held, index))):
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            with os.fdopen(fd, "w") as fh:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, 0o666)
                fh.write(json.dumps(me) + "\n")
            return index, path
    raise NetworkError(f"no free address range for --network host: every 127.C.0.0/16 with C in "
                       f"{HOST_INDEXES.start}..{HOST_INDEXES.stop - 1} is leased by a running cluster or in use "
                       f"(leases in {directory}); stop one, or use --network private")


def release_lease(layout: state.Layout) -> None:
    net = recorded(layout)
    if net is None or net.lease is None:
        return
    path = Path(net.lease)
    with contextlib.suppress(NetworkError), _leases_locked():
        held = _read_lease(path)
        if held is not None and held.get("state") == str(layout.root):
            with contextlib.suppress(OSError):
                path.unlink()
