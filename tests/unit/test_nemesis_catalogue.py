"""The fault catalogue refuses bad input with one line, before anything is changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clusters import existing
from harness.nemesis import base, context, nodes, registry, setops


def ctx(tmp_path: Path) -> context.SetContext:
    cluster = existing.ExistingCluster(kubeconfig_path=tmp_path / "cfg", context_name="c")
    return context.SetContext(api=object(), cluster=cluster, namespace="chaos-x", statefulset="ckpt", replicas=3,
                              endpoints_file=tmp_path / "endpoints.json")


@pytest.mark.parametrize(("name", "options", "message"), [
    ("pod-kil", {}, "unknown nemesis 'pod-kil'; known: container-kill, cordon, delete-claim, drain"),
    ("drain", {"force": True}, "drain: unknown option"),
    ("scale", {}, r"scale: option\(s\) to required"),
    ("scale", {"to": "1"}, "option to must be int"),
    ("scale", {"to": True}, "option to must be int"),
    ("node-crash", {"force_delete": 1}, "option force_delete must be bool"),
    ("partitioned-update", {}, "partition required"),
])
def test_registry_refuses_unknown_names_and_bad_options(name: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(base.NemesisError, match=message):
        registry.check(name, options)


def test_capabilities_come_with_the_nemesis() -> None:
    assert registry.needs("node-crash") == "node-crash"
    assert registry.needs("container-kill") == "kill-container"
    assert registry.needs("drain") is None


@pytest.mark.parametrize(("name", "options", "message"), [
    ("scale", {"to": 3}, r"to=3 must be in 0\.\.2"),
    ("scale", {"to": -1}, r"to=-1 must be in 0\.\.2"),
    ("partitioned-update", {"partition": 0}, "partition=0 must be in 1..2"),
    ("container-kill", {"signal": "BOGUS"}, "signal 'BOGUS' is not one of"),
])
def test_out_of_range_options_fail_when_the_nemesis_is_made(tmp_path: Path, name: str, options: dict[str, object],
                                                            message: str) -> None:
    with pytest.raises(base.NemesisError, match=message):
        registry.build(name, ctx(tmp_path), options)


def test_set_faults_only_target_their_own_set(tmp_path: Path) -> None:
    scale = registry.build("scale", ctx(tmp_path), {"to": 1})
    with pytest.raises(base.NemesisError, match="targets must name the StatefulSet chaos-x/ckpt"):
        scale.affected(["other"])
    assert scale.affected(["ckpt"]) == [1, 2]
    assert isinstance(scale, setops.Scale)
    assert list(scale.scaled_down) == [1, 2]


def test_a_node_fault_on_an_unknown_node_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodes.kube_nodes, "exists", lambda _api, node: node == "kubesim-worker")
    monkeypatch.setattr(nodes.kube_nodes, "pods_on_node", lambda _api, _ns, _node, _sel: [
        nodes.kube_nodes.PodRef("ckpt-2", "u2"), nodes.kube_nodes.PodRef("ckpt-0", "u0")])
    drain = registry.build("drain", ctx(tmp_path), {})
    with pytest.raises(base.NemesisError, match="drain: no node 'nope' in the cluster"):
        drain.affected(["nope"])
    assert drain.affected(["kubesim-worker"]) == [0, 2]
    assert registry.build("cordon", ctx(tmp_path), {}).affected(["kubesim-worker"]) == []


def test_container_kill_refuses_a_pod_outside_the_set(tmp_path: Path) -> None:
    kill = registry.build("container-kill", ctx(tmp_path), {"signal": "term"})
    assert kill.name == "container-kill-term"
    with pytest.raises(base.NemesisError, match="'other-0' is not a pod of chaos-x/ckpt"):
        kill.affected(["other-0"])
    with pytest.raises(base.NemesisError, match="'ckpt-3' is not a pod"):
        kill.affected(["ckpt-3"])


@pytest.mark.parametrize("pods", [[], [("other-0", "u9")]], ids=["empty node", "only other pods"])
def test_a_drain_of_a_node_with_none_of_our_pods_is_refused_before_anything_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pods: list[tuple[str, str]]) -> None:
    changed: list[str] = []
    monkeypatch.setattr(nodes.kube_nodes, "exists", lambda _api, node: True)
    monkeypatch.setattr(nodes.kube_nodes, "pods_on_node",
                        lambda _api, _ns, _node, _sel: [nodes.kube_nodes.PodRef(*p) for p in pods])
    monkeypatch.setattr(nodes.kube_nodes, "set_unschedulable", lambda _api, node, _v: changed.append(f"cordon {node}"))
    monkeypatch.setattr(nodes.kube_nodes, "drain", lambda *_a, **_k: changed.append("drain"))
    drain = registry.build("drain", ctx(tmp_path), {})
    with pytest.raises(base.NemesisError,
                       match=r"^drain: node\(s\) kubesim-worker3 hold none of chaos-x/ckpt's pods: nothing to drain$"):
        drain.affected(["kubesim-worker3"])
    assert changed == []
