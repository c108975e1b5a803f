"""Scores of a transfer: note-level precision/recall/F1 (mir_eval), tempo ratio."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hybrid.notes import NoteSequence

# mir_eval.transcription's defaults, restated so they show in reports.
ONSET_TOLERANCE_S = 0.05
PITCH_TOLERANCE_CENTS = 50.0
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE_S = 0.05


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


def note_scores(
    reference: NoteSequence,
    estimate: NoteSequence,
    onset_tolerance_s: float = ONSET_TOLERANCE_S,
    pitch_tolerance_cents: float = PITCH_TOLERANCE_CENTS,
    offset_ratio: float = OFFSET_RATIO,
) -> NoteScores:
    """mir_eval note-level scores, with offsets (offset_ratio) and onset-only."""
    import mir_eval

    ref_iv, ref_hz = reference.intervals_pitches()
    est_iv, est_hz = estimate.intervals_pitches()
    if len(ref_iv) == 0 or len(est_iv) == 0:
        return NoteScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, len(ref_iv), len(est_iv))
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_iv,
        ref_hz,
        est_iv,
        est_hz,
        onset_tolerance=onset_tolerance_s,
        pitch_tolerance=pitch_tolerance_cents,
        offset_ratio=offset_ratio,
        offset_min_tolerance=OFFSET_MIN_TOLERANCE_S,
    )
    po, ro, fo, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_iv,
        ref_hz,
        est_iv,
        est_hz,
        onset_tolerance=onset_tolerance_s,
        pitch_tolerance=pitch_tolerance_cents,
        offset_ratio=None,
    )
    return NoteScores(float(p), float(r), float(f), float(po), float(ro), float(fo), len(ref_iv), len(est_iv))


def note_matching(
    reference: NoteSequence, estimate: NoteSequence, onset_tolerance_s: float = ONSET_TOLERANCE_S
) -> list[tuple[int, int]]:
    """Onset-only matched (reference index, estimate index) pairs, as mir_eval matches them."""
    import mir_eval

    ref_iv, ref_hz = reference.intervals_pitches()
    est_iv, est_hz = estimate.intervals_pitches()
    if len(ref_iv) == 0 or len(est_iv) == 0:
        return []
    return list(
        mir_eval.transcription.match_notes(
            ref_iv, ref_hz, est_iv, est_hz, onset_tolerance=onset_tolerance_s, offset_ratio=None
        )
    )


def tempo_ratio(reference_bpm: float, estimate_bpm: float) -> float:
    """estimate / reference tempo; 1.0 means the same tempo."""
    return float(estimate_bpm / reference_bpm) if reference_bpm > 0 else float("nan")


def octave_folded_ratio(ratio: float) -> float:
    """Fold a tempo ratio into [1/sqrt2, sqrt2): beat trackers often report half or double tempo."""
    if not np.isfinite(ratio) or ratio <= 0:
        return ratio
    return float(2 ** (((np.log2(ratio) + 0.5) % 1.0) - 0.5))
