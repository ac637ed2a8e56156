"""The operations of ``/openapi/v3/<group-version>`` documents, derived from the resource table.

One row of :mod:`kubesim.apiserver.resources` gives what upstream's installer
(``k8s.io/apiserver/pkg/endpoints/installer.go``) registers for a storage with those verbs and
subresources: the collection path (list, create, deletecollection), the all-namespaces list for a
namespaced resource, the object path (read, replace, patch, delete) and one path per subresource,
each operation with upstream's ``operationId`` (``patchAppsV1NamespacedStatefulSet``),
``x-kubernetes-action`` and ``x-kubernetes-group-version-kind``, the query parameters kubesim
accepts, and request and response bodies referring to the kinds' schemas
(:mod:`kubesim.apiserver.openapi_schemas`). Only what kubesim serves is listed: bodies are JSON only,
PATCH accepts the four patch types (apply patches not on subresources), and the deprecated
``/watch/`` paths are left out (``?watch=true`` on the list is the documented form).

Clients read these documents: ``kubectl apply`` / ``create`` look for the ``fieldValidation``
parameter on the kind's PATCH operation to leave validation to the server, ``kubectl apply``
builds its strategic merge patches from the schemas when the PATCH operation accepts
``application/strategic-merge-patch+json``, and ``kubectl explain`` finds the kind through the
operations' group-version-kind (``k8s.io/kubectl/pkg/explain/v2/templates/plaintext.tmpl``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kubesim import version
from kubesim.apiserver import openapi_schemas, resources

Schema = dict[str, Any]

_PARAM_TYPES: dict[str, str] = {
    "allowWatchBookmarks": "boolean", "container": "string", "continue": "string", "dryRun": "string",
    "fieldManager": "string", "fieldSelector": "string", "fieldValidation": "string", "follow": "boolean",
    "force": "boolean", "gracePeriodSeconds": "integer", "labelSelector": "string", "limit": "integer",
    "limitBytes": "integer", "orphanDependents": "boolean", "pretty": "string", "previous": "boolean",
    "propagationPolicy": "string", "resourceVersion": "string", "resourceVersionMatch": "string",
    "sendInitialEvents": "boolean", "sinceSeconds": "integer", "tailLines": "integer",
    "timeoutSeconds": "integer", "timestamps": "boolean", "watch": "boolean", "stderr": "boolean",
    "stdin": "boolean", "stdout": "boolean", "tty": "boolean", "ports": "integer",
}
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_PATCH = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_DELETE_COLLECTION = tuple(sorted({*_DELETE, *_LIST} - {"allowWatchBookmarks", "watch"}))
_LOG = ("container", "follow", "limitBytes", "previous", "sinceSeconds", "tailLines", "timestamps")
_CONNECT: dict[str, tuple[str, ...]] = {
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
    "proxy": ("path",),
}
"""Query parameters of the connect subresources (the fields of PodExecOptions, PodAttachOptions, ...)."""
_METHODS = {"get": "get", "create": "post", "update": "put", "patch": "patch", "delete": "delete"}

SUBRESOURCE_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                           "application/strategic-merge-patch+json")
"""What kubesim's PATCH of a subresource accepts (rest.PATCH_TYPES: no server-side apply there)."""
PATCH_CONTENT_TYPES = ("application/apply-patch+yaml", *SUBRESOURCE_PATCH_TYPES)


@dataclasses.dataclass(frozen=True)
class Operation:
    """One HTTP method on one path, in upstream's terms."""

    path: str
    method: str  # get, put, post, patch, delete
    action: str  # x-kubernetes-action
    operation_id: str
    description: str
    gvk: tuple[str, str, str] | None
    params: tuple[str, ...] = ()
    body: str | None = None  # definition name of the request body
    patch_types: tuple[str, ...] = ()
    response: str | None = None  # definition name; "" = a string (log text, a connect stream)
    created: bool = False  # also answers 201 (create, replace)


def _camel_group(group: str) -> str:
    """``""`` → Core, ``storage.k8s.io`` → Storage, ``rbac.authorization.k8s.io`` → RbacAuthorization."""
    if not group:
        return "Core"
    return "".join(part[:1].upper() + part[1:] for part in group.removesuffix(".k8s.io").split("."))


def tag(group: str, version_name: str) -> str:
    camel = _camel_group(group)
    return f"{camel[:1].lower()}{camel[1:]}_{version_name}"


def prefix(group: str, version_name: str) -> str:
    return f"/api/{version_name}" if not group else f"/apis/{group}/{version_name}"


def _response_of(gvk: tuple[str, str, str]) -> str | None:
    return openapi_schemas.definition_for(*gvk)


def _resource_operations(res: resources.Resource) -> list[Operation]:
    gv = _camel_group(res.group) + res.version.capitalize()
    ns = "Namespaced" if res.namespaced else ""
    base = prefix(res.group, res.version)
    collection = f"{base}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"{base}/{res.plural}"
    item = f"{collection}/{{name}}"
    gvk = (res.group, res.version, res.kind)
    obj = _response_of(gvk)
    listed = openapi_schemas.definition_for(res.group, res.version, res.list_kind)
    verbs = set(res.verbs)
    ops: list[Operation] = []
    if "list" in verbs:
        ops.append(Operation(collection, "get", "list", f"list{gv}{ns}{res.kind}",
                             f"list or watch objects of kind {res.kind}", gvk, _LIST, response=listed))
        if res.namespaced:
            ops.append(Operation(f"{base}/{res.plural}", "get", "list", f"list{gv}{res.kind}ForAllNamespaces",
                                 f"list or watch objects of kind {res.kind}", gvk, _LIST, response=listed))
    if "create" in verbs:
        ops.append(Operation(collection, "post", "post", f"create{gv}{ns}{res.kind}", f"create a {res.kind}", gvk,
                             _WRITE, body=obj, response=obj, created=True))
    if "deletecollection" in verbs:
        ops.append(Operation(collection, "delete", "deletecollection", f"delete{gv}Collection{ns}{res.kind}",
                             f"delete collection of {res.kind}", gvk, _DELETE_COLLECTION,
                             body=openapi_schemas.DELETE_OPTIONS, response=openapi_schemas.STATUS))
    if "get" in verbs:
        ops.append(Operation(item, "get", "get", f"read{gv}{ns}{res.kind}", f"read the specified {res.kind}", gvk,
                             response=obj))
    if "update" in verbs:
        ops.append(Operation(item, "put", "put", f"replace{gv}{ns}{res.kind}", f"replace the specified {res.kind}",
                             gvk, _WRITE, body=obj, response=obj, created=True))
    if "patch" in verbs:
        ops.append(Operation(item, "patch", "patch", f"patch{gv}{ns}{res.kind}",
                             f"partially update the specified {res.kind}", gvk, _PATCH,
                             body=openapi_schemas.PATCH, patch_types=PATCH_CONTENT_TYPES, response=obj,
                             created=True))
    if "delete" in verbs:
        ops.append(Operation(item, "delete", "delete", f"delete{gv}{ns}{res.kind}", f"delete a {res.kind}", gvk,
                             _DELETE, body=openapi_schemas.DELETE_OPTIONS, response=openapi_schemas.STATUS))
    for name in res.subresources:
        sub = res.subresource(name)
        if sub is not None:
            ops.extend(_subresource_operations(res, sub, item, gv, ns))
    return ops


def _subresource_operations(res: resources.Resource, sub: resources.Subresource, item: str, gv: str,
                            ns: str) -> list[Operation]:
    path = f"{item}/{sub.name}"
    gvk = (sub.group if sub.group is not None else res.group, sub.version if sub.version is not None else res.version,
           sub.kind)
    schema = _response_of(gvk)
    suffix = sub.name[:1].upper() + sub.name[1:]
    what = f"{sub.name} of the specified {res.kind}"
    ops: list[Operation] = []
    if sub.kind.endswith("Options"):
        # A connect subresource (exec, attach, portforward, proxy): upstream's installer registers one
        # "connect" operation per method, named connect<GV><Method><Namespaced><Kind><Sub>.
        for verb in sub.verbs:
            method = _METHODS[verb]
            ops.append(Operation(path, method, "connect",
                                 f"connect{gv}{method.capitalize()}{ns}{res.kind}{suffix}",
                                 f"connect {method.upper()} requests to {sub.name} of {res.kind}", gvk,
                                 _CONNECT.get(sub.name, ()), response=""))
        return ops
    for verb in sub.verbs:
        if verb == "get":
            text = sub.name == "log"
            ops.append(Operation(path, "get", "get", f"read{gv}{ns}{res.kind}{suffix}", f"read {what}", gvk,
                                 _LOG if text else (), response="" if text else schema))
        elif verb == "update":
            ops.append(Operation(path, "put", "put", f"replace{gv}{ns}{res.kind}{suffix}", f"replace {what}", gvk,
                                 _WRITE, body=schema, response=schema, created=True))
        elif verb == "patch":
            ops.append(Operation(path, "patch", "patch", f"patch{gv}{ns}{res.kind}{suffix}",
                                 f"partially update {what}", gvk, _PATCH, body=openapi_schemas.PATCH,
                                 patch_types=SUBRESOURCE_PATCH_TYPES, response=schema, created=True))
        elif verb == "create":
            ops.append(Operation(path, "post", "post", f"create{gv}{ns}{res.kind}{suffix}",
                                 f"create {sub.name} of a {res.kind}", gvk, _WRITE, body=schema, response=schema,
                                 created=True))
    return ops


def operations(group: str, version_name: str) -> list[Operation]:
    """Every operation of one served group/version, plus its discovery document."""
    ops = [Operation(prefix(group, version_name) + "/", "get", "", f"get{_camel_group(group)}"
                     f"{version_name.capitalize()}APIResources", "get available resources", None,
                     response=openapi_schemas.META + "APIResourceList")]
    for res in resources.resources_in(group, version_name):
        ops.extend(_resource_operations(res))
    return ops


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str = "query") -> Schema:
    param: Schema = {"in": where, "name": name, "schema": {"type": _PARAM_TYPES.get(name, "string")}}
    if where == "path":
        param["required"] = True
    else:
        param["schema"]["uniqueItems"] = True
    return param


def _v3_operation(op: Operation, group: str, version_name: str) -> Schema:
    out: Schema = {"description": op.description, "operationId": op.operation_id}
    if op.params:
        out["parameters"] = [_param(name) for name in op.params]
    if op.body:
        types = op.patch_types or ("*/*",)
        out["requestBody"] = {"content": {t: {"schema": _ref(op.body)} for t in types},
                              "required": op.method != "delete"}
    if op.response == "":
        media = "*/*" if op.action == "connect" else "text/plain"
        ok: Schema = {"content": {media: {"schema": {"type": "string"}}}, "description": "OK"}
    elif op.response:
        ok = {"content": {"application/json": {"schema": _ref(op.response)}}, "description": "OK"}
    else:
        ok = {"description": "OK"}
    responses: Schema = {"200": ok}
    if op.created and op.response:
        responses["201"] = {"content": {"application/json": {"schema": _ref(op.response)}}, "description": "Created"}
    if op.method == "delete" and op.response:
        responses["202"] = {"content": {"application/json": {"schema": _ref(op.response)}}, "description": "Accepted"}
    responses["401"] = {"description": "Unauthorized"}
    out["responses"] = responses
    out["tags"] = [tag(group, version_name)]
    if op.action:
        out["x-kubernetes-action"] = op.action
    if op.gvk is not None:
        g, v, k = op.gvk
        out["x-kubernetes-group-version-kind"] = {"group": g, "kind": k, "version": v}
    return out


def document(group: str, version_name: str) -> Schema:
    """The OpenAPI v3 document of one group/version, as upstream serves it at ``/openapi/v3/<gv>``."""
    ops = operations(group, version_name)
    paths: dict[str, Schema] = {}
    roots: set[str] = {openapi_schemas.STATUS}
    for op in ops:
        entry = paths.setdefault(op.path, {})
        entry[op.method] = _v3_operation(op, group, version_name)
        roots.update(name for name in (op.body, op.response) if name)
        if op.gvk is not None:
            kind_schema = openapi_schemas.definition_for(*op.gvk)
            if kind_schema:
                roots.add(kind_schema)
    for path, entry in paths.items():
        common = [_param(name, "path") for name in ("name", "namespace") if f"{{{name}}}" in path]
        entry["parameters"] = [*common, _param("pretty")]
    defs = openapi_schemas.definitions()
    schemas = {name: openapi_schemas.as_v3(defs[name]) for name in openapi_schemas.closure(roots)}
    return {
        "components": {"schemas": schemas},
        "info": {"title": "Kubernetes", "version": version.GIT_VERSION},
        "openapi": "3.0.0",
        "paths": dict(sorted(paths.items())),
    }


def served_definitions() -> list[str]:
    """Every definition the served kinds need, for ``/openapi/v2``: the closure over all group/versions."""
    roots: set[str] = {openapi_schemas.STATUS, openapi_schemas.DELETE_OPTIONS, openapi_schemas.PATCH,
                       openapi_schemas.WATCH_EVENT}
    for group, version_name in resources.group_versions():
        for op in operations(group, version_name):
            roots.update(name for name in (op.body, op.response) if name)
            if op.gvk is not None:
                kind_schema = openapi_schemas.definition_for(*op.gvk)
                if kind_schema:
                    roots.add(kind_schema)
    return openapi_schemas.closure(roots)
