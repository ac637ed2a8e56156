"""Decoding the Kubernetes protobuf request bodies that kubectl's typed clients send.

Most of kubectl talks JSON, but commands built on the typed clientset (``kubectl create
namespace|configmap|secret|serviceaccount|service``, ``kubectl drain --disable-eviction``'s
DELETE, ``kubectl auth can-i|whoami`` and ``kubectl create token``) send
``application/vnd.kubernetes.protobuf`` and never fall back to JSON. Responses
stay JSON (kubectl accepts both), so only request bodies are decoded, and only for the messages
those commands send; anything else is a 415 naming the kind.

Wire format: the magic ``k8s\\x00`` then a ``runtime.Unknown`` (typeMeta=1{apiVersion=1,
kind=2}, raw=2, contentEncoding=3, contentType=4) whose ``raw`` is the object message. Field
numbers follow the ``generated.proto`` files of k8s.io/api and apimachinery (checked against
bodies captured from kubectl 1.37). go-to-protobuf writes every non-pointer field even when
empty, so zero values of such fields are dropped (JSON ``omitempty``); pointer fields are only
on the wire when set, so their zero values are kept.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from kubesim.apiserver import errors

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"


@dataclasses.dataclass(frozen=True)
class F:
    """One field: JSON name, value kind, nested schema, and whether a zero value is kept (pointer fields)."""

    name: str
    kind: str  # string bytes int bool msg map_ss map_sb rep_string rep_msg time intorstr
    schema: Mapping[int, F] | None = None
    keep_zero: bool = False


Schema = Mapping[int, F]

OWNER_REFERENCE: Schema = {
    1: F("kind", "string"), 3: F("name", "string"), 4: F("uid", "string"), 5: F("apiVersion", "string"),
    6: F("controller", "bool", keep_zero=True), 7: F("blockOwnerDeletion", "bool", keep_zero=True),
}
OBJECT_META: Schema = {
    1: F("name", "string"), 2: F("generateName", "string"), 3: F("namespace", "string"),
    5: F("uid", "string"), 6: F("resourceVersion", "string"), 7: F("generation", "int"),
    8: F("creationTimestamp", "time"), 9: F("deletionTimestamp", "time"),
    10: F("deletionGracePeriodSeconds", "int", keep_zero=True),
    11: F("labels", "map_ss"), 12: F("annotations", "map_ss"),
    13: F("ownerReferences", "rep_msg", OWNER_REFERENCE), 14: F("finalizers", "rep_string"),
}
PRECONDITIONS: Schema = {1: F("uid", "string", keep_zero=True), 2: F("resourceVersion", "string", keep_zero=True)}
DELETE_OPTIONS: Schema = {
    1: F("gracePeriodSeconds", "int", keep_zero=True), 2: F("preconditions", "msg", PRECONDITIONS),
    3: F("orphanDependents", "bool", keep_zero=True), 4: F("propagationPolicy", "string", keep_zero=True),
    5: F("dryRun", "rep_string"),
}
OBJECT_REFERENCE: Schema = {
    1: F("kind", "string"), 2: F("namespace", "string"), 3: F("name", "string"), 4: F("uid", "string"),
    5: F("apiVersion", "string"), 6: F("resourceVersion", "string"), 7: F("fieldPath", "string"),
}
SERVICE_PORT: Schema = {
    1: F("name", "string"), 2: F("protocol", "string"), 3: F("port", "int", keep_zero=True),
    4: F("targetPort", "intorstr"), 5: F("nodePort", "int"), 6: F("appProtocol", "string", keep_zero=True),
}
SERVICE_SPEC: Schema = {
    1: F("ports", "rep_msg", SERVICE_PORT), 2: F("selector", "map_ss"), 3: F("clusterIP", "string"),
    4: F("type", "string"), 5: F("externalIPs", "rep_string"), 7: F("sessionAffinity", "string"),
    10: F("externalName", "string"), 11: F("externalTrafficPolicy", "string"),
    13: F("publishNotReadyAddresses", "bool"),
}

# authorization.k8s.io/v1 and authentication.k8s.io/v1 (kubectl auth can-i / whoami, create token)
RESOURCE_ATTRIBUTES: Schema = {
    1: F("namespace", "string"), 2: F("verb", "string"), 3: F("group", "string"), 4: F("version", "string"),
    5: F("resource", "string"), 6: F("subresource", "string"), 7: F("name", "string"),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: F("path", "string"), 2: F("verb", "string")}
ACCESS_REVIEW_SPEC: Schema = {
    1: F("resourceAttributes", "msg", RESOURCE_ATTRIBUTES),
    2: F("nonResourceAttributes", "msg", NON_RESOURCE_ATTRIBUTES),
    3: F("user", "string"), 4: F("groups", "rep_string"), 6: F("uid", "string"),
}
BOUND_OBJECT_REFERENCE: Schema = {1: F("kind", "string"), 2: F("apiVersion", "string"), 3: F("name", "string"),
                                  4: F("uid", "string")}

KINDS: Mapping[str, Schema] = {
    "Namespace": {1: F("metadata", "msg", OBJECT_META),
                  2: F("spec", "msg", {1: F("finalizers", "rep_string")})},
    "ConfigMap": {1: F("metadata", "msg", OBJECT_META), 2: F("data", "map_ss"), 3: F("binaryData", "map_sb"),
                  4: F("immutable", "bool", keep_zero=True)},
    "Secret": {1: F("metadata", "msg", OBJECT_META), 2: F("data", "map_sb"), 3: F("type", "string"),
               4: F("stringData", "map_ss"), 5: F("immutable", "bool", keep_zero=True)},
    "ServiceAccount": {1: F("metadata", "msg", OBJECT_META), 2: F("secrets", "rep_msg", OBJECT_REFERENCE),
                       3: F("imagePullSecrets", "rep_msg", {1: F("name", "string")}),
                       4: F("automountServiceAccountToken", "bool", keep_zero=True)},
    "Service": {1: F("metadata", "msg", OBJECT_META), 2: F("spec", "msg", SERVICE_SPEC)},
    "DeleteOptions": DELETE_OPTIONS,
    "Eviction": {1: F("metadata", "msg", OBJECT_META), 2: F("deleteOptions", "msg", DELETE_OPTIONS)},
    "SelfSubjectAccessReview": {1: F("metadata", "msg", OBJECT_META), 2: F("spec", "msg", ACCESS_REVIEW_SPEC)},
    "SubjectAccessReview": {1: F("metadata", "msg", OBJECT_META), 2: F("spec", "msg", ACCESS_REVIEW_SPEC)},
    "LocalSubjectAccessReview": {1: F("metadata", "msg", OBJECT_META), 2: F("spec", "msg", ACCESS_REVIEW_SPEC)},
    "SelfSubjectRulesReview": {1: F("metadata", "msg", OBJECT_META),
                               2: F("spec", "msg", {1: F("namespace", "string")})},
    "SelfSubjectReview": {1: F("metadata", "msg", OBJECT_META)},
    "TokenReview": {1: F("metadata", "msg", OBJECT_META),
                    2: F("spec", "msg", {1: F("token", "string"), 2: F("audiences", "rep_string")})},
    "TokenRequest": {1: F("metadata", "msg", OBJECT_META), 2: F("spec", "msg", {
        1: F("audiences", "rep_string"), 4: F("expirationSeconds", "int", keep_zero=True),
        3: F("boundObjectRef", "msg", BOUND_OBJECT_REFERENCE)})},
}


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise _Malformed("truncated varint")
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i
        if shift > 70:
            raise _Malformed("varint too long")


def fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) in wire order; varints as ints, everything else as bytes."""
    out: list[tuple[int, int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > len(buf):
                raise _Malformed("truncated field")
            value, i = buf[i:i + size], i + size
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise _Malformed("expected a length-delimited field")
    return value.decode("utf-8")


def _raw(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise _Malformed("expected a length-delimited field")
    return value


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise _Malformed("expected a varint field")
    return _signed(value)


def _pair(value: int | bytes) -> tuple[str, bytes]:
    key, val = "", b""
    for number, _wire, item in fields(_raw(value)):
        if number == 1:
            key = _text(item)
        elif number == 2:
            val = _raw(item)
    return key, val


def _time(value: int | bytes) -> str | None:
    seconds = 0
    for number, _wire, item in fields(_raw(value)):
        if number == 1:
            seconds = _int(item)
    if seconds == 0:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _intorstr(value: int | bytes) -> int | str | None:
    kind, number_value, text = 0, 0, ""
    for number, _wire, item in fields(_raw(value)):
        if number == 1:
            kind = _int(item)
        elif number == 2:
            number_value = _int(item)
        elif number == 3:
            text = _text(item)
    if kind == 1:
        return text
    return number_value or None


def message(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _wire, value in fields(buf):
        spec = schema.get(number)
        if spec is None:
            continue  # a field this decoder does not know: upstream would keep it; we drop it
        if spec.kind == "string":
            text = _text(value)
            if text or spec.keep_zero:
                out[spec.name] = text
        elif spec.kind == "bytes":
            out[spec.name] = base64.b64encode(_raw(value)).decode()
        elif spec.kind == "int":
            number_value = _int(value)
            if number_value or spec.keep_zero:
                out[spec.name] = number_value
        elif spec.kind == "bool":
            flag = bool(_int(value))
            if flag or spec.keep_zero:
                out[spec.name] = flag
        elif spec.kind == "msg":
            assert spec.schema is not None
            out[spec.name] = message(_raw(value), spec.schema)
        elif spec.kind == "rep_msg":
            assert spec.schema is not None
            out.setdefault(spec.name, []).append(message(_raw(value), spec.schema))
        elif spec.kind == "rep_string":
            out.setdefault(spec.name, []).append(_text(value))
        elif spec.kind in ("map_ss", "map_sb"):
            key, val = _pair(value)
            entry = val.decode("utf-8") if spec.kind == "map_ss" else base64.b64encode(val).decode()
            out.setdefault(spec.name, {})[key] = entry
        elif spec.kind == "time":
            stamp = _time(value)
            if stamp:
                out[spec.name] = stamp
        elif spec.kind == "intorstr":
            converted = _intorstr(value)
            if converted is not None:
                out[spec.name] = converted
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the equivalent JSON object; 400/415 with a clear message otherwise."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("protobuf body does not start with the k8s magic number")
    try:
        api_version = kind = ""
        raw = b""
        for number, _wire, value in fields(body[len(MAGIC):]):
            if number == 1:
                for sub, _w, item in fields(_raw(value)):
                    if sub == 1:
                        api_version = _text(item)
                    elif sub == 2:
                        kind = _text(item)
            elif number == 2:
                raw = _raw(value)
        schema = KINDS.get(kind)
        if schema is None:
            raise errors.ApiError(
                415, "UnsupportedMediaType",
                f"kubesim decodes protobuf request bodies only for {', '.join(sorted(KINDS))}; "
                f"send {kind or 'this object'} as application/json",
            )
        obj = message(raw, schema)
    except (_Malformed, UnicodeDecodeError, IndexError) as exc:
        raise errors.bad_request(f"malformed protobuf body: {exc}") from None
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj
