"""The HTML report opens in headless Chromium without errors and shows its plots."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.pipeline import run_job
from tests.contract import SIG_A
from tests.test_replayer import read, record, write

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    calls = [(float(i), "cache_signature", write(f"t{i}", SIG_A)) for i in range(10)]
    calls += [(20.0 + i, "get_cached_signature", read(f"t{i % 14}")) for i in range(40)]
    job = run_job(record(tmp / "rec.jsonl", calls), reports_root=tmp / "reports")
    return job.report_dir / "report.html"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_report_renders_with_its_plots(report_html: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", report_html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom.stdout)
    assert len(images) >= 3, "the report shows its plots inline"
    assert all(len(data) > 1000 for data in images)
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    assert "http://" not in dom.stdout and "https://" not in dom.stdout  # self-contained
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}-2",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            report_html.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
