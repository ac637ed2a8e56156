"""A pod's volumes as host directories, ready to be bind-mounted at each container's mountPath.

Supported: emptyDir (a directory in the pod's directory, mode 0777 as upstream), hostPath (with
its ``type`` checks), persistentVolumeClaim (claim → bound PV → its ``local.path`` or
``hostPath.path``: the directory the storage provisioner made on this machine; or a ``csi`` PV,
handed to the caller's node plugin, which mounts it and says where: the `lazy` class), configMap,
secret, downwardAPI and projected (files written into the pod's directory; a projected volume's
token is requested through the caller's ``token``, :mod:`kubesim.kubelet.projected`). Anything else is a mount
failure the pod shows (FailedMount events, containers waiting in ContainerCreating), as a
kubelet without the volume plugin would. ``fsGroup`` is applied to emptyDir and claim volumes
(group ownership + setgid + group rw, ``OnRootMismatch`` skips a volume whose root already
matches), as the local and emptyDir plugins do; hostPath volumes are left alone (upstream too).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesim.kubelet import envvars, projected

Obj = dict[str, Any]
Getter = Callable[[str, str, str], Obj | None]  # (plural, namespace, name) -> object or None
CsiPublish = Callable[[Obj], Path]  # a csi PV -> the mounted path its containers bind; raises MountError


class MountError(Exception):
    """A volume cannot be set up (yet): FailedMount with this message; retried."""


class Unsupported(MountError):
    """The volume type has no plugin here; retrying will not help."""


@dataclasses.dataclass(frozen=True)
class Volume:
    name: str
    path: Path
    read_only: bool = False


def _write_files(directory: Path, files: dict[str, bytes], mode: int) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for rel, data in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
    directory.chmod(0o755)


def _items(data: dict[str, bytes], items: list[Obj] | None, default_mode: int) -> tuple[dict[str, bytes], int]:
    if not items:
        return data, default_mode
    out: dict[str, bytes] = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            raise MountError(f"configmap references non-existent config key: {key}")
        out[str(item.get("path") or key)] = data[key]
    return out, default_mode


def _apply_fs_group(path: Path, gid: int, policy: str) -> None:
    st = path.stat()
    if policy == "OnRootMismatch" and st.st_gid == gid and st.st_mode & stat.S_ISGID and st.st_mode & 0o070 == 0o070:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, f) for f in files), *(os.path.join(root, d) for d in dirs)]:
            try:
                os.lchown(name, -1, gid)
                if os.path.islink(name):
                    continue
                mode = os.stat(name).st_mode
                extra = stat.S_IRGRP | stat.S_IWGRP
                if stat.S_ISDIR(mode):
                    extra |= stat.S_IXGRP | stat.S_ISGID
                os.chmod(name, stat.S_IMODE(mode) | extra)
            except FileNotFoundError:
                continue


def setup(pod: Obj, pod_dir: Path, get: Getter, *, pod_ip: str, host_ip: str,
          csi: CsiPublish | None = None, token: projected.TokenSource | None = None) -> dict[str, Volume]:
    """Every volume of the pod as a host path; raises MountError naming the first that fails."""
    try:
        return _setup(pod, pod_dir, get, pod_ip=pod_ip, host_ip=host_ip, csi=csi, token=token)
    except OSError as exc:
        raise MountError(f"MountVolume.SetUp failed: {exc}") from None


def _setup(pod: Obj, pod_dir: Path, get: Getter, *, pod_ip: str, host_ip: str,
           csi: CsiPublish | None = None, token: projected.TokenSource | None = None) -> dict[str, Volume]:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    namespace = str(meta.get("namespace") or "default")
    security = spec.get("securityContext") or {}
    fs_group = security.get("fsGroup")
    fs_policy = str(security.get("fsGroupChangePolicy") or "Always")
    out: dict[str, Volume] = {}
    for vol in spec.get("volumes") or []:
        name = str(vol.get("name"))
        base = pod_dir / "volumes"
        if "emptyDir" in vol:
            path = base / "kubernetes.io~empty-dir" / name
            if not path.exists():
                path.mkdir(parents=True)
                path.chmod(0o777)
            if fs_group is not None:
                _apply_fs_group(path, int(fs_group), fs_policy)
            out[name] = Volume(name, path)
        elif "hostPath" in vol:
            out[name] = Volume(name, _host_path(vol["hostPath"], name))
        elif "persistentVolumeClaim" in vol:
            source = vol["persistentVolumeClaim"]
            path = _claim_path(str(source.get("claimName") or ""), namespace, get, name, csi)
            if fs_group is not None:
                _apply_fs_group(path, int(fs_group), fs_policy)
            out[name] = Volume(name, path, bool(source.get("readOnly")))
        elif "configMap" in vol or "secret" in vol:
            kind = "configmaps" if "configMap" in vol else "secrets"
            source = vol.get("configMap") or vol.get("secret") or {}
            obj_name = str(source.get("name") or source.get("secretName") or "")
            obj = get(kind, namespace, obj_name)
            singular = "configmap" if kind == "configmaps" else "secret"
            path = base / f"kubernetes.io~{singular}" / name
            if obj is None:
                if not source.get("optional"):
                    raise MountError(f'MountVolume.SetUp failed for volume "{name}" : '
                                     f'{singular} "{obj_name}" not found')
                data: dict[str, bytes] = {}
            elif kind == "secrets":
                data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            else:
                data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
            files, mode = _items(data, source.get("items"), int(source.get("defaultMode") or 0o644))
            _write_files(path, files, mode)
            out[name] = Volume(name, path, True)
        elif "downwardAPI" in vol:
            source = vol["downwardAPI"]
            files = {}
            for item in source.get("items") or []:
                ref = item.get("fieldRef")
                if not ref:
                    raise Unsupported(f'MountVolume.SetUp failed for volume "{name}" : only fieldRef items are '
                                      "supported by kubesim")
                try:
                    value = envvars.field_value(pod, str(ref.get("fieldPath")), pod_ip, host_ip)
                except envvars.EnvError as exc:
                    raise MountError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from None
                files[str(item.get("path"))] = value.encode()
            path = base / "kubernetes.io~downward-api" / name
            _write_files(path, files, int(source.get("defaultMode") or 0o644))
            out[name] = Volume(name, path, True)
        elif "projected" in vol:  # the service account token volume every pod gets (kubesim.kubelet.projected)
            source = vol["projected"] or {}
            try:
                files = projected.files(pod, source, get, token, pod_ip=pod_ip, host_ip=host_ip)
            except projected.ProjectionError as exc:
                raise MountError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from None
            path = base / "kubernetes.io~projected" / name
            _write_files(path, files, int(source.get("defaultMode") or 0o644))
            out[name] = Volume(name, path, True)
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise Unsupported(f'MountVolume.SetUp failed for volume "{name}" : volume type {kinds} is not '
                              "supported by kubesim's kubelet (supported: emptyDir, hostPath, persistentVolumeClaim, "
                              "configMap, secret, downwardAPI, projected)")
    return out


def _host_path(source: Obj, name: str) -> Path:
    path = Path(str(source.get("path") or ""))
    kind = str(source.get("type") or "")
    fail = f'MountVolume.SetUp failed for volume "{name}" : hostPath type check failed: {path}'
    if not path.is_absolute():
        raise Unsupported(f'MountVolume.SetUp failed for volume "{name}" : hostPath "{path}" is not an absolute path')
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(parents=True, mode=0o755)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(0o644)
    elif kind == "Directory" and not path.is_dir():
        raise MountError(f"{fail} is not a directory")
    elif kind == "File" and not path.is_file():
        raise MountError(f"{fail} is not a file")
    elif kind == "Socket" and not (path.exists() and stat.S_ISSOCK(path.stat().st_mode)):
        raise MountError(f"{fail} is not a socket file")
    elif not path.exists():
        # upstream mounts an unset type as is; a missing path makes the runtime create a directory
        path.mkdir(parents=True, mode=0o755)
    return path


def _claim_path(claim_name: str, namespace: str, get: Getter, volume: str, csi: CsiPublish | None = None) -> Path:
    pending = (f"Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[], "
               f"failed to process volumes=[{volume}]")
    claim = get("persistentvolumeclaims", namespace, claim_name)
    if claim is None:
        raise MountError(f'{pending}: error processing PVC {namespace}/{claim_name}: '
                         f'persistentvolumeclaim "{claim_name}" not found')
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        raise MountError(f"{pending}: error processing PVC {namespace}/{claim_name}: PVC is being deleted")
    pv_name = str((claim.get("spec") or {}).get("volumeName") or "")
    if not pv_name or (claim.get("status") or {}).get("phase") != "Bound":
        raise MountError(f"{pending}: error processing PVC {namespace}/{claim_name}: PVC is not bound")
    pv = get("persistentvolumes", "", pv_name)
    if pv is None:
        raise MountError(f'{pending}: persistentvolume "{pv_name}" not found')
    spec = pv.get("spec") or {}
    driver = (spec.get("csi") or {}).get("driver")
    if driver:
        if csi is None:
            raise Unsupported(f'MountVolume.MountDevice failed for volume "{pv_name}" : kubernetes.io/csi: '
                              f"attacher.MountDevice failed to create newCsiDriverClient: driver name {driver} not "
                              "found in the list of registered CSI drivers")
        return csi(pv)
    raw = (spec.get("local") or {}).get("path") or (spec.get("hostPath") or {}).get("path")
    if not raw:
        raise Unsupported(f'MountVolume.SetUp failed for volume "{pv_name}" : the PersistentVolume has neither '
                          "local nor hostPath; kubesim's kubelet mounts only directories on this machine")
    path = Path(str(raw))
    if not path.is_dir():
        raise MountError(f'MountVolume.NewMounter initialization failed for volume "{pv_name}" : path "{path}" '
                         "does not exist")
    return path


def mounts_for(container: Obj, volumes: dict[str, Volume]) -> list[dict[str, Any]]:
    """The container's volumeMounts as the shim's bind mounts (subPath resolved on the host)."""
    out: list[dict[str, Any]] = []
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(str(vm.get("name")))
        if vol is None:
            raise MountError(f'volumeMount "{vm.get("name")}" names no volume of the pod')
        source = vol.path
        sub = str(vm.get("subPath") or "")
        if sub:
            if sub.startswith("/") or ".." in Path(sub).parts:
                raise MountError(f'subPath "{sub}" must be a relative path without ".."')
            source = vol.path / sub
            if not source.exists():
                source.mkdir(parents=True)
        out.append({"source": str(source), "target": str(vm.get("mountPath")),
                    "readOnly": bool(vm.get("readOnly")) or vol.read_only})
    return out
