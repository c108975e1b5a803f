"""An independent timbre descriptor (MFCC statistics) and the distances a transfer is judged by.

Independent of the learned encoder: mean and standard deviation of MFCC 1-19 over the audible frames
(frames within 50 dB of the loudest), at 16 kHz. MFCCs share one unit (a cepstrum of dB values), so plain
Euclidean distance between descriptors is meaningful without per-dataset scaling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 16000
N_MFCC = 20  # coefficient 0 (loudness) is dropped: 19 remain
AUDIBLE_DB = 50.0


def mfcc_stats(
    audio: npt.NDArray[np.float32], sample_rate_hz: int = SAMPLE_RATE_HZ
) -> npt.NDArray[np.float64]:
    """(38,) = mean and std of MFCC 1-19 over audible frames."""
    import librosa

    from hybrid.audio import resample

    y = resample(np.asarray(audio, np.float32), sample_rate_hz, SAMPLE_RATE_HZ)
    m = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE_HZ, n_mfcc=N_MFCC, n_fft=1024, hop_length=256)[1:]
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0][: m.shape[1]]
    db = 20 * np.log10(rms + 1e-10)
    keep = db > db.max() - AUDIBLE_DB
    m = m[:, keep] if keep.sum() >= 3 else m
    return np.concatenate([m.mean(axis=1), m.std(axis=1)]).astype(np.float64)


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
) -> TimbreScores:
    """MFCC-statistics distances between the output, the rhythm song A and the timbre song B (mono audio)."""
    o, da, db = (
        mfcc_stats(output, sample_rate_hz),
        mfcc_stats(a, sample_rate_hz),
        mfcc_stats(b, sample_rate_hz),
    )
    return TimbreScores(
        float(np.linalg.norm(o - da)), float(np.linalg.norm(o - db)), float(np.linalg.norm(da - db))
    )
