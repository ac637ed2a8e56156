"""The state directory: what ``kubesim up`` started, where it listens, and the files clients need.

Layout (all under ``--state DIR``)::

    state.json        {"port": N, "components": {"apiserver": {"pid": P, "cmd": [...]}, ...},
                       "network": {"mode": "host"|"private", "index": C, "pods": "127.C.0.0/16",
                                   "netns": "net:[inode]" (private), "lease": PATH (host)}}
                      (kubesim.network; with --network private the namespace holder is the component
                      "network", its stderr before it is ready goes to network.out)
    token             the bearer token (0600)
    ca.crt ca.key apiserver.crt apiserver.key
    kubesim.db        the SQLite store (+ -wal/-shm)
    apiserver.port    written by the server once it listens (how ``up`` learns a port-0 choice)
    apiserver.log     the server's log
    kubeconfig        what users and tests point kubectl / the Python client at

Processes are recorded as ``component name -> pid`` so later parts (controllers, kubelets) add
entries, and ``down`` stops exactly what was recorded — never anything found by name. A pid is
only trusted if ``/proc/<pid>/cmdline`` still names this state directory (pids are reused).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "kubesim"


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    pid: int


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def state_json(self) -> Path:
        return self.root / "state.json"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def db(self) -> Path:
        return self.root / "kubesim.db"

    @property
    def port_file(self) -> Path:
        return self.root / "apiserver.port"

    @property
    def log(self) -> Path:
        return self.root / "apiserver.log"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # unique per writer thread
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ensure_token(layout: Layout) -> str:
    if layout.token.exists():
        return layout.token.read_text().strip()
    token = secrets.token_urlsafe(32)
    atomic_write(layout.token, token.encode(), 0o600)
    return token


def read_state(layout: Layout) -> dict[str, Any]:
    try:
        data = json.loads(layout.state_json.read_text())
    except FileNotFoundError:
        return {"components": {}}
    if not isinstance(data, dict):
        raise ValueError(f"{layout.state_json} is not a JSON object")
    data.setdefault("components", {})
    return data


def write_state(layout: Layout, data: dict[str, Any]) -> None:
    atomic_write(layout.state_json, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def updating_state(layout: Layout) -> Iterator[dict[str, Any]]:
    """Read-modify-write ``state.json`` under an exclusive lock (``DIR/state.lock``); written back on success.

    Why: ``up``, ``down``, ``node crash`` and ``node restore`` are separate processes that may run at
    once (a chaos run crashing two nodes). A plain read → change → write lets one of them overwrite
    the other's change with its stale copy — e.g. drop a restored kubelet's pid, leaving a kubelet
    that no ``crash`` or ``down`` can find. Keep the body short: every other writer waits for it.
    """
    fd = os.open(layout.root / "state.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # per open file description: excludes other threads and processes alike
        data = read_state(layout)
        yield data
        write_state(layout, data)
    finally:
        os.close(fd)


def components(layout: Layout) -> list[Component]:
    data = read_state(layout)
    out: list[Component] = []
    for name, info in sorted(data["components"].items()):
        if isinstance(info, dict) and isinstance(info.get("pid"), int):
            out.append(Component(name, info["pid"]))
    return out


def is_ours(layout: Layout, pid: int) -> bool:
    """The pid is alive and its command line names this state directory (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (OSError, IndexError):
        return False
    return str(layout.root.resolve()).encode() in cmdline


PF_EXITING = 0x4  # include/linux/sched.h: the task is in do_exit()


def dying(pid: int) -> bool:
    """``pid`` is gone or on its way out: exiting, or with a SIGKILL queued.

    Why it matters: a process SIGKILLed a moment ago (by its kubelet, by PDEATHSIG, by its PID
    namespace ending) still shows in /proc for a while; only one that nothing is killing is a leak.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (OSError, IndexError):
        return True
    if stat[0] in ("Z", "X") or int(stat[6]) & PF_EXITING:
        return True
    kill = 1 << (9 - 1)  # SIGKILL
    for line in status:
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd") and int(value.strip(), 16) & kill:
            return True
    return False


def kubeconfig(server: str, ca_pem: bytes, token: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        }}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return str(yaml.safe_dump(doc, sort_keys=False))
