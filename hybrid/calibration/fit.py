"""fit_timbre(): a timbre song -> a FittedTimbre (the embedding, then the calibration)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hybrid.calibration.correction import Correction
from hybrid.calibration.fitted import FittedTimbre, half_offset
from hybrid.calibration.offset import STEPS as OFFSET_STEPS
from hybrid.calibration.offset import fit_offset
from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.neural.conditioning import sequence_conditioning

if TYPE_CHECKING:
    from hybrid.neural.renderer import Renderer
    from hybrid.transcription import Transcriber

CALIBRATION_S = 20.0  # the loudest 20 s of the timbre song are transcribed and resynthesised
MIN_CALIBRATION_S = 0.5  # a shorter timbre song holds too little to measure a calibration on


def loudest_span_s(audio: npt.NDArray[np.float32], seconds: float) -> tuple[float, float]:
    """Start and end (s) of the `seconds`-long stretch of SAMPLE_RATE_HZ audio with the most energy (in steps of
    1 s); all of it if shorter."""
    n = int(seconds * SAMPLE_RATE_HZ)
    if len(audio) <= n:
        return 0.0, len(audio) / SAMPLE_RATE_HZ
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    starts = np.arange(0, len(audio) - n + 1, SAMPLE_RATE_HZ)
    best = int(starts[np.argmax(energy[starts + n] - energy[starts])])
    return best / SAMPLE_RATE_HZ, (best + n) / SAMPLE_RATE_HZ


def loudest_excerpt(audio: npt.NDArray[np.float32], seconds: float) -> npt.NDArray[np.float32]:
    """The `seconds`-long stretch of SAMPLE_RATE_HZ audio with the most energy (see loudest_span_s)."""
    a, b = loudest_span_s(audio, seconds)
    return audio[int(round(a * SAMPLE_RATE_HZ)) : int(round(b * SAMPLE_RATE_HZ))]


def fit_timbre(
    renderer: Renderer,
    audio: npt.NDArray[np.float32],
    calibrate: bool = True,
    transcriber: Transcriber | None = None,
    seed: int = 0,
    offset_steps: int = OFFSET_STEPS,
    full_band: tuple[npt.NDArray[np.float32], int] | None = None,
) -> FittedTimbre:
    """Embed a timbre song (mono, SAMPLE_RATE_HZ) and, with `calibrate`, calibrate on it: transcribe (the
    loudest CALIBRATION_S of) the song, fit the offset on those notes (`offset_steps` steps, 0 for none), render
    them, and measure the correction against the song with the whole offset, half of it and none. With
    `full_band` (the same song at a higher rate), also analyse its clean notes into a note library."""
    emb = renderer.embed(audio)
    if not calibrate or len(audio) < MIN_CALIBRATION_S * SAMPLE_RATE_HZ:
        return FittedTimbre(emb)
    from hybrid.transcription import Transcriber, transcribe_audio

    transcriber = transcriber or Transcriber()
    start_s, end_s = loudest_span_s(audio, CALIBRATION_S)
    excerpt = audio[int(round(start_s * SAMPLE_RATE_HZ)) : int(round(end_s * SAMPLE_RATE_HZ))]
    notes = transcribe_audio(excerpt, SAMPLE_RATE_HZ, transcriber=transcriber, with_tempo=False).notes
    if not notes.notes:
        return FittedTimbre(emb)
    library = None
    if full_band is not None:
        from hybrid.calibration.note_library import NoteLibrary

        y, sr = full_band
        library = NoteLibrary.analyse(y[int(round(start_s * sr)) : int(round(end_s * sr))], sr, notes)
    pitches = (min(n.pitch_midi for n in notes.notes), max(n.pitch_midi for n in notes.notes))
    offset = None
    if offset_steps > 0:
        fit = fit_offset(
            renderer.decoder, sequence_conditioning(notes), emb, excerpt, renderer.device, offset_steps, seed
        )
        if fit is not None:
            offset = fit.offset

    if offset is None:
        (resynth,) = renderer.mixes(notes, emb, [None], seed)
        correction = Correction.fit(excerpt, resynth[: len(excerpt)])
        return FittedTimbre(emb, correction, len(notes), pitches, library=library)
    # one run of the network for the three resyntheses: with the whole offset, half of it, none
    full, half, plain = (
        Correction.fit(excerpt, y[: len(excerpt)])
        for y in renderer.mixes(notes, emb, [offset, half_offset(offset), None], seed)
    )
    return FittedTimbre(emb, full, len(notes), pitches, offset, half, plain, library)
