"""The wire formats under kubesim's streaming subresources, without a cluster.

WebSocket (RFC 6455) and SPDY/3.1 framing as kubectl and the Python client produce them, the
CRI container-log format the sandbox shim writes, and how pods/log reads it (A11-A13, E4).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from kubesim import podlogs
from kubesim.apiserver.streaming import spdy, websocket
from kubesim.kubelet import sandbox


def _client_frame(opcode: int, payload: bytes, *, fin: bool = True, key: bytes = b"\x01\x02\x03\x04") -> bytes:
    """A masked frame as a client sends it."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def test_websocket_accept_key_is_the_rfc_example() -> None:
    assert websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_websocket_decoder_unmasks_assembles_fragments_and_passes_control_frames_between_them() -> None:
    payload = os.urandom(70_000)  # a 64-bit length on the last fragment
    wire = (_client_frame(websocket.OP_BINARY, b"\x00ab", fin=False)
            + _client_frame(websocket.OP_PING, b"hi")
            + _client_frame(websocket.OP_CONTINUATION, b"cd" * 100, fin=False)
            + _client_frame(websocket.OP_CONTINUATION, payload))
    decoder = websocket.Decoder()
    got: list[websocket.Message] = []
    for i in range(0, len(wire), 777):  # arbitrary TCP segmentation
        got += decoder.feed(wire[i:i + 777])
    assert [m.opcode for m in got] == [websocket.OP_PING, websocket.OP_BINARY]
    assert got[0].payload == b"hi"
    assert got[1].payload == b"\x00ab" + b"cd" * 100 + payload


def test_websocket_stream_mode_hands_out_fragments_as_they_come() -> None:
    decoder = websocket.Decoder(stream=True)
    got = decoder.feed(_client_frame(websocket.OP_BINARY, b"one", fin=False)
                       + _client_frame(websocket.OP_CONTINUATION, b"two"))
    assert [m.payload for m in got] == [b"one", b"two"]


@pytest.mark.parametrize(("frame", "why"), [
    (struct.pack("!BB", 0x82, 3) + b"abc", "must be masked"),
    (_client_frame(0x2, b"x")[:1].replace(b"\x82", b"\xc2") + _client_frame(0x2, b"x")[1:], "reserved bits"),
    (_client_frame(websocket.OP_CONTINUATION, b"x"), "continuation frame without"),
])
def test_websocket_decoder_refuses_what_rfc_6455_forbids(frame: bytes, why: str) -> None:
    with pytest.raises(websocket.ProtocolError, match=why):
        websocket.Decoder().feed(frame)


def test_websocket_server_frames_are_unmasked_with_the_shortest_length() -> None:
    assert websocket.encode(websocket.OP_BINARY, b"ab") == b"\x82\x02ab"
    assert websocket.encode(websocket.OP_BINARY, b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert websocket.encode(websocket.OP_BINARY, b"x" * 70_000)[:2] == b"\x82\x7f"
    assert websocket.close_frame(1000) == b"\x88\x02\x03\xe8"
    decoded = websocket.Decoder(require_mask=False).feed(websocket.encode(websocket.OP_TEXT, b"x" * 70_000))
    assert decoded == [websocket.Message(websocket.OP_TEXT, b"x" * 70_000)]


def test_spdy_dictionary_is_the_spdy3_one() -> None:
    """Byte for byte the dictionary of the SPDY/3 draft (and moby/spdystream's spdy/dictionary.go)."""
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02")


def test_spdy_parser_reads_what_a_client_sends_with_one_zlib_stream_per_direction() -> None:
    client = spdy.Writer()  # the client's compressor: its context carries over between header blocks
    headers = {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}
    wire = (client.syn_stream(1, headers) + client.data(1, fin=True)
            + client.syn_stream(3, {**headers, "streamtype": ["data"]})
            + client.data(3, b"GET / HTTP/1.1\r\n\r\n") + spdy.Writer.ping(1) + spdy.Writer.rst_stream(3)
            + spdy.Writer.goaway(3))
    parser = spdy.Parser()
    frames: list[spdy.Frame] = []
    for i in range(0, len(wire), 5):
        frames += parser.feed(wire[i:i + 5])
    syn1, fin1, syn3, data3, ping, rst, goaway = frames
    assert isinstance(syn1, spdy.SynStream)
    assert (syn1.stream_id, syn1.header("streamtype"), syn1.header("port")) == (1, "error", "8080")
    assert fin1 == spdy.Data(1, True, b"")
    assert isinstance(syn3, spdy.SynStream)
    assert syn3.header("streamtype") == "data"
    assert data3 == spdy.Data(3, False, b"GET / HTTP/1.1\r\n\r\n")
    assert ping == spdy.Ping(1)
    assert rst == spdy.RstStream(3, spdy.CANCEL)
    assert goaway == spdy.GoAway(3, 0)


def test_spdy_syn_reply_is_a_version_3_control_frame_with_a_compressed_empty_block() -> None:
    frame = spdy.Writer().syn_reply(5)
    first, flags_len, stream_id = struct.unpack_from("!III", frame)
    assert first == 0x80030002
    assert flags_len & 0xFFFFFF == len(frame) - 8
    assert stream_id == 5
    block = zlib.decompressobj(zlib.MAX_WBITS, spdy.DICTIONARY).decompress(frame[12:])
    assert block == b"\x00\x00\x00\x00"


def test_spdy_refuses_other_versions() -> None:
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        spdy.Parser().feed(struct.pack("!HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")


LOG = (b"2026-01-01T00:00:00.1Z stdout F a\n"
       b"2026-01-01T00:00:01.000000002Z stderr F b\n"
       b"2026-01-01T00:00:02Z stdout P c1\n"
       b"2026-01-01T00:00:02Z stdout F c2\n"
       b"2026-01-01T00:00:03Z stdout F last")


def _render(tmp_path: Path, query: dict[str, str]) -> bytes:
    path = tmp_path / "0.log"
    path.write_bytes(LOG)
    return podlogs.render_file(path, podlogs.options(query, "p"))


def test_cri_log_records_are_joined_filtered_and_stamped_as_the_kubelet_reads_them(tmp_path: Path) -> None:
    """E4: P records continue a line, F ends it; tail counts file lines; since/stream/limitBytes/timestamps."""
    assert _render(tmp_path, {}) == b"a\nb\nc1c2\nlast\n"
    assert _render(tmp_path, {"tailLines": "2"}) == b"c1c2\n"  # the incomplete last line does not count
    assert _render(tmp_path, {"sinceTime": "2026-01-01T00:00:01Z"}) == b"b\nc1c2\nlast\n"
    assert _render(tmp_path, {"stream": "Stderr"}) == b"b\n"
    assert _render(tmp_path, {"limitBytes": "3"}) == b"a\nb"
    stamped = _render(tmp_path, {"timestamps": "true", "tailLines": "3"})
    assert stamped == (b"2026-01-01T00:00:01.000000002Z b\n2026-01-01T00:00:02.000000000Z c1"
                       b"2026-01-01T00:00:02.000000000Z c2\n")


@pytest.mark.parametrize(("query", "message"), [
    ({"tailLines": "-1"}, "tailLines: Invalid value: -1: must be greater than or equal to 0"),
    ({"limitBytes": "0"}, "limitBytes: Invalid value: 0: must be greater than 0"),
    ({"sinceSeconds": "0"}, "sinceSeconds: Invalid value: 0: must be greater than 0"),
    ({"sinceSeconds": "5", "sinceTime": "2026-01-01T00:00:00Z"},
     "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"),
])
def test_pod_log_options_are_validated_like_upstream(query: dict[str, str], message: str) -> None:
    from kubesim.apiserver import errors

    with pytest.raises(errors.ApiError) as caught:
        podlogs.options(query, "p")
    assert caught.value.code == 422
    assert message in str(caught.value)
    assert str(caught.value).startswith('PodLogOptions "p" is invalid')


def test_follower_hands_out_complete_records_and_the_incomplete_one_only_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:01Z stdout F tw")
    follower = podlogs.Follower(path, podlogs.LogOptions(tail=0))
    assert follower.read_new() == b""
    with path.open("ab") as fh:
        fh.write(b"o\n2026-01-01T00:00:02Z stderr F three")
    assert follower.read_new() == b"two\n"
    assert follower.read_rest() == b"three\n"
    follower.close()


def test_the_shim_writes_pid1_output_as_cri_records(tmp_path: Path) -> None:
    """E4: the sandbox shim's LogCopier tags each line with its stream and splits over-long lines."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    long_line = "x" * (sandbox.LOG_LINE_MAX + 10)
    proc = subprocess.Popen(["sh", "-c", f"echo out; echo err >&2; printf '{long_line}\\n'; printf tail"],
                            stdout=out_w, stderr=err_w)
    os.close(out_w)
    os.close(err_w)
    log = tmp_path / "0.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        status = sandbox.LogCopier(out_r, err_r, fd).pump(proc.pid)
    finally:
        os.close(fd)
        os.close(out_r)
        os.close(err_r)
    proc.returncode = 0  # reaped by the copier
    assert status is not None
    assert os.waitstatus_to_exitcode(status) == 0
    lines = log.read_bytes().splitlines()
    tags = [line.split(b" ", 3)[1:3] for line in lines]
    assert [b"stdout", b"F"] in tags
    assert [b"stderr", b"F"] in tags
    assert [b"stdout", b"P"] in tags
    assert all(podlogs.parse_time_bytes(line.split(b" ", 1)[0]) for line in lines)
    text = podlogs.render_file(log, podlogs.LogOptions()).decode()
    assert sorted(text.splitlines()) == sorted(["out", "err", long_line, "tail"])
