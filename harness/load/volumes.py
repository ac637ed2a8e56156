"""Read local checkpoint volumes back after a load, as the checkers' facts.

Uses the writer's offline verifier through its CLI (``harness verify DIR --json`` prints a
:class:`harness.facts.VolumeFacts`), the same contract a pod-side verify job uses, so the
load never depends on the writer's internals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from harness import facts


class VolumeReadError(Exception):
    """The verifier could not read a volume at all (exit 2 or no JSON)."""


def verify_volume(data_dir: Path, ordinal: int | None = None, timeout_s: float = 120.0) -> facts.VolumeFacts:
    cmd = [sys.executable, "-m", "harness", "verify", str(data_dir), "--json"]
    if ordinal is not None:
        cmd += ["--ordinal", str(ordinal)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    # exit 1 means "some checkpoint is torn": still a full report, and exactly what a checker needs.
    if done.returncode not in (0, 1):
        raise VolumeReadError(f"harness verify {data_dir} failed ({done.returncode}): {done.stderr.strip()}")
    try:
        return facts.volume_facts_from_dict(json.loads(done.stdout))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise VolumeReadError(f"harness verify {data_dir} printed no VolumeFacts JSON: {exc}") from exc


def run_facts(volumes: Mapping[int, Path], keep_last: int = 0) -> facts.RunFacts:
    """Facts for a load run against local writers: their volumes, read back (no cluster identity)."""
    return facts.RunFacts(
        volumes=tuple(verify_volume(path, ordinal) for ordinal, path in sorted(volumes.items())),
        keep_last=keep_last,
    )
