"""Asking kubesim (RBAC since issue 13) what we may do: the admin may do anything, a bare service account little."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from harness.clusters import access, existing
from harness.kube import access as kube_access
from harness.kube import client as kube_client

pytestmark = pytest.mark.kubesim

KUBECTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"


def test_the_admin_is_allowed_by_the_privileged_group(kubesim_kubeconfig: Path) -> None:
    api = kube_client.new_api_client(kubesim_kubeconfig)
    try:
        got = kube_access.self_access(api, verb="patch", resource="nodes")
    finally:
        kube_client.close(api)
    assert got == kube_access.Answer(True, "")


def test_an_existing_kubesim_cluster_skips_no_scenario_for_its_admin(kubesim_kubeconfig: Path) -> None:
    cluster = existing.ExistingCluster(kubeconfig_path=kubesim_kubeconfig)
    cluster.start()
    answers = access.may(cluster, access.needed(["drain", "scale"]))
    assert {p.allowed for p in answers} == {True}
    assert access.refused(cluster, ["drain"]) is None


def test_a_service_account_without_bindings_is_denied(kubesim_kubeconfig: Path, tmp_path: Path) -> None:
    def kubectl(*args: str) -> str:
        done = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubesim_kubeconfig), *args], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    kubectl("create", "serviceaccount", "nobody-here", "-n", "default")
    try:
        token = kubectl("create", "token", "nobody-here", "-n", "default").strip()
        config = yaml.safe_load(kubesim_kubeconfig.read_text())
        for user in config["users"]:
            user["user"] = {"token": token}
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        api = kube_client.new_api_client(path)
        try:
            assert kube_access.self_access(api, verb="patch", resource="nodes") == kube_access.Answer(False, "")
            assert kube_access.self_access(api, verb="create", resource="selfsubjectaccessreviews",
                                           group="authorization.k8s.io").allowed is True  # system:basic-user
        finally:
            kube_client.close(api)
    finally:
        kubectl("delete", "serviceaccount", "nobody-here", "-n", "default")
