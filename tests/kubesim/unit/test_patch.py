"""JSON patch, merge patch and strategic merge patch (docs/kubesim.md A3)."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubesim.apiserver import patch
from kubesim.apiserver.patch import PatchError

# =============================================================================================
# RFC 6902
# =============================================================================================


@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        # RFC 6902 appendix A behaviours, as our own cases
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
        ({"foo": ["a"]}, [{"op": "add", "path": "/foo/-", "value": "b"}], {"foo": ["a", "b"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
         {"baz": "boo", "foo": "bar"}),
        ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
         [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
         {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
         {"foo": ["all", "cows", "eat", "grass"]}),
        ({"foo": {"a": 1}}, [{"op": "copy", "from": "/foo", "path": "/bar"}], {"foo": {"a": 1}, "bar": {"a": 1}}),
        ({"baz": "qux", "foo": ["a", 2, "c"]},
         [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
         {"baz": "qux", "foo": ["a", 2, "c"]}),
        ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
         {"foo": "bar", "child": {"grandchild": {}}}),
        ({"/": 9, "~1": 10},
         [{"op": "test", "path": "/~01", "value": 10}, {"op": "replace", "path": "/~1", "value": 1}],
         {"/": 1, "~1": 10}),
        ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
         {"foo": ["bar", ["abc", "def"]]}),
        # evanphx v4 leniencies the apiserver inherits
        ({"a": [1, 2, 3]}, [{"op": "remove", "path": "/a/-1"}], {"a": [1, 2]}),
        ({"a": 1}, [{"op": "test", "path": "/missing", "value": None}], {"a": 1}),
        ({"a": 1}, [{"op": "add", "path": "/b"}], {"a": 1, "b": None}),
    ],
)
def test_json_patch_applies_rfc6902_operations(doc: Any, ops: list[Any], expected: Any) -> None:
    assert patch.json_patch(doc, ops) == expected


@pytest.mark.parametrize(
    ("doc", "ops", "status", "message"),
    [
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], 422,
         "testing value /baz failed: test failed"),
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}], 422, "testing value /a failed"),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], 422,
         'add operation does not apply: doc is missing path: "/baz/bat"'),
        ({"a": 1}, [{"op": "remove", "path": "/b"}], 422, "Unable to remove nonexistent key: b"),
        ({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], 422, "replace operation does not apply"),
        ({"a": [1]}, [{"op": "add", "path": "/a/5", "value": 2}], 422, "Unable to access invalid index: 5"),
        ({"a": [1]}, [{"op": "replace", "path": "/a/x", "value": 2}], 422, "value was not a proper array index: 'x'"),
        ({"a": 1}, [{"op": "move", "from": "/nope", "path": "/b"}], 422, "move operation does not apply"),
        ({"a": 1}, [{"op": "frobnicate", "path": "/a"}], 422, "Unexpected kind: frobnicate"),
        ({"a": 1}, {"op": "add"}, 400, "must be an array"),
        ({"a": 1}, ["add"], 400, "must be an array"),
    ],
)
def test_json_patch_errors_carry_the_apiserver_status(doc: Any, ops: Any, status: int, message: str) -> None:
    with pytest.raises(PatchError) as info:
        patch.json_patch(doc, ops)
    assert info.value.status == status
    assert message in str(info.value)


def test_json_patch_with_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * (patch.MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(PatchError) as info:
        patch.json_patch({"a": 1}, ops)
    assert info.value.status == 413
    assert info.value.reason == "RequestEntityTooLarge"


def test_json_patch_failing_midway_leaves_the_input_untouched() -> None:
    doc = {"a": {"b": [1, 2]}}
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError):
        patch.json_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 3}, {"op": "test", "path": "/a/c", "value": 1}])
    assert doc == before


def test_json_patch_result_shares_nothing_with_input_or_ops() -> None:
    value = {"deep": [1]}
    doc = {"a": {"x": 1}}
    ops = [{"op": "add", "path": "/v", "value": value}, {"op": "copy", "from": "/a", "path": "/b"}]
    out = patch.json_patch(doc, ops)
    assert isinstance(out, dict)
    out["v"]["deep"].append(2)
    out["b"]["x"] = 99
    assert value == {"deep": [1]}
    assert doc == {"a": {"x": 1}}
    assert out["a"] == {"x": 1}


JSON_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
KEYS = st.sampled_from(["a", "b", "c", "d"])


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    return st.recursive(
        JSON_SCALARS,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
        max_leaves=max_leaves,
    )


JSON_OBJECTS = st.dictionaries(KEYS, json_values(), max_size=4)


@settings(max_examples=200, deadline=None)
@given(JSON_OBJECTS, KEYS, json_values())
def test_json_patch_add_then_remove_restores_an_absent_member(doc: dict[str, Any], key: str, value: Any) -> None:
    doc.pop(key, None)
    added = patch.json_patch(doc, [{"op": "add", "path": f"/{key}", "value": value}])
    assert patch.json_patch(added, [{"op": "test", "path": f"/{key}", "value": value}]) == added
    assert patch.json_patch(added, [{"op": "remove", "path": f"/{key}"}]) == doc


# =============================================================================================
# RFC 7386
# =============================================================================================


@pytest.mark.parametrize(
    ("target", "merge", "expected"),
    [
        # RFC 7386 appendix A behaviours
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ({"a": "foo"}, ["c"], ["c"]),
    ],
)
def test_merge_patch_follows_rfc7386(target: Any, merge: Any, expected: Any) -> None:
    assert patch.merge_patch(target, merge) == expected


@pytest.mark.parametrize("bad", [None, 3, "x", True])
def test_merge_patch_that_is_not_an_object_or_array_is_400(bad: Any) -> None:
    with pytest.raises(PatchError) as info:
        patch.merge_patch({"a": 1}, bad)
    assert info.value.status == 400


def make_merge_diff(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning `source` into `target` (both free of nulls)."""
    diff: dict[str, Any] = {}
    for key in source.keys() - target.keys():
        diff[key] = None
    for key, value in target.items():
        if key not in source:
            diff[key] = value
        elif isinstance(value, dict) and isinstance(source[key], dict):
            sub = make_merge_diff(source[key], value)
            if sub:
                diff[key] = sub
        elif value != source[key] or type(value) is not type(source[key]):
            diff[key] = value
    return diff


NULL_FREE = st.recursive(
    st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)
NULL_FREE_OBJECTS = st.dictionaries(KEYS, NULL_FREE, max_size=4)


@settings(max_examples=200, deadline=None)
@given(JSON_OBJECTS)
def test_empty_merge_patch_is_identity(doc: dict[str, Any]) -> None:
    assert patch.merge_patch(doc, {}) == doc


@settings(max_examples=200, deadline=None)
@given(NULL_FREE_OBJECTS, NULL_FREE_OBJECTS)
def test_applying_the_constructed_diff_yields_the_target(source: dict[str, Any], target: dict[str, Any]) -> None:
    assert patch.merge_patch(source, make_merge_diff(source, target)) == target


@settings(max_examples=200, deadline=None)
@given(JSON_OBJECTS, JSON_OBJECTS)
def test_merge_patch_is_idempotent(doc: dict[str, Any], merge: dict[str, Any]) -> None:
    once = patch.merge_patch(doc, merge)
    assert patch.merge_patch(once, merge) == once


@settings(max_examples=100, deadline=None)
@given(JSON_OBJECTS, JSON_OBJECTS)
def test_merge_patch_never_mutates_its_inputs(doc: dict[str, Any], merge: dict[str, Any]) -> None:
    doc_before, merge_before = copy.deepcopy(doc), copy.deepcopy(merge)
    patch.merge_patch(doc, merge)
    assert (doc, merge) == (doc_before, merge_before)


# =============================================================================================
# Strategic merge patch
# =============================================================================================


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Pod", "StatefulSet", "Node", "ConfigMap"]),
    st.dictionaries(KEYS, st.recursive(JSON_SCALARS, lambda c: st.dictionaries(KEYS, c, max_size=3), max_leaves=8),
                    max_size=4),
    st.dictionaries(KEYS, st.recursive(JSON_SCALARS, lambda c: st.dictionaries(KEYS, c, max_size=3), max_leaves=8),
                    max_size=4),
)
def test_strategic_merge_equals_merge_patch_without_lists_or_directives(
    kind: str, doc: dict[str, Any], merge: dict[str, Any],
) -> None:
    assert patch.strategic_merge_patch(doc, merge, kind) == patch.merge_patch(doc, merge)


@settings(max_examples=100, deadline=None)
@given(JSON_OBJECTS, JSON_OBJECTS)
def test_strategic_merge_never_mutates_its_inputs(doc: dict[str, Any], merge: dict[str, Any]) -> None:
    doc_before, merge_before = copy.deepcopy(doc), copy.deepcopy(merge)
    with contextlib.suppress(PatchError):
        patch.strategic_merge_patch(doc, merge, "Pod")
    assert (doc, merge) == (doc_before, merge_before)


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]}, "spec": spec}


def test_containers_merge_by_name_and_keep_unpatched_ones() -> None:
    doc = pod(containers=[{"name": "app", "image": "v1"}, {"name": "sidecar", "image": "s1"}])
    out = patch.strategic_merge_patch(doc, {"spec": {"containers": [{"name": "app", "image": "v2"}]}}, "Pod")
    assert out["spec"]["containers"] == [{"name": "app", "image": "v2"}, {"name": "sidecar", "image": "s1"}]


def test_env_merges_by_name_inside_a_merged_container() -> None:
    doc = pod(containers=[{"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    new_env = [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    out = patch.strategic_merge_patch(doc, {"spec": {"containers": [{"name": "app", "env": new_env}]}}, "Pod")
    env = {e["name"]: e["value"] for e in out["spec"]["containers"][0]["env"]}
    assert env == {"A": "1", "B": "3", "C": "4"}


def test_container_ports_merge_by_container_port_and_service_ports_by_port() -> None:
    doc = pod(containers=[{"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}])
    out = patch.strategic_merge_patch(
        doc, {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                                               {"containerPort": 9090}]}]}}, "Pod")
    ports = out["spec"]["containers"][0]["ports"]
    assert {"containerPort": 80, "name": "http", "protocol": "TCP"} in ports
    assert {"containerPort": 9090} in ports
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = patch.strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9000}]}}, "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9000}, {"port": 443}]


def test_volume_mounts_merge_by_mount_path_not_name() -> None:
    doc = pod(containers=[{"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}])
    out = patch.strategic_merge_patch(
        doc, {"spec": {"containers": [{"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/other"}]}]}},
        "Pod")
    assert len(out["spec"]["containers"][0]["volumeMounts"]) == 2


def test_tolerations_have_no_merge_key_and_are_replaced() -> None:
    doc = pod(tolerations=[{"key": "a", "operator": "Exists"}])
    out = patch.strategic_merge_patch(doc, {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}, "Pod")
    assert out["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_finalizers_merge_as_a_set_new_items_first_like_upstream() -> None:
    out = patch.strategic_merge_patch(pod(), {"metadata": {"finalizers": ["c", "a"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]


def test_delete_from_primitive_list_removes_a_finalizer() -> None:
    out = patch.strategic_merge_patch(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["b"]


def test_null_finalizers_remove_the_field() -> None:
    out = patch.strategic_merge_patch(pod(), {"metadata": {"finalizers": None}}, "Pod")
    assert "finalizers" not in out["metadata"]


def test_patch_delete_directive_removes_one_list_item() -> None:
    doc = pod(containers=[{"name": "app"}, {"name": "sidecar"}])
    out = patch.strategic_merge_patch(doc, {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}, "Pod")
    assert out["spec"]["containers"] == [{"name": "app"}]


def test_patch_replace_directive_in_a_list_replaces_it() -> None:
    doc = pod(containers=[{"name": "app", "image": "a"}, {"name": "sidecar"}])
    out = patch.strategic_merge_patch(
        doc, {"spec": {"containers": [{"name": "new", "image": "n"}, {"$patch": "replace"}]}}, "Pod")
    assert out["spec"]["containers"] == [{"name": "new", "image": "n"}]


def test_patch_replace_directive_on_a_map_replaces_it() -> None:
    doc = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    out = patch.strategic_merge_patch(doc, {"metadata": {"labels": {"c": "3", "$patch": "replace"}}}, "ConfigMap")
    assert out["metadata"]["labels"] == {"c": "3"}


def test_patch_delete_directive_on_a_map_empties_it() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}
    out = patch.strategic_merge_patch(doc, {"data": {"$patch": "delete"}}, "ConfigMap")
    assert out["data"] == {}


def test_owner_references_merge_by_uid() -> None:
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "set", "controller": True}]}}
    out = patch.strategic_merge_patch(
        doc, {"metadata": {"ownerReferences": [{"uid": "1", "controller": False}, {"uid": "2", "name": "pod"}]}},
        "PersistentVolumeClaim")
    refs = {r["uid"]: r for r in out["metadata"]["ownerReferences"]}
    assert refs["1"] == {"uid": "1", "name": "set", "controller": False}
    assert refs["2"] == {"uid": "2", "name": "pod"}


def test_pod_status_conditions_merge_by_type_keeping_live_order() -> None:
    doc = {"status": {"conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"},
        {"type": "ContainersReady", "status": "False"},
    ]}}
    out = patch.strategic_merge_patch(doc, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "Pod")
    assert [(c["type"], c["status"]) for c in out["status"]["conditions"]] == [
        ("PodScheduled", "True"), ("Ready", "True"), ("ContainersReady", "False")]


def test_node_conditions_and_addresses_merge_by_type() -> None:
    doc = {"status": {"conditions": [{"type": "Ready", "status": "True"}],
                      "addresses": [{"type": "InternalIP", "address": "127.0.0.2"}]}}
    out = patch.strategic_merge_patch(
        doc, {"status": {"conditions": [{"type": "MemoryPressure", "status": "False"}],
                         "addresses": [{"type": "Hostname", "address": "n1"}]}}, "Node")
    assert {c["type"] for c in out["status"]["conditions"]} == {"Ready", "MemoryPressure"}
    assert {a["type"] for a in out["status"]["addresses"]} == {"InternalIP", "Hostname"}


def test_statefulset_template_containers_merge_by_name() -> None:
    doc = {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "w", "image": "a"},
                                                                        {"name": "x", "image": "b"}]}}}}
    out = patch.strategic_merge_patch(
        doc, {"spec": {"template": {"spec": {"containers": [{"name": "w", "image": "c"}]}}}}, "StatefulSet")
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "w", "image": "c"}, {"name": "x", "image": "b"}]
    assert out["spec"]["replicas"] == 3


def test_volume_claim_templates_are_replaced_not_merged() -> None:
    doc = {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}}
    out = patch.strategic_merge_patch(doc, {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "c"}}]}},
                                      "StatefulSet")
    assert out["spec"]["volumeClaimTemplates"] == [{"metadata": {"name": "c"}}]


def test_set_element_order_directive_reorders_the_merged_list() -> None:
    doc = pod(containers=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    out = patch.strategic_merge_patch(
        doc, {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
                       "containers": [{"name": "a", "image": "x"}]}}, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a", "b"]
    assert out["spec"]["containers"][1] == {"name": "a", "image": "x"}


def test_set_element_order_inconsistent_with_the_patch_list_is_refused() -> None:
    doc = pod(containers=[{"name": "a"}, {"name": "b"}])
    with pytest.raises(PatchError, match="doesn't match"):
        patch.strategic_merge_patch(
            doc, {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                           "containers": [{"name": "b", "image": "x"}]}}, "Pod")


def test_retain_keys_clears_fields_missing_from_the_list() -> None:
    doc = pod(volumes=[{"name": "data", "emptyDir": {}}])
    out = patch.strategic_merge_patch(
        doc, {"spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"},
                                    "$retainKeys": ["name", "persistentVolumeClaim"]}]}}, "Pod")
    assert out["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]


def test_retain_keys_not_covering_the_patch_is_400() -> None:
    with pytest.raises(PatchError) as info:
        patch.strategic_merge_patch({"spec": {}}, {"spec": {"a": 1, "$retainKeys": ["b"]}}, "Pod")
    assert info.value.status == 400


def test_list_item_without_merge_key_is_a_500_like_upstream() -> None:
    doc = pod(containers=[{"name": "a"}])
    with pytest.raises(PatchError) as info:
        patch.strategic_merge_patch(doc, {"spec": {"containers": [{"image": "x"}]}}, "Pod")
    assert info.value.status == 500
    assert str(info.value) == "map: map[image:x] does not contain declared merge key: name"


def test_lists_of_lists_are_422() -> None:
    with pytest.raises(PatchError) as info:
        patch.strategic_merge_patch({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [["b"]]}}, "Pod")
    assert info.value.status == 422


def test_unknown_patch_directive_is_refused() -> None:
    with pytest.raises(PatchError, match="unknown patch type"):
        patch.strategic_merge_patch({"spec": {}}, {"spec": {"$patch": "explode"}}, "Pod")


def test_new_list_with_delete_directive_does_not_store_the_directive() -> None:
    out = patch.strategic_merge_patch(pod(), {"spec": {"containers": [{"name": "x", "$patch": "delete"}]}}, "Pod")
    assert out["spec"]["containers"] == []


def test_kubectl_style_cordon_patch() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.0.0/24"}}
    out = patch.strategic_merge_patch(node, {"spec": {"unschedulable": True}}, "Node")
    assert out["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}
    out = patch.strategic_merge_patch(out, {"spec": {"unschedulable": None}}, "Node")
    assert out["spec"] == {"podCIDR": "10.0.0.0/24"}


# --- merge-by-key lists against a reference model -------------------------------------------------

CONTAINER_NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
ENV_NAMES = st.sampled_from(["X", "Y", "Z"])


@st.composite
def containers(draw: st.DrawFn, *, image_required: bool) -> list[dict[str, Any]]:
    out = []
    for name in draw(st.lists(CONTAINER_NAMES, unique=True, max_size=4)):
        item: dict[str, Any] = {"name": name}
        if image_required or draw(st.booleans()):
            item["image"] = draw(st.sampled_from(["i1", "i2", "i3"]))
        if draw(st.booleans()):
            item["env"] = [{"name": n, "value": draw(st.sampled_from(["1", "2"]))}
                           for n in draw(st.lists(ENV_NAMES, unique=True, max_size=3))]
        out.append(item)
    return out


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def reference_merge(original: list[dict[str, Any]], changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What merging containers by name (and their env by name) means, ignoring list order."""
    merged = {name: copy.deepcopy(item) for name, item in by_name(original).items()}
    for name, change in by_name(changes).items():
        target = merged.setdefault(name, {"name": name})
        if "image" in change:
            target["image"] = change["image"]
        if "env" in change:
            env = by_name(target.get("env", []))
            env.update(by_name(change["env"]))
            target["env"] = list(env.values())
    for item in merged.values():
        if "env" in item:
            item["env"] = sorted(item["env"], key=lambda e: e["name"])
    return merged


@settings(max_examples=300, deadline=None)
@given(containers(image_required=True), containers(image_required=False))
def test_containers_merge_by_name_like_the_reference_model(
    original: list[dict[str, Any]], changes: list[dict[str, Any]],
) -> None:
    out = patch.strategic_merge_patch(pod(containers=original), {"spec": {"containers": changes}}, "Pod")
    result = out["spec"]["containers"]
    names = [c["name"] for c in result]
    assert len(names) == len(set(names))
    for item in result:
        if "env" in item:
            item["env"] = sorted(item["env"], key=lambda e: e["name"])
    assert by_name(result) == reference_merge(original, changes)
    # items only the server had keep their relative order
    server_only = [c["name"] for c in original if c["name"] not in by_name(changes)]
    assert [n for n in names if n in server_only] == server_only
    # patch items keep the patch's order
    assert [n for n in names if n in by_name(changes)] == [c["name"] for c in changes]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["f1", "f2", "f3", "f4"]), unique=True, max_size=4),
       st.lists(st.sampled_from(["f1", "f2", "f3", "f4"]), unique=True, max_size=4),
       st.lists(st.sampled_from(["f1", "f2", "f3", "f4"]), unique=True, max_size=2))
def test_finalizers_behave_as_a_set(live: list[str], added: list[str], removed: list[str]) -> None:
    doc = {"metadata": {"finalizers": live}}
    out = patch.strategic_merge_patch(
        doc, {"metadata": {"finalizers": added, "$deleteFromPrimitiveList/finalizers": removed}}, "ConfigMap")
    result = out["metadata"].get("finalizers", [])
    assert len(result) == len(set(result))
    assert set(result) == (set(live) - set(removed)) | set(added)
