"""``harness writer bench`` / ``make bench``: the writer against a raw baseline, same run, same dir.

Figures (each compared with a baseline measured moments before, in the same directory):

* large: a 256 MiB checkpoint in 8 shards through the in-process :class:`store.CheckpointStore`
  (the full publish protocol, hashing included) vs ``dd bs=1M conv=fsync`` of the same number
  of bytes into one file (Python loop). Target: writer >= 0.8 x raw.
* small: 4 KiB checkpoints committed back to back (in-process store, keep-last 3, so
  retention runs too) vs 4 KiB append+fsync calls per second. A commit needs at least three
  fsyncs, so the target is commits/s >= 0.7 x (raw fsyncs/s / 3). Also printed: the same
  commits over HTTP (one keep-alive client), and the bare protocol's syscalls in a tight loop —
  on filesystems where creating an inode costs as much as an fsync, the three creations a
  commit needs (temp dir, shard, manifest) bound the rate below fsyncs/3 whatever the writer does.
* memory: peak RSS of a fresh process writing a 64 MiB and a 1 GiB checkpoint (streamed, so
  the two should be alike). Target: < 128 MiB for 1 GiB.

Rounds alternate baseline and writer so a noisy disk hurts both alike; medians are reported.

``harness bench formats``: each installed library format (docs/formats.md) against the raw
writer — a 256 MiB checkpoint in 8 shards through the same in-process store, default and
hardened variants, rounds alternating raw and format, the ratio the median of paired
bandwidths (format / raw; above 1 means faster than the raw writer, which hashes and fsyncs
every byte). Formats whose library is not installed are listed as such.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from harness.workload import app, config, events, formats, recovery, server, store

if TYPE_CHECKING:
    from rich.console import Console

MIB: Final = 1024 * 1024
LARGE_BYTES: Final = 256 * MIB
LARGE_SHARDS: Final = 8
SMALL_BYTES: Final = 4096
ROUNDS: Final = 4
SMALL_SECONDS: Final = 1.0
SLICES: Final = 8
SLICE_SECONDS: Final = 0.2


def _empty_store(ckdir: Path, keep_last: int,
                 checkpoint_format: config.CheckpointFormat = "raw") -> store.CheckpointStore:
    ckdir.mkdir(exist_ok=True)
    return store.CheckpointStore(ckdir, ordinal=0, volume_id="bench", epoch=app.new_epoch(),
                                 recovered=recovery.RecoveryReport((), 0, 0, 0.0), keep_last=keep_last,
                                 log=events.NullLog(), checkpoint_format=checkpoint_format)


def raw_large(work: Path, nbytes: int = LARGE_BYTES) -> float:
    """Seconds for ``dd bs=1M conv=fsync``: one file, 1 MiB writes of random bytes, one fsync.

    One file and one fsync is the cheapest way to make these bytes durable, so it is the
    strictest baseline for the writer's 8 shards + manifest + 3 directory fsyncs.
    """
    buf = memoryview(os.urandom(MIB))
    path = work / "raw-large"
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = nbytes
    while left:
        left -= os.write(fd, buf[: min(MIB, left)])
    os.fsync(fd)
    os.close(fd)
    seconds = time.perf_counter() - started
    path.unlink()
    return seconds


def writer_large(work: Path, nbytes: int = LARGE_BYTES, shards: int = LARGE_SHARDS,
                 checkpoint_format: config.CheckpointFormat = "raw") -> float:
    """Seconds for one checkpoint through the in-process store, in ``checkpoint_format``."""
    s = _empty_store(work / "ckpt-large", keep_last=0, checkpoint_format=checkpoint_format)
    started = time.perf_counter()
    s.publish(None, nbytes, shards)
    seconds = time.perf_counter() - started
    s.close()
    shutil.rmtree(s.ckdir)
    return seconds


class RawFsyncs:
    """4 KiB append + fsync into one file: the disk's fsync rate."""

    def __init__(self, work: Path) -> None:
        self.path = work / "raw-small"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.buf = os.urandom(SMALL_BYTES)

    def rate(self, seconds: float) -> float:
        n = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            os.write(self.fd, self.buf)
            os.fsync(self.fd)
            n += 1
        return n / elapsed

    def close(self) -> None:
        os.close(self.fd)
        self.path.unlink()


class BareProtocol:
    """The publish protocol's syscalls alone, in a tight loop (no hashing, JSON or locking):
    mkdir, create+write shard, create+write manifest, 3 fsyncs, rename, parent fsync. The
    floor the filesystem sets; the writer's distance from it is the writer's own overhead."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "bare"
        self.dir.mkdir()
        self.buf, self.small = os.urandom(SMALL_BYTES), os.urandom(400)
        self.n = 0

    def rate(self, seconds: float) -> float:
        d, done = self.dir, 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            tmp, final = d / f".tmp-{self.n}", d / f"step-{self.n:012d}"
            os.mkdir(tmp)
            for name, data in (("shard", self.buf), ("MANIFEST.json", self.small)):
                fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, data)
                os.fsync(fd)
                os.close(fd)
            for directory in (tmp, d):
                dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
                if directory == d:
                    os.rename(tmp, final)
                os.fsync(dfd)
                os.close(dfd)
            self.n += 1
            done += 1
        return done / elapsed

    def close(self) -> None:
        shutil.rmtree(self.dir)


class StoreCommits:
    """4 KiB checkpoints through the in-process store with keep-last 3 (retention runs too)."""

    def __init__(self, work: Path) -> None:
        self.store = _empty_store(work / "ckpt-small", keep_last=config.DEFAULT_KEEP_LAST)

    def rate(self, seconds: float) -> float:
        n = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            self.store.publish(None, SMALL_BYTES, 1)
            n += 1
        return n / elapsed

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.store.ckdir)


def http_commits_per_second(work: Path, seconds: float = SMALL_SECONDS) -> float:
    """The same small commits through the real HTTP server (in this process, one keep-alive client)."""
    data = work / "http-data"
    data.mkdir()
    cfg = config.WriterConfig(data_dir=data, host="127.0.0.1", port=0)
    pod = config.PodIdentity("bench-0", "bench", "bench", 0, "data-bench-0")
    writer = app.WriterApp(cfg, pod, events.NullLog())
    writer.boot()
    httpd = server.WriterHTTPServer("127.0.0.1", 0, writer)
    thread = server.start(httpd)
    conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=30)
    body = json.dumps({"bytes": SMALL_BYTES, "shards": 1})
    n = 0
    try:
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            conn.request("POST", "/checkpoints", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"bench POST answered {resp.status}")
            n += 1
    finally:
        conn.close()
        writer.stop(5)
        httpd.shutdown()
        thread.join(5)
        httpd.server_close()
        shutil.rmtree(data)
    return n / elapsed


def peak_rss_kib(work: Path, nbytes: int, shards: int = LARGE_SHARDS) -> int:
    ckdir = work / f"rss-{nbytes}"
    ckdir.mkdir()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "harness.workload.rss_probe", str(ckdir), str(nbytes), str(shards)],
            check=True, capture_output=True, text=True, timeout=300,
        ).stdout
    finally:
        shutil.rmtree(ckdir)
    return int(json.loads(out.strip().splitlines()[-1])["peak_rss_kib"])


def run(console: Console, base_dir: Path | None = None) -> None:
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="writer-bench-", dir=base_dir))
    try:
        console.print(f"measuring in {work}; baseline and writer alternate, ratios are medians of pairs")
        raw_l: list[float] = []
        wr_l: list[float] = []
        for r in range(ROUNDS):
            console.print(f"large round {r + 1}/{ROUNDS}: 256 MiB dd-style raw, then writer 256 MiB / 8 shards")
            raw_l.append(LARGE_BYTES / raw_large(work))
            wr_l.append(LARGE_BYTES / writer_large(work))
        console.print(f"small: {SLICES} x ({SLICE_SECONDS}s raw fsyncs, bare protocol, writer commits)")
        raw_s: list[float] = []
        bare_s: list[float] = []
        wr_s: list[float] = []
        raw, bare, commits = RawFsyncs(work), BareProtocol(work), StoreCommits(work)
        try:
            for _ in range(SLICES):
                raw_s.append(raw.rate(SLICE_SECONDS))
                bare_s.append(bare.rate(SLICE_SECONDS))
                wr_s.append(commits.rate(SLICE_SECONDS))
        finally:
            raw.close()
            bare.close()
            commits.close()
        http_s = http_commits_per_second(work)
        console.print("memory: fresh processes writing 64 MiB and 1 GiB checkpoints")
        rss_small = peak_rss_kib(work, 64 * MIB)
        rss_large = peak_rss_kib(work, 1024 * MIB)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # ratios are medians of paired measurements (same round / same slice), so a disk that slows
    # down mid-run shifts both sides of a pair alike
    raw_large_bps, writer_large_bps = statistics.median(raw_l), statistics.median(wr_l)
    raw_fsync_rate, commit_rate = statistics.median(raw_s), statistics.median(wr_s)
    bare_rate = statistics.median(bare_s)
    large_ratio = statistics.median(w / r for w, r in zip(wr_l, raw_l, strict=True))
    small_ratio = statistics.median(w / (r / 3) for w, r in zip(wr_s, raw_s, strict=True))
    overhead_ratio = statistics.median(w / b for w, b in zip(wr_s, bare_s, strict=True))
    table = Table("figure", "writer", "baseline", "ratio", "target", "ok")
    table.add_row("256 MiB / 8 shards, MB/s", f"{writer_large_bps / 1e6:.0f}",
                  f"{raw_large_bps / 1e6:.0f} (raw write+fsync)", f"{large_ratio:.2f}", ">= 0.80",
                  _ok(large_ratio >= 0.8))
    table.add_row("4 KiB commits/s (store)", f"{commit_rate:.0f}",
                  f"{raw_fsync_rate:.0f} fsyncs/s (/3 = {raw_fsync_rate / 3:.0f})", f"{small_ratio:.2f}", ">= 0.70",
                  _ok(small_ratio >= 0.7))
    table.add_row("4 KiB commits/s (store)", f"{commit_rate:.0f}", f"{bare_rate:.0f} (bare protocol syscalls)",
                  f"{overhead_ratio:.2f}", "(overhead)", "")
    table.add_row("4 KiB commits/s (HTTP, 1 client)", f"{http_s:.0f}", "(information)",
                  f"{http_s / (raw_fsync_rate / 3):.2f}", "", "")
    table.add_row("peak RSS, 1 GiB checkpoint", f"{rss_large / 1024:.1f} MiB", f"{rss_small / 1024:.1f} MiB at 64 MiB",
                  f"{rss_large / rss_small:.2f}", "< 128 MiB", _ok(rss_large < 128 * 1024))
    console.print(table)
    console.print("large rounds, MB/s raw/writer: "
                  + ", ".join(f"{a / 1e6:.0f}/{b / 1e6:.0f}" for a, b in zip(raw_l, wr_l, strict=True)))
    console.print("small slices, raw fsyncs/s / bare commits/s / writer commits/s: "
                  + ", ".join(f"{a:.0f}/{b:.0f}/{c:.0f}" for a, b, c in zip(raw_s, bare_s, wr_s, strict=True)))


FORMAT_ROUNDS: Final = 3


def run_formats(console: Console, base_dir: Path | None = None) -> None:
    """Each installed library format's 256 MiB bandwidth against the raw writer's, same run, same dir."""
    from rich.table import Table

    table = Table("format", "library", "MB/s", "raw writer MB/s", "ratio (format / raw)")
    work = Path(tempfile.mkdtemp(prefix="formats-bench-", dir=base_dir))
    try:
        console.print(f"measuring in {work}: {LARGE_BYTES // MIB} MiB / {LARGE_SHARDS} shards per checkpoint, "
                      f"{FORMAT_ROUNDS} rounds alternating raw and format")
        for fmt in config.CHECKPOINT_FORMATS:
            if fmt == "raw":
                continue
            missing = config.missing_library(fmt)
            if missing is not None:
                table.add_row(fmt, "not installed", "", "", missing)
                continue
            library = formats.load(fmt) or ""
            writer_large(work, 4096, 1, checkpoint_format=fmt)  # warm the library up (first-call costs)
            raw_bw: list[float] = []
            fmt_bw: list[float] = []
            for _ in range(FORMAT_ROUNDS):
                raw_bw.append(LARGE_BYTES / writer_large(work))
                fmt_bw.append(LARGE_BYTES / writer_large(work, checkpoint_format=fmt))
            ratio = statistics.median(f / r for f, r in zip(fmt_bw, raw_bw, strict=True))
            console.print(f"{fmt}: MB/s raw/format " + ", ".join(f"{r / 1e6:.0f}/{f / 1e6:.0f}"
                                                                   for r, f in zip(raw_bw, fmt_bw, strict=True)))
            table.add_row(fmt, library, f"{statistics.median(fmt_bw) / 1e6:.0f}",
                          f"{statistics.median(raw_bw) / 1e6:.0f}", f"{ratio:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(table)


def _ok(passed: bool) -> str:
    return "[green]yes[/green]" if passed else "[red]NO[/red]"


__all__ = ["run", "run_formats"]
