"""Asking kubesim (no authorization.k8s.io today) what we may do: "cannot say", never a denial."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clusters import access, existing
from harness.kube import access as kube_access
from harness.kube import client as kube_client

pytestmark = pytest.mark.kubesim


def test_a_server_without_the_authorization_api_answers_unknown(kubesim_kubeconfig: Path) -> None:
    api = kube_client.new_api_client(kubesim_kubeconfig)
    try:
        got = kube_access.self_access(api, verb="patch", resource="nodes")
    finally:
        kube_client.close(api)
    assert got == kube_access.Answer(None, "the API server does not serve authorization.k8s.io/v1 (no RBAC to ask)")


def test_an_existing_kubesim_cluster_skips_no_scenario(kubesim_kubeconfig: Path) -> None:
    cluster = existing.ExistingCluster(kubeconfig_path=kubesim_kubeconfig)
    cluster.start()
    answers = access.may(cluster, access.needed(["drain", "scale"]))
    assert {p.allowed for p in answers} == {None}
    assert access.refused(cluster, ["drain"]) is None
