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
    assert r.exit_code == 1 and "give --soundfont, or --samples/--sfz" in r.output
    (empty / "x.wav").write_bytes(b"")
    r = run(
        app, ["dataset", "build", "--samples", str(empty), "--out", str(tmp_path / "ds"), "--family", "kazoo"]
    )
    assert r.exit_code == 1 and "--family must be one of" in r.output


SFZ = """
// a sketch of an sfzinstruments-style layout: defines, an include named through one, a default path, groups
// and regions
#define $VELTOP 90
#define $MAP mapping
<control> default_path=samples\\
#include "$MAP.sfz"
"""
MAPPING = """
/* the soft layer */
<group> lovel=1 hivel=$VELTOP amp_veltrack=80
<region> sample=Soft C4.wav pitch_keycenter=c4 lokey=b3 hikey=c#4
<region> sample=long.wav pitch_keycenter=69 offset=44100 end=176399
<group> hivel=127 // the loud layer, with its own velocity
<region> sample=loud.wav key=e4
<region> sample=nameless.wav lokey=50 hikey=50 tune=-3
<region> sample=guess_G4.wav
<region> sample=release.wav trigger=release pitch_keycenter=60
<region> sample=*sine pitch_keycenter=60
<region> sample=missing.wav key=d4
"""


def write_sfz_library(root):
    (root / "samples").mkdir(parents=True)
    (root / "piano.sfz").write_text(SFZ)
    (root / "mapping.sfz").write_text(MAPPING)
    sf.write(root / "samples" / "Soft C4.wav", tone(60, 3.0), SR)
    # a take of three notes in one file: A4 from 1 s to 4 s (frames 44100-176399), others around it
    sf.write(
        root / "samples" / "long.wav",
        np.concatenate([tone(62, 1.0, 0.0), tone(69, 3.0, 0.0), tone(50, 1.0, 0.0)]),
        SR,
    )
    sf.write(root / "samples" / "loud.wav", tone(64, 3.0), SR)
    sf.write(root / "samples" / "nameless.wav", tone(50, 3.0), SR)
    sf.write(root / "samples" / "guess_G4.wav", tone(67, 3.0), SR)
    sf.write(root / "samples" / "release.wav", tone(60, 1.0), SR)


def test_an_sfz_file_maps_its_regions_notes(tmp_path):
    from hybrid.data.sfz import read_sfz, sfz_note

    assert [sfz_note(v) for v in ("c4", "C#4", "db4", "a0", "60", "c-1", "g9", "h4", "128")] == [
        60, 61, 61, 21, 60, 0, 127, None, None,
    ]  # fmt: skip
    write_sfz_library(tmp_path)
    regions = read_sfz(tmp_path / "piano.sfz")
    got = [(r.sample.name, r.pitch, r.velocity, r.offset, r.end) for r in regions]
    assert got == [
        ("Soft C4.wav", 60, 90, 0, None),  # a name with a space; the group's hivel through its #define
        ("long.wav", 69, 90, 44100, 176399),
        ("loud.wav", 64, 127, 0, None),  # the second group does not keep the first's hivel=90
        ("nameless.wav", 50, 127, 0, None),  # one key: lokey = hikey
        ("guess_G4.wav", None, 127, 0, None),  # no key: the builder reads the name
        ("missing.wav", 62, 127, 0, None),
    ]  # the release sample and the built-in sine are skipped
    assert all(r.sample.parent == tmp_path / "samples" for r in regions)  # default_path, "\\" as "/"


def test_an_sfz_instrument_becomes_a_training_set(tmp_path):
    write_sfz_library(tmp_path / "lib")
    r = CliRunner().invoke(
        app,
        ["dataset", "build", "--sfz", str(tmp_path / "lib" / "piano.sfz"), "--out", str(tmp_path / "ds"),
         "--licence", "CC0, sketch"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    records = {}
    for split in ("train", "valid", "test"):
        records.update(json.loads((tmp_path / "ds" / f"nsynth-{split}" / "examples.json").read_text()))
    got = sorted(
        (rec["sample_file"], rec["pitch"], rec["velocity"], rec["sample_folder"]) for rec in records.values()
    )
    assert got == [
        ("Soft C4.wav", 60, 90, "piano"),
        ("guess_G4.wav", 67, 127, "piano"),
        ("long.wav", 69, 90, "piano"),  # only its A4: the other notes of the take would fail the pitch check
        ("loud.wav", 64, 127, "piano"),
        ("nameless.wav", 50, 127, "piano"),
    ]
    info = json.loads((tmp_path / "ds" / "build_info.json").read_text())
    assert info["report"]["dropped"] == {"unreadable": 1}  # missing.wav
    assert info["samples"]["sfz"] == [str(tmp_path / "lib" / "piano.sfz")]
    r = CliRunner().invoke(
        app, ["dataset", "build", "--sfz", str(tmp_path / "none.sfz"), "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 1 and "none.sfz: no such SFZ file" in r.output
    (tmp_path / "empty.sfz").write_text("<group> hivel=100\n")
    r = CliRunner().invoke(
        app, ["dataset", "build", "--sfz", str(tmp_path / "empty.sfz"), "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 1 and "maps no recorded notes" in r.output


def test_a_broken_sfz_file_gets_one_line(tmp_path):
    (tmp_path / "loop.sfz").write_text('#include "loop.sfz"\n<region> sample=a.wav\n')
    r = CliRunner().invoke(
        app, ["dataset", "build", "--sfz", str(tmp_path / "loop.sfz"), "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 1 and "#include nested more than 16 deep" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    (tmp_path / "gone.sfz").write_text('#include "missing.sfz"\n')
    r = CliRunner().invoke(
        app, ["dataset", "build", "--sfz", str(tmp_path / "gone.sfz"), "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 1 and "missing.sfz: cannot read the SFZ file" in r.output
    assert not (tmp_path / "x").exists()  # refused before anything was written
