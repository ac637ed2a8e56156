"""Field errors, rendered exactly like apimachinery's `field.Error` and `errors.NewInvalid`.

Clients read these: kubectl prints `The StatefulSet "x" is invalid: spec: Forbidden: ...`, and
programs inspect `Status.details.causes[*].{type,field,message}`. The text therefore follows
`staging/src/k8s.io/apimachinery/pkg/util/validation/field/errors.go` (`ErrorBody`, the type
strings) and `staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go` (`NewInvalid`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Final, Literal

FieldErrorType = Literal[
    "FieldValueRequired", "FieldValueInvalid", "FieldValueForbidden", "FieldValueNotSupported",
    "FieldValueDuplicate", "FieldValueNotFound", "FieldValueTooLong", "FieldValueTooMany", "InternalError",
    "FieldValueTypeInvalid",
]

REQUIRED: Final = "FieldValueRequired"
INVALID: Final = "FieldValueInvalid"
FORBIDDEN: Final = "FieldValueForbidden"
NOT_SUPPORTED: Final = "FieldValueNotSupported"
DUPLICATE: Final = "FieldValueDuplicate"
NOT_FOUND: Final = "FieldValueNotFound"
TOO_LONG: Final = "FieldValueTooLong"
TOO_MANY: Final = "FieldValueTooMany"

_TYPE_TEXT: dict[str, str] = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueNotFound": "Not found",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}

# Types whose message never shows the offending value (ErrorBody's first cases).
_VALUELESS = frozenset({"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"})


def go_value(value: object) -> str:
    """Render a value the way Go's fmt does in ErrorBody (`%q` strings, `%v` numbers, `%#v` maps/slices)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(value[k])}" for k in sorted(value))
        return "map[string]string{" + inner + "}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One validation failure: `type` is the StatusCause type (`FieldValueRequired`, ...)."""

    type: str
    field: str
    detail: str = ""
    value: object | None = None

    def body(self) -> str:
        """field.Error.ErrorBody: the message of a StatusCause."""
        text = _TYPE_TEXT.get(self.type, self.type)
        if self.type not in _VALUELESS:
            text = f"{text}: {go_value(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def as_cause(self) -> dict[str, str]:
        """A metav1.StatusCause."""
        return {"reason": self.type, "message": self.body(), "field": self.field}


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, detail)


def invalid(path: str, value: object, detail: str) -> FieldError:
    return FieldError(INVALID, path, detail, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, detail)


def not_supported(path: str, value: object, supported: Sequence[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported) if supported else ""
    return FieldError(NOT_SUPPORTED, path, detail, value)


def duplicate(path: str, value: object) -> FieldError:
    return FieldError(DUPLICATE, path, "", value)


def not_found(path: str, value: object) -> FieldError:
    return FieldError(NOT_FOUND, path, "", value)


def too_long(path: str, max_length: int) -> FieldError:
    return FieldError(TOO_LONG, path, f"must have at most {max_length} bytes")


def aggregate(errors: Sequence[FieldError]) -> str:
    """utilerrors.Aggregate.Error(): one error as is, several as `[e1, e2]` (duplicates collapsed)."""
    seen: dict[str, None] = {}
    for err in errors:
        seen.setdefault(str(err), None)
    texts = list(seen)
    if len(texts) == 1:
        return texts[0]
    return "[" + ", ".join(texts) + "]"


def invalid_message(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> str:
    """The `message` of errors.NewInvalid: `StatefulSet.apps "web" is invalid: spec.replicas: ...`."""
    qualified = f"{kind}.{group}" if group else kind
    if not errors:
        return f"{qualified} {json.dumps(name)} is invalid"
    return f"{qualified} {json.dumps(name)} is invalid: {aggregate(errors)}"


def invalid_status(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> dict[str, object]:
    """A complete 422 `Status` object as the apiserver returns it for a validation failure."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(kind, group, name, errors),
        "reason": "Invalid",
        "details": {"name": name, "group": group, "kind": kind, "causes": [e.as_cause() for e in errors]},
        "code": 422,
    }


def prefixed(prefix: str, errors: Iterable[FieldError]) -> list[FieldError]:
    """Re-root errors found on a sub-object (e.g. a pod template) under `prefix`."""
    return [dataclasses.replace(e, field=f"{prefix}.{e.field}" if e.field else prefix) for e in errors]
