"""The offline verifier: what is on a volume directory, judged without the writer running.

Reads only (never creates, fixes or deletes anything), re-hashes every byte of every
checkpoint under a final name, and reports the result as :class:`harness.facts.VolumeFacts`
— the shape the checkers consume (``harness verify DIR --json``).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import facts
from harness.workload import fsutil, identity, layout, validate


class VerifyInputError(ValueError):
    """The directory cannot be verified as given (not a directory, no way to tell its ordinal)."""


def verify_volume(data_dir: Path, ordinal: int | None = None) -> tuple[facts.VolumeFacts, list[str]]:
    """Returns the facts and warnings (one line each) worth telling the user on stderr.

    ``ordinal`` is the ordinal whose claim this directory is (the one it is read as); the
    facts carry it as ``read_as`` and key the volume by it, apart from the stamp's own ordinal,
    so a stamp naming another ordinal shows as the swapped volume it is instead of being
    silently believed. Checkpoints are still validated against the stamp — a swapped volume's
    checkpoints are intact, just on the wrong claim. Without ``ordinal`` the stamp is all there
    is to go by, and the facts say so (``read_as`` None).
    """
    if not data_dir.is_dir():
        raise VerifyInputError(f"{data_dir} is not a directory; pass the volume's data directory (e.g. /data)")
    warnings: list[str] = []
    try:
        stamp = identity.read_stamp(data_dir)
    except identity.StampError as exc:
        stamp = None
        warnings.append(f"{data_dir}: {exc}")
    if ordinal is not None:
        read_for = ordinal
        if stamp is not None and stamp.ordinal != ordinal:
            warnings.append(f"{data_dir}: read as ordinal {ordinal} (--ordinal) but stamped for ordinal "
                            f"{stamp.ordinal}: a swapped volume")
    elif stamp is not None:
        read_for = stamp.ordinal
    else:
        raise VerifyInputError(f"{data_dir} has no readable identity stamp; pass --ordinal N to say whose volume it is")
    # the writer that filled this volume is the one it was stamped for
    owner = stamp.ordinal if stamp is not None else read_for
    ckdir = layout.checkpoints_dir(data_dir)
    checkpoints: list[facts.CheckpointFact] = []
    temp_dirs = temp_bytes = 0
    try:
        names = sorted(os.listdir(ckdir)) if ckdir.is_dir() else []
    except OSError as exc:
        raise VerifyInputError(f"cannot list {ckdir}: {exc.strerror}; is the volume mounted and readable?") from exc
    for name in names:
        if layout.is_temp_name(name):
            temp_dirs += 1
            temp_bytes += fsutil.tree_bytes(ckdir / name)
            continue
        step = layout.parse_final_name(name)
        if step is None:
            warnings.append(f"{ckdir / name}: not a checkpoint or temp dir; ignored")
            continue
        check = validate.check_checkpoint(ckdir / name, step, owner, "full")
        if not check.valid and not os.path.lexists(ckdir / name):
            # A live writer's retention moved it away while it was read: it is no longer under a
            # final name, so it is not torn; whether its absence is a loss is the checkers' call.
            warnings.append(f"{ckdir / name}: removed while it was being verified (retention); not counted")
            continue
        m = check.manifest
        checkpoints.append(
            facts.CheckpointFact(
                ordinal=owner,
                step=step,
                name=name,
                valid=check.valid,
                digest=m.digest() if m else None,
                request_id=m.request_id if m else None,
                problem=check.problem,
            )
        )
    checkpoints.sort(key=lambda c: c.step)
    latest = max((c.step for c in checkpoints if c.valid), default=None)
    return (
        facts.VolumeFacts(
            ordinal=read_for,
            checkpoints=tuple(checkpoints),
            stamp=stamp,
            temp_dirs=temp_dirs,
            temp_bytes=temp_bytes,
            latest_valid_step=latest,
            read_as=ordinal,
        ),
        warnings,
    )


def all_valid(v: facts.VolumeFacts) -> bool:
    return all(c.valid for c in v.checkpoints)
