"""Pure checkers: functions of (history, facts, expectations) → :class:`Verdict`.

No cluster I/O (an import-linter contract keeps it so): a stored run can be judged again,
anywhere, by ``harness check``. Each checker lives in the module named for what it judges;
its function is re-exported here as ``check_<name>`` (the plain names are the modules).
"""

from harness.checkers.availability import check as check_availability
from harness.checkers.durability import check as check_durability
from harness.checkers.expect import AvailabilityOptions, DurabilityOptions, Expectations, PerfOptions
from harness.checkers.faults import check as check_faults
from harness.checkers.identity import check as check_identity
from harness.checkers.perf import check as check_perf
from harness.checkers.registry import CHECKERS, Checker, Composed, UnknownCheckerError, compose, resolve
from harness.checkers.verdict import UNKNOWN, Validity, Verdict, combine
from harness.checkers.writes import CheckerInputError

__all__ = [
    "CHECKERS",
    "UNKNOWN",
    "AvailabilityOptions",
    "Checker",
    "CheckerInputError",
    "Composed",
    "DurabilityOptions",
    "Expectations",
    "PerfOptions",
    "UnknownCheckerError",
    "Validity",
    "Verdict",
    "check_availability",
    "check_durability",
    "check_faults",
    "check_identity",
    "check_perf",
    "combine",
    "compose",
    "resolve",
]
