"""The endpoints file: atomic rewrites, cheap re-reads, loud bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.load import endpoints


def test_write_then_read_round_trips_and_counts_versions(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    first = endpoints.write(path, {0: "http://127.0.0.1:8080/", 2: "http://10.0.0.2:8080"})
    assert first.version == 1
    second = endpoints.write(path, {0: "http://127.0.0.1:9090"})
    assert second.version == 2
    read = endpoints.read(path)
    assert read.urls == {0: "http://127.0.0.1:9090"}
    assert read.version == 2


def test_rewrite_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    for port in range(8000, 8010):
        endpoints.write(path, {0: f"http://127.0.0.1:{port}"})
    assert [p.name for p in tmp_path.iterdir()] == ["endpoints.json"]


def test_concurrent_reader_never_sees_a_half_written_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    many = {o: f"http://127.0.0.{o % 250 + 1}:{8000 + o}" for o in range(300)}
    endpoints.write(path, many)
    stop = threading.Event()
    errors: list[Exception] = []

    def rewrite() -> None:
        port = 1
        while not stop.is_set():
            endpoints.write(path, {**many, 0: f"http://127.0.0.1:{port}"})
            port = port % 60000 + 1

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(300):
            try:
                assert len(endpoints.read(path).urls) == 300
            except endpoints.EndpointsError as exc:
                errors.append(exc)
    finally:
        stop.set()
        writer.join()
    assert errors == []


def test_follower_picks_up_a_rewrite_and_ignores_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    endpoints.write(path, {0: "http://127.0.0.1:1000", 1: "http://127.0.0.1:1001"})
    follower = endpoints.Follower(path)
    assert follower.refresh() is False
    endpoints.write(path, {0: "http://127.0.0.1:2000", 1: "http://127.0.0.1:1001"})
    assert follower.refresh() is True
    assert follower.url(0) == "http://127.0.0.1:2000"
    assert follower.url(5) is None


def test_follower_keeps_the_last_good_mapping_when_the_file_goes_bad(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    endpoints.write(path, {0: "http://127.0.0.1:1000"})
    follower = endpoints.Follower(path)
    path.write_text("{not json")
    assert follower.refresh() is False
    path.unlink()
    assert follower.refresh() is False
    assert follower.url(0) == "http://127.0.0.1:1000"


def test_url_list_takes_positions_or_explicit_ordinals() -> None:
    assert endpoints.parse_url_list("http://a:1, http://b:2").urls == {0: "http://a:1", 1: "http://b:2"}
    assert endpoints.parse_url_list("3=http://a:1,5=http://b:2/").urls == {3: "http://a:1", 5: "http://b:2"}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no endpoints"),
        (" , ", "no endpoints"),
        ("ftp://a:1", "not an http"),
        ("http://a", "needs a host and a port"),
        ("http://a:notaport", "invalid port"),
        ("http://a:1?x=1", "without ?query"),
        ("0=http://a:1,0=http://b:2", "given twice"),
    ],
)
def test_bad_url_lists_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(endpoints.EndpointsError, match=complaint.replace("?", r"\?")):
        endpoints.parse_url_list(text)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[]", "must be an object"),
        ('{"endpoints": {"x": "http://a:1"}}', "must map an ordinal"),
        ('{"endpoints": {"0": "http://a:1"}, "version": "2"}', "version must be an integer"),
        ("nope", "not JSON"),
    ],
)
def test_malformed_endpoints_file_is_refused(tmp_path: Path, content: str, complaint: str) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(content)
    with pytest.raises(endpoints.EndpointsError, match=complaint):
        endpoints.read(path)


def test_missing_endpoints_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(endpoints.EndpointsError, match="no endpoints file at"):
        endpoints.read(tmp_path / "absent.json")
