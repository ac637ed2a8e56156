"""The per-container shim: private namespaces, the container's root and volumes, then exec.

The kubelet runs this file as a script (``python -S -E sandbox.py STATUS_FD KUBELET_PID``, stdlib
only, so it starts in a few ms) in a new session, with the container's spec as JSON on stdin and
its log file as stdout/stderr. Why a shim that stays alive instead of a plain exec:

* **Nothing outlives the kubelet.** The shim asks for SIGKILL when its parent (the kubelet)
  dies (``PR_SET_PDEATHSIG``), creates a new PID namespace and forks the container's first
  process as PID 1 of it (also with PDEATHSIG, towards the shim). When PID 1 dies the kernel
  kills every process left in the namespace, so even a ``sh -c 'sleep 3600 &'`` grandchild that
  left the process group dies with a crashed node — PDEATHSIG alone would orphan it. PDEATHSIG
  only covers a parent that dies after it was armed, so PID 1 also checks, after every arming,
  a pipe only the shim writes to (:func:`tie_to_shim`): a shim that died a moment earlier is
  seen there and PID 1 exits instead of running as an orphan. (One gap is the kernel's: an
  ``execve`` of a set-user-ID, set-group-ID or file-capability program clears PDEATHSIG, see
  prctl(2); such a PID 1 dies with the shim only through the kill paths that target it directly —
  the kubelet when it reaps the shim, ``node crash`` and ``down`` all do.)
* **Volumes at their mountPath without touching the host.** In a private mount namespace the
  shim builds a root for the container: a tmpfs whose top-level entries are recursive bind mounts
  of the host's (so the container sees the host's /usr, /work, /tmp, ...), creates each missing
  mountPath *inside that tmpfs*, bind-mounts the volume there and chroots into it. A mountPath
  below an existing host directory that lacks it (``/work/new/dir``) "shadows" that directory:
  a tmpfs over it in the private namespace, with every original entry bind-mounted back, so the
  container still sees (and writes through to) the existing entries while the new directory
  exists only in its namespace. The host filesystem never gains a directory.
* **Signals like a container runtime.** The kubelet sends SIGTERM to the container's PID 1 only
  (as containerd does); a PID-1 process without a handler ignores it — exactly why real pods
  need tini — and SIGKILL of the process group after the grace period ends it anyway.
  The shim mirrors PID 1's end: same exit code, or the same signal re-raised on itself.

Modes: ``root`` (euid 0: mount + PID + UTS namespaces, runAsUser/runAsGroup/fsGroup honoured);
``userns`` (not root: an unprivileged user namespace maps the caller to root inside, mounts work,
runAsUser cannot be honoured); ``none`` (no namespaces: only for containers that need no mounts;
a container that needs volumes fails with a create error instead of writing elsewhere).

Status protocol on STATUS_FD (one JSON object per line, then EOF when the exec succeeded):
``{"pid": N}`` the container's PID 1 (host pid); ``{"stage": "create"|"start", "message": ...}``
what went wrong (create = the sandbox could not be set up; start = the command could not run).
Every failure the shim or PID 1 can see is reported there (an unusable status fd sends the line
to stderr instead); only deaths no code can see (SIGKILL, the interpreter failing to start) end
without a line, and the kubelet then reports the exit status and what the shim wrote to stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys
import time
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(Exception):
    """The sandbox could not be built; the message is what the pod status shows."""


class KubeletGone(SandboxError):
    """The kubelet died before the shim could ask to die with it: nothing may start (exit 137, as if killed)."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(err)}")


def set_pdeathsig(sig: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source or fstype} on {target}")


def umount_detach(target: str) -> None:
    _libc.umount2(target.encode(), MNT_DETACH)


def sethostname(name: str) -> None:
    raw = name.encode()[:64]
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


# ----- building the container's root ------------------------------------------------------------


class RootBuilder:
    """Builds the container's view under ``root`` (a tmpfs) inside the private mount namespace."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.private: set[str] = {self.root}  # directories whose new entries stay in this namespace
        self.stash = f"{self.root}/.kubesim-stash"

    def build(self, mounts: list[dict[str, Any]], makedirs: list[str], proc: bool,
              traverse: list[str] | None = None) -> None:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", self.root, "tmpfs", MS_NOSUID, "mode=755,size=16m")
        for entry in sorted(os.listdir("/")):
            if entry == "proc" and proc:
                continue
            self._replicate(f"/{entry}", f"{self.root}/{entry}")
        # the recursive copy of the directory holding this root shows the root inside itself: drop it
        nested = self.root + self.root
        if os.path.ismount(nested):
            umount_detach(nested)
        if proc:
            os.makedirs(f"{self.root}/proc", exist_ok=True)
            try:
                mount("proc", f"{self.root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            except SandboxError:  # e.g. a masked host /proc refuses a fresh instance: show the host's
                mount("/proc", f"{self.root}/proc", None, MS_BIND | MS_REC)
        for path in makedirs:
            self.ensure(path, directory=True)
        for path in traverse or []:
            self.open_up(path)
        bound: set[str] = set()
        for m in sorted(mounts, key=lambda m: str(m["target"]).count("/")):
            source, target = str(m["source"]), str(m["target"])
            directory = os.path.isdir(source)
            inside = self.ensure(target, directory=directory)
            mount(source, inside, None, MS_BIND | MS_REC)
            if m.get("readOnly"):
                mount(None, inside, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
            bound.add(os.path.realpath(inside))
        release_other_lazy_mounts(bound)

    def _replicate(self, source: str, target: str) -> None:
        """Make ``target`` show ``source``: a symlink copy, or a placeholder with a recursive bind."""
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
            return
        if os.path.isdir(source):
            os.mkdir(target)
        else:
            with open(target, "wb"):
                pass
        mount(source, target, None, MS_BIND | MS_REC)

    def ensure(self, path: str, *, directory: bool) -> str:
        """The in-root path for ``path`` (absolute in the container), created privately if missing."""
        parts = [p for p in path.split("/") if p and p != "."]
        current = self.root
        for i, part in enumerate(parts):
            if part == "..":
                raise SandboxError(f"mount path {path!r} must not contain '..'")
            nxt = f"{current}/{part}"
            last = i == len(parts) - 1
            if os.path.islink(nxt):
                link = os.readlink(nxt)
                rest = "/".join(parts[i + 1:])
                base = link if link.startswith("/") else current[len(self.root):] + "/" + link
                return self.ensure(f"{base}/{rest}" if rest else base, directory=directory)
            if not os.path.lexists(nxt):
                if current not in self.private:
                    self._shadow(current)
                if last and not directory:
                    with open(nxt, "wb"):
                        pass
                else:
                    os.mkdir(nxt, 0o755)
                    self.private.add(nxt)
            current = nxt
        return current

    def open_up(self, host_path: str) -> None:
        """Let a non-root container user reach ``host_path`` (the image's interpreter, say) when an
        ancestor like ``/root`` (0700) blocks it: that ancestor is shadowed with a 0755 tmpfs in this
        namespace only. The host's permissions are not touched."""
        current = ""
        for part in [p for p in host_path.split("/") if p]:
            current += "/" + part
            inside = self.root + current
            if os.path.islink(inside) or not os.path.isdir(inside):
                return
            if os.stat(inside).st_mode & 0o005 != 0o005 and inside not in self.private:
                self._shadow(inside, mode=0o755)

    def _shadow(self, directory: str, mode: int | None = None) -> None:
        """Put a tmpfs over ``directory`` (this namespace only) with all its entries bound back."""
        st = os.stat(directory)
        perm = st.st_mode & 0o7777 if mode is None else mode
        os.mkdir(self.stash)
        mount(directory, self.stash, None, MS_BIND | MS_REC)
        mount("tmpfs", directory, "tmpfs", 0, f"mode={perm:o},uid={st.st_uid},gid={st.st_gid}")
        for entry in sorted(os.listdir(self.stash)):
            self._replicate(f"{self.stash}/{entry}", f"{directory}/{entry}")
        umount_detach(self.stash)
        os.rmdir(self.stash)
        self.private.add(directory)


def _unescape(field: str) -> str:
    """A /proc/self/mountinfo path field (spaces and the like are octal escapes)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def release_other_lazy_mounts(keep: set[str]) -> None:
    """Detach every lazy file system (``fuse.lazyfs``, kubesim's `lazy` volumes) in this mount namespace
    except this container's own volume mounts (``keep``, real paths).

    The namespace began as a copy of the host's mount table, so without this it would hold every lazy
    volume mounted on the machine at this moment (at its own path, and again through the recursive
    binds of the root): a volume unmounted or powered off on the host would stay alive as long as any
    container started meanwhile, on any node. Detaching is best effort (mounts a user namespace
    inherited locked cannot be detached; they are then merely kept, as before)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    points = []
    for line in lines:
        fields = line.split()
        if "-" in fields and fields[fields.index("-") + 1:fields.index("-") + 2] == ["fuse.lazyfs"]:
            points.append(_unescape(fields[4]))
    for point in reversed(points):  # children (listed after their parents) first
        if point not in keep:
            umount_detach(point)


# ----- the container log ----------------------------------------------------------------------------

LOG_LINE_MAX = 16 * 1024
"""containerd's default maximum log line: longer output is split into partial (P) records."""


def cri_timestamp(ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds (always nine digits)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class LogCopier:
    """Writes PID 1's stdout and stderr to the container's log file in the CRI log format.

    One record per line, as containerd writes them (and ``pkg/kubelet/kuberuntime/logs`` reads
    them): ``<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\\n``; ``F`` ends a line,
    ``P`` is a piece of a line longer than :data:`LOG_LINE_MAX`. A last line without a newline is
    written as ``F`` when the stream ends. The timestamp is when the shim read the bytes.

    It runs in the shim's main thread (:meth:`pump`), which also waits for PID 1: a process that
    has unshared its PID namespace cannot start threads.
    """

    def __init__(self, out_fd: int, err_fd: int, log_fd: int) -> None:
        self._streams = {out_fd: b"stdout", err_fd: b"stderr"}
        self._partial: dict[int, bytes] = {out_fd: b"", err_fd: b""}
        self._log_fd = log_fd

    def pump(self, child: int) -> int | None:
        """Copy until PID 1 has exited and its pipes are drained; PID 1's wait status (None: not our child)."""
        poller = select.poll()
        for fd in self._streams:
            poller.register(fd, select.POLLIN)
        open_fds = set(self._streams)
        pidfd = -1
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(child)
            poller.register(pidfd, select.POLLIN)
        status: int | None = None
        exited = False
        while open_fds:
            try:
                events = poller.poll(20 if exited else (1000 if pidfd >= 0 else 100))
            except InterruptedError:
                continue
            if not events and exited:
                break  # PID 1 is gone and nothing more is ready: a leftover process may still hold the pipe
            for fd, _mask in events:
                if fd == pidfd:
                    poller.unregister(pidfd)
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if data:
                    self._records(fd, data, time.time_ns())
                    continue
                poller.unregister(fd)
                open_fds.discard(fd)
            if not exited:
                try:
                    pid, wait_status = os.waitpid(child, os.WNOHANG)
                except ChildProcessError:
                    exited = True
                    continue
                if pid:
                    exited, status = True, wait_status
        if pidfd >= 0:
            os.close(pidfd)
        for fd in self._streams:
            if self._partial[fd]:
                self._write(self._format(fd, self._partial[fd], b"F", time.time_ns()))
                self._partial[fd] = b""
        if not exited:  # both pipes closed before PID 1 exited
            with contextlib.suppress(ChildProcessError):
                _pid, status = os.waitpid(child, 0)
        return status

    def _format(self, fd: int, content: bytes, tag: bytes, now: int) -> bytes:
        return b"%s %s %s %s\n" % (cri_timestamp(now).encode(), self._streams[fd], tag, content)

    def _records(self, fd: int, data: bytes, now: int) -> None:
        buf = self._partial[fd] + data
        out: list[bytes] = []
        *lines, rest = buf.split(b"\n")
        for line in lines:
            start = 0
            while len(line) - start > LOG_LINE_MAX:
                out.append(self._format(fd, line[start:start + LOG_LINE_MAX], b"P", now))
                start += LOG_LINE_MAX
            out.append(self._format(fd, line[start:], b"F", now))
        while len(rest) >= LOG_LINE_MAX:
            out.append(self._format(fd, rest[:LOG_LINE_MAX], b"P", now))
            rest = rest[LOG_LINE_MAX:]
        self._partial[fd] = rest
        if out:
            self._write(b"".join(out))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._log_fd, view):]
            except InterruptedError:
                continue
            except OSError:
                return  # the log file is gone (pod directory removed): nothing left to write to


# ----- the shim ----------------------------------------------------------------------------------


def _report(fd: int, doc: dict[str, Any]) -> None:
    """One status line; if the status fd is unusable the line goes to stderr (the container's log), never nowhere."""
    line = json.dumps(doc) + "\n"
    try:
        os.write(fd, line.encode())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"kubesim sandbox: cannot write status fd {fd} ({exc.strerror}): {line}".encode())


def _enter_user_namespace() -> None:
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"0 {gid} 1")


def choose_mode(spec: dict[str, Any]) -> str:
    """Enter the namespaces the mode needs (in this process); return the mode actually used."""
    wanted = str(spec.get("mode") or "auto")
    needs_mounts = any(not m.get("optional") for m in spec.get("mounts") or []) or bool(spec.get("makedirs"))
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS
    problems: list[str] = []
    if wanted in ("auto", "root") and os.geteuid() == 0:
        try:
            unshare(flags)
            return "root"
        except SandboxError as exc:
            problems.append(str(exc))
    if wanted in ("auto", "userns"):
        try:
            _enter_user_namespace()
            unshare(flags)
            return "userns"
        except (SandboxError, OSError) as exc:
            problems.append(f"unprivileged user namespace: {exc}")
    if needs_mounts:
        why = "; ".join(problems) or f"sandbox mode {wanted!r} allows no namespaces"
        raise SandboxError(
            f"cannot give the container its volumes: no private mount namespace is available ({why}); "
            "kubesim refuses to mount volumes outside one (run the kubelet as root, or enable "
            "unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)")
    return "none"


def _pause(status_fd: int) -> None:
    """registry.k8s.io/pause: sleep until SIGTERM/SIGINT, then exit 0 (pause.c does the same).

    The status pipe closes only once the handlers are in place, so a SIGTERM right after the
    kubelet saw the start cannot hit the default (ignored-as-PID-1) disposition.
    """
    def down(signum: int, frame: object) -> None:
        del signum, frame
        os._exit(0)

    signal.signal(signal.SIGTERM, down)
    signal.signal(signal.SIGINT, down)
    os.close(status_fd)
    while True:
        signal.pause()


class ShimGone(Exception):
    """The shim died before the container's PID 1 was tied to it: the container must not start."""


def tie_to_shim(alive_fd: int) -> None:
    """Arm PDEATHSIG towards the shim, then make sure the shim was still there when it was armed.

    Arming it is not enough: PDEATHSIG only fires for a parent that dies *after* it is set, and a
    shim killed in the gap (right after the fork, or after a credential change cleared the signal)
    leaves PID 1 running, reparented to init. ``getppid()`` cannot tell: inside a new PID namespace
    it is 0 whether or not the shim lives. ``alive_fd`` is the read end of a pipe whose write end
    only the shim holds, so it reads EOF exactly when the shim is gone; checked after arming,
    every death is caught either by the check (before) or by the signal (after).
    """
    set_pdeathsig(signal.SIGKILL)
    watch = select.poll()  # not select(): no FD_SETSIZE limit
    watch.register(alive_fd, select.POLLIN)
    if watch.poll(0):  # the shim never writes: any event is EOF / hang-up
        raise ShimGone("the container sandbox shim exited before the container was tied to it")


def _drop_privileges(spec: dict[str, Any], alive_fd: int) -> None:
    """runAsUser/runAsGroup/supplementalGroups; any credential change clears PDEATHSIG, so it is re-tied."""
    groups = [int(g) for g in spec.get("groups") or []]
    gid, uid = spec.get("gid"), spec.get("uid")
    if uid is not None or gid is not None or groups:
        os.setgroups(groups)
    if gid is not None:
        os.setgid(int(gid))
    if uid is not None:
        os.setuid(int(uid))
    tie_to_shim(alive_fd)


def join_cgroups(procs_files: list[str]) -> None:
    """Move this process (PID 1 to be) into the container's cgroups before anything of the container runs.

    PID 1 joins, not the shim: the shim's own memory must not count against the container's limit,
    and everything the container forks inherits the cgroups. Writing "0" names the writer, whatever
    PID namespace it is in. A refusal is a create error: a container never runs without its limits.
    """
    for path in procs_files:
        try:
            with open(path, "w") as fh:
                fh.write("0")
        except OSError as exc:
            raise SandboxError(f"cannot join the container's cgroup {os.path.dirname(path)}: "
                               f"{exc.strerror or exc}") from None


def run_child(spec: dict[str, Any], mode: str, status_fd: int, alive_fd: int) -> None:
    """PID 1 of the container: build the root, drop privileges, exec. Never returns."""
    stage = "create"
    try:
        tie_to_shim(alive_fd)
        join_cgroups([str(f) for f in spec.get("cgroups") or []])
        if mode != "none":
            if spec.get("hostname"):
                sethostname(str(spec["hostname"]))
            RootBuilder(str(spec["rootfs"])).build(list(spec.get("mounts") or []), list(spec.get("makedirs") or []),
                                                   proc=True, traverse=list(spec.get("traverse") or []))
            os.chroot(str(spec["rootfs"]))
            os.chdir("/")
        if mode == "root":
            _drop_privileges(spec, alive_fd)
        cwd = str(spec.get("cwd") or "/")
        try:
            os.chdir(cwd)
        except OSError as exc:
            stage = "start"
            raise SandboxError(f"chdir to cwd (\"{cwd}\") set in config.json failed: {exc.strerror}") from None
        stage = "start"
        os.set_inheritable(status_fd, False)
        if spec.get("pause"):
            os.close(alive_fd)
            _pause(status_fd)
        argv = [str(a) for a in spec["argv"]]
        env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                why = "executable file not found in $PATH" if "/" not in argv[0] else "no such file or directory"
                detail = f"exec: \"{argv[0]}\": {why}"
            else:
                detail = f"exec: \"{argv[0]}\": {exc.strerror.lower() if exc.strerror else exc}"
            raise SandboxError(detail.strip()) from None
    except ShimGone as exc:
        _report(status_fd, {"stage": "create", "message": str(exc)})
        os._exit(137)
    except BaseException as exc:  # PID 1 must report whatever stops it, then never return
        message = str(exc) if isinstance(exc, (SandboxError, OSError)) else _named(exc)
        _report(status_fd, {"stage": stage, "message": message})
        os._exit(128)


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _tie_to_kubelet(kubelet_pid: int) -> None:
    """PDEATHSIG towards the kubelet's launcher thread; getppid() can check it here (same PID namespace)."""
    set_pdeathsig(signal.SIGKILL)
    parent = os.getppid()
    if parent != kubelet_pid:
        raise KubeletGone(f"the kubelet (pid {kubelet_pid}) exited before the sandbox could tie itself to it "
                          f"(its parent is now pid {parent})")


def _fork_container(spec: dict[str, Any], mode: str, status_fd: int) -> tuple[int, LogCopier]:
    """Fork PID 1 and hand it the read end of the shim's liveness pipe; the write end stays here for good.

    PID 1's stdout and stderr are pipes whose other ends the shim's :class:`LogCopier` reads.
    """
    alive_r, alive_w = os.pipe()  # both close-on-exec: the container inherits neither
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(alive_w)
        os.close(out_r)
        os.close(err_r)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.close(out_w)
        os.close(err_w)
        run_child(spec, mode, status_fd, alive_r)
    os.close(alive_r)
    os.close(out_w)
    os.close(err_w)
    return child, LogCopier(out_r, err_r, 1)


def _mirror(child: int, copier: LogCopier) -> int:
    """Copy PID 1's output to the log while waiting for it, then end as it ended: same exit code, or the
    same signal re-raised on the shim. The log is complete before the shim exits (the kubelet and
    the API server treat the shim's exit as "this container's log is final")."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda signum, frame: None)
    status = copier.pump(child)
    if status is None:
        return 255
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset (EINVAL)
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    """Every way this can end before PID 1 runs is reported on the status fd (the kubelet shows it)."""
    try:
        status_fd, kubelet_pid = int(argv[1]), int(argv[2])
    except (IndexError, ValueError):
        print(f"usage: {argv[0] if argv else 'sandbox.py'} STATUS_FD KUBELET_PID (spec as JSON on stdin)",
              file=sys.stderr)
        return 2
    try:
        spec = json.loads(sys.stdin.buffer.read() or b"{}")
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        _tie_to_kubelet(kubelet_pid)
        mode = choose_mode(spec)
        child, copier = _fork_container(spec, mode, status_fd)
    except BaseException as exc:  # the kubelet must learn why the sandbox never started, whatever it was
        message = str(exc) if isinstance(exc, SandboxError) else f"container sandbox failed: {_named(exc)}"
        _report(status_fd, {"stage": "create", "message": message})
        return 137 if isinstance(exc, KubeletGone) else 128
    _report(status_fd, {"pid": child, "mode": mode})
    os.close(status_fd)
    return _mirror(child, copier)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
