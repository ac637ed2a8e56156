"""The offline verifier: finds torn checkpoints and orphaned temp bytes, and never writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import cli, facts
from harness.workload import config, events, fsutil, identity, layout, recovery, store
from harness.workload import verify as verify_mod

POD = config.PodIdentity("ckpt-3", "ns", "ckpt", 3, "data-ckpt-3")


def volume_with_checkpoints(data: Path, n: int = 3) -> list[store.Published]:
    stamp = identity.establish(data, POD, fsutil.Disk()).stamp
    assert stamp is not None
    ckdir = layout.checkpoints_dir(data)
    ckdir.mkdir()
    s = store.CheckpointStore(ckdir, ordinal=3, volume_id=stamp.volume_id, epoch="e",
                              recovered=recovery.RecoveryReport((), 0, 0, 0.0), keep_last=0, log=events.NullLog())
    done = [s.publish(None, 3000, 2, f"r{i}") for i in range(n)]
    s.close()
    return done


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.join(dirpath, name)] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return out


def test_clean_volume_is_all_valid_and_matches_the_acks(tmp_path: Path) -> None:
    acks = volume_with_checkpoints(tmp_path)
    found, warnings = verify_mod.verify_volume(tmp_path)
    assert warnings == []
    assert found.ordinal == 3
    assert found.stamp is not None
    assert found.stamp.claim == "data-ckpt-3"
    assert [(c.step, c.valid, c.digest, c.request_id) for c in found.checkpoints] == [
        (a.step, True, a.digest, a.request_id) for a in acks
    ]
    assert found.latest_valid_step == 3
    assert verify_mod.all_valid(found)


def test_torn_shard_and_temp_bytes_are_reported_and_nothing_is_written(tmp_path: Path) -> None:
    volume_with_checkpoints(tmp_path)
    ckdir = layout.checkpoints_dir(tmp_path)
    shard = ckdir / layout.final_name(3) / "shard-00001.bin"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")  # same size, last byte changed
    (ckdir / layout.final_name(2) / "shard-00000.bin").unlink()
    (ckdir / ".tmp-4-abcd").mkdir()
    (ckdir / ".tmp-4-abcd" / "shard-00000.bin").write_bytes(b"q" * 777)
    before = snapshot(tmp_path)
    found, _ = verify_mod.verify_volume(tmp_path)
    assert snapshot(tmp_path) == before, "the verifier changed the volume"
    by_step = {c.step: c for c in found.checkpoints}
    assert (by_step[3].valid, by_step[3].problem) == (False, "shard-00001.bin digest mismatch")
    assert (by_step[2].valid, by_step[2].problem) == (False, "shard-00000.bin missing")
    assert by_step[1].valid
    assert found.latest_valid_step == 1
    assert (found.temp_dirs, found.temp_bytes) == (1, 777)
    assert not verify_mod.all_valid(found)


def test_checkpoint_retired_while_it_is_read_is_not_torn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a live writer's reaper renamed a checkpoint away mid-read and the verifier
    called it torn ("shard unreadable: No such file or directory")."""
    volume_with_checkpoints(tmp_path)
    ckdir = layout.checkpoints_dir(tmp_path)
    real_check = verify_mod.validate.check_checkpoint

    def reaped_mid_read(path: Path, *args: object) -> object:
        if path.name == layout.final_name(1):  # the reaper: rename out of sight, then delete
            trash = ckdir / ".reap-1"
            path.rename(trash)
            (trash / "shard-00000.bin").unlink()
            return real_check(trash, *args)  # what the reader saw: a shard gone under its feet
        return real_check(path, *args)

    monkeypatch.setattr(verify_mod.validate, "check_checkpoint", reaped_mid_read)
    found, warnings = verify_mod.verify_volume(tmp_path)
    assert [(c.step, c.valid) for c in found.checkpoints] == [(2, True), (3, True)]
    assert any("removed while it was being verified" in w for w in warnings)


def test_checkpoint_written_by_another_ordinal_is_invalid(tmp_path: Path) -> None:
    volume_with_checkpoints(tmp_path, 1)
    stamp = json.loads((tmp_path / layout.STAMP_NAME).read_text())
    stamp["ordinal"] = 4
    (tmp_path / layout.STAMP_NAME).write_text(json.dumps(stamp))
    found, _ = verify_mod.verify_volume(tmp_path)
    assert found.checkpoints[0].problem == "written by ordinal 3, volume belongs to ordinal 4"


def test_cli_json_is_volume_facts_and_exit_codes_say_valid_torn_bad_input(tmp_path: Path) -> None:
    volume_with_checkpoints(tmp_path, 2)
    runner = CliRunner()
    ok = runner.invoke(cli.build_app(), ["verify", str(tmp_path), "--json"])
    assert ok.exit_code == 0, ok.output
    parsed = facts.volume_facts_from_dict(json.loads(ok.stdout))
    assert parsed == verify_mod.verify_volume(tmp_path)[0]
    (layout.checkpoints_dir(tmp_path) / layout.final_name(1) / layout.MANIFEST_NAME).write_text("{}")
    torn = runner.invoke(cli.build_app(), ["verify", str(tmp_path)])
    assert torn.exit_code == 1
    assert "TORN" in torn.stdout
    missing = runner.invoke(cli.build_app(), ["verify", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "is not a directory" in missing.stderr


def test_unstamped_volume_needs_an_ordinal(tmp_path: Path) -> None:
    with pytest.raises(verify_mod.VerifyInputError, match="--ordinal"):
        verify_mod.verify_volume(tmp_path)
    found, _ = verify_mod.verify_volume(tmp_path, ordinal=5)
    assert (found.ordinal, found.read_as, found.stamp, found.checkpoints) == (5, 5, None, ())


def test_without_ordinal_the_stamp_keys_the_volume_and_the_facts_say_it_was_not_asked(tmp_path: Path) -> None:
    volume_with_checkpoints(tmp_path, 1)
    found, warnings = verify_mod.verify_volume(tmp_path)
    assert (found.ordinal, found.read_as) == (3, None)
    assert warnings == []
    own, warnings = verify_mod.verify_volume(tmp_path, ordinal=3)
    assert (own.ordinal, own.read_as) == (3, 3)
    assert warnings == []


def test_ordinal_asked_for_is_kept_apart_from_the_stamps_and_a_swap_is_reported(tmp_path: Path) -> None:
    """Regression: --ordinal was ignored whenever there was a stamp, so the swapped-volume check
    compared the stamp's ordinal with itself."""
    acks = volume_with_checkpoints(tmp_path, 2)
    found, warnings = verify_mod.verify_volume(tmp_path, ordinal=0)
    assert (found.ordinal, found.read_as) == (0, 0)
    assert found.stamp is not None
    assert found.stamp.ordinal == 3
    assert [w for w in warnings if "swapped volume" in w] == [
        f"{tmp_path}: read as ordinal 0 (--ordinal) but stamped for ordinal 3: a swapped volume"
    ]
    # its checkpoints are ordinal 3's and intact: validated against the stamp, not the claim
    assert [(c.ordinal, c.valid, c.digest) for c in found.checkpoints] == [(3, True, a.digest) for a in acks]
    runner = CliRunner()
    as_json = runner.invoke(cli.build_app(), ["verify", str(tmp_path), "--json", "--ordinal", "0"])
    assert as_json.exit_code == 0, as_json.output
    assert facts.volume_facts_from_dict(json.loads(as_json.stdout)) == found
    table = runner.invoke(cli.build_app(), ["verify", str(tmp_path), "--ordinal", "0"])
    assert "SWAPPED: stamped for ordinal 3, read as ordinal 0" in table.stdout
