"""Container cgroups: memory and CPU limits enforced by the kernel, OOM kills detected, nothing left behind.

What a container runtime does for the kubelet (runc's ``libcontainer/cgroups``, the kubelet's
``pkg/kubelet/cm``): one cgroup per container, its limits from ``resources`` as upstream maps them
(``pkg/kubelet/kuberuntime/kuberuntime_container_linux.go``):

* ``limits.memory`` → ``memory.max`` (v2) / ``memory.limit_in_bytes`` (v1, and the memory+swap
  limit equal to it, so nothing can be swapped out to dodge it). Over the limit the kernel's OOM
  killer SIGKILLs a process of the container; the kubelet reports exit 137 and reason
  ``OOMKilled`` when the cgroup's OOM-kill counter moved (v2 ``memory.events`` ``oom_kill``, v1
  ``memory.oom_control`` ``oom_kill``; v1 kernels without it: ``memory.failcnt`` and a SIGKILL
  exit). v2 sets ``memory.oom.group`` as the kubelet does, so the whole container dies together.
* ``limits.cpu`` → CFS quota over a 100 ms period (``cpu.max`` / ``cpu.cfs_quota_us``), at least
  1 ms as ``MilliCPUToQuota``; ``requests.cpu`` → ``cpu.weight`` / ``cpu.shares``
  (``MilliCPUToShares``, at least 2).

Where: under a parent owned by kubesim, ``kubesim-<cluster id>/<node>/<container>``, where the
cluster id is a hash of the state directory's path and inode, so two clusters (or two checkouts'
test runs) never share or sweep each other's cgroups. v2 is preferred when its memory and cpu
controllers are delegated to us and writable; else v1 (memory required; cpu/cpuacct used when
mounted). With v1 the parent sits below the kubelet's own cgroup in each hierarchy (limits an outer
manager put on the kubelet still bound its containers); with v2 below the kubelet's cgroup's parent
(v2 forbids enabling controllers in a cgroup that itself holds processes). The node's parents are
recorded in ``nodes/<node>/cgroups.json`` so ``kubesim down`` (another process, maybe another
cgroup) can sweep them: :func:`sweep_cluster`. A container's cgroup is removed when the container
ends (its leftover processes SIGKILLed by pid first, as runc does when a container's init exits).

Where neither version is usable (not root, nothing delegated, controllers not mounted) limits are
not enforced; :attr:`NodeCgroups.problem` says why, the kubelet logs it once and the node gets a
Warning event — kubesim never silently pretends.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import decimal
import errno
import hashlib
import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tenacity

from kubesim import state
from kubesim.apiserver.admission import quantity

log = logging.getLogger("kubesim.kubelet")

CFS_PERIOD_US = 100_000
"""The kubelet's default ``--cpu-cfs-quota-period`` (100 ms)."""
MIN_QUOTA_US = 1000
MIN_SHARES = 2
MAX_SHARES = 262144
RECORD = "cgroups.json"
PREFIX = "kubesim-"
REMOVE_TIMEOUT = 5.0
"""How long an exiting container's processes may take to leave its cgroup before rmdir gives up."""


# ----- what the container asks for -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Limits:
    """A container's cgroup settings: bytes, CFS quota in µs per :data:`CFS_PERIOD_US`, shares (v1 units)."""

    memory: int | None = None
    cpu_quota_us: int | None = None
    cpu_shares: int | None = None


def _quantity(raw: Any) -> decimal.Decimal | None:
    try:
        return quantity.parse_quantity(raw)
    except (ValueError, TypeError):
        return None


def milli_cpu(raw: Any) -> int | None:
    value = _quantity(raw)
    return None if value is None else int((value * 1000).to_integral_value(rounding=decimal.ROUND_CEILING))


def limits_for(resources: Mapping[str, Any]) -> Limits:
    """``resources`` of a container spec → :class:`Limits` (upstream's conversions, see the module doc)."""
    lim = resources.get("limits") or {}
    req = resources.get("requests") or {}
    memory = None
    if lim.get("memory") is not None:
        value = _quantity(lim["memory"])
        memory = int(value.to_integral_value(rounding=decimal.ROUND_CEILING)) if value is not None else None
    quota = None
    cpu_limit = milli_cpu(lim["cpu"]) if lim.get("cpu") is not None else None
    if cpu_limit:
        quota = max(MIN_QUOTA_US, cpu_limit * CFS_PERIOD_US // 1000)
    shares = None
    cpu_request = req.get("cpu", lim.get("cpu"))
    request_milli = milli_cpu(cpu_request) if cpu_request is not None else None
    if request_milli is not None:
        shares = min(MAX_SHARES, max(MIN_SHARES, request_milli * 1024 // 1000))
    return Limits(memory=memory, cpu_quota_us=quota, cpu_shares=shares)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares → v2 cpu.weight, as runc/crun convert them (``ConvertCPUSharesToCgroupV2Value``)."""
    return 1 + ((shares - 2) * 9999) // 262142


# ----- what the machine offers ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mount:
    fstype: str  # "cgroup" | "cgroup2"
    point: str
    root: str
    controllers: frozenset[str]


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 4 or sep < 5:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        options = set(fields[sep + 3].split(","))
        mounts.append(Mount(fstype, _unescape(fields[4]), _unescape(fields[3]), frozenset(options)))
    return mounts


def _unescape(field: str) -> str:
    """A mountinfo path field: spaces, tabs, newlines and backslashes are octal escapes there."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_proc_cgroup(text: str) -> tuple[str | None, dict[str, str]]:
    """/proc/self/cgroup → (v2 path or None, {v1 controller: path})."""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        if controllers == "":
            v2 = path
        else:
            for ctrl in controllers.split(","):
                v1[ctrl] = path
    return v2, v1


def _below(mount: Mount, path: str) -> Path | None:
    """The directory of cgroup ``path`` (as /proc/self/cgroup names it) in ``mount``, or None if not visible."""
    root = mount.root.rstrip("/")  # "" for a mount of the hierarchy's root
    if root and not (path == root or path.startswith(root + "/")):
        return None
    rel = path[len(root):].strip("/")
    return Path(mount.point) / rel if rel else Path(mount.point)


@dataclasses.dataclass(frozen=True)
class Driver:
    """The cgroup version in use and, per controller, the directory kubesim's parents go below."""

    version: int  # 1 or 2; 0 = unusable
    bases: Mapping[str, Path]
    problem: str = ""
    """Why limits are not (fully) enforced; "" when they are."""


def _readable(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _v2_driver(mounts: list[Mount], own: str | None) -> tuple[Driver | None, str]:
    mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if mount is None or own is None:
        return None, "cgroup v2 is not mounted"
    here = _below(mount, own)
    if here is None:
        return None, f"cgroup v2: this process's cgroup {own} is outside the mount at {mount.point}"
    available = set(_readable(here / "cgroup.controllers").split())
    missing = {"memory", "cpu"} - available
    if missing:
        return None, (f"cgroup v2 at {mount.point}: controller(s) {', '.join(sorted(missing))} not delegated "
                      f"to {here} (it has: {' '.join(sorted(available)) or 'none'})")
    base = here if own == "/" or here == Path(mount.point) else here.parent
    if not os.access(base, os.W_OK):
        return None, f"cgroup v2: {base} is not writable by this process"
    return Driver(2, {"memory": base, "cpu": base}), ""


def _v1_driver(mounts: list[Mount], own: Mapping[str, str]) -> tuple[Driver | None, str]:
    bases: dict[str, Path] = {}
    notes: list[str] = []
    for ctrl in ("memory", "cpu", "cpuacct"):
        mount = next((m for m in mounts if m.fstype == "cgroup" and ctrl in m.controllers), None)
        if mount is None:
            notes.append(f"the v1 {ctrl} controller is not mounted")
            continue
        here = _below(mount, own.get(ctrl, "/"))
        if here is None or not here.is_dir():
            notes.append(f"v1 {ctrl}: this process's cgroup is not visible under {mount.point}")
            continue
        if not os.access(here, os.W_OK):
            notes.append(f"v1 {ctrl}: {here} is not writable by this process")
            continue
        bases[ctrl] = here
    if "memory" not in bases:
        return None, "cgroup v1: " + "; ".join(notes)
    problem = "" if "cpu" in bases else "CPU limits are not enforced: " + "; ".join(notes)
    return Driver(1, bases, problem), ""


def detect(mountinfo: str | None = None, proc_cgroup: str | None = None) -> Driver:
    """v2 if its memory and cpu controllers are ours to use, else v1, else a Driver saying why neither."""
    mountinfo = _readable(Path("/proc/self/mountinfo")) if mountinfo is None else mountinfo
    proc_cgroup = _readable(Path("/proc/self/cgroup")) if proc_cgroup is None else proc_cgroup
    mounts = parse_mountinfo(mountinfo)
    own_v2, own_v1 = parse_proc_cgroup(proc_cgroup)
    v2, why_not_v2 = _v2_driver(mounts, own_v2)
    if v2 is not None:
        return v2
    v1, why_not_v1 = _v1_driver(mounts, own_v1)
    if v1 is not None:
        return v1
    return Driver(0, {}, f"container resource limits are not enforced: neither cgroup v2 ({why_not_v2}) nor "
                         f"v1 ({why_not_v1}) is usable")


# ----- one container's cgroup -------------------------------------------------------------------


def _write(path: Path, value: str) -> None:
    with path.open("w") as fh:
        fh.write(value)


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


@dataclasses.dataclass
class ContainerCgroup:
    """The directories (one per v1 hierarchy, one for v2) of one container instance."""

    version: int
    dirs: dict[str, Path]

    @property
    def procs_files(self) -> list[str]:
        """What the container's PID 1 writes itself into before it execs (deduplicated: co-mounted v1 hierarchies)."""
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def oom_kills(self) -> int:
        memory = self.dirs.get("memory")
        if memory is None:
            return 0
        if self.version == 2:
            events = _readable(memory / "memory.events")
            return max(_counter(events, "oom_kill"), _counter(events, "oom_group_kill"))
        control = _readable(memory / "memory.oom_control")
        if "oom_kill " in control:
            return _counter(control, "oom_kill")
        return 0

    def hit_limit(self) -> bool:
        """v1 without an ``oom_kill`` counter (kernels before 4.13): the limit was reached at least once."""
        memory = self.dirs.get("memory")
        text = _readable(memory / "memory.failcnt").strip() if memory is not None else ""
        return self.version == 1 and text.isdigit() and int(text) > 0

    def oom_killed(self, exit_code: int) -> bool:
        """Whether this container was OOM-killed: the kernel's counter, or (old v1) a SIGKILL exit at the limit."""
        if self.oom_kills() > 0:
            return True
        memory = self.dirs.get("memory")
        has_counter = memory is not None and (
            self.version == 2 or "oom_kill " in _readable(memory / "memory.oom_control"))
        return not has_counter and exit_code == 137 and self.hit_limit()

    def cpu_usage_ns(self) -> int | None:
        """CPU time the container used so far (v2 ``cpu.stat`` usage_usec, v1 ``cpuacct.usage``); None if unknown."""
        if self.version == 2 and "cpu" in self.dirs:
            return _counter(_readable(self.dirs["cpu"] / "cpu.stat"), "usage_usec") * 1000
        acct = self.dirs.get("cpuacct")
        if acct is None:
            return None
        text = _readable(acct / "cpuacct.usage").strip()
        return int(text) if text.isdigit() else None

    def memory_limit(self) -> int | None:
        memory = self.dirs.get("memory")
        if memory is None:
            return None
        text = _readable(memory / ("memory.max" if self.version == 2 else "memory.limit_in_bytes")).strip()
        return int(text) if text.isdigit() else None

    def remove(self) -> None:
        """SIGKILL what is left inside (by pid), then rmdir every directory; retried while processes exit."""
        for directory in {d for d in self.dirs.values()}:
            remove_tree(directory)


def _pids(directory: Path) -> list[int]:
    return [int(p) for p in _readable(directory / "cgroup.procs").split() if p.isdigit()]


def remove_tree(directory: Path, timeout: float = REMOVE_TIMEOUT) -> bool:
    """Remove ``directory`` and every cgroup below it, deepest first; True when gone.

    Processes still inside are SIGKILLed by pid (a container's processes must not outlive it); an
    rmdir refused with EBUSY is retried until they have exited (``timeout``), then reported.
    """
    if not directory.is_dir():
        return True
    children = [Path(root) for root, _dirs, _files in os.walk(directory, topdown=False)]

    def attempt() -> bool:
        for child in children:
            for pid in _pids(child):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                child.rmdir()
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    return False
                raise
        return True

    try:
        return bool(tenacity.Retrying(stop=tenacity.stop_after_delay(timeout), wait=tenacity.wait_fixed(0.01),
                                      retry=tenacity.retry_if_result(lambda done: not done))(attempt))
    except tenacity.RetryError:
        log.warning("cgroup %s still busy %.0fs after its processes were killed; left in place "
                    "(kubesim down sweeps it)", directory, timeout)
        return False
    except OSError as exc:
        log.warning("cannot remove cgroup %s: %s", directory, exc)
        return False


# ----- the node's cgroups -----------------------------------------------------------------------


def cluster_id(state_dir: Path) -> str:
    """12 hex digits naming this cluster's cgroups: its state directory's real path and inode."""
    real = state_dir.resolve()
    try:
        st = real.stat()
        ident = f"{real}:{st.st_dev}:{st.st_ino}"
    except OSError:
        ident = str(real)
    return hashlib.sha256(ident.encode()).hexdigest()[:12]


class NodeCgroups:
    """The cgroups of one node's containers: ``<base>/kubesim-<cluster>/<node>/<container>`` per controller."""

    def __init__(self, node_dir: Path, driver: Driver | None = None) -> None:
        self.node_dir = node_dir
        self.node = node_dir.name
        self.state_dir = node_dir.parent.parent
        self.driver = driver if driver is not None else detect()
        self.problem = self.driver.problem
        self._lock = threading.Lock()
        self._parents: dict[str, Path] | None = None

    @property
    def enforced(self) -> bool:
        return self.driver.version != 0

    def _enable(self, directory: Path) -> None:
        """v2: let the children of ``directory`` use the memory and cpu controllers."""
        wanted = {"memory", "cpu"} - set(_readable(directory / "cgroup.subtree_control").split())
        if wanted:
            _write(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))

    def parents(self) -> dict[str, Path]:
        """The node's parent per controller, created (and recorded, and cleared of leftovers) on first use."""
        with self._lock:
            if self._parents is not None:
                return self._parents
            cluster = PREFIX + cluster_id(self.state_dir)
            parents: dict[str, Path] = {}
            for ctrl, base in self.driver.bases.items():
                cluster_dir = base / cluster
                parent = cluster_dir / self.node
                if self.driver.version == 2:
                    self._enable(base)
                    cluster_dir.mkdir(exist_ok=True)
                    self._enable(cluster_dir)
                    parent.mkdir(exist_ok=True)
                    self._enable(parent)
                else:
                    parent.mkdir(parents=True, exist_ok=True)
                parents[ctrl] = parent
            self._record(parents)
            for parent in set(parents.values()):  # a previous kubelet of this node may have been SIGKILLed
                for leftover in [p for p in parent.iterdir() if p.is_dir()]:
                    log.info("removing cgroup %s left by a previous kubelet", leftover)
                    remove_tree(leftover)
            self._parents = parents
            atexit.register(self.close)
            return parents

    def close(self) -> None:
        """At the kubelet's exit (after it stopped its containers): remove the node's parents, and the
        cluster's directory once empty, so a cleanly stopped cluster leaves no cgroup behind even before
        ``kubesim down`` sweeps. A SIGKILLed kubelet skips this; its successor or ``down`` cleans up."""
        with self._lock:
            parents, self._parents = self._parents, None
        if not parents:
            return
        gone = True
        for parent in set(parents.values()):
            gone = remove_tree(parent, timeout=2.0) and gone
            with contextlib.suppress(OSError):
                parent.parent.rmdir()
        if gone:
            (self.node_dir / RECORD).unlink(missing_ok=True)

    def _record(self, parents: Mapping[str, Path]) -> None:
        path = self.node_dir / RECORD
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        known = set(old.get("parents") or []) if isinstance(old, dict) else set()
        known |= {str(p) for p in parents.values()}
        self.node_dir.mkdir(parents=True, exist_ok=True)
        state.atomic_write(path, (json.dumps({"version": self.driver.version, "parents": sorted(known)}, indent=1)
                                  + "\n").encode())

    def create(self, name: str, limits: Limits) -> ContainerCgroup | None:
        """A new cgroup for one container instance with ``limits`` written; None when limits are not enforced.

        OSError when the cgroup cannot be made: the container then fails to be created, as under
        runc, rather than running without its limits.
        """
        if not self.enforced:
            return None
        dirs: dict[str, Path] = {}
        try:
            for ctrl, parent in self.parents().items():
                directory = parent / name
                if directory not in dirs.values():
                    directory.mkdir()
                dirs[ctrl] = directory
            cg = ContainerCgroup(self.driver.version, dirs)
            self._apply(cg, limits)
        except OSError:
            for directory in set(dirs.values()):
                remove_tree(directory)
            raise
        return cg

    def _apply(self, cg: ContainerCgroup, limits: Limits) -> None:
        memory, cpu = cg.dirs.get("memory"), cg.dirs.get("cpu")
        if cg.version == 2:
            if memory is not None and limits.memory is not None:
                _write(memory / "memory.max", str(limits.memory))
                if (memory / "memory.swap.max").exists():
                    _write(memory / "memory.swap.max", "0")
                if (memory / "memory.oom.group").exists():
                    _write(memory / "memory.oom.group", "1")
            if cpu is not None and limits.cpu_quota_us is not None:
                _write(cpu / "cpu.max", f"{limits.cpu_quota_us} {CFS_PERIOD_US}")
            if cpu is not None and limits.cpu_shares is not None:
                _write(cpu / "cpu.weight", str(shares_to_weight(limits.cpu_shares)))
            return
        if memory is not None and limits.memory is not None:
            _write(memory / "memory.limit_in_bytes", str(limits.memory))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                with contextlib.suppress(OSError):  # swap accounting may be off
                    _write(memory / "memory.memsw.limit_in_bytes", str(limits.memory))
        if cpu is not None and limits.cpu_quota_us is not None:
            _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(limits.cpu_quota_us))
        if cpu is not None and limits.cpu_shares is not None:
            _write(cpu / "cpu.shares", str(limits.cpu_shares))


_nodes: dict[Path, NodeCgroups] = {}
_nodes_lock = threading.Lock()


def for_node(node_dir: Path) -> NodeCgroups:
    """The one :class:`NodeCgroups` of this process for ``node_dir`` (shared by the node agent and pod workers)."""
    key = node_dir.resolve()
    with _nodes_lock:
        found = _nodes.get(key)
        if found is None:
            found = _nodes[key] = NodeCgroups(key)
        return found


def sweep_cluster(state_dir: Path) -> list[str]:
    """``kubesim down``: remove every cgroup the cluster's nodes recorded (processes inside SIGKILLed by pid).

    Returns the directories that could not be removed. Also removes the ``kubesim-<cluster>``
    directories above the node parents once they are empty.
    """
    left: list[str] = []
    nodes_dir = state_dir / "nodes"
    records = sorted(nodes_dir.glob(f"*/{RECORD}")) if nodes_dir.is_dir() else []
    for record in records:
        try:
            doc = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        for raw in doc.get("parents") or [] if isinstance(doc, dict) else []:
            parent = Path(str(raw))
            if parent.parent.name != PREFIX + cluster_id(state_dir):
                continue  # never touch what this cluster did not name
            if not remove_tree(parent):
                left.append(str(parent))
            with contextlib.suppress(OSError):
                parent.parent.rmdir()  # the cluster's directory, once its last node is gone
        if not left:
            record.unlink(missing_ok=True)
    return left
