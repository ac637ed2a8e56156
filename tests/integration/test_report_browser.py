"""report.html and index.html in a real browser: headless Chromium opens them offline, logs no
console message, lays out one fault band per fault in the timeline, and paints them.

Chromium is driven by its command line only (``--dump-dom`` for the DOM after load,
``--enable-logging=stderr`` for console messages, ``--screenshot``): no driver, no DevTools
client, nothing to install from a registry but Debian's ``chromium``. The pages carry no
script, so any console line at all is a failure — and a control page that does log proves the
console check can see one. The machine has no network: every flag that would reach out is off.

The screenshots land in the run folder (``report.png``) and the reports folder (``index.png``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import page, runs, synthrun

#: generous only for a first run that installs chromium with apt; with it present the test takes ~10 s
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--enable-logging=stderr", "--v=0",
         "--window-size=1400,1600", "--hide-scrollbars")
CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")
FAULTS = 3
#: a fault band (#f28e2b at 22 % over white), as Chromium paints it, within a tolerance
BAND_RGB = (252, 230, 208)


def _install() -> str | None:
    """Debian's chromium, installed with apt-get when we are root and apt is there; else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing (install it with: apt-get install -y chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "chromium"]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300, check=False)
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
    return None if CHROMIUM.exists() else f"{CHROMIUM} is missing and apt-get install -y chromium did not bring it"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        missing = _install()
        if missing is not None:
            pytest.skip(missing)
    return CHROMIUM


class Browser:
    """Runs headless Chromium jobs side by side, each with a fresh profile."""

    def __init__(self, binary: Path, scratch: Path) -> None:
        self.binary = binary
        self.scratch = scratch
        self.jobs: list[tuple[str, subprocess.Popen[str]]] = []

    def start(self, name: str, target: Path, *action: str) -> None:
        profile = self.scratch / f"profile-{name}"
        cmd = [str(self.binary), *FLAGS, f"--user-data-dir={profile}", *action, target.resolve().as_uri()]
        self.jobs.append((name, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                 start_new_session=True)))

    def finish(self) -> dict[str, tuple[str, list[str]]]:
        """name → (stdout, console lines)."""
        out = {}
        for name, proc in self.jobs:
            try:
                stdout, stderr = proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.communicate()
                pytest.fail(f"chromium ({name}) did not finish within 90 s")
            assert proc.returncode == 0, f"chromium ({name}) exited {proc.returncode}: {stderr[-2000:]}"
            out[name] = (stdout, CONSOLE.findall(stderr))
        return out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _band_pixels(path: Path) -> int:
    import numpy  # numpy and pillow come with matplotlib
    from PIL import Image

    with Image.open(path) as img:
        rgb = numpy.asarray(img.convert("RGB"), dtype=numpy.int16)
    return int((numpy.abs(rgb - numpy.array(BAND_RGB)) <= 10).all(axis=2).sum())


def test_report_and_index_open_cleanly_with_their_fault_bands(chromium: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run_dir = synthrun.write(reports / "20261201T000000Z-pod-kill",
                             synthrun.Shape(scenario="pod-kill", faults=FAULTS, lost=1, torn=1))
    synthrun.write(reports / "20261202T000000Z-pod-kill", synthrun.Shape(scenario="pod-kill", faults=1, seed=9,
                                                                         with_results=False))
    report = page.build(run_dir)
    index = runs.build_index(reports)
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><script>console.error("control-error")</script></body></html>')

    browser = Browser(chromium, tmp_path)
    browser.start("report-dom", report, "--dump-dom")
    browser.start("report-shot", report, f"--screenshot={run_dir / 'report.png'}")
    browser.start("index-dom", index, "--dump-dom")
    browser.start("index-shot", index, f"--screenshot={reports / 'index.png'}")
    browser.start("control", control, "--dump-dom")
    done = browser.finish()

    assert any("control-error" in line for line in done["control"][1]), "the console check sees nothing"
    for name in ("report-dom", "report-shot", "index-dom", "index-shot"):
        assert done[name][1] == [], f"{name}: console messages {done[name][1]}"

    dom = done["report-dom"][0]
    assert '<svg' in dom
    assert 'class="timeline"' in dom
    bands = re.findall(r'<g id="fault-band-(\d+)" class="fault-band"><title>([^<]*)</title>', dom)
    assert [int(i) for i, _ in bands] == list(range(FAULTS))
    assert all("pod-kill" in title for _, title in bands)
    assert dom.count('class="fault-row"') == FAULTS
    assert 'data-status="deviated"' in dom  # a lost checkpoint: the system failed

    index_dom = done["index-dom"][0]
    assert 'id="run-20261201T000000Z-pod-kill"' in index_dom
    assert 'data-status="incomplete"' in index_dom
    assert 'id="trend-svg-pod-kill"' in index_dom

    for shot in (run_dir / "report.png", reports / "index.png"):
        assert shot.is_file()
        assert _png_size(shot) == (1400, 1600)
    assert _band_pixels(run_dir / "report.png") > 500, "no fault band painted in the report's screenshot"
