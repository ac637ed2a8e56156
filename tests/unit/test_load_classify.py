"""Which history op a checkpoint POST's answer becomes (writer contract in docs/durability.md)."""

from __future__ import annotations

import json

import pytest

from harness import ops
from harness.load import classify

INVOKE: ops.WriteInvoke = {"ordinal": 1, "request_id": "r1", "bytes": 10, "shards": 1, "url": "http://h:1"}
RECEIPT = {
    "ordinal": 1, "step": 7, "digest": "abc", "bytes": 10, "epoch": "e1", "durable_at": 12.5, "request_id": "r1",
}


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_200_with_full_receipt_is_ok_carrying_the_receipt() -> None:
    outcome = classify.classify_response(200, body(RECEIPT), INVOKE)
    assert outcome.type == "ok"
    assert outcome.value == RECEIPT
    assert outcome.error is None


@pytest.mark.parametrize("missing", ["ordinal", "step", "digest", "request_id", "durable_at"])
def test_200_without_a_receipt_field_is_info_never_ok(missing: str) -> None:
    receipt = {k: v for k, v in RECEIPT.items() if k != missing}
    outcome = classify.classify_response(200, body(receipt), INVOKE)
    assert outcome.type == "info"
    assert missing in (outcome.error or "")


def test_200_with_unparsable_body_is_info() -> None:
    assert classify.classify_response(200, b"<html>proxy</html>", INVOKE).type == "info"


def test_200_for_another_request_id_is_info() -> None:
    outcome = classify.classify_response(200, body({**RECEIPT, "request_id": "other"}), INVOKE)
    assert outcome.type == "info"


def test_200_with_boolean_step_is_info() -> None:
    assert classify.classify_response(200, body({**RECEIPT, "step": True}), INVOKE).type == "info"


@pytest.mark.parametrize("status", [400, 409, 500, 503, 507])
def test_listed_status_saying_nothing_published_is_fail(status: int) -> None:
    outcome = classify.classify_response(status, body({"error": "disk full", "published": False}), INVOKE)
    assert outcome.type == "fail"
    assert "disk full" in (outcome.error or "")
    assert outcome.value is None


@pytest.mark.parametrize("status", [400, 409, 500, 503, 507])
def test_listed_status_without_published_false_is_info(status: int) -> None:
    for payload in (b"oops", body({"error": "x"}), body({"error": "x", "published": True}), body({"published": 0})):
        assert classify.classify_response(status, payload, INVOKE).type == "info"


@pytest.mark.parametrize("status", [201, 204, 404, 408, 429, 502, 504])
def test_unlisted_status_is_info_even_if_body_says_not_published(status: int) -> None:
    outcome = classify.classify_response(status, body({"error": "x", "published": False}), INVOKE)
    assert outcome.type == "info"
    assert str(status) in (outcome.error or "")


def test_exception_is_info_naming_its_class() -> None:
    outcome = classify.classify_exception(ConnectionResetError(104, "Connection reset by peer"))
    assert outcome.type == "info"
    assert (outcome.error or "").startswith("ConnectionResetError")


@pytest.mark.parametrize("cause", [ConnectionRefusedError(111, "Connection refused"),
                                   OSError(113, "No route to host"), TimeoutError("timed out")])
def test_a_request_whose_connection_never_opened_is_fail_naming_the_cause(cause: OSError) -> None:
    outcome = classify.classify_exception(classify.NotSent(cause))
    assert outcome.type == "fail"
    assert (outcome.error or "").startswith(f"not sent: {cause.__class__.__name__}")


def test_a_refusal_raised_after_the_connection_opened_stays_info() -> None:
    """Only the load's own connect step wraps errors in NotSent; a bare one is not trusted."""
    assert classify.classify_exception(ConnectionRefusedError(111, "Connection refused")).type == "info"


def test_200_from_another_ordinal_is_info_naming_the_misrouting() -> None:
    outcome = classify.classify_response(200, body({**RECEIPT, "ordinal": 2}), INVOKE)
    assert outcome.type == "info"
    assert "misrouted: ordinal 2 answered (step 7" in (outcome.error or "")
