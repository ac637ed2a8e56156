"""facts.json: round trip and clear errors for anything malformed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import facts
from harness.checkers import synth


def _sample() -> facts.RunFacts:
    b = synth.HistoryBuilder()
    b.write(0, 1)
    b.write(1, 1, "info", publish=True)
    b.publish(1, 2, None, None, valid=False, problem="shard-0 short")
    return b.facts(range(2), keep_last=2, retention=facts.RetentionPolicy(when_scaled="Delete"), scaled_down=(1,))


def test_facts_round_trip_through_the_file(tmp_path: Path) -> None:
    original = _sample()
    path = tmp_path / facts.FACTS_FILE
    original.dump(path)
    assert facts.RunFacts.load(path) == original
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_facts_file_is_a_facts_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(facts.FactsError, match=r"no facts file at .*facts\.json"):
        facts.RunFacts.load(tmp_path / facts.FACTS_FILE)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"volumes": [{"ordinal": 0, "checkpoints": [{"ordinal": 0, "step": 1}]}]}),  # fields missing
        json.dumps({"volumes": [{"ordinal": 0, "checkpoints": [
            {"ordinal": 0, "step": "7", "name": "step-7", "valid": True}]}]}),  # a step that is a string
        json.dumps({"volumes": [{"ordinal": 0, "checkpoints": [
            {"ordinal": 0, "step": 7, "name": "step-7", "valid": "yes"}]}]}),
        json.dumps({"retention": {"when_scaled": "Sometimes"}}),
        json.dumps({"volumes": {"0": {}}}),
        json.dumps({"keep_last": "three"}),
        json.dumps({"identity_before": [{"ordinal": 0, "pod": "p", "extra": 1}]}),
        json.dumps({"volumes": [{"ordinal": 0, "read_as": "0"}]}),
        json.dumps({"volumes": [{"ordinal": 0, "read_as": 1}]}),  # keyed as another ordinal than it was read as
        json.dumps({"declared_faults": True}),
        json.dumps({"declared_faults": -1}),
    ],
)
def test_malformed_facts_are_a_facts_error_never_a_crash(tmp_path: Path, content: str) -> None:
    path = tmp_path / facts.FACTS_FILE
    path.write_text(content)
    with pytest.raises(facts.FactsError) as err:
        facts.RunFacts.load(path)
    assert "\n" not in str(err.value)


def test_verifier_output_parses_into_volume_facts() -> None:
    raw = {"ordinal": 2, "checkpoints": [{"ordinal": 2, "step": 7, "name": "step-00000007", "valid": True,
                                          "digest": "d", "request_id": "r"}],
           "stamp": {"statefulset": "ckpt", "namespace": "ns", "ordinal": 2, "claim": "data-ckpt-2",
                     "volume_id": "v"},
           "temp_dirs": 1, "temp_bytes": 10, "latest_valid_step": 7}
    v = facts.volume_facts_from_dict(raw)
    assert v.checkpoints[0].step == 7
    assert v.stamp is not None
    assert v.stamp.ordinal == 2
    assert v.latest_valid_step == 7


def test_volume_facts_stored_before_read_as_existed_load_with_it_unknown() -> None:
    v = facts.volume_facts_from_dict({"ordinal": 2})
    assert v.read_as is None
    assert facts.volume_facts_from_dict({"ordinal": 2, "read_as": 2}).read_as == 2
