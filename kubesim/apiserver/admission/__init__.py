"""Admission: scheme defaults, create-time mutations and validation, as the real apiserver applies them.

The REST layer runs, for a create: `apply_defaults` -> `apply_create_status` ->
`apply_admission_mutations` -> `validate_create`; for an update or patch: `apply_defaults` ->
`validate_update`. Each step is pure: it takes and returns plain JSON objects.
"""

from kubesim.apiserver.admission.defaults import apply_defaults, default_pull_policy
from kubesim.apiserver.admission.mutations import (
    AdmissionConfig,
    apply_admission_mutations,
    apply_create_status,
    generate_name,
    pod_qos_class,
)
from kubesim.apiserver.admission.quantity import parse_quantity, quantity_bytes
from kubesim.apiserver.admission.validation import validate_create, validate_update
from kubesim.apiserver.fielderrors import FieldError

__all__ = [
    "AdmissionConfig",
    "FieldError",
    "apply_admission_mutations",
    "apply_create_status",
    "apply_defaults",
    "default_pull_policy",
    "generate_name",
    "parse_quantity",
    "pod_qos_class",
    "quantity_bytes",
    "validate_create",
    "validate_update",
]
