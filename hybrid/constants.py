"""Facts every stage shares, each declared once with the reason for its value.

Audio rates: the decoder renders at NSynth's rate; basic-pitch reads its own rate (hybrid.transcription).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# The decoder's output rate and its training data's: NSynth's notes are 16 kHz.
SAMPLE_RATE_HZ = 16_000
# What hybrid writes by default: CD quality. The note library analyses and plays at this rate; the decoder's
# 16 kHz rendering is resampled to it. Any rate from the decoder's to 48 kHz may be asked for.
OUTPUT_SAMPLE_RATE_HZ = 44_100
MAX_OUTPUT_SAMPLE_RATE_HZ = 48_000

# Decoder frames: 64 samples (4 ms) -> 250 frames/s, fine enough to place onsets, coarse enough that a 30 s
# piece is 7,500 frames per voice.
FRAME_HOP = 64
FRAME_RATE_HZ = SAMPLE_RATE_HZ / FRAME_HOP

# An NSynth note: the key is held for 3 s, then the note rings for 1 s more (4 s in all).
NSYNTH_HOLD_S = 3.0
NSYNTH_RELEASE_S = 1.0

# MIDI's default tempo: what a note sequence carries when nothing else is known.
DEFAULT_TEMPO_BPM = 120.0

# Debian's fluid-soundfont-gm: the General MIDI SoundFont of the baselines and the default training set.
FLUIDR3_GM = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

A4_HZ = 440.0
A4_MIDI = 69.0


def midi_to_hz(midi: Any) -> Any:
    """MIDI pitch (fractional allowed) -> frequency in Hz, equal temperament (A4_MIDI sounds at A4_HZ). Arrays and tensors
    keep their type and precision; anything else is computed in float64."""
    m = midi if hasattr(midi, "dtype") else np.asarray(midi, np.float64)
    return A4_HZ * 2.0 ** ((m - A4_MIDI) / 12.0)


def hz_to_midi(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Frequency in Hz -> fractional MIDI pitch (the inverse of midi_to_hz), in float64."""
    return A4_MIDI + 12.0 * np.log2(np.asarray(hz, np.float64) / A4_HZ)


def mel_filters(
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> npt.NDArray[np.float32]:
    """(n_mels, n_fft // 2 + 1) librosa's mel filterbank (Slaney scale and area normalisation), the one that
    the encoder and the offset fit use. The correction's filterbank (hybrid.calibration.correction) is on the
    HTK scale with unit peaks on purpose: its bands are gains to be inverted, not energies to be compared."""
    # A port of librosa.filters.mel (librosa 0.11, htk=False, norm="slaney"): importing librosa.filters costs
    # a process about a second of numba kernels. tests/test_beats.py compares the two.
    fmax = sample_rate_hz / 2.0 if fmax is None else fmax
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate_hz)
    mel_hz = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2 : n_mels + 2] - mel_hz[:n_mels]))[:, np.newaxis]
    return weights


_MEL_F_SP = 200.0 / 3  # Slaney's mel scale: linear below 1 kHz (200/3 Hz a mel), logarithmic above
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOGSTEP = math.log(6.4) / 27.0


def _slaney_hz_to_mel(hz: float) -> float:
    if hz >= _MEL_MIN_LOG_HZ:
        return _MEL_MIN_LOG_MEL + math.log(hz / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return hz / _MEL_F_SP


def _slaney_mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    hz = _MEL_F_SP * mels
    log = mels >= _MEL_MIN_LOG_MEL
    hz[log] = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels[log] - _MEL_MIN_LOG_MEL))
    return hz
