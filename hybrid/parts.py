"""Whole songs: A's drums kept under the rendered notes, and A's notes split into parts with their own timbres.

- `split_drums`: harmonic-percussive separation by median filtering (librosa's HPSS, Fitzgerald 2010, its
  medians running medians in numba), block by block so that memory does not grow with the song. The
  percussive part, separated with a margin of 2 (only what is clearly percussive), is A's drums; A less its
  drums is what hybrid transcribes, so drum hits leave no stray notes. It runs where A has drums (`--drums
  keep`, the default) or when asked (`always`).
- `drum_hits_per_s`: whether A has drums to keep (`--drums keep`). A drum kit's hits are noise: onsets of
  the percussive part whose spectrum is flat and which hold most of the high band. A solo's attacks are
  pitched, or lie under its own partials, so a solo scores near none, and keep leaves it exactly as it is. It
  misses some kits (a ride cymbal's hits, dense hi-hats), which then stay as they were with `drop`; `--drums
  always` splits A without asking (docs/design.md has the measurements).
- `without_drums`: a timbre song that is a mix, less its percussive part, for the fit (`--timbre-drums drop`).
- `split_parts`: the bass line (each note that no lower note sounds with at its onset, or every note under
  `--split-at`) and the rest, for a bass timbre of its own.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid.errors import HybridError
from hybrid.notes import NoteSequence

DRUMS_MODES = ("keep", "drop", "always")
TIMBRE_DRUMS_MODES = ("keep", "drop")
# The drum detector (benchmarks/bench_drum_features.py, its last column; docs/design.md)
DETECT_RATE_HZ = 22_050
# a longer song is heard through DETECT_EXCERPTS of 30 s spread over it (15 s ones vary too much)
DETECT_MAX_S = 90.0
DETECT_EXCERPTS = 3
DRUM_HITS_PER_S = 0.45  # noisy hits a second from which A has drums (solo recordings: 0.34 at most)
HIT_FLATNESS = 0.1  # a hit is noise when its spectrum (200 Hz - 10.5 kHz) is flatter than this ...
HIT_HIGH_SHARE = 0.5  # ... and it holds more than this share of the 4 - 10.5 kHz band
HPSS_N_FFT = 2048
HPSS_HOP = 512
HPSS_MARGIN = 2.0  # a bin is percussive when it is twice as percussive as harmonic
HPSS_KERNEL = 31  # frames and bins of the median filters (librosa's default)
HPSS_BLOCK_S = 30.0  # A is separated in blocks of 30 s ...
HPSS_CONTEXT_S = 2.0  # ... each with 2 s of context on either side (the median filters span 0.7 s)
MAX_DRUMS_LEVEL_DB = 24.0


@dataclass
class Drums:
    """A split into its percussive part (the drums) and the rest, at A's rate."""

    percussive: npt.NDArray[np.float32]
    rest: npt.NDArray[np.float32]
    sample_rate_hz: int


def drum_hits_per_s(y: npt.NDArray[np.float32], sample_rate_hz: int) -> float:
    """Noisy percussive hits a second in a song (mono, any rate), heard at DETECT_RATE_HZ: onsets of its
    percussive part (split_drums) whose spectrum is flat and which hold most of the high band. A has drums to
    keep from DRUM_HITS_PER_S. A song longer than DETECT_MAX_S is heard through DETECT_EXCERPTS excerpts."""
    from hybrid.audio import resample

    n = len(y)
    if n <= DETECT_MAX_S * sample_rate_hz:
        pieces = [(0, n)]
    else:
        m = int(DETECT_MAX_S / DETECT_EXCERPTS * sample_rate_hz)
        pieces = [(int((n - m) * i / (DETECT_EXCERPTS - 1)), m) for i in range(DETECT_EXCERPTS)]
    hits, seconds = 0, 0.0
    for start, length in pieces:
        piece = resample(np.asarray(y[start : start + length], np.float32), sample_rate_hz, DETECT_RATE_HZ)
        hits += _noisy_hits(piece)
        seconds += len(piece) / DETECT_RATE_HZ
    return hits / seconds if seconds >= 1.0 else 0.0


def _noisy_hits(y: npt.NDArray[np.float32]) -> int:
    """How many noisy percussive hits `y` (mono, DETECT_RATE_HZ) holds (drum_hits_per_s)."""
    import librosa
    from scipy.signal import find_peaks

    if len(y) < DETECT_RATE_HZ or not np.any(y):
        return 0
    n_fft, hop = 1024, 256
    whole = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop)) ** 2
    perc = np.abs(librosa.stft(split_drums(y, DETECT_RATE_HZ).percussive, n_fft=n_fft, hop_length=hop)) ** 2
    f = librosa.fft_frequencies(sr=DETECT_RATE_HZ, n_fft=n_fft)
    band, high = (f >= 200) & (f < 10_500), (f >= 4_000) & (f < 10_500)
    # onsets: peaks of the percussive part's onset strength, 2 standard deviations over its median, 80 ms apart
    env = librosa.onset.onset_strength(
        S=librosa.power_to_db(perc + 1e-10, ref=np.max), sr=DETECT_RATE_HZ, hop_length=hop
    )
    peaks, _ = find_peaks(
        env, height=np.median(env) + 2 * np.std(env), distance=int(0.08 * DETECT_RATE_HZ / hop)
    )
    count = 0
    for i in peaks:  # each over 4 frames (46 ms)
        spec = perc[band, i : i + 4].sum(axis=1) + 1e-12
        flatness = np.exp(np.mean(np.log(spec))) / np.mean(spec)
        share = perc[high, i : i + 4].sum() / (whole[high, i : i + 4].sum() + 1e-12)
        count += int(flatness > HIT_FLATNESS and share > HIT_HIGH_SHARE)
    return count


def without_drums(audio: npt.NDArray[np.float32], sample_rate_hz: int) -> npt.NDArray[np.float32]:
    """A song ((n,) or (n, channels)) less its percussive part, channel by channel (split_drums): what the
    timbre of a B that is a mix is fitted on with `--timbre-drums drop`."""
    y = np.asarray(audio, np.float32)
    if y.ndim == 1:
        return split_drums(y, sample_rate_hz).rest
    return np.stack([split_drums(y[:, c], sample_rate_hz).rest for c in range(y.shape[1])], axis=1)


def check_drums_options(mode: str, level_db: float, timbre_mode: str = "keep") -> None:
    if mode not in DRUMS_MODES:
        raise HybridError(f"--drums must be one of {', '.join(DRUMS_MODES)}, got {mode!r}")
    if timbre_mode not in TIMBRE_DRUMS_MODES:
        raise HybridError(
            f"--timbre-drums must be one of {', '.join(TIMBRE_DRUMS_MODES)}, got {timbre_mode!r}"
        )
    if not (np.isfinite(level_db) and abs(level_db) <= MAX_DRUMS_LEVEL_DB):
        raise HybridError(
            f"--drums-level must be between -{MAX_DRUMS_LEVEL_DB:g} and {MAX_DRUMS_LEVEL_DB:g} dB, got {level_db}"
        )


def split_drums(a: npt.NDArray[np.float32], sample_rate_hz: int, overwrite: bool = False) -> Drums:
    """A's percussive part and the rest (mono, A's rate), separated block by block; with `overwrite` (float32
    A that the caller lets go), the rest is A itself, less the drums: no copy of a long song."""
    import librosa

    y = np.asarray(a, np.float32)
    percussive = np.zeros_like(y)
    block = int(HPSS_BLOCK_S * sample_rate_hz) // HPSS_HOP * HPSS_HOP
    context = int(HPSS_CONTEXT_S * sample_rate_hz) // HPSS_HOP * HPSS_HOP
    for start in range(0, len(y), block):
        lo, hi = max(0, start - context), min(len(y), start + block + context)
        seg = y[lo:hi]
        spec = librosa.stft(seg, n_fft=HPSS_N_FFT, hop_length=HPSS_HOP)
        p = librosa.istft(_percussive(spec), hop_length=HPSS_HOP, n_fft=HPSS_N_FFT, length=len(seg))
        keep = slice(start - lo, min(start + block, len(y)) - lo)
        percussive[start : start + (keep.stop - keep.start)] = p[keep]
    rest = np.subtract(y, percussive, out=y) if overwrite and y is a else y - percussive
    return Drums(percussive, rest, sample_rate_hz)


def _percussive(spec: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
    """The percussive part of a spectrogram (bins, frames), as librosa.decompose.hpss(spec, margin=HPSS_MARGIN)
    gives it: the magnitude's median over HPSS_KERNEL frames is the harmonic level, over HPSS_KERNEL bins the
    percussive one, and each bin is kept by the soft mask of the percussive level against HPSS_MARGIN times the
    harmonic one. The medians are running medians (_median; scipy's, librosa's, take eight times as long), the
    same values; the harmonic part is not computed."""
    import librosa

    mag = np.abs(spec)
    harmonic = _median(mag, 1)
    percussive = _median(mag, 0)
    return spec * librosa.util.softmask(percussive, harmonic * HPSS_MARGIN, power=2.0, split_zeros=False)


def _median(x: npt.NDArray[np.float32], axis: int) -> npt.NDArray[np.float32]:
    """scipy.ndimage.median_filter of 2-D `x` over HPSS_KERNEL values along `axis` (mode "reflect": the edge
    value repeated, then the values before it mirrored), as a running median (_running_median): a fraction
    of the time torch's median of every window took (benchmarks/bench_drums_speed.py)."""
    rows = np.moveaxis(np.asarray(x, np.float32), axis, -1)
    half = HPSS_KERNEL // 2
    padded = np.ascontiguousarray(np.pad(rows, [(0, 0), (half, half)], mode="symmetric"))
    out = np.empty(rows.shape, np.float32)
    kernel = _running_median()
    # the rows split among the cores (the kernel releases the GIL)
    cuts = np.linspace(0, len(rows), min(os.cpu_count() or 1, 4) + 1).astype(int)
    with ThreadPoolExecutor(len(cuts) - 1) as pool:
        done = [pool.submit(kernel, padded[i:j], HPSS_KERNEL, out[i:j]) for i, j in itertools.pairwise(cuts)]
        for d in done:
            d.result()
    return np.moveaxis(out, -1, axis)


@functools.cache
def _running_median() -> Callable[..., None]:
    """A numba kernel (compiled once, then cached on disk beside this file; numba is loaded with librosa):
    out[r, j] = the median of padded[r, j : j + k], k odd, kept as a sorted window that each step takes one
    value out of and puts one into."""
    from numba import njit

    @njit(cache=True, nogil=True)  # type: ignore[misc]
    def running_median(padded: Any, k: int, out: Any) -> None:  # pragma: no cover (compiled)
        rows, n = out.shape
        mid = k // 2
        for r in range(rows):
            window = np.sort(padded[r, :k])
            out[r, 0] = window[mid]
            for j in range(1, n):
                old, new = padded[r, j - 1], padded[r, j + k - 1]
                i = np.searchsorted(window, old)  # where the value that leaves is
                if new > old:  # the new value moves up into its place ...
                    while i + 1 < k and window[i + 1] < new:
                        window[i] = window[i + 1]
                        i += 1
                else:  # ... or down
                    while i > 0 and window[i - 1] > new:
                        window[i] = window[i - 1]
                        i -= 1
                window[i] = new
                out[r, j] = window[mid]

    return running_median  # type: ignore[no-any-return]


def bass_line(notes: NoteSequence, split_at: float | None = None) -> tuple[NoteSequence, NoteSequence]:
    """(the bass part, the rest): with split_at (MIDI), the notes below it; else the lowest voice: each note
    that no lower note sounds with at its onset."""
    seq = sorted(notes.notes, key=lambda n: (n.onset_s, n.pitch_midi))
    low: list[bool] = []
    if split_at is not None:
        low = [n.pitch_midi < split_at for n in seq]
    else:
        sounding: list = []  # sweep in onset order, keeping the notes that still sound
        for n in seq:
            sounding = [m for m in sounding if m.offset_s > n.onset_s]
            low.append(not any(m.pitch_midi < n.pitch_midi for m in sounding))
            sounding.append(n)
    return (
        NoteSequence([n for n, b in zip(seq, low, strict=True) if b], notes.tempo_bpm),
        NoteSequence([n for n, b in zip(seq, low, strict=True) if not b], notes.tempo_bpm),
    )


def parse_note(note: str | None) -> float | None:
    """A note name (C3, F#2, Bb4) or a MIDI number; None stays None."""
    if note is None:
        return None
    try:
        return float(note)
    except ValueError:
        pass
    import pretty_midi

    try:
        return float(pretty_midi.note_name_to_number(note))
    except (ValueError, KeyError, IndexError):
        raise HybridError(
            f"--split-at: {note!r} is neither a note name (C3, F#2) nor a MIDI number"
        ) from None
