"""Transcription of real recordings against their ground truth; tempo estimated from the audio.

The F1 floors are the values measured with basic-pitch 0.4.0's ONNX model (onnxruntime, CPU) on
2026-11-26, rounded down to two decimals. A change that lowers them is a regression.
"""

from __future__ import annotations

import pytest

from hybrid.metrics import note_scores, octave_folded_ratio
from hybrid.transcription import transcribe

from .conftest import DATA, EXAMPLES, read_jams_notes, read_madmom_notes


def test_piano_against_ground_truth(transcriber):
    # madmom's stereo_sample (real piano, 44.1 kHz stereo, 8 notes). Measured: onset F1 0.737 (7 of 8 notes
    # matched, 11 transcribed: 14/19), with offsets 0.211 (4/19). Floors: one matched note less (12/19, 2/19).
    ref = read_madmom_notes(DATA / "stereo_sample.notes")
    est = transcribe(DATA / "stereo_sample.wav", transcriber=transcriber).notes
    s = note_scores(ref, est)
    assert s.onset_f1 >= 0.63
    assert s.f1 >= 0.10


def test_guitar_against_ground_truth(transcriber):
    # EGSet12 01 (real electric guitar, 48 kHz, 9 notes on 6 strings). Measured: onset F1 0.750 (6 of 9 matched,
    # 7 transcribed: 12/16), with offsets 0.500 (8/16). Floors: one matched note less (10/16, 6/16).
    ref = read_jams_notes(DATA / "egset12_guitar_01.jams")
    est = transcribe(DATA / "egset12_guitar_01.wav", transcriber=transcriber).notes
    s = note_scores(ref, est)
    assert s.onset_f1 >= 0.62
    assert s.f1 >= 0.37


def test_trumpet_tempo_matches_the_loop_pack(transcriber):
    # The trumpet phrase comes from a loop pack recorded at 90 BPM (see examples/README.md). Beat trackers
    # may answer double or half the tempo: fold octaves, then ask for 5 %.
    t = transcribe(EXAMPLES / "trumpet.ogg", transcriber=transcriber)
    assert octave_folded_ratio(t.tempo_bpm / 90.0) == pytest.approx(1.0, abs=0.05)
    assert len(t.beats_s) >= 4


def test_pitch_bends_are_semitones(transcriber):
    # basic-pitch's contour bins are 1/3 semitone; our bends must stay within its +-25 bin window (8.3 st).
    t = transcribe(EXAMPLES / "trumpet.ogg", transcriber=transcriber)
    bends = [b for n in t.notes.notes for b in n.bend_semitones]
    assert bends and max(abs(b) for b in bends) <= 25 / 3


def test_same_notes_as_upstream_predict(transcriber, tmp_path):
    # Our batched, lazily windowed inference must give exactly the notes of basic_pitch.inference.predict
    # on the same ONNX model (the only difference allowed: float rounding in note times).
    import logging

    logging.getLogger().setLevel(logging.ERROR)
    from basic_pitch.inference import predict

    from hybrid.transcription import basic_pitch_model_path

    _, _, events = predict(str(DATA / "egset12_guitar_01.wav"), basic_pitch_model_path())
    ours = transcribe(DATA / "egset12_guitar_01.wav", transcriber=transcriber).notes.notes
    upstream = sorted((round(float(s), 3), int(p)) for s, _, p, _, _ in events)
    assert [(round(n.onset_s, 3), int(n.pitch_midi)) for n in ours] == upstream


@pytest.mark.parametrize(
    "chunk,margin,band,count",
    [(None, None, None, 375), (700, 300, None, 375), (700, 300, (100.0, 1000.0), 164)],
)
def test_notes_made_chunk_by_chunk_are_basic_pitchs_notes(
    transcriber, monkeypatch, chunk, margin, band, count
):
    # The example Vibe Ace (61 s, 5,285 frames: two chunks as shipped; eight with 700-frame chunks and a
    # 300-frame margin; and with basic-pitch's frequency limits) against basic-pitch's own model_output_to_notes
    # on the whole song: the same notes, times, amplitudes and pitch bends.
    import numpy as np
    from basic_pitch.note_creation import model_output_to_notes

    from hybrid import transcription as tr_mod
    from hybrid.audio import load_audio

    if chunk is not None:
        monkeypatch.setattr(tr_mod, "NOTE_CHUNK_FRAMES", chunk)
        monkeypatch.setattr(tr_mod, "NOTE_MARGIN_FRAMES", margin)
    y, _ = load_audio(EXAMPLES / "vibe_ace.ogg", sample_rate_hz=tr_mod.BP_SAMPLE_RATE_HZ)
    out = transcriber.model_output(y)
    assert len(out["note"]) > 4096
    opts = tr_mod.TranscribeOptions()
    if band is not None:
        opts = tr_mod.TranscribeOptions(min_frequency_hz=band[0], max_frequency_hz=band[1])
    min_len = int(np.round(opts.min_note_length_ms / 1000 * (tr_mod.BP_SAMPLE_RATE_HZ / tr_mod.BP_FFT_HOP)))
    ours = tr_mod.note_events({k: v.copy() for k, v in out.items()}, opts, min_len)
    _, theirs = model_output_to_notes(
        {k: v.copy() for k, v in out.items()},
        onset_thresh=opts.onset_threshold,
        frame_thresh=opts.frame_threshold,
        min_note_len=min_len,
        min_freq=opts.min_frequency_hz,
        max_freq=opts.max_frequency_hz,
        melodia_trick=opts.melodia_trick,
    )
    assert len(ours) == len(theirs) == count

    def key(e):
        return (float(e[0]), float(e[1]), int(e[2]), float(e[3]), tuple(e[4] or ()))

    assert sorted(map(key, ours)) == sorted(map(key, theirs))
