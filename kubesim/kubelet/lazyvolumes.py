"""The node plugin of the `lazy` storage class (CSI driver ``lazy.kubesim.io``): lazyfs mounts per volume.

A `lazy` PV is a directory on its node (the provisioner's ``<state>/nodes/<node>/lazy/<pvc dir>``,
named in ``spec.csi.volumeAttributes.backing``). Before a pod that uses it starts, the kubelet
mounts the lazy file system (``kubesim/lazyfs``) over that directory at the volume's one mount
point on the node, ``<state>/nodes/<node>/lazy-mounts/<pv name>`` (CSI's node-global "staging"
mount), on the host side; each container's sandbox then bind-mounts it at its mountPath like any
other volume, so the container's private mount namespace sees the FUSE mount. One mount per PV:

* it is made on the first pod on the node that uses the volume and shared by every other (a
  verifier pod beside the writer), kept across container restarts (the pod worker keeps its
  volumes), and unmounted — cleanly: a clean unmount keeps everything, as a clean shutdown writes
  the page cache back — when the last pod using it on this node is gone;
* its daemon's owner is the kubelet: a kubelet that dies however it dies (``node crash``, SIGKILL
  of the cluster) takes its mounts down cleanly with it, so nothing outlives it; a restarted
  kubelet mounts again (a reboot: what the backing directory holds is what the disk held);
* ``kubesim node power-loss`` freezes the kubelet and its containers, drops every mount's
  un-durable changes (:func:`mounts_of`), then kills them (:mod:`kubesim.nodes`).

Records (the daemon's pid, socket and log) live under ``<state>/lazyfs/`` where ``kubesim up`` and
``down`` clean up after dead daemons (:func:`kubesim.lazyfs.cleanup`). Where lazyfs cannot mount
(no /dev/fuse, not root, libfuse missing) a lazy volume fails to mount with one line saying what
is missing (a ``FailedMount`` event; the pod waits in ContainerCreating), and nothing is mounted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from kubesim.controllers import volumes_common as vc
from kubesim.lazyfs import manage

Obj = dict[str, Any]
log = logging.getLogger("kubesim.kubelet")

MOUNTS_DIR = "lazy-mounts"


class LazyMountError(Exception):
    """A lazy volume could not be mounted; ``str()`` is the FailedMount message. ``permanent``: retrying
    cannot help until the machine changes (no FUSE here)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def mount_root(node_dir: Path) -> Path:
    """Where the node's lazy volumes are mounted: ``<state>/nodes/<node>/lazy-mounts``."""
    return node_dir / MOUNTS_DIR


def mounts_of(state_dir: Path, node_dir: Path) -> list[manage.Mount]:
    """The lazyfs mounts recorded for this node (live or not): those under its mount root."""
    root = str(mount_root(node_dir).resolve())
    return [m for m in manage.find(state_dir) if str(m.mountpoint).startswith(root + "/")]


def is_lazy(pv: Obj) -> bool:
    return ((pv.get("spec") or {}).get("csi") or {}).get("driver") == vc.LAZY_CSI_DRIVER


class LazyVolumes:
    """This kubelet's lazy mounts: PV name → mount, and which pods (uids) use each."""

    def __init__(self, state_dir: Path, node_dir: Path, node: str) -> None:
        self.state_dir = state_dir
        self.node_dir = node_dir
        self.node = node
        self._lock = threading.Lock()
        self._mounts: dict[str, manage.Mount] = {}
        self._users: dict[str, set[str]] = {}

    def publish(self, pod_uid: str, pv: Obj) -> Path:
        """The path the pod's containers bind: the volume's mount, made now if this node has none yet."""
        name = str((pv.get("metadata") or {}).get("name") or "")
        csi = (pv.get("spec") or {}).get("csi") or {}
        backing = Path(str((csi.get("volumeAttributes") or {}).get(vc.LAZY_BACKING_ATTRIBUTE) or ""))
        failed = f'MountVolume.MountDevice failed for volume "{name}" : lazyfs'
        with self._lock:
            current = self._mounts.get(name)
            if current is None or not manage.alive(current):
                reason = manage.unavailable_reason()
                if reason is not None:
                    raise LazyMountError(f"{failed} cannot mount on node {self.node}: {reason}", permanent=True)
                if not backing.is_absolute() or not backing.is_dir():
                    raise LazyMountError(f'{failed}: backing directory "{backing}" does not exist', permanent=False)
                point = mount_root(self.node_dir) / name
                point.mkdir(parents=True, exist_ok=True)
                try:
                    current = manage.mount(backing, point, self.state_dir)  # owned by this kubelet process
                except manage.LazyFSError as exc:
                    raise LazyMountError(f"{failed}: {exc}", permanent=isinstance(exc, manage.LazyFSUnavailable)) \
                        from None
                log.info("lazy volume %s: mounted %s over %s (daemon pid %d)", name, point, backing, current.pid)
                self._mounts[name] = current
            self._users.setdefault(name, set()).add(pod_uid)
            return current.mountpoint

    def release(self, pod_uid: str) -> None:
        """The pod is gone from this node: unmount (cleanly) every lazy volume no other pod here uses."""
        with self._lock:
            for name in [n for n, users in self._users.items() if pod_uid in users]:
                self._users[name].discard(pod_uid)
                if not self._users[name]:
                    self._unmount(name)

    def release_all(self) -> None:
        """Kubelet shutdown: unmount every lazy volume cleanly (nothing runs on them any more)."""
        with self._lock:
            for name in list(self._mounts):
                self._unmount(name)

    def _unmount(self, name: str) -> None:
        self._users.pop(name, None)
        m = self._mounts.pop(name, None)
        if m is None:
            return
        try:
            manage.unmount(m)
        except manage.LazyFSError as exc:
            log.warning("lazy volume %s: %s", name, exc)
            return
        with contextlib.suppress(OSError):
            m.mountpoint.rmdir()
        log.info("lazy volume %s: unmounted %s", name, m.mountpoint)
