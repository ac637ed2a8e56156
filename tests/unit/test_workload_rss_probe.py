"""The writer's memory figure is its own, whatever process starts the probe."""

from __future__ import annotations

from pathlib import Path

from harness.workload import bench


def test_rss_probe_reports_its_own_peak_not_its_big_parents(tmp_path: Path) -> None:
    # Linux carries ru_maxrss across execve: a probe started by a 256 MiB parent would report
    # at least 256 MiB if it read ru_maxrss. The probe writes an 8 MiB checkpoint.
    ballast = bytearray(256 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    peak_kib = bench.peak_rss_kib(tmp_path, 8 * 1024 * 1024, shards=2)
    assert peak_kib < 128 * 1024, f"probe reported {peak_kib} KiB: the parent's footprint leaked into the figure"
    del ballast
