"""The OpenAPI documents kubesim serves: complete, self-contained, and free of conversion artefacts (A7)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import yaml

from kubesim import version
from kubesim.apiserver import openapi, openapi_schemas, openapi_v2, protobuf, resources


def _gv_path(group: str, version_name: str) -> str:
    return f"api/{version_name}" if not group else f"apis/{group}/{version_name}"


@functools.cache
def _doc(group: str, version_name: str) -> dict[str, Any]:
    raw = openapi.group_version_doc(_gv_path(group, version_name))
    assert raw is not None
    return dict(json.loads(raw))


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("res", resources.RESOURCES, ids=lambda r: f"{r.group or 'core'}/{r.plural}")
def test_every_served_kind_has_its_schema_and_a_patch_with_field_validation(res: resources.Resource) -> None:
    """A7: what kubectl explain and kubectl apply look for, per served resource."""
    doc = _doc(res.group, res.version)
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    schemas = [s for s in doc["components"]["schemas"].values() if gvk in (s.get("x-kubernetes-group-version-kind")
                                                                          or [])]
    assert len(schemas) == 1
    assert schemas[0]["properties"]["metadata"]
    if "patch" not in res.verbs:  # the create-only reviews (SelfSubjectAccessReview, TokenReview, ...): no PATCH
        return
    patches = [p["patch"] for p in doc["paths"].values()
               if "patch" in p and p["patch"]["x-kubernetes-group-version-kind"] == gvk]
    assert patches
    for op in patches:
        assert {"in": "query", "name": "fieldValidation", "schema": {"type": "string", "uniqueItems": True}} in \
            op["parameters"]
        assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]


@pytest.mark.parametrize(("group", "version_name"), resources.group_versions())
def test_every_reference_resolves_inside_its_document(group: str, version_name: str) -> None:
    doc = _doc(group, version_name)
    names = set(doc["components"]["schemas"])
    for node in _walk(doc):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/components/schemas/")
            assert ref.rpartition("/")[2] in names, ref


def test_no_conversion_artefacts_are_served() -> None:
    """A7: nullable type lists and the apiVersion/kind enums of openapi2jsonschema are undone; $ref stands alone."""
    for group, version_name in resources.group_versions():
        for node in _walk(_doc(group, version_name)["components"]["schemas"]):
            assert not isinstance(node.get("type"), list), node
            assert "$defs" not in str(node.get("$ref", ""))
            if "$ref" in node:
                assert set(node) == {"$ref"}, node  # siblings go in an allOf wrapper (OpenAPI 3.0)
    sts = openapi_schemas.definitions()["io.k8s.api.apps.v1.StatefulSet"]
    assert "enum" not in sts["properties"]["apiVersion"]


def test_patch_metadata_and_formats_come_from_upstream() -> None:
    """A3, A7: what kubectl apply needs to build strategic merge patches is in the schemas."""
    pod_spec = openapi_schemas.definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod_spec["containers"]["x-kubernetes-patch-strategy"] == "merge"
    assert pod_spec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    sts_spec = openapi_schemas.definitions()["io.k8s.api.apps.v1.StatefulSetSpec"]
    assert sts_spec["properties"]["replicas"] == {
        "description": sts_spec["properties"]["replicas"]["description"], "format": "int32", "type": "integer"}
    assert sts_spec["required"] == ["selector", "template"]
    int_or_string = openapi_schemas.as_v3(openapi_schemas.definitions()[openapi_schemas.INT_OR_STRING])
    assert int_or_string["format"] == "int-or-string"
    assert sorted(alt["type"] for alt in int_or_string["oneOf"]) == ["integer", "string"]
    assert openapi_schemas.as_v2(openapi_schemas.definitions()[openapi_schemas.INT_OR_STRING]) == {
        "type": "string", "format": "int-or-string"}


def test_operations_are_named_as_upstream_names_them() -> None:
    doc = _doc("apps", "v1")
    sts = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]
    assert sts["patch"]["operationId"] == "patchAppsV1NamespacedStatefulSet"
    assert sts["get"]["x-kubernetes-action"] == "get"
    assert doc["paths"]["/apis/apps/v1/statefulsets"]["get"]["operationId"] == "listAppsV1StatefulSetForAllNamespaces"
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale"]["put"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    core = _doc("", "v1")
    evict = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert evict["operationId"] == "createCoreV1NamespacedPodEviction"
    assert "deletecollection" not in json.dumps(core["paths"]["/api/v1/namespaces"])  # not a namespace verb


def _decode(buf: int | bytes) -> dict[int, list[int | bytes]]:
    assert isinstance(buf, bytes)
    out: dict[int, list[int | bytes]] = {}
    for number, _wire, value in protobuf.fields(buf):
        out.setdefault(number, []).append(value)
    return out


def _text(value: int | bytes) -> str:
    assert isinstance(value, bytes)
    return value.decode()


def test_openapi_v2_protobuf_is_a_gnostic_document_with_every_definition() -> None:
    """A7: what client-go decodes from /openapi/v2 (openapi.v2.Document): swagger, info, paths, definitions."""
    doc = _decode(openapi_v2.proto_bytes())
    assert _text(doc[1][0]) == "2.0"
    info = _decode(doc[2][0])
    assert (_text(info[1][0]), _text(info[2][0])) == ("Kubernetes", version.GIT_VERSION)
    assert doc[8] == [b""]  # paths: empty (see openapi_v2's docstring)
    named = [_decode(entry) for entry in _decode(doc[9][0])[1]]
    names = [_text(n[1][0]) for n in named]
    assert names == list(openapi_v2.swagger()["definitions"])
    sts = _decode(named[names.index("io.k8s.api.apps.v1.StatefulSet")][2][0])
    assert _text(_decode(sts[22][0])[1][0]) == "object"
    extensions = {_text(_decode(e)[1][0]): _decode(_decode(e)[2][0]) for e in sts[31]}
    gvk = yaml.safe_load(_text(extensions["x-kubernetes-group-version-kind"][2][0]))
    assert gvk == [{"group": "apps", "kind": "StatefulSet", "version": "v1"}]


def test_openapi_v2_definitions_are_swagger_2() -> None:
    defs = openapi_v2.swagger()["definitions"]
    for node in _walk(defs):
        assert "oneOf" not in node
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/definitions/"), ref
            assert ref.rpartition("/")[2] in defs, ref
            assert "type" not in node  # kube-openapi's proto parser refuses a typed or structured $ref
            assert "properties" not in node


@pytest.mark.parametrize(("accept", "code", "ctype"), [
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 200, openapi_v2.PROTOBUF_TYPE),
    ("application/json", 200, "application/json"),
    ("", 200, "application/json"),
    ("text/html;q=0.9, application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 200, openapi_v2.PROTOBUF_TYPE),
    ("text/html", 406, "text/plain; charset=utf-8"),
])
def test_openapi_v2_content_negotiation(accept: str, code: int, ctype: str) -> None:
    status, _body, returned = openapi_v2.serve(accept)
    assert (status, returned) == (code, ctype)
