"""Beat tracking at a known tempo: dynamic programming over an onset-strength envelope (Ellis 2007).

A port to numpy of `librosa.beat.beat_track` (librosa 0.11) for one fixed tempo, giving the same beat frames
(tests/test_beats.py compares the two). librosa's version is numba code, and one of its functions is compiled
afresh at every import (`cache=False`): importing `librosa.beat` costs about 1.7 s per process on this
project's 2-core machine, more than the whole tempo estimate of a 30 s song. Here the dynamic program's inner
search over the previous beat is vectorised; the loop over frames stays in Python (6 ms for 30 s of audio,
0.1 s for 10 minutes, at 43 frames per second).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

TIGHTNESS = 100.0  # librosa's default: how strongly the spacing of beats is held to the tempo


def track_beats(
    onset_envelope: npt.NDArray[np.floating],
    frame_rate_hz: float,
    bpm: float,
    tightness: float = TIGHTNESS,
    trim: bool = True,
) -> npt.NDArray[np.int64]:
    """Frame indices of the beats in a 1-D onset-strength envelope (frames per second `frame_rate_hz`) at tempo
    `bpm`: librosa.beat.beat_track(onset_envelope=..., bpm=bpm, tightness=..., trim=...)'s beats."""
    env = np.asarray(onset_envelope)
    if env.ndim != 1:
        raise ValueError(f"onset envelope must be 1-D, got shape {env.shape}")
    if bpm <= 0 or tightness <= 0:
        raise ValueError(f"bpm and tightness must be positive, got {bpm} and {tightness}")
    if not env.any():
        return np.zeros(0, np.int64)
    frames_per_beat = float(np.round(frame_rate_hz * 60.0 / bpm))
    # the envelope divided by its standard deviation (in its own precision), smoothed by a Gaussian one beat
    # wide on each side; from here on in float64, as librosa's numba code runs for a float tempo
    norm = env / (env.std(ddof=1) + np.finfo(env.dtype).tiny)
    local = _local_score(norm.astype(np.float64), frames_per_beat)
    backlink, cumscore = _dynamic_program(local, frames_per_beat, tightness)
    beats = np.zeros(len(env), bool)
    n = _last_beat(cumscore)
    while n >= 0:
        beats[n] = True
        n = int(backlink[n])
    return np.flatnonzero(_trim(local, beats, trim)).astype(np.int64)


def _local_score(env: npt.NDArray[np.float64], frames_per_beat: float) -> npt.NDArray[np.float64]:
    """librosa's same-mode convolution with a Gaussian window, whose loop bounds leave out the envelope's
    first frame."""
    window = np.exp(-0.5 * (np.arange(-frames_per_beat, frames_per_beat + 1) * 32.0 / frames_per_beat) ** 2)
    x = env.copy()
    x[0] = 0.0
    k = len(window) // 2
    return np.convolve(x, window)[k : k + len(env)]


def _dynamic_program(
    local: npt.NDArray[np.float64], frames_per_beat: float, tightness: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each frame's best previous beat (within half to twice a beat back, -1 for none) and cumulative score."""
    n = len(local)
    backlink = np.full(n, -1, np.int64)
    cumscore = np.zeros(n)
    threshold = 0.01 * local.max()
    first_beat = True
    nearest = int(np.round(frames_per_beat / 2))
    farthest = int(2 * frames_per_beat)
    # the penalty for each distance back, nearest first (librosa searches from the nearest and keeps the first
    # best, which argmax also does)
    gaps = np.arange(nearest, farthest + 1)
    # librosa's numba signature takes the tightness as float32 (the default, 100, is exact); the logs are the C
    # library's, as in numba (numpy's vectorised log can differ in the last bit, which decides exact ties)
    tight = float(np.float32(tightness))
    penalty = np.array([tight * (math.log(max(g, 1)) - math.log(frames_per_beat)) ** 2 for g in gaps])
    for i in range(n):
        lo = i - farthest
        hi = i - nearest
        best = -1
        if hi >= 0:  # nearest <= farthest, so hi >= lo
            count = hi - max(lo, 0) + 1
            locs = hi - np.arange(count)  # nearest first
            scores = cumscore[locs] - penalty[:count]
            j = int(np.argmax(scores))
            best = int(locs[j])
            cumscore[i] = local[i] + scores[j]
        else:
            cumscore[i] = local[i]
        if first_beat and local[i] < threshold:
            backlink[i] = -1
        else:
            backlink[i] = best
            first_beat = False
    return backlink, cumscore


def _last_beat(cumscore: npt.NDArray[np.float64]) -> int:
    """The last local maximum of the cumulative score that reaches half the median of all its local maxima."""
    padded = np.pad(cumscore, 1, mode="edge")
    peaks = (cumscore > padded[:-2]) & (cumscore >= padded[2:])
    threshold = 0.5 * float(np.median(cumscore[peaks])) if peaks.any() else 0.0
    ok = np.flatnonzero(peaks & (cumscore >= threshold))
    return int(ok[-1]) if len(ok) else len(cumscore) - 1


def _trim(local: npt.NDArray[np.float64], beats: npt.NDArray[np.bool_], trim: bool) -> npt.NDArray[np.bool_]:
    """Drop the beats before the first and after the last frame whose local score exceeds half the RMS of the
    smoothed score at the beats (with trim; otherwise only where the score is 0)."""
    out = beats.copy()
    w = np.hanning(5)
    smooth = np.convolve(local[beats], w)[len(w) // 2 : len(local) + len(w) // 2]
    threshold = 0.5 * float(np.sqrt(np.mean(smooth**2))) if trim else 0.0
    n = 0
    while n < len(local) and local[n] <= threshold:
        out[n] = False
        n += 1
    n = len(local) - 1
    while n >= 0 and local[n] <= threshold:
        out[n] = False
        n -= 1
    return out


# ---------------------------------------------------------------------------------------------------------------
# The tempo estimate's front end: ports to numpy of librosa.onset.onset_strength (mel spectral flux, median over
# bands), librosa.feature.tempogram (windowed autocorrelation) and librosa.feature.tempo (a log-normal prior
# around 120 BPM), librosa 0.11, with their defaults as hybrid calls them. Importing librosa.onset and
# librosa.feature costs a process 1-1.5 s of numba kernels; these give the same values (tests/test_beats.py).

ONSET_N_FFT = 2048
ONSET_N_MELS = 128
# librosa.feature.tempo's start_bpm, the centre of its prior: a fact apart from MIDI's default tempo
PRIOR_BPM = 120
MAX_BPM = 320  # librosa.feature.tempo's max_tempo


def onset_strength(
    y: npt.NDArray[np.floating], sample_rate_hz: int, hop: int, n_fft: int = ONSET_N_FFT
) -> npt.NDArray[np.float32]:
    """librosa.onset.onset_strength(y=y, sr=..., hop_length=hop, aggregate=np.median)."""
    from scipy.signal import get_window

    from hybrid.constants import mel_filters

    y = np.asarray(y, dtype=np.float32)
    padded = np.pad(y, n_fft // 2)  # centred frames, zeros beyond the ends (librosa's pad_mode="constant")
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_fft, n_frames), strides=(padded.strides[0], padded.strides[0] * hop), writeable=False
    )
    window = get_window("hann", n_fft, fftbins=True)
    spec = np.fft.rfft(window[:, None] * frames, axis=0).astype(np.complex64)
    power = np.abs(spec) ** 2
    mel = mel_filters(n_fft, ONSET_N_MELS, fmax=sample_rate_hz / 2.0, sample_rate_hz=sample_rate_hz)
    db = 10.0 * np.log10(np.maximum(np.float32(1e-10), np.einsum("ft,mf->mt", power, mel, optimize=True)))
    db = np.maximum(db, db.max() - 80.0)
    flux = np.maximum(0.0, db[:, 1:] - db[:, :-1])
    env = np.median(flux, axis=0)
    env = np.pad(env, (1 + n_fft // (2 * hop), 0))  # lag 1, and the centring of the frames
    return np.asarray(env[:n_frames], dtype=np.float32)


def tempogram(onset_envelope: npt.NDArray[np.floating], win_length: int) -> npt.NDArray[np.float64]:
    """librosa.feature.tempogram(onset_envelope=..., win_length=win_length): (win_length, frames), the
    autocorrelation of each Hann-windowed stretch of the envelope, each column scaled to a maximum of 1."""
    from scipy.fft import next_fast_len
    from scipy.signal import get_window

    env = np.asarray(onset_envelope)
    n = env.shape[-1]
    half = win_length // 2
    padded = np.pad(env, (half, half), mode="linear_ramp", end_values=(0, 0))
    count = len(padded) - win_length + 1
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(win_length, count), strides=(padded.strides[0], padded.strides[0]), writeable=False
    )[:, :n]
    x = frames * get_window("hann", win_length, fftbins=True)[:, None]
    n_pad = next_fast_len(2 * win_length - 1, real=True)
    spec = np.fft.rfft(x, n=n_pad, axis=0)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, n=n_pad, axis=0)[:win_length]
    peak = np.max(np.abs(ac), axis=0, keepdims=True)
    peak[peak < np.finfo(ac.dtype).tiny] = 1.0
    return np.asarray(ac / peak)


def tempo_from_tempogram(
    tg: npt.NDArray[np.floating],
    sample_rate_hz: int,
    hop: int,
    start_bpm: float = PRIOR_BPM,
    max_bpm: float = MAX_BPM,
) -> float:
    """librosa.feature.tempo(tg=tg (win_length, 1), sr=..., hop_length=hop, aggregate=None): the lag of the
    strongest autocorrelation, weighted by a log-normal prior around start_bpm (one octave's spread)."""
    win_length = tg.shape[0]
    bpms = np.zeros(win_length)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sample_rate_hz / (hop * np.arange(1.0, win_length))
    with np.errstate(divide="ignore"):
        logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / 1.0) ** 2
    logprior[: int(np.argmax(bpms < max_bpm))] = -np.inf
    best = int(np.argmax(np.log1p(1e6 * tg[:, 0]) + logprior))
    return float(bpms[best])
