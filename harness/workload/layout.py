"""Where things live on a checkpoint volume, in one place so the writer, its boot recovery and
the offline verifier can never disagree about a name.

Volume layout (the data dir is the PVC's mount point)::

    <data>/identity.json                 the identity stamp (tmp + fsync + rename + dir fsync)
    <data>/checkpoints/step-%012d/       published checkpoints (final, never-reused names)
        shard-00000.bin ...              the shards
        MANIFEST.json                    written last; names, sizes and digests of the shards
    <data>/checkpoints/.tmp-<step>-<hex> in-progress writes and retention's trash
    <data>/checkpoints/*.orbax-checkpoint-tmp  Orbax's own in-progress writes (format orbax)

Library formats (docs/formats.md) put what their library writes under the same final names.

Checkpoints live in a sub-folder rather than the volume root so the root stays free for the
stamp and for what a fresh filesystem already holds (``lost+found`` on ext4), and so a
directory listing of ``checkpoints/`` contains nothing but checkpoints and their temp dirs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

STAMP_NAME: Final = "identity.json"
STAMP_TEMP_PREFIX: Final = ".identity.json.tmp-"
CHECKPOINTS_DIR: Final = "checkpoints"
MANIFEST_NAME: Final = "MANIFEST.json"
TEMP_PREFIX: Final = ".tmp-"
#: Orbax's own temporary directory (orbax.checkpoint ``atomicity.TMP_DIR_SUFFIX``): the orbax format
#: publishes ``step-%012d.orbax-checkpoint-tmp`` by renaming it; never acknowledged under that name
LIBRARY_TEMP_MARKS: Final = (".orbax-checkpoint-tmp",)
#: entries a freshly formatted volume may already hold; they do not make it "non-empty"
FRESH_VOLUME_ENTRIES: Final = frozenset({"lost+found"})

# Names and numbers are matched whole (fullmatch: "$" would also match before a trailing
# newline) and with ASCII [0-9] only: "\d" and str.isdigit() accept other scripts' digits,
# some of which int() refuses ('²': ValueError) or reads as a number (Arabic-Indic), so a name that
# final_name() never produces would parse as a step.
_FINAL_RE: Final = re.compile(r"step-([0-9]{12})")
_STEP_RE: Final = re.compile(r"[0-9]{1,12}")
_SHARD_FMT: Final = "shard-{:05d}.bin"
#: a file name a manifest may list: a plain name inside the checkpoint directory, never a path
_SAFE_FILE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_STEP: Final = 10**12 - 1


def checkpoints_dir(data_dir: Path) -> Path:
    return data_dir / CHECKPOINTS_DIR


def final_name(step: int) -> str:
    return f"step-{step:012d}"


def parse_final_name(name: str) -> int | None:
    """The step a final name stands for, or None when ``name`` is not a final name."""
    m = _FINAL_RE.fullmatch(name)
    return int(m.group(1)) if m else None


def parse_step(text: str) -> int | None:
    """A step written in untrusted text (a URL path): 0..MAX_STEP in ASCII digits, else None."""
    return int(text) if _STEP_RE.fullmatch(text) else None


def temp_name(step: int, token: str, purpose: str = "") -> str:
    """A temp dir name; ``purpose`` tells a write (``""``) from retention's trash (``"reap"``)."""
    return f"{TEMP_PREFIX}{step}-{purpose + '-' if purpose else ''}{token}"


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) or any(mark in name for mark in LIBRARY_TEMP_MARKS)


def shard_name(index: int) -> str:
    return _SHARD_FMT.format(index)


def is_safe_file_name(name: str) -> bool:
    return bool(_SAFE_FILE_RE.fullmatch(name)) and name != MANIFEST_NAME
