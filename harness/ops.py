"""The op vocabulary: which ``f`` each recorder uses and what its values carry.

Recorders (the locust load, the nemesis, the availability probe) and the checkers share
these names and shapes, so they are written down once, here, as TypedDicts.

Write ops (one Jepsen process per locust user, e.g. ``w0-u3``)::

    invoke  f="write"  WriteInvoke   before the POST is sent
    ok      f="write"  WriteOk       HTTP 200: the writer finished its publish protocol
    fail    f="write"  WriteInvoke   the writer said nothing was published (4xx/5xx listed
                                     in the writer contract), error = its message
    info    f="write"  WriteInvoke   anything indeterminate (timeout, reset, killed)

Fault ops (process ``nemesis``), Jepsen's start/stop::

    invoke/ok|info  f="start"  FaultValue   fault injected (period starts at the invoke)
    invoke/ok|info  f="stop"   FaultValue   fault healed (period ends at the completion)

Resume ops (process ``resume-<ordinal>``), after each fault healed and at the end::

    invoke  f="resume"  ResumeInvoke   GET /resume: read the newest checkpoint in full
    ok      f="resume"  ResumeOk       the step a trainer would resume from, verified
    fail    f="resume"  ResumeInvoke   nothing verifies (404) or not ready (503)
    info    f="resume"  ResumeInvoke   no answer (timeout, refused)

Probe ops (process ``probe-<ordinal>``), sampled while the run goes on::

    invoke  f="read"  {"ordinal": n}
    ok      f="read"  ProbeOk          the pod answered /readyz and its latest valid step
    fail    f="read"  {"ordinal": n}   no answer: refused, reset, unparseable (error says which);
                                       an answer saying "not ready" is ok with ready false
"""

from __future__ import annotations

from typing import Final, NotRequired, TypedDict

WRITE: Final = "write"
FAULT_START: Final = "start"
FAULT_STOP: Final = "stop"
READ: Final = "read"
RESUME: Final = "resume"
NEMESIS_PROCESS: Final = "nemesis"


class WriteInvoke(TypedDict):
    ordinal: int
    request_id: str
    bytes: int
    shards: int
    step: NotRequired[int]
    url: NotRequired[str]


class WriteOk(TypedDict):
    """The writer's 200 response body (plus the request's id and ordinal)."""

    ordinal: int
    step: int
    digest: str
    bytes: int
    epoch: str
    durable_at: float
    request_id: str


class FaultValue(TypedDict):
    fault: str
    targets: list[str]
    #: the scenario's declaration, e.g. {"2": "local volume pinned to drained node"}
    expected_unavailable: NotRequired[dict[str, str]]
    #: the nemesis stops its targets' writers gracefully (SIGTERM): every write they received must
    #: be answered ok or fail, which the ``shutdown`` checker judges
    graceful_stop: NotRequired[bool]


class ProbeOk(TypedDict):
    ordinal: int
    ready: bool
    latest_step: int | None


class ResumeInvoke(TypedDict):
    ordinal: int
    #: which fault's heal this resume follows (index in the schedule); None: the final one
    after_fault: int | None


class ResumeOk(TypedDict):
    """The writer's /resume answer: the newest checkpoint that verified in full."""

    ordinal: int
    after_fault: int | None
    step: int
    digest: str
    bytes: int
    read_seconds: float
    #: newer checkpoints that failed the full read, as "step: problem"
    skipped: list[str]
