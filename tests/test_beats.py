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
