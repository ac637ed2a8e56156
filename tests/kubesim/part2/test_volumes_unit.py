"""The volume controllers' pure decisions: PV shape (C1/C2), binder state machine (C3), reclaim and protection (C4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubesim.controllers import volumes_binder as vb
from kubesim.controllers import volumes_common as vc
from kubesim.controllers import volumes_protection as vp
from kubesim.controllers import volumes_provisioner as vprov
from kubesim.controllers import volumes_reclaim as vr

STANDARD = vc.ClassInfo("standard", vc.LOCAL_PATH_PROVISIONER, "Delete", True)
SHARED = vc.ClassInfo("shared", vc.SHARED_PROVISIONER, "Retain", False)
STATIC = vc.ClassInfo("manual", vc.NO_PROVISIONER, "Retain", False)


def claim(name: str = "data", *, klass: str = "standard", volume: str = "", selected: str = "",
          modes: tuple[str, ...] = ("ReadWriteOnce",), uid: str = "u1", deleting: bool = False,
          finalizers: tuple[str, ...] = ()) -> dict[str, Any]:
    ann = {vc.ANN_SELECTED_NODE: selected} if selected else {}
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "7",
                            "annotations": ann, "finalizers": list(finalizers)}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"storageClassName": klass, "accessModes": list(modes), "volumeName": volume,
                     "resources": {"requests": {"storage": "2Gi"}}},
            "status": {"phase": "Pending"}}


def pv(name: str, *, klass: str = "standard", size: str = "2Gi", ref: dict[str, Any] | None = None,
       phase: str = "Available", provisioned: str = "") -> dict[str, Any]:
    ann = {vc.ANN_DYNAMICALLY_PROVISIONED: provisioned} if provisioned else {}
    return {"metadata": {"name": name, "annotations": ann},
            "spec": {"storageClassName": klass, "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": f"/srv/{name}"}, "claimRef": ref},
            "status": {"phase": phase}}


# --- provisioner -----------------------------------------------------------------------------


def test_local_path_volume_is_pinned_to_the_selected_node_like_local_path_provisioner(tmp_path: Path) -> None:
    c = claim(selected="kubesim-worker2")
    path = vprov.volume_dir(tmp_path, vc.LOCAL_PATH_PROVISIONER, "kubesim-worker2", c)
    assert path == tmp_path / "nodes" / "kubesim-worker2" / "local-path" / "pvc-u1_ns_data"
    volume = vprov.build_volume(c, STANDARD, "kubesim-worker2", path)
    assert volume["metadata"]["name"] == "pvc-u1"
    assert volume["metadata"]["annotations"] == {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path",
                                                 "local.path.provisioner/selected-node": "kubesim-worker2"}
    assert volume["spec"]["hostPath"] == {"path": str(path), "type": "DirectoryOrCreate"}
    assert volume["spec"]["nodeAffinity"] == {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["kubesim-worker2"]}]}]}}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert volume["spec"]["capacity"] == {"storage": "2Gi"}
    assert volume["spec"]["claimRef"]["uid"] == "u1"
    assert vc.volume_pinned_node(volume) == "kubesim-worker2"


def test_shared_volume_has_no_node_affinity_and_lives_in_shared_volumes(tmp_path: Path) -> None:
    c = claim(klass="shared")
    path = vprov.volume_dir(tmp_path, vc.SHARED_PROVISIONER, None, c)
    assert path == tmp_path / "shared-volumes" / "pvc-u1_ns_data"
    volume = vprov.build_volume(c, SHARED, None, path)
    assert "nodeAffinity" not in volume["spec"]
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert vc.LOCAL_PATH_PROVISIONER not in volume["metadata"]["annotations"].values()


def test_local_path_refuses_what_upstream_refuses() -> None:
    assert vprov.refusal(claim(modes=("ReadWriteMany",)), STANDARD, "n") == "Only support ReadWriteOnce access mode"
    with_selector = claim()
    with_selector["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert vprov.refusal(with_selector, STANDARD, "n") == "claim.Spec.Selector is not supported"
    assert vprov.refusal(claim(), STANDARD, None) == "configuration error, no node was specified"
    assert vprov.refusal(claim(klass="shared", modes=("ReadWriteMany",)), SHARED, None) is None


def test_state_dir_comes_from_the_manager_then_env_then_the_control_plane_arguments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Mgr:
        state_dir = tmp_path

    monkeypatch.delenv(vprov.STATE_DIR_ENV, raising=False)
    assert vprov.state_dir_of(Mgr()) == tmp_path.resolve()
    assert vprov.state_dir_of(object(), ["x", "--state", str(tmp_path)]) == tmp_path.resolve()
    with pytest.raises(RuntimeError, match="need the state directory"):
        vprov.state_dir_of(object(), ["x"])


# --- binder ----------------------------------------------------------------------------------


def test_wait_for_first_consumer_claim_waits_until_a_node_is_selected() -> None:
    assert vb.plan_claim(claim(), [], STANDARD).step == "wait_for_consumer"
    assert vb.plan_claim(claim(selected="n"), [], STANDARD).step == "provision"


def test_wait_for_first_consumer_claim_never_binds_an_available_volume_itself() -> None:
    assert vb.plan_claim(claim(), [pv("static")], STANDARD).step == "wait_for_consumer"


def test_immediate_claim_binds_the_smallest_fitting_available_volume() -> None:
    volumes = [pv("big", klass="manual", size="10Gi"), pv("small", klass="manual", size="1Gi"),
               pv("fits", klass="manual", size="3Gi")]
    assert vb.plan_claim(claim(klass="manual"), volumes, STATIC) == vb.ClaimPlan("bind", "fits")
    assert vb.plan_claim(claim(klass="manual"), [pv("small", klass="manual", size="1Gi")], STATIC).step == "no_volume"


def test_provisioned_volume_with_claim_ref_is_bound_to_its_claim() -> None:
    ref = {"name": "data", "namespace": "ns", "uid": "u1"}
    provisioned = pv("pvc-u1", ref=ref, phase="Pending", provisioned=vc.LOCAL_PATH_PROVISIONER)
    assert vb.plan_claim(claim(selected="n"), [provisioned], STANDARD) == vb.ClaimPlan("bind", "pvc-u1")


def test_claim_ref_for_another_claim_uid_does_not_bind() -> None:
    stale = pv("old", ref={"name": "data", "namespace": "ns", "uid": "previous"}, phase="Released")
    assert vb.plan_claim(claim(selected="n"), [stale], STANDARD).step == "provision"


def test_bound_claim_whose_volume_vanished_is_lost() -> None:
    assert vb.plan_claim(claim(volume="gone"), [], STANDARD).step == "lost"


def test_fully_bound_pair_needs_nothing() -> None:
    c = claim(volume="pvc-u1")
    c["metadata"]["annotations"][vc.ANN_BIND_COMPLETED] = "yes"
    c["status"]["phase"] = "Bound"
    bound = pv("pvc-u1", ref={"name": "data", "namespace": "ns", "uid": "u1"}, phase="Bound")
    assert vb.plan_claim(c, [bound], STANDARD).step == "none"
    misbound = pv("pvc-u1", ref={"name": "other", "namespace": "ns", "uid": "u9"}, phase="Bound")
    assert vb.plan_claim(c, [misbound], STANDARD).step == "misbound"


def test_volume_phases_follow_their_claim() -> None:
    ref = {"name": "data", "namespace": "ns", "uid": "u1"}
    assert vb.plan_volume(pv("a", phase="Pending"), None) == "available"
    assert vb.plan_volume(pv("a", ref=ref, phase="Bound"), claim(volume="a")) == "none"
    assert vb.plan_volume(pv("a", ref=ref, phase="Pending"), claim(volume="a")) == "bound"
    assert vb.plan_volume(pv("a", ref=ref, phase="Bound"), None) == "released"
    assert vb.plan_volume(pv("a", ref=ref, phase="Bound"), claim(volume="a", uid="recreated")) == "released"
    assert vb.plan_volume(pv("a", ref=ref, phase="Released"), None) == "none"
    prebound_by_name = pv("a", ref={"name": "data", "namespace": "ns"}, phase="Pending")
    assert vb.plan_volume(prebound_by_name, None) == "available"


# --- reclaim ---------------------------------------------------------------------------------


def test_only_directories_our_provisioners_made_are_ever_removed(tmp_path: Path) -> None:
    local = pv("x")
    local["spec"]["hostPath"]["path"] = str(tmp_path / "nodes" / "kubesim-worker" / "local-path" / "pvc-1_ns_c")
    shared = pv("y")
    shared["spec"]["hostPath"]["path"] = str(tmp_path / "shared-volumes" / "pvc-2_ns_c")
    foreign = pv("z")
    foreign["spec"]["hostPath"]["path"] = str(tmp_path / "elsewhere")
    escaping = pv("w")
    escaping["spec"]["hostPath"]["path"] = str(tmp_path / "shared-volumes" / ".." / "nodes")
    assert vr.owned_directory(tmp_path, local) is not None
    assert vr.owned_directory(tmp_path, shared) is not None
    assert vr.owned_directory(tmp_path, foreign) is None
    assert vr.owned_directory(tmp_path, escaping) is None
    assert vr.owned_directory(tmp_path, {"spec": {"local": {"path": "/x"}}}) is None


def test_only_released_delete_policy_volumes_are_reclaimed() -> None:
    released = pv("a", phase="Released")
    released["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    assert vr.should_delete(released)
    released["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
    assert not vr.should_delete(released)
    bound = pv("a", phase="Bound")
    bound["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    assert not vr.should_delete(bound)


# --- protection ------------------------------------------------------------------------------


def pod(node: str, claim_name: str = "data", phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": node, "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim_name}}]},
            "status": {"phase": phase}}


def test_pvc_protection_finalizer_is_added_to_live_claims_and_kept_while_a_scheduled_pod_uses_it() -> None:
    assert vp.finalizer_change(claim(), vc.PVC_PROTECTION_FINALIZER, in_use=False) == [vc.PVC_PROTECTION_FINALIZER]
    live = claim(finalizers=(vc.PVC_PROTECTION_FINALIZER,))
    assert vp.finalizer_change(live, vc.PVC_PROTECTION_FINALIZER, in_use=False) is None
    dying = claim(deleting=True, finalizers=("other", vc.PVC_PROTECTION_FINALIZER))
    assert vp.finalizer_change(dying, vc.PVC_PROTECTION_FINALIZER, in_use=True) is None
    assert vp.finalizer_change(dying, vc.PVC_PROTECTION_FINALIZER, in_use=False) == ["other"]


def test_only_scheduled_pods_keep_a_claim_in_use_whatever_their_phase() -> None:
    c = claim()
    assert vp.claim_in_use(c, [pod("kubesim-worker")])
    assert vp.claim_in_use(c, [pod("kubesim-worker", phase="Succeeded")])  # upstream: phase is not consulted
    assert not vp.claim_in_use(c, [pod("")])
    assert not vp.claim_in_use(c, [pod("kubesim-worker", claim_name="other")])


def test_pv_protection_finalizer_goes_once_the_volume_is_not_bound() -> None:
    dying = pv("a", phase="Released")
    dying["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    dying["metadata"]["finalizers"] = [vc.PV_PROTECTION_FINALIZER]
    assert vp.finalizer_change(dying, vc.PV_PROTECTION_FINALIZER, in_use=False) == []
    assert vp.finalizer_change(dying, vc.PV_PROTECTION_FINALIZER, in_use=True) is None


def test_waiting_claim_names_its_unscheduled_pods_like_the_pv_controller() -> None:
    pending = {"metadata": {"name": "w-0", "namespace": "ns"},
               "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]},
               "status": {"phase": "Pending"}}
    placed = {**pending, "metadata": {"name": "w-1", "namespace": "ns"},
              "spec": {**pending["spec"], "nodeName": "kubesim-worker"}}
    assert vb.unscheduled_users(claim(), [pending, placed]) == ["w-0"]
    assert vb.waiting_message(["w-0"]) == "waiting for pod w-0 to be scheduled"
    assert vb.waiting_message(["a", "b"]) == "waiting for pods a,b to be scheduled"
