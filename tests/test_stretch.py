"""Tempo stretch: audio through Rubber Band (pitch kept), MIDI exactly."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from hybrid.api import stretch
from hybrid.audio import load_audio, save_audio
from hybrid.metrics import note_scores
from hybrid.notes import Note, NoteSequence, read_midi, write_midi
from hybrid.transcription import transcribe_audio
from hybrid.transform import stretch_audio, stretch_notes

from .conftest import EXAMPLES

SR = 22050
MELODY = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 67]


def melody(program: int) -> tuple[NoteSequence, np.ndarray]:
    """A 16-note melody (quarter and eighth notes at 120 BPM) rendered with TimGM6mb (ships in pretty_midi)."""
    notes, t = [], 0.25
    for i, p in enumerate(MELODY):
        d = [0.5, 0.25, 0.25, 0.5][i % 4]
        notes.append(Note(t, t + 0.85 * d, float(p)))
        t += d
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program)
    inst.notes = [pretty_midi.Note(100, int(n.pitch_midi), n.onset_s, n.offset_s) for n in notes]
    pm.instruments.append(inst)
    return NoteSequence(notes), pm.fluidsynth(fs=SR).astype(np.float32)


@pytest.mark.parametrize("program", [0, 24])  # acoustic grand piano, nylon guitar
@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_stretched_audio_keeps_notes_and_length(transcriber, program, rate):
    _, y = melody(program)
    ref = transcribe_audio(y, SR, transcriber=transcriber, with_tempo=False).notes
    z = stretch_audio(y, SR, rate)
    assert len(z) == pytest.approx(len(y) / rate, rel=0.01)
    est = transcribe_audio(z, SR, transcriber=transcriber, with_tempo=False).notes
    # Measured with Rubber Band 3.1.2 (R3 engine): 0.92-1.00, and once 0.889 (piano at 0.8x, in a full run on
    # a fresh checkout: one of 17 notes flipped). One more note missed moves it by about 0.057: floor 0.83.
    assert note_scores(stretch_notes(ref, rate), est).onset_f1 >= 0.83


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_stretched_real_trumpet(transcriber, rate):
    # A real recording is harder: measured onset F1 0.815 (0.8x) and 0.818 (1.25x); one note of the phrase's
    # 12-15 moves it by about 0.07: floor 0.74.
    y, sr = load_audio(EXAMPLES / "trumpet.ogg")
    ref = transcribe_audio(y, sr, transcriber=transcriber, with_tempo=False).notes
    z = stretch_audio(y, sr, rate)
    assert len(z) == pytest.approx(len(y) / rate, rel=0.01)
    est = transcribe_audio(z, sr, transcriber=transcriber, with_tempo=False).notes
    assert note_scores(stretch_notes(ref, rate), est).onset_f1 >= 0.74


def test_stretch_keeps_pitch():
    t = np.arange(SR) / SR
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    z = stretch_audio(y, SR, 0.5)
    seg = z[SR // 2 : SR // 2 + SR]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    assert np.argmax(spec) * SR / len(seg) == pytest.approx(440, abs=2)


def test_midi_stretch_is_exact(tmp_path):
    src = write_midi(
        NoteSequence([Note(1.0, 1.5, 60), Note(2.0, 3.0, 64)], tempo_bpm=100.0), tmp_path / "a.mid"
    )
    result = stretch(src, tmp_path / "b.mid", rate=2.0)
    back = read_midi(result.output)
    assert back.tempo_bpm == pytest.approx(200.0, rel=1e-4)
    assert [(n.onset_s, n.offset_s) for n in back.notes] == [
        pytest.approx((0.5, 0.75), abs=2e-3),
        pytest.approx((1.0, 1.5), abs=2e-3),
    ]


def test_midi_stretch_to_bpm(tmp_path):
    src = write_midi(NoteSequence([Note(1.2, 1.8, 60)], tempo_bpm=100.0), tmp_path / "a.mid")
    result = stretch(src, tmp_path / "b.mid", bpm=150.0)
    assert result.rate == pytest.approx(1.5)
    assert read_midi(result.output).notes[0].onset_s == pytest.approx(0.8, abs=2e-3)


def test_audio_stretch_file_keeps_stereo_and_input(tmp_path):
    y, sr = load_audio(EXAMPLES / "guitar.wav", mono=False)
    src = save_audio(tmp_path / "in.wav", np.stack([y[:, 0], 0.5 * y[:, 0]], axis=1), sr)
    before = src.read_bytes()
    stretch(src, tmp_path / "out.flac", rate=1.25)
    z, sr2 = load_audio(tmp_path / "out.flac", mono=False)
    assert sr2 == sr and z.shape[1] == 2
    assert z.shape[0] == pytest.approx(y.shape[0] / 1.25, rel=0.01)
    assert src.read_bytes() == before
