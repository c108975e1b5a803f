"""A sample library's recorded notes as an NSynth-format set (hybrid dataset build --samples)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hybrid.cli import app
from hybrid.data.nsynth import NSynthReader
from hybrid.data.samples import note_from_onset, pitch_from_name, velocity_from_name

SR = 44_100


@pytest.mark.parametrize(
    "stem,pitch",
    [
        ("piano_C4", 60),
        ("Piano.ff.A0", 21),
        ("violin_sustain_F#3_f_2", 54),
        ("flute-Bb2", 46),
        ("Fs4_rr1", 66),  # SFZ libraries spell sharps with s
        ("Cb-ord-A2-mf-2c-N", 45),  # TinySOL: Cb is the contrabass, A2 the note
        ("C-1", 0),
        ("take_7", None),
    ],
)
def test_pitch_from_name(stem, pitch):
    assert pitch_from_name(stem) == pitch


def test_velocity_from_name():
    assert velocity_from_name("piano_C4_v80") == 80 and velocity_from_name("piano_C4") == 100
    assert velocity_from_name("C4_V200") == 127


def tone(midi: float, seconds: float, lead_s: float = 0.3) -> np.ndarray:
    """A decaying harmonic note after lead_s of silence."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) * np.exp(-t / 1.5)
    return np.concatenate([np.zeros(int(lead_s * SR)), 0.3 * y / np.abs(y).max()]).astype(np.float32)


def test_note_from_onset_starts_at_the_note_and_lasts_four_seconds():
    y = tone(60, 6.0)
    note = note_from_onset(y, SR)
    assert len(note) == 4 * SR
    assert np.abs(note[: int(0.005 * SR)]).max() < 0.02 < np.abs(note[int(0.01 * SR) : int(0.03 * SR)]).max()
    assert abs(note[-1]) < 1e-6  # cut with a fade
    short = note_from_onset(tone(60, 1.0, lead_s=0.0), SR)
    assert len(short) == 4 * SR and np.all(short[int(1.1 * SR) :] == 0)


def test_a_folder_of_recorded_notes_becomes_a_training_set(tmp_path):
    lib = tmp_path / "my_piano"
    lib.mkdir()
    sf.write(lib / "piano_C4_v80.wav", tone(60, 3.0), SR)
    sf.write(lib / "piano_G4.wav", tone(67, 3.0), SR)
    sf.write(lib / "take_2.wav", tone(57, 3.0), SR)  # no pitch in the name: measured (A3)
    sf.write(lib / "piano_E4.wav", tone(58, 3.0), SR)  # named a tritone off what it plays: dropped
    sf.write(lib / "silent_D4.wav", np.zeros(SR, np.float32), SR)  # silent: refused on reading, dropped
    other = tmp_path / "my_organ"
    other.mkdir()
    sf.write(other / "organ_A3.wav", tone(57, 3.0), SR)
    r = CliRunner().invoke(
        app,
        ["dataset", "build", "--samples", str(lib), "--samples", str(other), "--out", str(tmp_path / "ds"),
         "--family", "keyboard", "--licence", "CC0, recorded by me"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    records = {}
    for split in ("train", "valid", "test"):
        records.update(json.loads((tmp_path / "ds" / f"nsynth-{split}" / "examples.json").read_text()))
    got = sorted((rec["sample_file"], rec["pitch"], rec["velocity"]) for rec in records.values())
    assert got == [
        ("organ_A3.wav", 57, 100),
        ("piano_C4_v80.wav", 60, 80),
        ("piano_G4.wav", 67, 100),
        ("take_2.wav", 57, 100),
    ]
    assert {rec["licence"] for rec in records.values()} == {"CC0, recorded by me"}
    assert {rec["sample_rate"] for rec in records.values()} == {SR}
    info = json.loads((tmp_path / "ds" / "build_info.json").read_text())
    assert info["report"]["dropped"] == {"off_pitch": 1, "unreadable": 1}
    reader = NSynthReader(tmp_path / "ds", ("train", "valid", "test"))
    audio, ex = reader[0]
    assert audio.shape == (64000,)  # read at the decoder's 16 kHz
    assert len({e.instrument_str for e in reader}) == 2  # one instrument per folder


def test_bad_sample_options_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = CliRunner().invoke
    r = run(app, ["dataset", "build", "--samples", str(empty), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 1 and "holds no audio files" in r.output
    r = run(app, ["dataset", "build", "--out", str(tmp_path / "ds")])
    assert r.exit_code == 1 and "give --soundfont or --samples" in r.output
    (empty / "x.wav").write_bytes(b"")
    r = run(
        app, ["dataset", "build", "--samples", str(empty), "--out", str(tmp_path / "ds"), "--family", "kazoo"]
    )
    assert r.exit_code == 1 and "--family must be one of" in r.output
