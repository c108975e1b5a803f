"""The calibration's correction (hybrid.calibration.correction) and fit_timbre's use of it.

The correction is judged with tools it does not use: scipy's Butterworth filters make the "true" timbres, and
librosa's MFCCs and spectral centroid (hybrid.metrics) measure the results.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from hybrid.calibration import FittedTimbre, fit_timbre, render_fitted
from hybrid.calibration.correction import N_BANDS, Correction
from hybrid.calibration.fit import loudest_excerpt
from hybrid.metrics import mfcc_stats
from hybrid.notes import Note, NoteSequence, read_midi

from .conftest import EXAMPLES

SR = 16000


def tones(pitches: list[int], note_s: float = 0.5, decay_s: float = 0.3) -> np.ndarray:
    """Plucked harmonic tones (every harmonic below Nyquist, 1/k amplitudes, exponential decay), in turn."""
    t = np.arange(int(note_s * SR)) / SR
    out = []
    for p in pitches:
        f0 = librosa.midi_to_hz(p)
        note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(SR / 2 / f0) + 1))
        out.append(note * np.exp(-t / decay_s))
    return (0.2 * np.concatenate(out)).astype(np.float32)


def lowpass(y: np.ndarray, hz: float = 1000.0, order: int = 1) -> np.ndarray:
    return sosfilt(butter(order, hz, fs=SR, output="sos"), y).astype(np.float32)


def centroid_hz(y: np.ndarray) -> float:
    c = librosa.feature.spectral_centroid(y=y, sr=SR, n_fft=1024, hop_length=256)[0]
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0][: len(c)]
    return float(np.average(c, weights=rms**2))


def test_same_audio_needs_no_correction():
    y = tones([48, 55, 60, 64])
    c = Correction.fit(y, y)
    assert c is not None
    np.testing.assert_allclose(c.shift, 0.0, atol=1e-9)
    np.testing.assert_allclose(c.scale, 1.0, atol=1e-9)
    out = c.apply(y)
    assert out.shape == y.shape and out.dtype == np.float32
    # Only the STFT round trip is left (the first and last half-window excepted).
    np.testing.assert_allclose(out[1024:-1024], y[1024:-1024], atol=1e-4)


def test_correction_learned_on_some_notes_transfers_to_others():
    # "The instrument" is the tones through a 1 kHz low-pass (6 dB per octave); the "renderer" plays them unfiltered. The
    # correction is measured on one set of notes and applied to other notes an octave away.
    seen, unseen = tones([45, 50, 57, 62, 52]), tones([60, 67, 72, 64, 69, 74], note_s=0.4)
    c = Correction.fit(lowpass(seen), seen)
    assert c is not None and c.shift.shape == (N_BANDS,)
    truth = lowpass(unseen)
    corrected = c.apply(unseen)
    before = np.linalg.norm(mfcc_stats(unseen) - mfcc_stats(truth))
    after = np.linalg.norm(mfcc_stats(corrected) - mfcc_stats(truth))
    assert after < 0.5 * before, (before, after)
    # The low-pass darkens: the corrected centroid moves most of the way to the true one.
    c_raw, c_true, c_cor = centroid_hz(unseen), centroid_hz(truth), centroid_hz(corrected)
    assert c_true < c_cor < c_raw and (c_cor - c_true) < 0.35 * (c_raw - c_true), (c_raw, c_cor, c_true)
    # Average gain per band: at most a few dB below 300 Hz, well below that above 2 kHz.
    env = c.envelope_db
    from hybrid.calibration.correction import band_centres_hz

    centres = band_centres_hz()
    assert np.mean(env[centres > 2000]) < np.mean(env[centres < 300]) - 15


def test_spread_is_matched():
    # The renderer plays every note alike; the instrument alternates bright and dark notes, so its spectrum
    # moves more over time: the correction must widen the spread (scale > 1) and the output's MFCC 1 must then
    # vary over time about as much as the instrument's.
    pitches = [50, 53, 57, 60, 55, 52, 59, 62]
    rendered = tones(pitches)
    n = int(0.5 * SR)
    target = np.concatenate(
        [
            lowpass(rendered[i * n : (i + 1) * n], 800) * 2 if i % 2 else rendered[i * n : (i + 1) * n]
            for i in range(8)
        ]
    )
    c = Correction.fit(target, rendered)
    assert c is not None and c.scale[1] > 1.3
    std1 = {
        k: mfcc_stats(y)[19]
        for k, y in (("rendered", rendered), ("target", target), ("out", c.apply(rendered)))
    }
    assert abs(std1["out"] - std1["target"]) < 0.5 * abs(std1["rendered"] - std1["target"]), std1


@pytest.mark.parametrize("audio", [np.zeros(SR, np.float32), np.zeros(100, np.float32)])
def test_silence_gives_no_correction(audio):
    assert Correction.fit(audio, tones([60])) is None
    c = Correction.fit(tones([60, 64]), tones([60, 64]))
    assert c is not None and c.apply(audio) is audio


def test_loudest_excerpt():
    y = np.zeros(30 * SR, np.float32)
    y[17 * SR : 19 * SR] = 1.0
    ex = loudest_excerpt(y, 5.0)
    assert len(ex) == 5 * SR and ex.sum() == pytest.approx(2 * SR)
    assert loudest_excerpt(y[:SR], 5.0) is not None and len(loudest_excerpt(y[:SR], 5.0)) == SR


def test_the_loudest_stretch_of_a_long_song_is_found_block_by_block(monkeypatch):
    # energies summed 1000 samples at a time: the stretch a cumulative sum over the whole song picks
    from hybrid.calibration import fit

    rng = np.random.default_rng(2)
    y = (
        rng.standard_normal(61 * SR + 123) * np.repeat(rng.uniform(0.1, 1.0, 62), SR)[: 61 * SR + 123]
    ).astype(np.float32)
    energy = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
    starts = np.arange(0, len(y) - 5 * SR + 1, SR)
    best = int(starts[np.argmax(energy[starts + 5 * SR] - energy[starts])])
    monkeypatch.setattr(fit, "ENERGY_BLOCK", 1000)
    assert fit.loudest_span_s(y, 5.0) == (best / SR, best / SR + 5.0)
    positions = np.array([0, 7, 7, 999, 1000, 1001, len(y), 3])
    np.testing.assert_allclose(fit._energy_before(y, positions), energy[positions], rtol=1e-12)


@pytest.mark.slow
def test_renderer_calibrates_on_the_timbre_songs_own_notes(renderer, transcriber):
    guitar, _ = librosa.load(EXAMPLES / "guitar.wav", sr=SR)
    t = fit_timbre(renderer, guitar, transcriber=transcriber)
    plain = fit_timbre(renderer, guitar, calibrate=False)
    assert t.correction is not None and plain.correction is None
    # The example guitar figure: 9 notes, MIDI 41 to 65 (examples/guitar_notes.mid, hand-annotated).
    truth = read_midi(EXAMPLES / "guitar_notes.mid")
    assert abs(t.calibration_notes - len(truth)) <= 3
    assert t.pitch_range is not None and np.allclose(t.pitch_range, (41, 65), atol=2)
    np.testing.assert_array_equal(t.embedding, plain.embedding)
    # Rendering the guitar's own (annotated) notes: the correction brings the output nearer the recording.
    y_cal, y_plain = render_fitted(renderer, truth, t), render_fitted(renderer, truth, plain)
    np.testing.assert_array_equal(
        y_plain, renderer.render(truth, t.embedding)
    )  # a bare embedding: no correction
    g = mfcc_stats(guitar)
    assert np.linalg.norm(mfcc_stats(y_cal) - g) < np.linalg.norm(mfcc_stats(y_plain) - g)
    np.testing.assert_array_equal(
        y_cal, render_fitted(renderer, truth, fit_timbre(renderer, guitar, transcriber=transcriber))
    )


def test_correction_is_applied_only_as_far_as_the_notes_are_in_range():
    c = Correction(np.full(N_BANDS, 2.0), np.full(N_BANDS, 1.5), np.ones(N_BANDS))
    t = FittedTimbre(np.zeros(4, np.float32), c, 5, (60.0, 72.0))
    inside, below = Note(0.0, 1.0, 50.0, 90), Note(1.0, 4.0, 40.0, 90)  # 10 and 20 semitones under 60
    assert t.strength(NoteSequence([inside])) == 1.0
    assert t.strength(NoteSequence([below])) == 0.0
    assert t.strength(NoteSequence([inside, below])) == pytest.approx(0.25)
    half = c.scaled(0.5)
    np.testing.assert_allclose(half.shift, 1.0)
    np.testing.assert_allclose(half.scale, 1.5**0.5)
    assert FittedTimbre(np.zeros(4, np.float32)).strength(NoteSequence([inside])) == 0.0


def test_too_little_timbre_song_renders_uncalibrated(renderer, transcriber):
    for b in (np.zeros(3 * SR, np.float32), 0.1 * tones([60])[: SR // 4]):  # silent; 0.25 s
        t = fit_timbre(renderer, b, transcriber=transcriber)
        assert t.correction is None and t.calibration_notes == 0
        y = render_fitted(renderer, NoteSequence([Note(0.1, 0.6, 60.0, 90)]), t)
        assert np.isfinite(y).all() and np.abs(y).max() > 0


def test_timbre_type_is_what_render_takes(renderer):
    y, _ = sf.read(EXAMPLES / "guitar.wav", dtype="float32")
    assert isinstance(fit_timbre(renderer, y if y.ndim == 1 else y.mean(1), calibrate=False), FittedTimbre)


@pytest.mark.parametrize("block_frames", [7, 100])
def test_a_long_rendering_is_corrected_block_by_block(monkeypatch, block_frames):
    # the correction made a few frames at a time, against scipy's stft -> gains -> istft over the whole
    from scipy.fft import idct
    from scipy.signal import istft, stft

    from hybrid.calibration import correction as cm

    rng = np.random.default_rng(0)
    t = np.arange(SR * 7 + 333) / SR
    a = (np.sin(2 * np.pi * 220 * t) * (1 + np.sin(t)) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32
    )
    b = (np.sin(2 * np.pi * 330 * t) + 0.3 * np.sin(2 * np.pi * 990 * t)).astype(np.float32)
    b += 0.02 * rng.standard_normal(len(t)).astype(np.float32)
    corr = Correction.fit(a, b)
    assert corr is not None
    spec = stft(
        b.astype(np.float64), nperseg=cm.N_FFT, noverlap=cm.N_FFT - cm.HOP, boundary="even", padded=True
    )[2]
    power = np.abs(spec) ** 2
    from scipy.fft import dct

    c = dct(10 * np.log10(cm.mel_filterbank() @ power + 1e-10), type=2, norm="ortho", axis=0)
    frame_db = 10 * np.log10(power.sum(axis=0) + 1e-20)
    audible = frame_db > frame_db.max() - cm.AUDIBLE_DB
    mean = c[:, audible].mean(axis=1, keepdims=True)
    target = mean + corr.shift[:, None] + corr.scale[:, None] * (c - mean)
    gain_db = np.clip(idct(target - c, type=2, norm="ortho", axis=0) * corr.weight[:, None], -12.0, 12.0)
    spec = spec * 10 ** ((cm._band_to_bin() @ gain_db) / 20)
    expected = istft(spec, nperseg=cm.N_FFT, noverlap=cm.N_FFT - cm.HOP, boundary=True)[1][: len(b)]
    assert np.abs(expected - b).max() > 0.01  # the correction changes the rendering
    monkeypatch.setattr(cm, "APPLY_BLOCK_FRAMES", block_frames)
    np.testing.assert_allclose(corr.apply(b), expected, atol=1e-6)
