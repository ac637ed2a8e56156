"""What a scenario may do on a cluster: asked of the API, answered per verb, denials skip with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.clusters import access, base, embedded, existing
from harness.kube import access as kube_access

KUBECONFIG = ("contexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "
              "'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncurrent-context: a\n")


@pytest.fixture
def shared(tmp_path: Path) -> existing.ExistingCluster:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return existing.ExistingCluster(kubeconfig_path=path, context_name="a")


def answer_with(monkeypatch: pytest.MonkeyPatch, decide: Any) -> list[dict[str, object]]:
    asked: list[dict[str, object]] = []

    def fake(_api: object, **attrs: Any) -> kube_access.Answer:
        asked.append(attrs)
        return decide(attrs)

    monkeypatch.setattr(kube_access, "self_access", fake)
    return asked


def test_a_denied_verb_names_itself_and_the_authorizers_reason(
        shared: existing.ExistingCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = answer_with(monkeypatch, lambda a: kube_access.Answer(
        not (a["verb"] == "patch" and a["resource"] == "nodes"), "no RBAC rule allows it"))
    why = access.refused(shared, ["drain"])
    assert why == ("the existing cluster a denies patch nodes (no RBAC rule allows it); bind the roles in "
                   "infra/rbac/ (infra/README.md)")
    assert access.refused(shared, ["pod-kill"]) is None
    namespaces = {a["namespace"] for a in asked if a["resource"] == "pods"}
    assert namespaces == {access.PROBE_NAMESPACE}, "namespaced verbs are asked for a scenario-like namespace"
    assert {a["namespace"] for a in asked if a["resource"] == "nodes"} == {None}


def test_a_server_that_cannot_say_is_asked_once_and_skips_nothing(
        shared: existing.ExistingCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = answer_with(monkeypatch, lambda _a: kube_access.Answer(None, "no authorization.k8s.io"))
    answers = access.may(shared, access.needed(["drain"]))
    assert len(asked) == 1
    assert {p.allowed for p in answers} == {None}
    assert len(answers) == len(access.needed(["drain"]))
    assert access.refused(shared, ["drain"]) is None


def test_a_cluster_that_cannot_be_asked_skips_nothing(shared: existing.ExistingCluster) -> None:
    assert access.refused(shared, ["drain"]) is None  # 127.0.0.1:9 does not answer: the run finds out itself


def test_clusters_the_harness_made_are_not_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = answer_with(monkeypatch, lambda _a: kube_access.Answer(False, "never"))
    cluster: base.Cluster = embedded.EmbeddedCluster(state_dir=tmp_path)
    assert all(p.allowed for p in access.may(cluster, access.needed(["drain"])))
    assert asked == []


def test_needed_is_the_common_part_plus_each_faults_own() -> None:
    common = set(access.ALWAYS)
    assert set(access.needed([])) == common
    assert set(access.needed(["scale"])) - common == {access.Access("get", "statefulsets", "apps", "scale")}
    assert {str(a) for a in set(access.needed(["drain"])) - common} == {"patch nodes", "create pods/eviction"}
