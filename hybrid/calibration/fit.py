"""fit_timbre(): a timbre song -> a FittedTimbre (the embedding, then the calibration)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hybrid.calibration.acoustics import Acoustics
from hybrid.calibration.correction import Correction
from hybrid.calibration.fitted import FittedTimbre, PendingFit, half_offset
from hybrid.calibration.offset import STEPS as OFFSET_STEPS
from hybrid.calibration.offset import fit_offset
from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.neural.conditioning import sequence_conditioning
from hybrid.notes import NoteSequence

if TYPE_CHECKING:
    from hybrid.neural.renderer import Renderer
    from hybrid.transcription import Transcriber

CALIBRATION_S = 20.0  # the loudest 20 s of the timbre song are transcribed and resynthesised
MIN_CALIBRATION_S = 0.5  # a shorter timbre song holds too little to measure a calibration on
ENERGY_BLOCK = 1 << 20  # samples squared and summed at once when the loudest stretch is looked for
ROOM_FIT_S = 10.0  # the room is fitted on the first 10 s of the calibration excerpt
# what complete_timbre fits of a timbre fitted with defer_decoder
DECODER_FIELDS = ("offset", "correction", "half_correction", "no_offset_correction", "acoustics")


def loudest_span_s(audio: npt.NDArray[np.float32], seconds: float) -> tuple[float, float]:
    """Start and end (s) of the `seconds`-long stretch of SAMPLE_RATE_HZ audio with the most energy (in steps of
    1 s); all of it if shorter."""
    n = int(seconds * SAMPLE_RATE_HZ)
    if len(audio) <= n:
        return 0.0, len(audio) / SAMPLE_RATE_HZ
    starts = np.arange(0, len(audio) - n + 1, SAMPLE_RATE_HZ)
    energy = _energy_before(audio, np.concatenate([starts, starts + n]))
    best = int(starts[np.argmax(energy[len(starts) :] - energy[: len(starts)])])
    return best / SAMPLE_RATE_HZ, (best + n) / SAMPLE_RATE_HZ


def library_excerpt(
    audio: npt.NDArray[np.float32], song: npt.NDArray[np.float32], sample_rate_hz: int
) -> npt.NDArray[np.float32]:
    """The excerpt fit_timbre calibrates on (the loudest CALIBRATION_S of `audio`, the song at SAMPLE_RATE_HZ),
    taken from `song` (the same song at its own rate) to OUTPUT_SAMPLE_RATE_HZ for the note library: only that
    stretch is resampled (hybrid.audio.resample_span)."""
    from hybrid.audio import resample_span
    from hybrid.constants import OUTPUT_SAMPLE_RATE_HZ

    start_s, end_s = loudest_span_s(audio, CALIBRATION_S)
    return resample_span(song, sample_rate_hz, OUTPUT_SAMPLE_RATE_HZ, start_s, end_s)


def _energy_before(
    audio: npt.NDArray[np.float32], positions: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The energy of audio[:p] for each p of `positions`, summed ENERGY_BLOCK samples at a time (memory does
    not grow with the song)."""
    order = np.argsort(positions, kind="stable")
    out = np.zeros(len(positions))
    done, j = 0.0, 0
    for b0 in range(0, len(audio), ENERGY_BLOCK):
        running = np.cumsum(audio[b0 : b0 + ENERGY_BLOCK].astype(np.float64) ** 2)
        while j < len(order) and positions[order[j]] <= b0 + len(running):
            p = positions[order[j]]
            out[order[j]] = done + (running[p - b0 - 1] if p > b0 else 0.0)
            j += 1
        done += float(running[-1])
    return out


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
    library_excerpt: npt.NDArray[np.float32] | None = None,
    acoustics: Acoustics | None = None,
    defer_decoder: bool = False,
) -> FittedTimbre:
    """Embed a timbre song (mono, SAMPLE_RATE_HZ) and, with `calibrate`, calibrate on it: transcribe (the
    loudest CALIBRATION_S of) the song, fit the offset on those notes (`offset_steps` steps, 0 for none), render
    them, and measure the correction against the song with the whole offset, half of it and none. With
    `library_excerpt` (the same excerpt, loudest_span_s(audio, CALIBRATION_S), at OUTPUT_SAMPLE_RATE_HZ: see
    library_excerpt), also analyse its clean notes into a note library. With
    `acoustics` (estimated from the song), fit the room each player adds (see hybrid.calibration.acoustics).
    With `defer_decoder`, when the song has a note library (which plays unless the note check finds that it
    loses notes), what only the decoder uses (the offset, its corrections, the decoder's room) is left for
    complete_timbre, which the note check calls when the decoder is to play: the timbre keeps the excerpt for
    it, and the correction without the offset (the note check's floor)."""
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
    if library_excerpt is not None:
        from hybrid.calibration.note_library import NoteLibrary
        from hybrid.constants import OUTPUT_SAMPLE_RATE_HZ

        library = NoteLibrary.analyse(library_excerpt, OUTPUT_SAMPLE_RATE_HZ, notes)
    pitches = (min(n.pitch_midi for n in notes.notes), max(n.pitch_midi for n in notes.notes))
    fitted = FittedTimbre(emb, None, len(notes), pitches, library=library)
    # (complete_timbre fits the offset in OFFSET_STEPS steps: another number is fitted at once)
    deferred = defer_decoder and library is not None and offset_steps == OFFSET_STEPS
    # deferred, only the correction without the offset (the full fit's no_offset_correction: the same mix)
    fitted = _fit_decoder(renderer, fitted, notes, excerpt, 0 if deferred else offset_steps, seed)
    if deferred:
        fitted = replace(fitted, pending=PendingFit(excerpt.copy(), seed))
    if acoustics is None:
        return fitted
    rooms = fit_rooms(renderer, fitted, notes, excerpt, acoustics, seed, decoder=not deferred)
    return replace(fitted, acoustics=rooms)


def complete_timbre(
    renderer: Renderer, timbre: FittedTimbre, transcriber: Transcriber | None = None
) -> FittedTimbre:
    """A timbre fitted with defer_decoder, completed: the offset, its corrections and the decoder's room, fitted
    on the excerpt it kept, as fit_timbre fits them (the same values: the excerpt transcribes to the same notes),
    once for this timbre and every one made from it; the timbre as it is when nothing was deferred."""
    pending = timbre.pending
    if pending is None:
        return timbre
    if pending.fitted is None:
        from hybrid.transcription import Transcriber, transcribe_audio

        transcriber = transcriber or Transcriber()
        excerpt, seed = pending.excerpt, pending.seed
        notes = transcribe_audio(excerpt, SAMPLE_RATE_HZ, transcriber=transcriber, with_tempo=False).notes
        fitted = _fit_decoder(renderer, replace(timbre, pending=None), notes, excerpt, OFFSET_STEPS, seed)
        if timbre.acoustics is not None:
            rooms = fit_rooms(renderer, fitted, notes, excerpt, timbre.acoustics, seed, library=False)
            fitted = replace(fitted, acoustics=rooms)
        pending.fitted = {name: getattr(fitted, name) for name in DECODER_FIELDS}
        completed = replace(timbre, pending=None, **pending.fitted)
        if pending.on_fitted is not None:
            pending.on_fitted(completed)
        return completed
    return replace(timbre, pending=None, **pending.fitted)


def _fit_decoder(
    renderer: Renderer,
    fitted: FittedTimbre,
    notes: NoteSequence,
    excerpt: npt.NDArray[np.float32],
    offset_steps: int,
    seed: int,
) -> FittedTimbre:
    """The timbre with the decoder's calibration: the offset fitted (`offset_steps` steps, 0 for none), and the
    correction measured with the whole offset, half of it and none."""
    emb = fitted.embedding
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
        return replace(fitted, correction=correction, offset=None)
    # one run of the network for the three resyntheses: with the whole offset, half of it, none
    full, half, plain = (
        Correction.fit(excerpt, y[: len(excerpt)])
        for y in renderer.mixes(notes, emb, [offset, half_offset(offset), None], seed)
    )
    return replace(fitted, correction=full, offset=offset, half_correction=half, no_offset_correction=plain)


def fit_rooms(
    renderer: Renderer,
    fitted: FittedTimbre,
    notes: NoteSequence,
    excerpt: npt.NDArray[np.float32],
    acoustics: Acoustics,
    seed: int = 0,
    library: bool = True,
    decoder: bool = True,
) -> Acoustics:
    """The acoustics with the room fitted for each player (the note library when there is one, the decoder;
    `library` or `decoder` False: that player's room as it is in `acoustics`): the room that brings its
    rendering of the song's own notes (the first ROOM_FIT_S of the excerpt) nearest to the song
    (acoustics.fit_room)."""
    from hybrid.calibration.acoustics import fit_room
    from hybrid.calibration.fitted import render_fitted

    if excerpt.size > ROOM_FIT_S * SAMPLE_RATE_HZ:
        excerpt = excerpt[: int(ROOM_FIT_S * SAMPLE_RATE_HZ)]
        notes = NoteSequence([n for n in notes.notes if n.onset_s < ROOM_FIT_S], notes.tempo_bpm)

    def fitted_length(y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.pad(y, (0, max(0, len(excerpt) - len(y))))[: len(excerpt)]

    library_room, decoder_room = acoustics.library_room, acoustics.decoder_room
    if library and fitted.library is not None:
        lib = fitted.library
        library_room = fit_room(
            lambda: fitted_length(lib.render(notes, SAMPLE_RATE_HZ, seed=seed)),
            excerpt,
            SAMPLE_RATE_HZ,
            acoustics,
            seed,
        )
    if decoder:
        decoder_room = fit_room(
            lambda: fitted_length(render_fitted(renderer, notes, fitted, seed)),
            excerpt,
            SAMPLE_RATE_HZ,
            acoustics,
            seed,
        )
    return replace(acoustics, library_room=library_room, decoder_room=decoder_room)
