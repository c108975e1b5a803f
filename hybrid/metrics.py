"""Scores of a transfer: note-level precision/recall/F1 (mir_eval), tempo ratio, and the timbre distances.

The timbre descriptor is independent of the learned encoder: mean and standard deviation of MFCC 1-19 over the
audible frames (frames within 50 dB of the loudest), at SAMPLE_RATE_HZ. MFCCs share one unit (a cepstrum of dB
values), so plain Euclidean distance between descriptors is meaningful without per-dataset scaling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.notes import NoteSequence

# mir_eval.transcription's defaults, restated so they show in reports.
ONSET_TOLERANCE_S = 0.05
PITCH_TOLERANCE_CENTS = 50.0
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE_S = 0.05

N_MFCC = 20  # coefficient 0 (loudness) is dropped: 19 remain
AUDIBLE_DB = 50.0


@dataclass(frozen=True)
class NoteScores:
    precision: float
    recall: float
    f1: float
    onset_precision: float  # onset-only matching (offsets ignored)
    onset_recall: float
    onset_f1: float
    n_reference: int
    n_estimate: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


SEGMENT_NOTES = 2000  # notes are matched in segments of about this many (reference and estimate together)


def _segments(
    ref_onsets: npt.NDArray[np.float64], est_onsets: npt.NDArray[np.float64], tolerance_s: float
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
    """(reference indices, estimate indices) of stretches of about SEGMENT_NOTES notes, cut only where the next
    onset (of either list) is more than the onset tolerance away: no note can match across such a cut, so
    matching each stretch alone gives the same matches as matching all at once (a maximum matching is one per
    connected part of the graph of possible pairs), with memory that does not grow with the song (mir_eval
    builds (reference x estimate) matrices: 11,000 notes each made 3 GB)."""
    onsets = np.concatenate([ref_onsets, est_onsets])
    order = np.argsort(onsets, kind="stable")
    is_ref = order < len(ref_onsets)
    # a cut after sorted position i is safe when the next onset is beyond the tolerance (mir_eval rounds the
    # distances to 4 decimals before comparing, hence the margin)
    gaps = np.diff(onsets[order]) > tolerance_s + 1e-3
    out = []
    start = 0
    for i in np.flatnonzero(gaps):
        if i + 1 - start >= SEGMENT_NOTES:
            out.append((order[start : i + 1], is_ref[start : i + 1]))
            start = i + 1
    out.append((order[start:], is_ref[start:]))
    n_ref = len(ref_onsets)
    return [(np.sort(idx[ref]), np.sort(idx[~ref] - n_ref)) for idx, ref in out]


def _match(
    ref_iv: np.ndarray,
    ref_hz: np.ndarray,
    est_iv: np.ndarray,
    est_hz: np.ndarray,
    onset_tolerance_s: float,
    pitch_tolerance_cents: float,
    offset_ratio: float | None,
) -> list[tuple[int, int]]:
    """mir_eval.transcription.match_notes, segment by segment (see _segments): the same matches."""
    import mir_eval

    pairs: list[tuple[int, int]] = []
    for r, e in _segments(ref_iv[:, 0], est_iv[:, 0], onset_tolerance_s):
        if len(r) == 0 or len(e) == 0:
            continue
        found = mir_eval.transcription.match_notes(
            ref_iv[r],
            ref_hz[r],
            est_iv[e],
            est_hz[e],
            onset_tolerance=onset_tolerance_s,
            pitch_tolerance=pitch_tolerance_cents,
            offset_ratio=offset_ratio,
            offset_min_tolerance=OFFSET_MIN_TOLERANCE_S,
        )
        pairs.extend((int(r[i]), int(e[j])) for i, j in found)
    return pairs


def note_scores(
    reference: NoteSequence,
    estimate: NoteSequence,
    onset_tolerance_s: float = ONSET_TOLERANCE_S,
    pitch_tolerance_cents: float = PITCH_TOLERANCE_CENTS,
    offset_ratio: float = OFFSET_RATIO,
) -> NoteScores:
    """mir_eval note-level scores, with offsets (offset_ratio) and onset-only: the precision, recall and F1 of
    mir_eval.transcription.precision_recall_f1_overlap, from matches made segment by segment."""
    import mir_eval

    ref_iv, ref_hz = reference.intervals_pitches()
    est_iv, est_hz = estimate.intervals_pitches()
    if len(ref_iv) == 0 or len(est_iv) == 0:
        return NoteScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, len(ref_iv), len(est_iv))
    mir_eval.transcription.validate(ref_iv, ref_hz, est_iv, est_hz)

    def prf(ratio: float | None) -> tuple[float, float, float]:
        n = len(_match(ref_iv, ref_hz, est_iv, est_hz, onset_tolerance_s, pitch_tolerance_cents, ratio))
        p, r = n / len(est_iv), n / len(ref_iv)
        return float(p), float(r), float(mir_eval.util.f_measure(p, r, beta=1.0))

    p, r, f = prf(offset_ratio)
    po, ro, fo = prf(None)
    return NoteScores(p, r, f, po, ro, fo, len(ref_iv), len(est_iv))


def note_matching(
    reference: NoteSequence, estimate: NoteSequence, onset_tolerance_s: float = ONSET_TOLERANCE_S
) -> list[tuple[int, int]]:
    """Onset-only matched (reference index, estimate index) pairs, as mir_eval matches them."""
    ref_iv, ref_hz = reference.intervals_pitches()
    est_iv, est_hz = estimate.intervals_pitches()
    if len(ref_iv) == 0 or len(est_iv) == 0:
        return []
    return _match(ref_iv, ref_hz, est_iv, est_hz, onset_tolerance_s, PITCH_TOLERANCE_CENTS, None)


def tempo_ratio(reference_bpm: float, estimate_bpm: float) -> float:
    """estimate / reference tempo; 1.0 means the same tempo."""
    return float(estimate_bpm / reference_bpm) if reference_bpm > 0 else float("nan")


def octave_folded_ratio(ratio: float) -> float:
    """Fold a tempo ratio into [1/sqrt2, sqrt2): beat trackers often report half or double tempo."""
    if not np.isfinite(ratio) or ratio <= 0:
        return ratio
    return float(2 ** (((np.log2(ratio) + 0.5) % 1.0) - 0.5))


# ------------------------------------------------------------------------------------------ timbre


def mfcc_stats(
    audio: npt.NDArray[np.float32],
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    analysis_rate_hz: int = SAMPLE_RATE_HZ,
) -> npt.NDArray[np.float64]:
    """(38,) = mean and std of MFCC 1-19 over audible frames, analysed at analysis_rate_hz (the mel bands reach
    its Nyquist: at 22.05 kHz they see up to 11 kHz)."""
    from hybrid.audio import resample

    y = resample(np.asarray(audio, np.float32), sample_rate_hz, analysis_rate_hz)
    m = _mfcc(y, analysis_rate_hz)[1:]
    rms = _frame_rms(y)[: m.shape[1]]
    db = 20 * np.log10(rms + 1e-10)
    keep = db > db.max() - AUDIBLE_DB
    m = m[:, keep] if keep.sum() >= 3 else m
    return np.concatenate([m.mean(axis=1), m.std(axis=1)]).astype(np.float64)


MFCC_N_FFT = 1024
MFCC_HOP = 256
MFCC_N_MELS = 128


def _frames(y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(n_frames, MFCC_N_FFT) frames of y padded by half a frame of zeros each side (librosa's center=True)."""
    pad = MFCC_N_FFT // 2
    yp = np.pad(np.asarray(y, np.float32), pad)
    if len(yp) < MFCC_N_FFT:
        yp = np.pad(yp, (0, MFCC_N_FFT - len(yp)))
    return np.lib.stride_tricks.sliding_window_view(yp, MFCC_N_FFT)[::MFCC_HOP]


def _mfcc(y: npt.NDArray[np.float32], sample_rate_hz: int) -> npt.NDArray[np.float32]:
    """(N_MFCC, frames): librosa.feature.mfcc(y, sr, n_mfcc=N_MFCC, n_fft=1024, hop_length=256) ported to numpy
    and scipy (its defaults: Hann window, 128 Slaney mel bands to Nyquist, power_to_db with top_db 80, DCT-II
    ortho), in librosa's float32; importing librosa.feature costs a process a second and a half of numba
    kernels, and hybrid runs it while fitting B's room. tests/test_metrics.py compares the two."""
    from scipy.fft import dct
    from scipy.signal import get_window

    from hybrid.constants import mel_filters

    window = get_window("hann", MFCC_N_FFT, fftbins=True)
    spec = np.fft.rfft(window * _frames(y), axis=1).astype(np.complex64)  # as librosa.stft stores it
    power = (np.abs(spec) ** 2).T  # (bins, frames)
    mel = np.einsum("ft,mf->mt", power, mel_filters(MFCC_N_FFT, MFCC_N_MELS, 0.0, None, sample_rate_hz))
    log = 10.0 * np.log10(np.maximum(np.float32(1e-10), mel))
    log = np.maximum(log, log.max() - np.float32(80.0))
    return dct(log, axis=0, type=2, norm="ortho")[:N_MFCC]


def _frame_rms(y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """librosa.feature.rms(y=y, frame_length=1024, hop_length=256): the RMS of each centred frame."""
    frames = _frames(y)
    return np.sqrt(np.mean(np.abs(frames) ** 2, axis=1))


def spectral_stats(
    audio: npt.NDArray[np.float32], sample_rate_hz: int = SAMPLE_RATE_HZ
) -> npt.NDArray[np.float64]:
    """(42,) = MFCC statistics plus mean/std of log spectral centroid and of spectral flatness (dB)."""
    import librosa

    from hybrid.audio import resample

    y = resample(np.asarray(audio, np.float32), sample_rate_hz, SAMPLE_RATE_HZ)
    cent = np.log(
        librosa.feature.spectral_centroid(y=y, sr=SAMPLE_RATE_HZ, n_fft=1024, hop_length=256)[0] + 1.0
    )
    flat = 10 * np.log10(librosa.feature.spectral_flatness(y=y, n_fft=1024, hop_length=256)[0] + 1e-10)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    db = 20 * np.log10(rms + 1e-10)
    keep = (db > db.max() - AUDIBLE_DB)[: len(cent)]
    cent, flat = (cent[keep], flat[keep]) if keep.sum() >= 3 else (cent, flat)
    return np.concatenate([mfcc_stats(y), [cent.mean(), cent.std(), flat.mean(), flat.std()]])


def standardized_distances(
    queries: npt.NDArray[np.float64], refs: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """(n_queries, n_refs) Euclidean distances after scaling each dimension by its std over the refs."""
    scale = refs.std(axis=0) + 1e-9
    q, r = queries / scale, refs / scale
    return np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))


@dataclass(frozen=True)
class TimbreScores:
    output_to_a: float
    output_to_b: float
    a_to_b: float

    @property
    def score(self) -> float:
        """Where the output sits between A (0) and B (1): d(out, A) / (d(out, A) + d(out, B))."""
        total = self.output_to_a + self.output_to_b
        return float(self.output_to_a / total) if total > 0 else 0.5

    @property
    def nearer_b(self) -> bool:
        return self.output_to_b < self.output_to_a

    def as_dict(self) -> dict[str, float | bool]:
        return {**asdict(self), "score": self.score, "nearer_b": self.nearer_b}


def timbre_scores(
    output: npt.NDArray[np.float32],
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32],
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    analysis_rate_hz: int = SAMPLE_RATE_HZ,
) -> TimbreScores:
    """MFCC-statistics distances between the output, the rhythm song A and the timbre song B (mono audio, all
    three at sample_rate_hz), analysed at analysis_rate_hz."""
    o, da, db = (
        mfcc_stats(output, sample_rate_hz, analysis_rate_hz),
        mfcc_stats(a, sample_rate_hz, analysis_rate_hz),
        mfcc_stats(b, sample_rate_hz, analysis_rate_hz),
    )
    return TimbreScores(
        float(np.linalg.norm(o - da)), float(np.linalg.norm(o - db)), float(np.linalg.norm(da - db))
    )
