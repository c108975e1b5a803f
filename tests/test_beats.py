"""hybrid.beats is a port of librosa.beat.beat_track at a fixed tempo: it must give librosa's beats exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybrid.beats import track_beats

ROOT = Path(__file__).resolve().parents[1]
FRAME_RATE = 22050 / 512


def _librosa_beats(env: np.ndarray, bpm: float) -> np.ndarray:
    import librosa.beat

    return librosa.beat.beat_track(onset_envelope=env, sr=22050, hop_length=512, bpm=bpm)[1]


def _pulse_envelope(rng: np.random.Generator) -> np.ndarray:
    """Noise plus jittered pulses; some with a silent start, some quantised (exact ties in the program)."""
    n = int(rng.integers(50, 3000))
    env = (rng.random(n) * rng.uniform(0, 1)).astype(np.float32)
    pulses = np.arange(0, n, rng.uniform(15, 60))
    idx = (pulses + rng.normal(0, 1.5, len(pulses))).astype(int)
    env[idx[(idx >= 0) & (idx < n)]] += rng.uniform(1, 5)
    if rng.random() < 0.2:
        env[: n // 3] = 0
    if rng.random() < 0.2:
        env = np.round(env * 4) / 4
    return env


@pytest.mark.parametrize("seed", range(40))
def test_same_beats_as_librosa_on_pulse_trains(seed):
    rng = np.random.default_rng(seed)
    env = _pulse_envelope(rng)
    bpm = float(rng.uniform(40, 240))
    np.testing.assert_array_equal(track_beats(env, FRAME_RATE, bpm), _librosa_beats(env, bpm))


@pytest.mark.parametrize("bpm", [60.0, 97.3, 140.0])
def test_same_beats_as_librosa_on_a_song(bpm):
    # 140 BPM on Vibe Ace has equal-scoring predecessors (to 1e-15): the order of the search decides
    import librosa

    from hybrid.audio import load_audio

    y, _ = load_audio(ROOT / "examples" / "vibe_ace.ogg", sample_rate_hz=22050)
    env = librosa.onset.onset_strength(y=y, sr=22050, hop_length=512, aggregate=np.median)
    beats = track_beats(env, FRAME_RATE, bpm)
    assert len(beats) > 0.5 * bpm * len(y) / 22050 / 60  # most of the beats the tempo implies
    np.testing.assert_array_equal(beats, _librosa_beats(env, bpm))


def test_silence_has_no_beats_and_bad_tempo_is_refused():
    assert len(track_beats(np.zeros(100, np.float32), FRAME_RATE, 120.0)) == 0
    with pytest.raises(ValueError):
        track_beats(np.ones(100, np.float32), FRAME_RATE, 0.0)


def test_beats_of_a_click_track_are_the_clicks():
    # independent of librosa: an envelope with a pulse every 21.5 frames (120 BPM) gives beats on the pulses
    env = np.full(2000, 0.01, np.float32)
    clicks = np.round(np.arange(10, 2000, FRAME_RATE / 2)).astype(int)
    env[clicks] = 1.0
    beats = track_beats(env, FRAME_RATE, 120.0)
    assert set(beats) <= set(clicks)
    assert len(beats) >= len(clicks) - 2


def _test_signals():
    """Real and synthetic: the guitar phrase, the trumpet phrase, a click track at 97 BPM with a chord."""
    from hybrid.audio import load_audio

    from .conftest import DATA, EXAMPLES

    sr = 22050
    t = np.arange(int(12 * sr)) / sr
    clicks = np.zeros_like(t)
    clicks[(np.arange(0, 12, 60 / 97) * sr).astype(int)] = 1.0
    clicks = np.convolve(clicks, np.exp(-np.arange(400) / 60.0))[: len(t)]
    chord = 0.1 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    return {
        "guitar": load_audio(DATA / "egset12_guitar_01.wav", sample_rate_hz=sr)[0],
        "trumpet": load_audio(EXAMPLES / "trumpet.ogg", sample_rate_hz=sr)[0],
        "vibe-ace": load_audio(EXAMPLES / "vibe_ace.ogg", sample_rate_hz=sr)[0][: 40 * sr],
        "clicks": (clicks + chord).astype(np.float32),
    }


def test_the_ported_tempo_front_end_gives_librosas_values():
    # hybrid.beats' onset strength, tempogram and tempo against librosa 0.11's own functions, on real and
    # synthetic audio: the envelopes agree to float32 rounding, the tempi exactly.
    import librosa

    from hybrid.beats import onset_strength, tempo_from_tempogram, tempogram

    sr, hop = 22050, 512
    win = int(librosa.time_to_frames(8.0, sr=sr, hop_length=hop))
    for name, y in _test_signals().items():
        ours = onset_strength(y, sr, hop)
        theirs = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, aggregate=np.median)
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * float(theirs.max()), err_msg=name)
        tg_ours = tempogram(theirs, win)
        tg_theirs = librosa.feature.tempogram(onset_envelope=theirs, sr=sr, hop_length=hop, win_length=win)
        np.testing.assert_allclose(tg_ours, tg_theirs, rtol=1e-9, atol=1e-12, err_msg=name)
        mean = tg_theirs.mean(axis=1, keepdims=True)
        expected = float(librosa.feature.tempo(tg=mean, sr=sr, hop_length=hop, aggregate=None)[0])
        assert tempo_from_tempogram(mean, sr, hop) == expected, name


def test_mel_filters_are_librosas():
    import librosa

    from hybrid.constants import mel_filters

    for n_fft, n_mels, fmin, fmax, sr in [
        (1024, 80, 0.0, None, 16000),
        (2048, 128, 0.0, 11025.0, 22050),
        (512, 64, 30.0, 7600.0, 16000),
    ]:
        ours = mel_filters(n_fft, n_mels, fmin=fmin, fmax=fmax, sample_rate_hz=sr)
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
