"""Manifest encoding, self-digest and the checks that reject a tampered or hostile manifest."""

from __future__ import annotations

import json

import pytest

from harness.workload import api, config, layout, manifest, payload


def sample() -> manifest.Manifest:
    files = (manifest.FileEntry("shard-00000.bin", 10, "aa" * 32), manifest.FileEntry("shard-00001.bin", 5, "bb" * 32))
    return manifest.Manifest(7, 2, "epoch-x", "vol-1", 1700000000.25, "req-9", files)


def redigest(doc: dict[str, object]) -> bytes:
    doc = dict(doc)
    doc.pop("digest", None)
    doc["digest"] = manifest.body_digest(doc)
    return json.dumps(doc).encode()


def test_manifest_round_trips_with_the_same_digest() -> None:
    m = sample()
    back = manifest.decode(m.encode())
    assert back == m
    assert back.digest() == m.digest()
    assert back.total_bytes == 15
    assert len(m.digest()) == 64


def test_any_edited_field_breaks_the_manifest_digest() -> None:
    doc = json.loads(sample().encode())
    for field, value in [("step", 8), ("ordinal", 3), ("request_id", "other"), ("bytes", 16)]:
        edited = dict(doc, **{field: value})
        with pytest.raises(manifest.ManifestError, match="digest does not match"):
            manifest.decode(json.dumps(edited).encode())


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden", "MANIFEST.json"])
def test_manifest_naming_a_path_or_itself_is_rejected_even_with_a_good_digest(name: str) -> None:
    doc = json.loads(sample().encode())
    doc["files"][0]["name"] = name
    with pytest.raises(manifest.ManifestError, match="unsafe file name"):
        manifest.decode(redigest(doc))


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [(b"\x00garbage", "not JSON"), (b"[]", "not a JSON object"), (b"{}", "no digest")],
)
def test_unreadable_manifest_says_why(raw: bytes, complaint: str) -> None:
    with pytest.raises(manifest.ManifestError, match=complaint):
        manifest.decode(raw)


def test_manifest_with_inconsistent_total_or_bool_step_is_rejected() -> None:
    doc = json.loads(sample().encode())
    with pytest.raises(manifest.ManifestError, match="do not add up"):
        manifest.decode(redigest(dict(doc, bytes=99)))
    with pytest.raises(manifest.ManifestError, match="bad step"):
        manifest.decode(redigest(dict(doc, step=True)))


def test_payload_is_not_zeros_and_differs_per_step_shard_and_offset() -> None:
    def chunk(epoch: str, step: int, shard: int, offset: int, size: int) -> bytes:
        return bytes(payload.ShardPayload("v", epoch, step, shard).chunk(offset, size))

    a = chunk("e", 1, 0, 0, 65536)
    assert a.count(0) < 1024
    assert chunk("e", 1, 0, 0, 65536) == a  # deterministic
    others = {chunk("e", 2, 0, 0, 65536), chunk("e", 1, 1, 0, 65536), chunk("e2", 1, 0, 0, 65536),
              chunk("e", 1, 0, 65536, 65536)}
    assert len({a, *others}) == 5
    assert chunk("e", 1, 0, 100, 50) == a[100:150]
    whole = chunk("e", 1, 0, 0, 3 * 1024 * 1024)
    assert chunk("e", 1, 0, 1024 * 1024 - 10, 5000) == whole[1024 * 1024 - 10 : 1024 * 1024 + 4990]
    blocks = [whole[i : i + 4096] for i in range(0, len(whole), 4096)]
    assert len(set(blocks)) == len(blocks), "a 4 KiB block repeats inside a shard (dedupable)"


def test_final_and_temp_names_round_trip() -> None:
    assert layout.final_name(42) == "step-000000000042"
    assert layout.parse_final_name("step-000000000042") == 42
    assert layout.parse_final_name("step-42") is None
    assert layout.parse_final_name(".tmp-42-abcd") is None
    assert layout.is_temp_name(layout.temp_name(42, "abcd"))
    assert layout.temp_name(42, "abcd", "reap") == ".tmp-42-reap-abcd"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"", "not valid JSON"),
        (b'{"bytes": 1.5, "shards": 1}', "must be an integer"),
        (b'{"bytes": 10, "shards": 1, "step": 0}', "out of range"),
        (b'{"bytes": 10, "shards": 1, "step": -3}', "out of range"),
        (b'{"bytes": 10, "shards": 1, "request_id": 5}', "request_id"),
        (b'{"bytes": 10, "shards": 1, "request_id": "a\\nb"}', "request_id"),
        (b'{"bytes": 101, "shards": 1}', "out of range 1..100"),
    ],
)
def test_checkpoint_request_rejects_bad_input(body: bytes, complaint: str) -> None:
    with pytest.raises(api.BadRequest, match=complaint):
        api.parse_checkpoint_request(body, max_bytes=100)


def test_checkpoint_request_accepts_the_contract_fields() -> None:
    req = api.parse_checkpoint_request(b'{"bytes": 100, "shards": 4, "step": 9, "request_id": "r"}', 100)
    assert req == api.CheckpointRequest(100, 4, 9, "r")
    assert api.parse_checkpoint_request(b'{"bytes": 1, "shards": 1}', 100).step is None
    assert config.MAX_SHARDS == 1024


@pytest.mark.parametrize(
    "raw",
    [
        b'{"step": 1' + b"0" * 4300 + b"}",  # int() refuses 4300+ digits with a ValueError
        b"[" * 100_000,  # nesting past the recursion limit: RecursionError
    ],
    ids=["int-4301-digits", "deep-nesting"],
)
def test_a_manifest_the_json_parser_chokes_on_is_a_manifest_error(raw: bytes) -> None:
    """Regression: these escaped decode() as ValueError/RecursionError, so one such file under
    a final name killed boot recovery (the writer stayed "booting" for good) and the verifier."""
    with pytest.raises(manifest.ManifestError, match="not JSON"):
        manifest.decode(raw)
