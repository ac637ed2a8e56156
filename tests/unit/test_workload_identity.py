"""The identity stamp: written on an empty volume, a mismatch is loud, a stranger's volume is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.workload import config, fsutil, identity, layout

POD = config.PodIdentity("ckpt-1", "ns", "ckpt", 1, "data-ckpt-1")


def test_empty_volume_is_stamped_durably_and_then_matches(tmp_path: Path) -> None:
    (tmp_path / "lost+found").mkdir()
    first = identity.establish(tmp_path, POD, fsutil.Disk())
    assert first.outcome == "stamped"
    assert first.stamp is not None
    doc = json.loads((tmp_path / layout.STAMP_NAME).read_text())
    assert (doc["ordinal"], doc["claim"], doc["statefulset"], doc["namespace"]) == (1, "data-ckpt-1", "ckpt", "ns")
    assert len(doc["volume_id"]) == 32
    again = identity.establish(tmp_path, POD, fsutil.Disk())
    assert (again.outcome, again.stamp) == ("matched", first.stamp)


def test_stamp_of_another_ordinal_is_a_mismatch_naming_both(tmp_path: Path) -> None:
    identity.establish(tmp_path, POD, fsutil.Disk())
    other = config.PodIdentity("ckpt-2", "ns", "ckpt", 2, "data-ckpt-2")
    result = identity.establish(tmp_path, other, fsutil.Disk())
    assert result.outcome == "mismatch"
    assert not result.ok
    assert "ordinal 1 (this pod: 2)" in (result.problem or "")
    assert "claim 'data-ckpt-1'" in (result.problem or "")


def test_unstamped_volume_with_data_is_refused_not_adopted(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-000000000001").mkdir()
    result = identity.establish(tmp_path, POD, fsutil.Disk())
    assert result.outcome == "mismatch"
    assert "no identity stamp but is not empty" in (result.problem or "")
    assert not (tmp_path / layout.STAMP_NAME).exists()


def test_corrupt_stamp_is_a_mismatch_and_interrupted_stamp_temp_is_cleared(tmp_path: Path) -> None:
    (tmp_path / f"{layout.STAMP_TEMP_PREFIX}abcd").write_text("{")
    assert identity.establish(tmp_path, POD, fsutil.Disk()).outcome == "stamped"
    assert not any(n.startswith(layout.STAMP_TEMP_PREFIX) for n in os.listdir(tmp_path))
    (tmp_path / layout.STAMP_NAME).write_text('{"ordinal": 1}')
    result = identity.establish(tmp_path, POD, fsutil.Disk())
    assert result.outcome == "mismatch"
    assert "malformed" in (result.problem or "")


def test_a_stamp_the_json_parser_chokes_on_is_a_mismatch_not_a_crash(tmp_path: Path) -> None:
    """Regression: a stamp nested past the recursion limit raised RecursionError out of
    establish(), killing the boot thread: the writer stayed "booting" instead of refusing."""
    (tmp_path / layout.STAMP_NAME).write_bytes(b"[" * 100_000)
    result = identity.establish(tmp_path, POD, fsutil.Disk())
    assert result.outcome == "mismatch"
    assert "malformed" in (result.problem or "")
