"""``/openapi/v2``: the swagger 2.0 definitions of the served kinds, as JSON or gnostic protobuf.

Why kubesim serves it: ``kubectl apply -f`` asks the group/version's v3 document whether the
kind's PATCH takes ``fieldValidation``; when the document has no such kind (a ``Deployment`` sent
to a server without deployments) kubectl falls back to v2
(``k8s.io/cli-runtime/pkg/resource/fallback_query_param_verifier.go``), then validates the
manifest against the v2 definitions, which skip kinds they do not know
(``k8s.io/kubectl/pkg/validation/validation.go``), and finally fails to map the kind, printing
upstream's ``no matches for kind "Deployment" in version "apps/v1"``. Without v2 (a 404) it stops
earlier with ``failed to download openapi``, an error no real cluster gives.

client-go fetches v2 as protobuf only (``Accept: application/com.github.proto-openapi.spec.v2@v1.0
+protobuf``, decoded as gnostic's ``openapi.v2.Document``); the handler negotiates JSON and the two
protobuf media types as ``k8s.io/kube-openapi/pkg/handler/handler.go`` does (406 otherwise). The
message is encoded here directly from gnostic's ``OpenAPIv2.proto`` field numbers; vendor
extensions carry their value as YAML (JSON text is YAML), as gnostic's compiler does.

Known difference: the document has the definitions (the kinds' schemas, the same as the v3
documents') but an empty ``paths``. kubesim's operations are in the v3 documents, which kubectl
reads first; with v2 paths listing ``fieldValidation`` for Namespace, kubectl's fallback for a
kind the server lacks would go on to list CustomResourceDefinitions, which kubesim does not serve,
and fail with ``failed to check CRD`` where a real cluster says ``no matches for kind``.
"""

from __future__ import annotations

import functools
import json
import struct
from typing import Any

from kubesim import version
from kubesim.apiserver import openapi_paths, openapi_schemas, store

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_ACCEPTED = (
    ("application", "json", JSON_TYPE),
    ("application", "com.github.proto-openapi.spec.v2@v1.0+protobuf", PROTOBUF_TYPE),  # what client-go sends
    ("application", "com.github.proto-openapi.spec.v2.v1.0+protobuf", PROTOBUF_TYPE),
)


@functools.cache
def swagger() -> dict[str, Any]:
    defs = openapi_schemas.definitions()
    return {
        "definitions": {name: openapi_schemas.as_v2(defs[name]) for name in openapi_paths.served_definitions()},
        "info": {"title": "Kubernetes", "version": version.GIT_VERSION},
        "paths": {},
        "swagger": "2.0",
    }


@functools.cache
def json_bytes() -> bytes:
    return store.dumps(swagger())


@functools.cache
def proto_bytes() -> bytes:
    doc = swagger()
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    definitions = b"".join(_msg(1, _str(1, name) + _msg(2, encode_schema(schema)))
                           for name, schema in doc["definitions"].items())
    return _str(1, doc["swagger"]) + _msg(2, info) + _msg(8, b"") + _msg(9, definitions)


def _accept_clauses(accept: str) -> list[tuple[str, str]]:
    """(type, subtype) in preference order: by q, then specific before wildcard (goautoneg's ParseAccept)."""
    parsed: list[tuple[float, int, str, str]] = []
    for position, clause in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in clause.split(";"))
        if not media:
            continue
        kind, _, sub = media.partition("/")
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            parsed.append((quality, position, kind.strip().lower(), (sub or "*").strip().lower()))
    parsed.sort(key=lambda c: (-c[0], c[2] == "*", c[3] == "*", c[1]))
    return [(kind, sub) for _q, _pos, kind, sub in parsed]


def serve(accept: str) -> tuple[int, bytes, str]:
    """Status, body and content type for ``GET /openapi/v2`` with this ``Accept`` header."""
    for kind, sub in _accept_clauses(accept or "*/*"):
        for want_kind, want_sub, returned in _ACCEPTED:
            if kind in (want_kind, "*") and sub in (want_sub, "*"):
                return 200, (proto_bytes() if returned == PROTOBUF_TYPE else json_bytes()), returned
    return 406, b"", "text/plain; charset=utf-8"


# ----- protobuf wire format (gnostic openapiv2/OpenAPIv2.proto) -----------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _msg(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _str(number: int, text: str) -> bytes:
    return _msg(number, text.encode()) if text else b""


def _bool(number: int, flag: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if flag else b""


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", value) if value else b""


def _any(value: object) -> bytes:
    """gnostic's ``Any``: the value as YAML text in field 2."""
    return _str(2, json.dumps(value, ensure_ascii=False) + "\n")


# Schema fields by number (OpenAPIv2.proto ``message Schema``).
_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_INTS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17, "minProperties": 18}


class UnsupportedSchema(ValueError):
    """A schema keyword this encoder has no field for (swagger 2.0 has no ``oneOf``)."""


def encode_schema(schema: dict[str, Any]) -> bytes:
    """One swagger 2.0 schema as a gnostic ``openapi.v2.Schema`` message (fields in number order)."""
    parts: list[tuple[int, bytes]] = []
    for key, value in schema.items():
        if key in _STRINGS:
            parts.append((_STRINGS[key], _str(_STRINGS[key], str(value))))
        elif key in _DOUBLES:
            parts.append((_DOUBLES[key], _double(_DOUBLES[key], float(value))))
        elif key in _BOOLS:
            parts.append((_BOOLS[key], _bool(_BOOLS[key], bool(value))))
        elif key in _INTS:
            parts.append((_INTS[key], _int(_INTS[key], int(value))))
        elif key == "default":
            parts.append((5, _msg(5, _any(value))))
        elif key == "example":
            parts.append((30, _msg(30, _any(value))))
        elif key == "required":
            parts.append((19, b"".join(_str(19, str(name)) for name in value)))
        elif key == "enum":
            parts.append((20, b"".join(_msg(20, _any(item)) for item in value)))
        elif key == "additionalProperties":
            inner = _bool(2, value) if isinstance(value, bool) else _msg(1, encode_schema(value))
            parts.append((21, _msg(21, inner)))
        elif key == "type":
            types = value if isinstance(value, list) else [value]
            parts.append((22, _msg(22, b"".join(_str(1, str(t)) for t in types))))
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            parts.append((23, _msg(23, b"".join(_msg(1, encode_schema(item)) for item in items))))
        elif key == "allOf":
            parts.append((24, b"".join(_msg(24, encode_schema(item)) for item in value)))
        elif key == "properties":
            named = b"".join(_msg(1, _str(1, name) + _msg(2, encode_schema(sub))) for name, sub in value.items())
            parts.append((25, _msg(25, named)))
        elif key.startswith("x-"):
            parts.append((31, _msg(31, _str(1, key) + _msg(2, _any(value)))))
        else:
            raise UnsupportedSchema(f"swagger 2.0 schema keyword {key!r} has no gnostic field")
    parts.sort(key=lambda part: part[0])
    return b"".join(data for _number, data in parts)
