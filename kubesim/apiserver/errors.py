"""API errors as the real apiserver reports them: a ``Status`` object with code, reason and message.

Clients branch on ``reason`` and ``code`` (client-go ``IsNotFound``, ``IsConflict``; the Python
client's ``ApiException.status``), so every failure path raises :class:`ApiError` built by one of
the constructors below; the message formats follow apimachinery ``pkg/api/errors/errors.go``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kubesim.apiserver import fielderrors


class ApiError(Exception):
    """An error that becomes an HTTP response carrying a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    def body(self) -> bytes:
        return json.dumps(self.status(), separators=(",", ":")).encode()


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(group: str, plural: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(plural, group)} "{name}" not found', _details(name, group, plural))


def already_exists(group: str, plural: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{_qualified(plural, group)} "{name}" already exists', _details(name, group, plural)
    )


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        _details(name, group, plural),
    )


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def stale(group: str, plural: str, name: str) -> ApiError:
    return conflict(group, plural, name, MODIFIED)


def invalid(group: str, kind: str, name: str, errs: Sequence[fielderrors.FieldError]) -> ApiError:
    """422 Invalid; message and causes as ``errors.NewInvalid`` renders them (empty group omitted)."""
    details = _details(name, group, kind)
    details["causes"] = [e.as_cause() for e in errs]
    return ApiError(422, "Invalid", fielderrors.invalid_message(kind, group, name, errs), details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(group: str, plural: str, name: str, why: str) -> ApiError:
    return ApiError(
        403, "Forbidden", f'{_qualified(plural, group)} "{name}" is forbidden: {why}', _details(name, group, plural)
    )


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def resource_not_found() -> ApiError:
    """404 for a URL that names no resource (upstream: an empty ``details``)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def not_acceptable(accepted: str) -> ApiError:
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: {accepted}")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_old_resource_version(requested: int, oldest: int) -> ApiError:
    return expired(f"too old resource version: {requested} ({oldest})")


def entity_too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
        if content_type
        else "the body of the request was in an unknown format",
    )


def too_many_requests(message: str, causes: list[dict[str, str]]) -> ApiError:
    return ApiError(429, "TooManyRequests", message, {"causes": causes})


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def timeout(message: str) -> ApiError:
    return ApiError(504, "Timeout", message)
