"""Kubernetes resource quantities ("1Gi", "500m", "1e9"), parsed without the kubernetes package.

The spec is validated before anything touches a cluster and harness.deploy may not import the
kubernetes client, so the grammar of apimachinery's ``resource.ParseQuantity`` is reproduced
here: a signed decimal number followed by at most one suffix — binary SI (Ki … Ei), decimal SI
(n u m "" k M G T P E) or a decimal exponent (e3, E-2). Suffixes never combine.
"""

from __future__ import annotations

import decimal
import re

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": decimal.Decimal("1e-9"),
    "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"),
    "": decimal.Decimal(1),
    "k": decimal.Decimal("1e3"),
    "M": decimal.Decimal("1e6"),
    "G": decimal.Decimal("1e9"),
    "T": decimal.Decimal("1e12"),
    "P": decimal.Decimal("1e15"),
    "E": decimal.Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)


class QuantityError(ValueError):
    """Not a Kubernetes quantity; the message says what the grammar expects."""


def parse_quantity(text: str) -> decimal.Decimal:
    """The exact value of a quantity ("1.5Gi" -> 1610612736)."""
    match = _QUANTITY.fullmatch(text.strip()) if text.strip() == text else None
    if match is None:
        raise QuantityError(
            f"{text!r} is not a Kubernetes quantity (a number with an optional suffix Ki Mi Gi Ti Pi Ei, "
            "n u m k M G T P E, or e<exponent>, e.g. 1Gi or 500Mi)"
        )
    number = decimal.Decimal(match["number"])
    suffix = match["suffix"] or ""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        if suffix in _BINARY:
            return number * _BINARY[suffix]
        if suffix in _DECIMAL:
            return number * _DECIMAL[suffix]
        return number.scaleb(int(suffix[1:]))


def parse_bytes(text: str) -> int:
    """A positive byte count; fractions of a byte round up, as the API server does for storage."""
    value = parse_quantity(text)
    if value <= 0:
        raise QuantityError(f"{text!r} must be more than zero bytes")
    return int(value.to_integral_value(rounding=decimal.ROUND_CEILING))
