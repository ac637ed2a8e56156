"""Resource quantities (`1Gi`, `500m`, `1.5e3`) parsed like apimachinery's `resource.ParseQuantity`.

Validation needs them (PVC `resources.requests.storage` must be a positive quantity, requests may
not exceed limits) and so does the volume controller (does a PV's capacity satisfy a claim?).
Upstream: `staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go` and `suffix.go`.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping

QUANTITY_FORMAT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(QUANTITY_FORMAT)
_NUMBER_RE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$")

ERR_FORMAT = f"quantities must match the regular expression '{QUANTITY_FORMAT}'"
ERR_SUFFIX = "unable to parse quantity's suffix"
ERR_NUMERIC = "unable to parse numeric part of quantity"

_BINARY: Mapping[str, int] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Mapping[str, int] = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

_CONTEXT = decimal.Context(prec=60)


def parse_quantity(text: object) -> decimal.Decimal:
    """The exact value of a quantity; raises ValueError with upstream's message on junk.

    JSON numbers are accepted too (`storage: 1`), as Quantity.UnmarshalJSON does.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(ERR_FORMAT)
    raw = text if isinstance(text, str) else repr(text)
    match = _QUANTITY_RE.match(raw)
    if not match:
        raise ValueError(ERR_FORMAT)
    number, suffix = match.group(1), match.group(2)
    if not _NUMBER_RE.match(number):
        raise ValueError(ERR_NUMERIC)
    value = decimal.Decimal(number)
    if suffix in _BINARY:
        return _CONTEXT.multiply(value, decimal.Decimal(_BINARY[suffix]))
    if suffix in _DECIMAL:
        return value.scaleb(_DECIMAL[suffix], _CONTEXT)
    exponent = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if exponent:
        return value.scaleb(int(exponent.group(1)), _CONTEXT)
    raise ValueError(ERR_SUFFIX)


def quantity_bytes(text: object) -> int:
    """A storage quantity in whole bytes, rounded up like Quantity.Value()."""
    value = parse_quantity(text)
    return int(value.to_integral_value(rounding=decimal.ROUND_CEILING))
