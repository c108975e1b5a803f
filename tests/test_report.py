"""The HTML report (opened in headless Chromium, offline) and batch evaluation with baselines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from hybrid.cli import app
from hybrid.evaluate import evaluate, read_pairs

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


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make setup installs it)")
def test_report_in_headless_chromium_makes_no_request(report, tmp_path):
    shot, page_urls, dom = open_in_chromium(report, tmp_path)
    assert page_urls == []
    assert (
        dom.count("<audio") == 3 and dom.count('<img id="') == 5
    )  # notes, timbre, spectrograms, spectrum, calibration
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 1000 and pixels[:, :, :3].std() > 0.05  # a page with content, not blank


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make setup installs it)")
def test_the_request_check_can_fail(tmp_path):
    # Control: a page that loads an image from loopback must be caught by the same check.
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"><p>x</p></body></html>')
    _, page_urls, _ = open_in_chromium(page, tmp_path)
    assert page_urls == ["http://127.0.0.1:9/x.png"]


def test_report_command_on_an_existing_output(report, tmp_path):
    out = report.parent / "out.wav"
    r = runner.invoke(
        app,
        [
            "report",
            "--rhythm",
            str(EXAMPLES / "trumpet.ogg"),
            "--timbre",
            str(EXAMPLES / "guitar.wav"),
            "--output",
            str(out),
            "--html",
            str(tmp_path / "r.html"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").read_text().count("<audio") == 3


def test_evaluate_with_baselines_and_a_failing_pair(tiny_checkpoint, tmp_path):
    # A file that is missing is refused before any work (see test_bad_input.py); one that is there but cannot
    # be decoded fails its own pair only.
    pairs = tmp_path / "pairs.csv"
    (tmp_path / "broken.wav").write_bytes(b"RIFF broken" * 100)
    pairs.write_text(
        "rhythm,timbre,notes\n"
        f"{EXAMPLES / 'guitar.wav'},{EXAMPLES / 'trumpet.ogg'},{EXAMPLES / 'guitar_notes.mid'}\n"
        f"{EXAMPLES / 'trumpet.ogg'},{tmp_path / 'broken.wav'},\n"
    )
    assert len(read_pairs(pairs)) == 2
    out = evaluate(pairs, tmp_path / "results", ["hybrid", "copy-a", "copy-b"], str(tiny_checkpoint))
    rows = {s: json.loads((out / f"{s}.json").read_text())["rows"] for s in ("hybrid", "copy-a", "copy-b")}
    for s, r in rows.items():
        assert "broken.wav: not a readable audio file" in r[1]["error"], s  # a failure row, not a crash
    # Copy A keeps A's notes: its F1 against the ground truth is A's own transcription F1 (the ceiling).
    a = rows["copy-a"][0]
    assert a["note_f1"] == pytest.approx(a["a_transcription_f1"], abs=0.11)
    assert a["a_transcription_f1"] == pytest.approx(0.75, abs=0.01)  # as tests/test_transcription.py measures
    # Copy B is B itself: its timbre sits at B (score near 1), Copy A's at A (score 0).
    assert rows["copy-b"][0]["timbre_score"] > 0.8 and rows["copy-b"][0]["nearer_b"]
    assert a["timbre_score"] == pytest.approx(0.0, abs=0.05)
    summary = (out / "summary.md").read_text()
    assert all(f"| {s} |" in summary for s in ("hybrid", "copy-a", "copy-b"))
    assert "failed: " in (out / "hybrid.md").read_text()
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.isfinite(rows["hybrid"][0]["real_time_factor"])


def test_evaluate_never_writes_over_its_own_inputs(tmp_path):
    # A rhythm song lying where a result would be written (OUT/copy-a/pair00.wav) is refused, untouched.
    import shutil

    from hybrid.errors import HybridError
    from hybrid.evaluate import evaluate

    out = tmp_path / "res"
    (out / "copy-a").mkdir(parents=True)
    song = out / "copy-a" / "pair00.wav"
    shutil.copy(EXAMPLES / "guitar.wav", song)
    before = song.read_bytes()
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"rhythm,timbre\n{song},{EXAMPLES / 'trumpet.ogg'}\n")
    with pytest.raises(HybridError, match="res: folder exists and is not empty"):
        evaluate(csv, out, ["copy-a"])
    with pytest.raises(HybridError, match="pair00.wav: an input of the pairs lies in the results folder"):
        evaluate(csv, out, ["copy-a"], force=True)  # replacing the folder would delete the input
    assert song.read_bytes() == before
    with pytest.raises(HybridError, match="pairs.csv: is an input file"):
        evaluate(csv, csv, ["copy-a"])
