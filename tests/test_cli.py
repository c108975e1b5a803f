"""The `hybrid` command through typer's test runner: outputs, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hybrid.cli import app
from hybrid.notes import read_midi

from .conftest import DATA, EXAMPLES

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_commands():
    r = run("--help")
    assert r.exit_code == 0
    for cmd in ("transcribe", "stretch", "score"):
        assert cmd in r.output


def test_transcribe_writes_midi_with_estimated_tempo(tmp_path):
    out = tmp_path / "g.mid"
    r = run("transcribe", DATA / "egset12_guitar_01.wav", "-o", out)
    assert r.exit_code == 0, r.output
    seq = read_midi(out)
    assert len(seq) == 7
    assert f"tempo {seq.tempo_bpm:.1f} BPM" in r.output
    assert seq.tempo_bpm != pytest.approx(120.0)  # the estimate, not basic-pitch's nominal tempo


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "g.mid"
    out.write_bytes(b"keep me")
    r = run("transcribe", DATA / "egset12_guitar_01.wav", "-o", out)
    assert r.exit_code == 1 and "--force" in r.output
    assert out.read_bytes() == b"keep me"


def test_refuses_to_overwrite_input(tmp_path):
    src = tmp_path / "g.wav"
    shutil.copy(DATA / "egset12_guitar_01.wav", src)
    r = run("stretch", src, "-o", src, "--rate", "1.1", "--force")
    assert r.exit_code == 1 and "is an input file" in r.output
    assert src.read_bytes() == (DATA / "egset12_guitar_01.wav").read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "file not found"), (b"", "file is empty"), (b"\x00garbage" * 50, "not a readable audio file")],
)
def test_bad_input_gives_one_line_and_no_traceback(tmp_path, content, message):
    src = tmp_path / "in.wav"
    if content is not None:
        src.write_bytes(content)
    r = run("transcribe", src, "-o", tmp_path / "o.mid")
    assert r.exit_code == 1
    assert r.output.strip() == f"error: {src}: {message}" or message in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not (tmp_path / "o.mid").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--frame-threshold", "-1"), ("--onset-threshold", "nan"), ("--min-note-ms", "0")]
)
def test_absurd_transcription_options_are_one_line_before_any_work(tmp_path, option, value):
    # --frame-threshold -1 used to keep basic-pitch's note search from ever ending.
    src = DATA / "egset12_guitar_01.wav"
    r = run("transcribe", src, "-o", tmp_path / "o.mid", option, value)
    assert r.exit_code == 1 and option in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.mid").exists()


def test_silent_and_nan_inputs(tmp_path):
    silent, nan = tmp_path / "silent.wav", tmp_path / "nan.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    for path, msg in ((silent, "is silent"), (nan, "NaN")):
        r = run("stretch", path, "-o", tmp_path / "o.wav", "--rate", "2")
        assert r.exit_code == 1 and msg in r.output and len(r.output.strip().splitlines()) == 1


def test_stretch_needs_exactly_one_of_rate_or_bpm(tmp_path):
    r = run("stretch", EXAMPLES / "guitar.wav", "-o", tmp_path / "o.wav")
    assert r.exit_code == 1 and "exactly one of --rate or --bpm" in r.output
    r = run("stretch", EXAMPLES / "guitar.wav", "-o", tmp_path / "o.wav", "--rate", "0")
    assert r.exit_code == 1 and "between" in r.output


def test_stretch_audio_to_bpm(tmp_path):
    out = tmp_path / "t.wav"
    r = run("stretch", EXAMPLES / "trumpet.ogg", "-o", out, "--bpm", "120")
    assert r.exit_code == 0, r.output
    src_len = sf.info(EXAMPLES / "trumpet.ogg").duration
    rate = float(r.output.split("rate ")[1].split(",")[0])
    assert sf.info(out).duration == pytest.approx(src_len / rate, rel=0.01)


def test_score_json_against_note_list(tmp_path):
    # Reference in Hz (mir_eval format), estimate as MIDI written from the same notes: a perfect score.
    ref = tmp_path / "ref.txt"
    ref.write_text("0.0 0.5 440.0\n0.5 1.0 523.2511306\n")
    est = tmp_path / "est.mid"
    from hybrid.notes import Note, NoteSequence, write_midi

    write_midi(NoteSequence([Note(0.0, 0.5, 69), Note(0.5, 1.0, 72)], 90.0), est)
    r = run("score", "--reference", ref, "--estimate", est, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["f1"] == 1.0 and d["onset_f1"] == 1.0 and d["n_reference"] == 2
    assert d["reference_tempo_bpm"] is None and d["estimate_tempo_bpm"] == pytest.approx(
        90.0, rel=1e-5
    )  # MIDI stores whole microseconds per beat


def test_score_audio_against_its_own_midi(tmp_path):
    mid = tmp_path / "g.mid"
    assert run("transcribe", DATA / "egset12_guitar_01.wav", "-o", mid).exit_code == 0
    r = run("score", "--reference", mid, "--estimate", DATA / "egset12_guitar_01.wav")
    assert r.exit_code == 0, r.output
    assert "onset only         1.000     1.000     1.000" in r.output
    assert "ratio 1.000" in r.output


def test_transcribe_refuses_to_write_midi_into_an_audio_name(tmp_path):
    r = run("transcribe", DATA / "egset12_guitar_01.wav", "-o", tmp_path / "out.wav")
    assert r.exit_code == 1 and ".mid" in r.output and not (tmp_path / "out.wav").exists()
