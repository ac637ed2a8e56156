"""Untrusted text the writer parses: the POST body, and names read back from the volume.

Every malformed input must come back as the module's own one-line error (a 400 at the HTTP
layer), never as an exception the server was not written for: those dropped the connection
with a traceback instead of answering.
"""

from __future__ import annotations

import pytest

from harness.workload import api, layout

MAX_BYTES = 1 << 30


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        # past Python's int-string conversion limit (4300 digits): int() raises ValueError
        (b'{"bytes": 10, "shards": 1, "step": 1' + b"0" * 4300 + b"}", "digits"),
        (b'{"bytes": 1' + b"0" * 5000 + b', "shards": 1}', "digits"),
        # the body cap allows nesting far past the recursion limit: RecursionError
        (b"[" * 60000, "nested"),
        (b'{"bytes": ' + b"[" * 30000, "nested"),
    ],
    ids=["step-4301-digits", "bytes-5001-digits", "deep-array", "deep-value"],
)
def test_bodies_that_break_the_json_parser_are_bad_requests(raw: bytes, complaint: str) -> None:
    assert len(raw) <= api.MAX_BODY_BYTES
    with pytest.raises(api.BadRequest, match=complaint) as bad:
        api.parse_checkpoint_request(raw, MAX_BYTES)
    assert "\n" not in str(bad.value)


def test_long_but_convertible_integers_still_say_out_of_range() -> None:
    with pytest.raises(api.BadRequest, match="out of range"):
        api.parse_checkpoint_request(b'{"bytes": 10, "shards": 1, "step": ' + b"9" * 19 + b"}", MAX_BYTES)
    req = api.parse_checkpoint_request(b'{"bytes": 10, "shards": 1, "step": 7}', MAX_BYTES)
    assert (req.bytes, req.shards, req.step) == (10, 1, 7)


@pytest.mark.parametrize(
    "name",
    [
        "step-00000000000\u00b2",  # superscript two: str.isdigit() is true, int() refuses it
        "step-\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",  # Arabic-Indic: \\d matched
        "step-000000000001\n",  # "$" matched before a trailing newline
    ],
    ids=["superscript", "arabic-indic", "trailing-newline"],
)
def test_only_ascii_final_names_are_checkpoints(name: str) -> None:
    """Regression: ``\\d`` and ``$`` let a directory that is not ``final_name(step)`` parse as
    that step, so recovery judged and the store listed a name it would never publish."""
    assert layout.parse_final_name(name) is None
    assert layout.parse_final_name(layout.final_name(12)) == 12


@pytest.mark.parametrize("text", ["5", "0", "999999999999"])
def test_parse_step_accepts_plain_ascii_decimals(text: str) -> None:
    assert layout.parse_step(text) == int(text)


@pytest.mark.parametrize("text", ["\u00b2", "\u00b9\u00b2", "1" * 4301, "1" * 13, "-1", "+1", " 1", "1_0", "", "1\n"])
def test_parse_step_refuses_everything_else(text: str) -> None:
    assert layout.parse_step(text) is None
