"""Identity on real volumes: stamped by the writer's own code, read back by the offline verifier.

The swapped-volume check compares the ordinal a volume was read as (its claim's, ``harness
verify --ordinal``) with the ordinal its stamp names; these tests go through the code that
produces both, so a verifier that silently trusts the stamp again cannot pass them.
"""

from __future__ import annotations

from pathlib import Path

from harness import facts
from harness.checkers import durability, expect, identity, synth
from harness.checkers.verdict import Verdict
from harness.load import volumes as load_volumes
from harness.workload import config, events, fsutil, layout, recovery, store
from harness.workload import identity as workload_identity
from harness.workload import verify as verify_mod

EXP = expect.Expectations()


def _writer_volume(data: Path, ordinal: int, checkpoints: int = 2) -> tuple[str, list[store.Published]]:
    """A volume as the writer for ``ordinal`` leaves it: stamped at first boot, then checkpoints."""
    data.mkdir(parents=True, exist_ok=True)
    pod = config.PodIdentity(f"{synth.STATEFULSET}-{ordinal}", synth.NAMESPACE, synth.STATEFULSET, ordinal,
                             synth.claim_of(ordinal))
    stamp = workload_identity.establish(data, pod, fsutil.Disk()).stamp
    assert stamp is not None
    ckdir = layout.checkpoints_dir(data)
    ckdir.mkdir()
    s = store.CheckpointStore(ckdir, ordinal=ordinal, volume_id=stamp.volume_id, epoch="e",
                              recovered=recovery.RecoveryReport((), 0, 0, 0.0), keep_last=0, log=events.NullLog())
    published = [s.publish(None, 2048, 2, f"o{ordinal}-r{i}") for i in range(checkpoints)]
    s.close()
    return stamp.volume_id, published


def _acknowledged(b: synth.HistoryBuilder, published: list[store.Published]) -> None:
    """The history's side of those checkpoints: each write acknowledged with its digest."""
    for p in published:
        w = b.begin_write(p.ordinal, p.step, request_id=p.request_id)
        b.end_write(w, "ok", digest=p.digest, publish=False)


def _run(found: list[facts.VolumeFacts], volume_ids: dict[int, str]) -> facts.RunFacts:
    """The cluster map unchanged across the run: each ordinal's claim on the volume it started with."""
    idents = tuple(
        facts.OrdinalIdentity(ordinal=o, pod=f"{synth.STATEFULSET}-{o}", claim=synth.claim_of(o), claim_uid=f"uid-{o}",
                              volume=f"pv-{o}", node="node-0", volume_id=vid)
        for o, vid in sorted(volume_ids.items())
    )
    return facts.RunFacts(volumes=tuple(found), identity_before=idents, identity_after=idents)


def _problem_ordinals(v: Verdict) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for p in v.details["problems"]:  # type: ignore[attr-defined]
        out.setdefault(p["ordinal"], []).append(p["reason"])
    return out


def test_volume_stamped_for_ordinal_1_read_as_ordinal_0_is_a_swapped_volume(tmp_path: Path) -> None:
    vid, published = _writer_volume(tmp_path / "vol", 1)
    found, warnings = verify_mod.verify_volume(tmp_path / "vol", ordinal=0)
    assert (found.ordinal, found.read_as) == (0, 0)
    assert found.stamp is not None
    assert found.stamp.ordinal == 1
    assert any("swapped volume" in w for w in warnings)
    assert all(c.valid and c.ordinal == 1 for c in found.checkpoints)  # intact: the writer's, on the wrong claim
    b = synth.HistoryBuilder()
    _acknowledged(b, published)
    v = identity.check(b.ops, _run([found], {0: vid}), EXP)
    assert v.valid is False
    reasons = _problem_ordinals(v)[0]
    assert any("swapped volume: the volume read for ordinal 0 is stamped for ordinal 1" in r for r in reasons)


def test_two_real_volumes_swapped_0_and_1_are_flagged_on_both_ordinals(tmp_path: Path) -> None:
    vid0, pub0 = _writer_volume(tmp_path / "a", 0)
    vid1, pub1 = _writer_volume(tmp_path / "b", 1)
    b = synth.HistoryBuilder()
    _acknowledged(b, pub0 + pub1)
    # read back by the load's caller (``harness verify DIR --json --ordinal N`` in a subprocess),
    # ordinal 0's claim holding ordinal 1's volume and the other way round
    run = load_volumes.run_facts({0: tmp_path / "b", 1: tmp_path / "a"})
    assert [(v.ordinal, v.read_as, v.stamp.ordinal if v.stamp else None) for v in run.volumes] == [(0, 0, 1), (1, 1, 0)]
    run = _run(list(run.volumes), {0: vid0, 1: vid1})
    v = identity.check(b.ops, run, EXP)
    assert v.valid is False
    bad = _problem_ordinals(v)
    assert sorted(bad) == [0, 1]
    assert any("is stamped for ordinal 1" in r for r in bad[0])
    assert any("is stamped for ordinal 0" in r for r in bad[1])
    # keyed by the claim it was read from, ordinal 0's acknowledged checkpoints are not on ordinal 0's volume
    d = durability.check(b.ops, run, EXP)
    assert d.valid is False
    assert d.details["counts"]["lost"] == len(pub0) + len(pub1)  # type: ignore[index]


def test_unstamped_volume_with_checkpoints_is_flagged(tmp_path: Path) -> None:
    vid, published = _writer_volume(tmp_path / "vol", 0)
    (tmp_path / "vol" / layout.STAMP_NAME).unlink()  # the stamp that would have exposed a swap is gone
    found, _ = verify_mod.verify_volume(tmp_path / "vol", ordinal=0)
    assert found.stamp is None
    assert len(found.checkpoints) == len(published)
    v = identity.check([], _run([found], {0: vid}), EXP)  # flagged from the volume alone, no history needed
    assert v.valid is False
    [reason] = _problem_ordinals(v)[0]
    assert reason.startswith("unstamped volume: the volume read for ordinal 0 has no readable identity stamp")
    assert "2 checkpoints on it" in reason


def test_unstamped_empty_volume_without_acknowledged_writes_is_fine(tmp_path: Path) -> None:
    (tmp_path / "vol").mkdir()  # a writer that never booted far enough to stamp it
    b = synth.HistoryBuilder()
    b.write(1, 1)  # another ordinal's acknowledgement is not this volume's
    found, _ = verify_mod.verify_volume(tmp_path / "vol", ordinal=0)
    assert (found.stamp, found.checkpoints, found.read_as) == (None, (), 0)
    v = identity.check(b.ops, _run([found], {0: "vol-0"}), EXP)
    assert v.valid is True, v.summary
    assert v.details["problems"] == []
