"""The correction: an equaliser, measured by resynthesis, that brings the decoder's output nearer the timbre song.

The decoder's timbre embedding is learned from a few hundred instruments; for an instrument it never heard it
gets the broad character right and the spectral envelope only roughly (docs/design.md). The timbre
song itself is at hand, but its spectrum cannot be compared with the output's as it is: the two play different
notes. So hybrid transcribes the timbre song, renders *its own notes* with its embedding, and compares that
rendering with the real song. Both play the same notes, so what differs is what the decoder got wrong about
this timbre.

The comparison is made on the cepstrum of the mel spectrum (40 bands, audible frames only), per coefficient:
the shift of its mean (the long-term spectral envelope) and the ratio of its spread over time (how much the
envelope moves: attacks, decays, note-to-note changes). Coefficient 0, the loudness, is left alone. Applying
the correction moves every frame of a rendering the same way, with the per-frame gain limited, and resynthesises
the audio from the reweighted short-time spectrum (the phase is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from hybrid.constants import SAMPLE_RATE_HZ

N_BANDS = 40
N_FFT = 1024
HOP = 256
F_MIN_HZ, F_MAX_HZ = 30.0, 8000.0
AUDIBLE_DB = 50.0  # frames within this of the loudest are compared (as in hybrid.metrics' timbre descriptor)
N_COEFFICIENTS = 20  # cepstral coefficients corrected (fewer: only the smoother part of the envelope)
SCALE_RANGE = (0.5, 2.0)  # the spread of a coefficient is changed at most by these factors
MAX_GAIN_DB = 12.0  # per band and frame
MIN_FRAMES = 8
APPLY_BLOCK_FRAMES = 2048  # frames a long rendering is corrected in at a time (33 s at 16 kHz)
# Bands where the resynthesis is this far below its loudest band carry no evidence (none of the rendered notes
# sound there, only noise): the correction fades out between these two depths.
RELIABLE_DB, UNRELIABLE_DB = 30.0, 45.0


def _hz_to_mel(f: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def _band_edges_hz() -> npt.NDArray[np.float64]:
    """(N_BANDS + 2,) equally spaced on the HTK mel scale: band k rises from edge k, peaks at k+1, ends at k+2."""
    return _mel_to_hz(np.linspace(_hz_to_mel(F_MIN_HZ), _hz_to_mel(F_MAX_HZ), N_BANDS + 2))


def band_centres_hz() -> npt.NDArray[np.float64]:
    """(N_BANDS,) the centre frequency of each mel band."""
    return _band_edges_hz()[1:-1]


def _n_fft(sample_rate_hz: int) -> int:
    """The frame at this rate that lasts as long as N_FFT at 16 kHz (and its hop, HOP's)."""
    return N_FFT * sample_rate_hz // SAMPLE_RATE_HZ


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate_hz: int = SAMPLE_RATE_HZ) -> npt.NDArray[np.float64]:
    """(N_BANDS, n_fft // 2 + 1) triangular filters on the HTK mel scale, each peaking at 1 (bins of an N_FFT
    frame at 16 kHz, or of as long a frame at `sample_rate_hz`)."""
    edges = _band_edges_hz()
    n_fft = _n_fft(sample_rate_hz)
    freqs = np.arange(n_fft // 2 + 1) * sample_rate_hz / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((freqs[None] - lo) / (mid - lo), (hi - freqs[None]) / (hi - mid)), 0.0, None)


@lru_cache(maxsize=4)
def _band_to_bin(sample_rate_hz: int = SAMPLE_RATE_HZ) -> npt.NDArray[np.float64]:
    """(bins, N_BANDS): a bin's gain is the filter-weighted mean of its bands' gains; bins below the first
    band's centre take the first band's, above the last band's centre (8 kHz) the last band's."""
    fb = mel_filterbank(sample_rate_hz)
    w = fb / np.maximum(fb.sum(axis=0, keepdims=True), 1e-12)
    covered = np.nonzero(fb.sum(axis=0) > 1e-6)[0]
    w[:, : covered[0]] = 0.0
    w[0, : covered[0]] = 1.0
    w[:, covered[-1] + 1 :] = 0.0
    w[-1, covered[-1] + 1 :] = 1.0
    return np.ascontiguousarray(w.T)


def _stft(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.complex128]:
    from scipy.signal import stft

    return stft(
        np.asarray(audio, np.float64), nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True
    )[2]


def _cepstra(spec: npt.NDArray[np.complex128]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """-> cepstrum of the mel spectrum in dB (N_BANDS, frames) and which frames are audible."""
    from scipy.fft import dct

    power = np.abs(spec) ** 2
    level_db = 10 * np.log10(mel_filterbank() @ power + 1e-10)
    frame_db = 10 * np.log10(power.sum(axis=0) + 1e-20)
    audible = frame_db > frame_db.max() - AUDIBLE_DB
    return dct(level_db, type=2, norm="ortho", axis=0), audible


def _stats(
    audio: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """-> mean and spread over the audible frames of the cepstrum, and the mean level per band (dB)."""
    from scipy.fft import idct

    if len(audio) < N_FFT or not np.any(np.isfinite(audio) & (audio != 0)):
        return None
    c, audible = _cepstra(_stft(audio))
    if audible.sum() < MIN_FRAMES:
        return None
    mean = c[:, audible].mean(axis=1)
    return mean, c[:, audible].std(axis=1), np.asarray(idct(mean, type=2, norm="ortho"))


@dataclass(frozen=True)
class Correction:
    """Per cepstral coefficient: `shift` is added to the mean, deviations from the mean are multiplied by
    `scale` (coefficient 0, the loudness, is never changed). The resulting gain of each mel band is weighted by
    `weight` (0 where the timbre song has nothing to show)."""

    shift: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    weight: npt.NDArray[np.float64]

    @classmethod
    def fit(
        cls,
        target: npt.NDArray[np.float32],
        rendered: npt.NDArray[np.float32],
        n_coefficients: int = N_COEFFICIENTS,
        scale_range: tuple[float, float] = SCALE_RANGE,
    ) -> Correction | None:
        """The correction that maps `rendered`'s statistics onto `target`'s (16 kHz mono, the same notes);
        None when either has too little audible sound to measure."""
        t, r = _stats(target), _stats(rendered)
        if t is None or r is None:
            return None
        shift = t[0] - r[0]
        scale = np.clip(t[1] / np.maximum(r[1], 1e-6), *scale_range)
        shift[0], scale[0] = 0.0, 1.0
        shift[n_coefficients:], scale[n_coefficients:] = 0.0, 1.0
        depth = r[2].max() - r[2]
        weight = np.clip((UNRELIABLE_DB - depth) / (UNRELIABLE_DB - RELIABLE_DB), 0.0, 1.0)
        return cls(shift, scale, weight)

    def scaled(self, strength: float) -> Correction:
        """The correction applied `strength` of the way (0: none, 1: in full)."""
        s = float(np.clip(strength, 0.0, 1.0))
        return Correction(self.shift * s, self.scale**s, self.weight)

    @property
    def envelope_db(self) -> npt.NDArray[np.float64]:
        """(N_BANDS,) the average gain per mel band, in dB (what the mean shift does)."""
        from scipy.fft import idct

        return np.asarray(idct(self.shift, type=2, norm="ortho")) * self.weight

    def apply(
        self, audio: npt.NDArray[np.float32], sample_rate_hz: int | None = None
    ) -> npt.NDArray[np.float32]:
        """The corrected audio (same length; 16 kHz, or `sample_rate_hz` with frames of the same duration and
        the top band's gain above it); audio too short or too quiet to measure is returned as it is.
        What scipy's stft -> gains -> istft gives, made APPLY_BLOCK_FRAMES frames at a time, so that memory
        does not grow with the song beyond the cepstra: the song's frames are read twice, once for the
        statistics over all its audible frames, once to apply the gains (overlap-added into the output)."""
        from numpy.lib.stride_tricks import sliding_window_view
        from scipy.fft import dct, idct, irfft, rfft
        from scipy.signal import get_window

        rate = SAMPLE_RATE_HZ if sample_rate_hz is None else sample_rate_hz
        n_fft, hop = _n_fft(rate), HOP * rate // SAMPLE_RATE_HZ
        if len(audio) < n_fft or not np.any(audio):
            return audio
        win = get_window("hann", n_fft)
        padded, n_frames = _frame_source(audio, n_fft, hop)

        def spectra(j0: int, j1: int) -> npt.NDArray[np.complex128]:
            frames = sliding_window_view(padded[j0 * hop : (j1 - 1) * hop + n_fft], n_fft)[::hop]
            return np.asarray(rfft(frames * win, axis=1).T / win.sum())

        fb = mel_filterbank(rate)
        level = np.empty((fb.shape[0], n_frames))
        frame_db = np.empty(n_frames)
        for j0 in range(0, n_frames, APPLY_BLOCK_FRAMES):
            j1 = min(n_frames, j0 + APPLY_BLOCK_FRAMES)
            power = np.abs(spectra(j0, j1)) ** 2
            level[:, j0:j1] = 10 * np.log10(fb @ power + 1e-10)
            frame_db[j0:j1] = 10 * np.log10(power.sum(axis=0) + 1e-20)
        c = dct(level, type=2, norm="ortho", axis=0)
        del level
        audible = frame_db > frame_db.max() - AUDIBLE_DB
        if audible.sum() < MIN_FRAMES:
            return audio
        mean = c[:, audible].mean(axis=1, keepdims=True)
        to_bin = _band_to_bin(rate)
        out = np.zeros(len(padded), np.float32)  # single precision: four frames overlap-added (tested)
        norm = np.zeros(len(padded), np.float32)
        win2 = win**2
        for j0 in range(0, n_frames, APPLY_BLOCK_FRAMES):
            j1 = min(n_frames, j0 + APPLY_BLOCK_FRAMES)
            cb = c[:, j0:j1]
            target = mean + self.shift[:, None] + self.scale[:, None] * (cb - mean)
            gain_db = idct(target - cb, type=2, norm="ortho", axis=0) * self.weight[:, None]
            gain_db = np.clip(gain_db, -MAX_GAIN_DB, MAX_GAIN_DB)
            spec = spectra(j0, j1) * 10 ** ((to_bin @ gain_db) / 20)
            frames = irfft(spec.T * win.sum(), n=n_fft, axis=1) * win
            for k, j in enumerate(range(j0, j1)):
                out[j * hop : j * hop + n_fft] += frames[k]
                norm[j * hop : j * hop + n_fft] += win2
        out /= np.where(norm > 1e-10, norm, np.float32(1.0))
        half = n_fft // 2
        return np.asarray(out[half : half + len(audio)], np.float32)


def _frame_source(
    audio: npt.NDArray[np.float32], n_fft: int = N_FFT, hop: int = HOP
) -> tuple[npt.NDArray[np.float32], int]:
    """The audio as scipy's stft(boundary="even", padded=True) frames it: extended by half a frame at each end
    (mirrored about the end samples), then zero-padded to a whole number of hops; and the number of frames."""
    x = np.asarray(audio, np.float32)  # each block of frames is taken to double precision as it is read
    half = n_fft // 2
    ext = np.concatenate([x[half:0:-1], x, x[-2 : -(half + 2) : -1]])
    extra = (-(len(ext) - n_fft) % hop) % n_fft
    ext = np.concatenate([ext, np.zeros(extra, np.float32)])
    return ext, (len(ext) - n_fft) // hop + 1
