"""Note-level scores: hand-computed cases and mir_eval's own reference cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybrid.metrics import note_scores, octave_folded_ratio, tempo_ratio
from hybrid.notes import Note, NoteSequence, read_note_list

from .conftest import DATA, EXAMPLES

A4, C5 = 69.0, 72.0


def seq(*notes: tuple[float, float, float]) -> NoteSequence:
    return NoteSequence([Note(on, off, p) for on, off, p in notes])


def test_identical_notes_score_one():
    ref = seq((0.0, 1.0, A4), (1.0, 2.0, C5))
    s = note_scores(ref, ref)
    assert (s.precision, s.recall, s.f1, s.onset_f1) == (1.0, 1.0, 1.0, 1.0)


def test_one_of_two_matched_by_hand():
    # Reference: A4 at 0 s and C5 at 1 s. Estimate: A4 at 0.03 s (inside 50 ms), C5 at 1.2 s (outside).
    # 1 of 2 estimates match 1 of 2 references: P = R = F = 1/2.
    ref = seq((0.0, 1.0, A4), (1.0, 2.0, C5))
    est = seq((0.03, 1.0, A4), (1.2, 2.0, C5))
    s = note_scores(ref, est)
    assert s.onset_precision == pytest.approx(0.5)
    assert s.onset_recall == pytest.approx(0.5)
    assert s.onset_f1 == pytest.approx(0.5)


def test_precision_recall_differ_by_hand():
    # 3 reference notes, 2 estimates, both correct: P = 2/2, R = 2/3, F = 2PR/(P+R) = 0.8.
    ref = seq((0.0, 0.5, 60), (0.5, 1.0, 62), (1.0, 1.5, 64))
    est = seq((0.0, 0.5, 60), (0.5, 1.0, 62))
    s = note_scores(ref, est)
    assert (s.onset_precision, s.onset_recall) == (1.0, pytest.approx(2 / 3))
    assert s.onset_f1 == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("pitch_offset_semitones", "matches"),
    [(0.49, True), (0.51, False)],  # the pitch tolerance is 50 cents
)
def test_pitch_tolerance_edge(pitch_offset_semitones, matches):
    ref = seq((0.0, 1.0, A4))
    est = seq((0.0, 1.0, A4 + pitch_offset_semitones))
    assert note_scores(ref, est).onset_f1 == (1.0 if matches else 0.0)


@pytest.mark.parametrize(("onset_shift_s", "matches"), [(0.049, True), (0.051, False)])
def test_onset_tolerance_edge(onset_shift_s, matches):
    ref = seq((1.0, 2.0, A4))
    est = seq((1.0 + onset_shift_s, 2.0, A4))
    assert note_scores(ref, est).onset_f1 == (1.0 if matches else 0.0)


def test_offset_tolerance_by_hand():
    # Offset tolerance = max(50 ms, 0.2 * 2 s) = 0.4 s. Offset 0.3 s late matches, 0.5 s late does not;
    # onset-only matching ignores offsets.
    ref = seq((0.0, 2.0, A4))
    assert note_scores(ref, seq((0.0, 2.3, A4))).f1 == 1.0
    late = note_scores(ref, seq((0.0, 2.5, A4)))
    assert (late.f1, late.onset_f1) == (0.0, 1.0)


def test_empty_estimate_scores_zero():
    s = note_scores(seq((0.0, 1.0, A4)), NoteSequence())
    assert (s.f1, s.onset_f1, s.n_reference, s.n_estimate) == (0.0, 0.0, 1, 0)


@pytest.mark.parametrize("case", [f"{i:02d}" for i in range(10)])
def test_reproduces_mir_eval_reference_values(case):
    folder = DATA / "mir_eval"
    ref = read_note_list(folder / f"ref{case}.txt", pitch_unit="hz")
    est = read_note_list(folder / f"est{case}.txt", pitch_unit="hz")
    expected = json.loads((folder / f"output{case}.json").read_text())
    s = note_scores(ref, est)
    assert s.precision == pytest.approx(expected["Precision"], abs=1e-9)
    assert s.recall == pytest.approx(expected["Recall"], abs=1e-9)
    assert s.f1 == pytest.approx(expected["F-measure"], abs=1e-9)
    assert s.onset_precision == pytest.approx(expected["Precision_no_offset"], abs=1e-9)
    assert s.onset_recall == pytest.approx(expected["Recall_no_offset"], abs=1e-9)
    assert s.onset_f1 == pytest.approx(expected["F-measure_no_offset"], abs=1e-9)


def test_tempo_ratio_and_octave_folding():
    assert tempo_ratio(90.0, 180.0) == 2.0
    assert octave_folded_ratio(2.0) == pytest.approx(1.0)
    assert octave_folded_ratio(0.5) == pytest.approx(1.0)
    assert octave_folded_ratio(1.1) == pytest.approx(1.1)
    assert np.isnan(tempo_ratio(0.0, 100.0))


@pytest.mark.parametrize("n,span_s,segment", [(300, 20.0, 50), (3000, 200.0, 2000), (2000, 40.0, 300)])
def test_notes_matched_in_segments_score_as_mir_eval_whole(monkeypatch, n, span_s, segment):
    # random reference notes; the estimate keeps 90% of them with onsets moved (30 ms spread), some an octave
    # off, plus 20% random notes: the segment-by-segment scores equal mir_eval's on all notes at once, exactly
    import mir_eval

    from hybrid import metrics
    from hybrid.notes import Note, NoteSequence

    monkeypatch.setattr(metrics, "SEGMENT_NOTES", segment)
    rng = np.random.default_rng(n)

    def rand(k):
        on = np.sort(rng.uniform(0.2, span_s, k))
        return [
            Note(float(a), float(a + d), float(p), 80)
            for a, d, p in zip(on, rng.uniform(0.05, 1, k), rng.integers(40, 80, k), strict=True)
        ]

    ref = NoteSequence(rand(n))
    est = []
    for x in ref.notes:
        if rng.random() < 0.9:
            on = x.onset_s + float(rng.normal(0, 0.03))
            off = max(on + 0.02, x.offset_s + float(rng.normal(0, 0.05)))
            est.append(Note(on, off, x.pitch_midi + float(rng.choice([0, 0, 0, 12])), 80))
    est = NoteSequence(est + rand(n // 5))
    ri, rh = ref.intervals_pitches()
    ei, eh = est.intervals_pitches()
    assert len(metrics._segments(ri[:, 0], ei[:, 0], 0.05)) > 1
    ours = metrics.note_scores(ref, est)
    whole = mir_eval.transcription.precision_recall_f1_overlap(ri, rh, ei, eh)[:3]
    onset = mir_eval.transcription.precision_recall_f1_overlap(ri, rh, ei, eh, offset_ratio=None)[:3]
    assert (ours.precision, ours.recall, ours.f1) == tuple(float(x) for x in whole)
    assert (ours.onset_precision, ours.onset_recall, ours.onset_f1) == tuple(float(x) for x in onset)
    assert 0.3 < ours.onset_f1 < 0.9
    pairs = metrics.note_matching(ref, est)
    assert len(pairs) == round(ours.onset_recall * len(ref))


@pytest.mark.parametrize("name", ["trumpet.ogg", "vibe_ace.ogg", "guitar.wav"])
@pytest.mark.parametrize("rate", [16000, 22050])
def test_mfcc_is_librosas(name, rate):
    # the numpy port in hybrid.metrics against librosa.feature.mfcc and .rms with the same settings: within
    # float32 rounding (measured 3e-5 to 9e-5 on coefficients of magnitude 10-500)
    import librosa

    from hybrid import metrics
    from hybrid.audio import load_audio

    y, _ = load_audio(EXAMPLES / name, sample_rate_hz=rate)
    ours = metrics._mfcc(y, rate)
    theirs = librosa.feature.mfcc(y=y, sr=rate, n_mfcc=metrics.N_MFCC, n_fft=1024, hop_length=256)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=5e-4)
    np.testing.assert_allclose(
        metrics._frame_rms(y), librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0], atol=1e-7
    )
