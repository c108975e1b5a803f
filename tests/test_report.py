"""The HTML report (opened in headless Chromium, offline) and batch evaluation with baselines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from hybrid.cli import app
from hybrid.evaluate import evaluate

from .conftest import EXAMPLES

runner = CliRunner()
CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def open_in_chromium(page, tmp_path):
    """Load a local page; return (screenshot path, page-initiated URLs, DOM)."""
    netlog = tmp_path / f"{page.stem}.netlog.json"
    shot = tmp_path / f"{page.stem}.png"
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    subprocess.run(
        [
            *common,
            f"--log-net-log={netlog}",
            "--window-size=1200,3200",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # Requests the page made carry its (file://) origin; Chromium's own background requests do not.
    page_urls = [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]
    return shot, page_urls, dom


@pytest.fixture(scope="module")
def report(tiny_checkpoint, tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    r = runner.invoke(
        app,
        [
            "transfer",
            "--rhythm",
            str(EXAMPLES / "trumpet.ogg"),
            "--timbre",
            str(EXAMPLES / "guitar.wav"),
            "-o",
            str(d / "out.wav"),
            "--checkpoint",
            str(tiny_checkpoint),
            "--report",
            str(d / "report.html"),
        ],
    )
    assert r.exit_code == 0, r.output
    return d / "report.html"


def test_report_is_self_contained(report):
    text = report.read_text()
    assert len(re.findall(r'<audio controls[^>]*src="data:audio/ogg;base64,', text)) == 3
    for plot in ("pianoroll", "timbre", "spectrograms", "spectrum", "calibration"):
        assert re.search(rf'<img id="{plot}"[^>]*src="data:image/png;base64,', text)
    srcs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert srcs and all(s.startswith("data:") for s in srcs)
    assert "onset-only precision / recall / F1" in text and "timbre score" in text and "seed" in text
    # The calibration was measured on the example guitar's notes (9 annotated, MIDI 41-65).
    m = re.search(r"B&#x27;s own notes \((\d+), MIDI (\d+)-(\d+)\)", text)
    assert m and abs(int(m[1]) - 9) <= 3 and abs(int(m[2]) - 41) <= 2 and abs(int(m[3]) - 65) <= 2


def test_the_report_tells_the_rate_and_what_played(report):
    import soundfile as sf

    text = report.read_text()
    assert ">44100<" in text and "played from" in text
    assert sf.info(report.parent / "out.wav").samplerate == 44100


def test_evaluate_never_writes_over_its_own_inputs(tmp_path):
    # A rhythm song lying where a result would be written (OUT/copy-a/pair00.wav) is refused, untouched.
    import shutil

    from hybrid.errors import HybridError

    out = tmp_path / "res"
    (out / "copy-a").mkdir(parents=True)
    song = out / "copy-a" / "pair00.wav"
    shutil.copy(EXAMPLES / "guitar.wav", song)
    before = song.read_bytes()
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"rhythm,timbre\n{song},{EXAMPLES / 'trumpet.ogg'}\n")
    with pytest.raises(HybridError, match="an input of the pairs lies where a result would be written"):
        evaluate(csv, out, ["copy-a"])
    assert song.read_bytes() == before
    with pytest.raises(HybridError, match="is not a folder"):
        evaluate(csv, csv, ["copy-a"])
