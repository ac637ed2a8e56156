"""The OpenAPI schemas of the kinds kubesim serves, taken from the Kubernetes release it emulates.

Source: the ``kubernetes-validate`` package (a declared dependency) ships, per Kubernetes minor,
``kubernetes-json-schema/v<major>.<minor>.0-local/_definitions.json``: every definition of
upstream's ``api/openapi-spec/swagger.json`` converted to JSON Schema by openapi2jsonschema —
names (``io.k8s.api.apps.v1.StatefulSetSpec``), descriptions, formats, ``required``, and the
``x-kubernetes-*`` extensions (group-version-kind, patch strategy and merge key, list type and
map keys, unions) as upstream publishes them. It was chosen over the official Python client's
models (``openapi_types`` / ``attribute_map``, what :mod:`kubesim.apiserver.fieldcheck` walks):
those have no formats and no extensions, and lose the description of every field whose type is
another model (about a fifth of the fields of the served kinds: ``spec``, ``metadata``,
``template``, ...), which ``kubectl explain`` prints; without the patch extensions ``kubectl
apply`` would compute wrong strategic merge patches from the schemas. Nothing here is written by
hand: the file is read once, on the first OpenAPI request, and the conversion's artefacts are
undone mechanically:

* nullable types (``"type": ["string", "null"]`` for every optional field) → ``"string"``;
* ``$ref`` to ``#/$defs/NAME`` → ``#/definitions/NAME`` (v2) or ``#/components/schemas/NAME`` (v3,
  wrapped in ``allOf`` when the reference carries siblings such as a description, as upstream's
  v3 does);
* the ``enum`` pinning ``apiVersion`` and ``kind`` of top-level kinds (openapi2jsonschema adds it;
  upstream has none);
* IntOrString and Quantity, which the conversion turned into ``oneOf`` alternatives: v3 keeps the
  ``oneOf`` (upstream's ``OpenAPIV3OneOfTypes``), v2 gets ``type: string`` plus the format
  (apimachinery's ``OpenAPISchemaType``/``OpenAPISchemaFormat``: ``int-or-string`` for
  IntOrString). Their own descriptions did not survive the conversion.

What the source does not have: upstream's ``default`` values (``default: {}`` on embedded
structs), which ``kubectl explain`` does not print.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubesim import version

Schema = dict[str, Any]

SOURCE_PACKAGE = "kubernetes_validate"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
WATCH_EVENT = META + "WatchEvent"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

_SCHEMA_MAPS = ("properties", "patternProperties")
"""Keys whose value maps names to schemas (the names are data: a property may be called ``type``)."""
_SCHEMA_LISTS = ("allOf", "oneOf", "anyOf")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


class SchemaSourceMissing(RuntimeError):
    """The package holding the schemas is not installed, or has no file for this Kubernetes minor."""


def source_file() -> Path:
    """The ``_definitions.json`` of the emulated minor, located without importing the package."""
    major, minor, _patch = version.KUBERNETES_VERSION
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SchemaSourceMissing(f"the {SOURCE_PACKAGE.replace('_', '-')} package is not installed "
                                  "(a kubesim dependency: pip install -e .)")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "kubernetes-json-schema" / f"v{major}.{minor}.0-local" / "_definitions.json"
    if not path.is_file():
        raise SchemaSourceMissing(f"{path} is missing: the installed {SOURCE_PACKAGE} has no schemas for "
                                  f"Kubernetes {major}.{minor}")
    return path


def _normalise(node: Any) -> Any:
    """One source schema in upstream's swagger (v2) shape; see the module docstring."""
    if not isinstance(node, dict):
        return copy.deepcopy(node)
    out: Schema = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            out[key] = kept[0] if len(kept) == 1 else kept
        elif key == "$ref" and isinstance(value, str):
            out[key] = "#/definitions/" + value.rpartition("/")[2]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _normalise(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_normalise(sub) for sub in value]
        elif key in _SCHEMA_VALUES:
            out[key] = _normalise(value)
        else:
            out[key] = copy.deepcopy(value)  # data: descriptions, enums, required, extensions
    return out


@functools.cache
def definitions() -> Mapping[str, Schema]:
    """Every upstream definition of the emulated release, by name, in swagger (v2) shape (oneOf aside)."""
    with source_file().open("rb") as fh:
        raw = json.load(fh)
    source = raw.get("$defs") or raw.get("definitions") or {}
    out: dict[str, Schema] = {}
    for name, schema in source.items():
        norm = _normalise(schema)
        if norm.get("x-kubernetes-group-version-kind"):
            for field in ("apiVersion", "kind"):
                prop = (norm.get("properties") or {}).get(field)
                if isinstance(prop, dict):
                    prop.pop("enum", None)
        out[name] = norm
    return out


@functools.cache
def by_gvk() -> Mapping[tuple[str, str, str], str]:
    """(group, version, kind) → definition name, from each definition's ``x-kubernetes-group-version-kind``.

    A definition listing several GVKs (DeleteOptions, WatchEvent) is found under each of them.
    """
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            key = (str(gvk.get("group", "")), str(gvk.get("version", "")), str(gvk.get("kind", "")))
            index.setdefault(key, name)
    return index


def definition_for(group: str, version_name: str, kind: str) -> str | None:
    return by_gvk().get((group, version_name, kind))


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rpartition("/")[2])
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                for sub in value.values():
                    _refs(sub, found)
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                for sub in value:
                    _refs(sub, found)
            elif key in _SCHEMA_VALUES:
                _refs(value, found)


def closure(roots: Iterable[str]) -> list[str]:
    """The named definitions and everything they reference, sorted (upstream documents sort their keys)."""
    defs = definitions()
    seen: set[str] = set()
    todo = [name for name in roots if name in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(ref for ref in found if ref in defs and ref not in seen)
    return sorted(seen)


def _scalar_one_of(schema: Schema) -> list[str] | None:
    """The alternative types of an IntOrString/Quantity-like ``oneOf`` of scalars; None otherwise."""
    alternatives = schema.get("oneOf")
    if not isinstance(alternatives, list) or not alternatives:
        return None
    types = [alt.get("type") for alt in alternatives if isinstance(alt, dict)]
    if len(types) != len(alternatives) or not all(t in ("string", "integer", "number") for t in types):
        return None
    return [str(t) for t in types]


def as_v2(schema: Schema) -> Schema:
    """A definition as ``/openapi/v2`` (swagger 2.0) publishes it: no ``oneOf`` there."""
    types = _scalar_one_of(schema)
    if types is None:
        return copy.deepcopy(schema)
    out = {k: copy.deepcopy(v) for k, v in schema.items() if k != "oneOf"}
    out["type"] = "string"
    if sorted(types) == ["integer", "string"]:
        out["format"] = "int-or-string"
    return out


def _to_v3(node: Any) -> Any:
    if not isinstance(node, dict):
        return copy.deepcopy(node)
    out: Schema = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = "#/components/schemas/" + value.rpartition("/")[2]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _to_v3(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_to_v3(sub) for sub in value]
        elif key in _SCHEMA_VALUES:
            out[key] = _to_v3(value)
        else:
            out[key] = copy.deepcopy(value)
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; upstream's v3 wraps the reference in allOf.
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def as_v3(schema: Schema) -> Schema:
    """A definition as ``/openapi/v3/<group-version>`` publishes it under ``components.schemas``."""
    out: Schema = _to_v3(schema)
    types = _scalar_one_of(schema)
    if types is not None and sorted(types) == ["integer", "string"]:
        out["format"] = "int-or-string"
    return out
