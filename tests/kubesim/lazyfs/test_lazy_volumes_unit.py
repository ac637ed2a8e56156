"""The `lazy` class's pure pieces (C6): the PV the provisioner builds, the directory reclaim may delete, the
kubelet's dispatch of a csi PV to its node plugin, and the add-on marker of clusters made before the class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubesim import controlplane, state
from kubesim.controllers import volumes_common as vc
from kubesim.controllers import volumes_provisioner as vprov
from kubesim.controllers import volumes_reclaim as vr
from kubesim.kubelet import lazyvolumes, volumes

LAZY = vc.ClassInfo("lazy", vc.LAZY_PROVISIONER, "Delete", True)


def claim() -> dict[str, Any]:
    return {"metadata": {"name": "data", "namespace": "ns", "uid": "u1", "resourceVersion": "3"},
            "spec": {"storageClassName": "lazy", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}


def test_a_lazy_volume_is_a_csi_pv_on_its_node_pinned_there(tmp_path: Path) -> None:
    c = claim()
    path = vprov.volume_dir(tmp_path, vc.LAZY_PROVISIONER, "kubesim-worker2", c)
    assert path == tmp_path / "nodes" / "kubesim-worker2" / "lazy" / "pvc-u1_ns_data"
    pv = vprov.build_volume(c, LAZY, "kubesim-worker2", path)
    assert "hostPath" not in pv["spec"]
    assert pv["spec"]["csi"] == {"driver": "lazy.kubesim.io", "volumeHandle": "pvc-u1", "fsType": "lazyfs",
                                 "volumeAttributes": {"backing": str(path)}}
    assert vc.volume_pinned_node(pv) == "kubesim-worker2"
    assert lazyvolumes.is_lazy(pv)
    assert vprov.refusal({**c, "spec": {**c["spec"], "accessModes": ["ReadWriteMany"]}}, LAZY, "n") is not None
    # reclaim deletes the backing directory the provisioner made, and nothing else
    assert vr.owned_directory(tmp_path, pv) == path.resolve()
    stranger = {"spec": {"csi": {"driver": "lazy.kubesim.io", "volumeAttributes": {"backing": "/etc"}}}}
    assert vr.owned_directory(tmp_path, stranger) is None


def test_the_kubelet_hands_a_csi_volume_to_its_node_plugin_or_fails_the_mount(tmp_path: Path) -> None:
    pv = {"metadata": {"name": "pvc-u1"}, "spec": {"csi": {"driver": "other.csi.io"}}}
    claim_obj = {"spec": {"volumeName": "pvc-u1"}, "status": {"phase": "Bound"}}
    objects: dict[tuple[str, str], dict[str, Any]] = {("persistentvolumeclaims", "data"): claim_obj,
                                                      ("persistentvolumes", "pvc-u1"): pv}
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "x"},
           "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}

    def get(plural: str, _ns: str, name: str) -> dict[str, Any] | None:
        return objects.get((plural, name))

    with pytest.raises(volumes.MountError, match=r"driver name other\.csi\.io not found"):
        volumes.setup(pod, tmp_path, get, pod_ip="127.0.0.2", host_ip="127.0.0.1")
    mounted = tmp_path / "mnt"
    mounted.mkdir()
    got = volumes.setup(pod, tmp_path, get, pod_ip="127.0.0.2", host_ip="127.0.0.1", csi=lambda _pv: mounted)
    assert got["d"].path == mounted


def test_a_cluster_made_before_the_lazy_class_gets_it_once(tmp_path: Path) -> None:
    created: list[str] = []

    class Api:
        def create(self, plural: str, obj: dict[str, Any]) -> None:
            created.append(obj["metadata"]["name"])

    layout = state.Layout(tmp_path)
    (tmp_path / controlplane.ADDONS_MARKER).write_text("storageclasses\n")  # an older kubesim's marker
    controlplane.ensure_addons(Api(), layout)  # type: ignore[arg-type]
    assert created == ["lazy"]
    controlplane.ensure_addons(Api(), layout)  # type: ignore[arg-type]
    assert created == ["lazy"], "a class is created once; a later delete sticks"
