"""The decoder's band above 8 kHz, shaped by B's own spectrum there.

The decoder renders at 16 kHz (trained on 16 kHz notes), so where it plays (B a mix, or chords only) the output
holds nothing above 8 kHz, while B does: a string section's bow noise, a cymbal's shimmer, a voice's air. The
note library plays full band; for the decoder hybrid replicates its top octave upwards (spectral band
replication, as in HE-AAC): every STFT frame's 3.6-7.2 kHz bins are copied into each band above 8 kHz, scaled so
that the band's power, relative to the 3.6-7.2 kHz octave's, is B's (measured once on B's long-term spectrum). The
high band thus follows the rendering's own attacks and decays, at B's spectral balance; a B with nothing above
8 kHz (a 16 kHz recording) gives nothing. A full-band decoder (one trained at 48 kHz) renders that band itself;
match_high_band brings it to B's balance the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SOURCE_HZ = (3600.0, 7200.0)  # the octave copied up (below the 16 kHz rendering's roll-off from 7.6 kHz)
EDGES_HZ = (8000.0, 10000.0, 12000.0, 14000.0, 17000.0, 20000.0, 24000.0)  # the bands filled
N_FFT = 1024
HOP = N_FFT // 4
BLOCK_FRAMES = 4096  # a long rendering is extended block by block
WELCH_BLOCK_SEGMENTS = 1024  # B's Welch spectrum is made this many segments at a time (48 s at 44.1 kHz)
MIN_GAIN_DB = -80.0  # a band this far under the source is left empty
MATCH_RANGE_DB = 24.0  # match_high_band changes a full-band rendering's band by at most this much


@dataclass(frozen=True)
class HighBand:
    """B's power density in each band of EDGES_HZ relative to its SOURCE_HZ octave (dB); -inf above B's Nyquist."""

    gains_db: tuple[float, ...]

    def as_dict(self) -> dict[str, list[float | None]]:
        return {"gains_db": [g if np.isfinite(g) else None for g in self.gains_db]}

    @classmethod
    def from_dict(cls, d: dict[str, list[float | None]]) -> HighBand:
        return cls(tuple(float("-inf") if g is None else float(g) for g in d["gains_db"]))


def measure_high_band(b: npt.NDArray[np.float32], sample_rate_hz: int) -> HighBand | None:
    """B's balance above 8 kHz (Welch spectrum of its audio at its own rate); None when B's rate cannot hold
    anything above 8 kHz or its SOURCE_HZ octave is silent."""
    if sample_rate_hz / 2 <= EDGES_HZ[0] or len(b) < N_FFT:
        return None
    f, p = _welch(b, sample_rate_hz, 4096 if len(b) >= 4096 else N_FFT)
    source = p[(f >= SOURCE_HZ[0]) & (f < SOURCE_HZ[1])].mean()
    if not source > 0:
        return None
    gains = []
    for lo, hi in zip(EDGES_HZ[:-1], EDGES_HZ[1:], strict=True):
        sel = (f >= lo) & (f < min(hi, sample_rate_hz / 2 * 0.98))  # not the resampler's roll-off at the top
        gains.append(float(10 * np.log10(p[sel].mean() / source + 1e-30)) if np.any(sel) else float("-inf"))
    return HighBand(tuple(gains))


def _welch(
    y: npt.NDArray[np.float32], sample_rate_hz: int, nperseg: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """scipy's Welch spectrum (Hann segments overlapping by half) of `y`, WELCH_BLOCK_SEGMENTS segments at a
    time, so that memory does not grow with the song: the mean of the same segments' periodograms."""
    from scipy.signal import welch

    step = nperseg // 2
    n_seg = (len(y) - nperseg) // step + 1
    total, f = None, None
    for i in range(0, n_seg, WELCH_BLOCK_SEGMENTS):
        k = min(WELCH_BLOCK_SEGMENTS, n_seg - i)
        seg = np.asarray(y[i * step : (i + k - 1) * step + nperseg], np.float64)
        f, p = welch(seg, fs=sample_rate_hz, nperseg=nperseg)
        total = p * k if total is None else total + p * k
    assert total is not None and f is not None
    return f, total / n_seg


def _bin_map(sample_rate_hz: int, high: HighBand) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target bins, their source bins, amplitude gains): each bin above 8 kHz takes the bin of the SOURCE_HZ
    octave at the same place within it (the octave tiled upwards). The shift is a multiple of 4 bins, so a
    copied component advances its phase from frame to frame (hop N_FFT / 4) as a component at its new
    frequency would: frames overlap-add without cancelling."""
    step = sample_rate_hz / N_FFT
    k_lo = int(round(SOURCE_HZ[0] / step))
    width = 4 * int(round((SOURCE_HZ[1] - SOURCE_HZ[0]) / step / 4))
    f = np.arange(N_FFT // 2 + 1) * step
    targets, sources, gains = [], [], []
    for (lo, hi), g in zip(zip(EDGES_HZ[:-1], EDGES_HZ[1:], strict=True), high.gains_db, strict=True):
        if not np.isfinite(g) or g < MIN_GAIN_DB:
            continue
        sel = np.flatnonzero((f >= lo) & (f < hi))
        targets.append(sel)
        sources.append(k_lo + (sel - k_lo) % width)
        gains.append(np.full(len(sel), 10 ** (g / 20)))
    if not targets:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    return np.concatenate(targets), np.concatenate(sources), np.concatenate(gains)


def extend_band(
    y: npt.NDArray[np.float32], sample_rate_hz: int, high: HighBand, inplace: bool = False
) -> npt.NDArray[np.float32]:
    """The rendering (n,) at sample_rate_hz with its band above 8 kHz filled from its SOURCE_HZ octave at B's
    balance. With `inplace`, into `y` itself."""
    targets, sources, gains = _bin_map(sample_rate_hz, high)
    if len(targets) == 0:
        return y

    def added(z: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
        high_band = np.zeros_like(z)
        high_band[targets] = z[sources] * gains[:, None]
        return high_band

    return _add_in_blocks(y, added, inplace)


def match_high_band(
    y: npt.NDArray[np.float32], sample_rate_hz: int, high: HighBand, inplace: bool = False
) -> npt.NDArray[np.float32]:
    """A full-band rendering (n,) with each band above 8 kHz brought to B's balance against the SOURCE_HZ
    octave: the rendering's own balance is measured (as B's is) and each band scaled by the difference,
    within MATCH_RANGE_DB; a band B has nothing in is emptied, as extend_band leaves it. With `inplace`, into
    `y` itself."""
    own = measure_high_band(y, sample_rate_hz)
    if own is None:
        return y
    step = sample_rate_hz / N_FFT
    f = np.arange(N_FFT // 2 + 1) * step
    targets, gains = [], []
    for (lo, hi), want, has in zip(
        zip(EDGES_HZ[:-1], EDGES_HZ[1:], strict=True), high.gains_db, own.gains_db, strict=True
    ):
        if not np.isfinite(has):
            continue
        sel = np.flatnonzero((f >= lo) & (f < hi))
        g_db = np.clip(want - has, -MATCH_RANGE_DB, MATCH_RANGE_DB) if np.isfinite(want) else None
        targets.append(sel)
        gains.append(np.full(len(sel), (0.0 if g_db is None else 10 ** (g_db / 20)) - 1.0))
    if not targets:
        return y
    rows, factors = np.concatenate(targets), np.concatenate(gains)

    def added(z: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
        change = np.zeros_like(z)
        change[rows] = z[rows] * factors[:, None]
        return change

    return _add_in_blocks(y, added, inplace)


def _add_in_blocks(
    y: npt.NDArray[np.float32],
    added: Callable[[npt.NDArray[np.complex128]], npt.NDArray[np.complex128]],
    inplace: bool,
) -> npt.NDArray[np.float32]:
    """`y` plus the inverse STFT of `added(its STFT)`, block by block on a global frame grid (frames are
    independent), so memory does not grow with the song and blocks join without a seam; with `inplace`, into
    `y` itself (each block reads the samples before it as they were, kept aside before they change)."""
    from scipy.signal import istft, stft

    if len(y) < N_FFT:
        return y
    out = y if inplace else np.array(y, np.float32, copy=True)
    margin = N_FFT  # samples each side: every kept sample is covered by frames wholly inside the block
    step = BLOCK_FRAMES * HOP
    before: npt.NDArray[np.float64] | None = None  # the margin before this block, as it was
    for start in range(0, len(y), step):
        lo = max(0, start - margin)
        hi = min(len(y), start + step + margin)
        seg = np.asarray(out[lo:hi], np.float64)  # a copy
        if before is not None:
            seg[: start - lo] = before
        end = min(start + step, len(y))
        before = np.asarray(out[max(0, end - margin) : end], np.float64)
        _, _, z = stft(seg, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="zeros", padded=True)
        _, change = istft(added(z), nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)
        keep_lo, keep_hi = start - lo, min(start + step, len(y)) - lo
        out[start : start + keep_hi - keep_lo] += change[keep_lo:keep_hi].astype(np.float32)
    return out
