"""The note check: keep as much of the offset as the notes being rendered allow.

A faithful timbre can hide notes (a mallet's strong upper partials read as extra notes three octaves up), and
keeping A's notes comes first. The check renders the CHECK_S window that holds most of the notes' onsets with
the whole offset, half of it and none (one run of the network), transcribes each as hybrid writes it
(loudness-normalised: basic-pitch's note picking depends on the level) and keeps the largest share whose onset
F1 is within CHECK_TOLERANCE of the rendering without the offset.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hybrid.calibration.fitted import OFFSET_SHARES, FittedTimbre
from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.notes import NoteSequence

if TYPE_CHECKING:
    from hybrid.neural.renderer import Renderer
    from hybrid.transcription import Transcriber

# Tolerance 0 (not one note lost to the offset) against 0.02: on 12 held-out 5 s phrases of up to 4 voices
# 0.903 against 0.896, with the same timbre identification (docs/design.md).
CHECK_S = 8.0
CHECK_TOLERANCE = 0.0
CHECK_ONSET_S = 0.1  # where the window's first onset is moved to
# The note library is kept when the window's onset F1 with it is at least the decoder's less this.
LIBRARY_TOLERANCE = 0.2


def check_window(notes: NoteSequence, seconds: float = CHECK_S) -> NoteSequence:
    """The notes whose onsets fall in the `seconds`-long stretch that holds the most onsets, moved to start at
    CHECK_ONSET_S (all of them, unmoved, when they span less)."""
    onsets = np.array(sorted(n.onset_s for n in notes.notes))
    if len(onsets) == 0 or onsets[-1] - onsets[0] < seconds:
        # as they are: moved, the notes would fall differently on the frames and transcribe a little differently
        return notes
    counts = np.searchsorted(onsets, onsets + seconds) - np.arange(len(onsets))
    t0 = float(onsets[int(np.argmax(counts))])
    shift = CHECK_ONSET_S - t0
    return NoteSequence(
        [
            replace(n, onset_s=n.onset_s + shift, offset_s=n.offset_s + shift)
            for n in notes.notes
            if t0 <= n.onset_s < t0 + seconds
        ]
    )


def note_check(
    renderer: Renderer,
    notes: NoteSequence,
    timbre: FittedTimbre,
    transcriber: Transcriber | None = None,
    seed: int = 0,
) -> FittedTimbre:
    """The timbre with its whole offset, half of it, or none: the most of it with which these notes still
    transcribe as themselves; and with its note library only when the library loses no more than
    LIBRARY_TOLERANCE of onset F1 against that decoder rendering."""
    if not notes.notes:
        return timbre
    from hybrid.transcription import Transcriber

    transcriber = transcriber or Transcriber()
    window = check_window(notes)
    checked, decoder_f1 = _offset_check(renderer, window, timbre, transcriber, seed)
    if timbre.library is None:
        return checked
    if decoder_f1 is None:
        (mix,) = renderer.mixes(
            window, checked.embedding, [checked.scaled_offset(checked.strength(window))], seed
        )
        decoder_f1 = _window_f1(
            checked.corrected(mix, checked.strength(window)), SAMPLE_RATE_HZ, window, transcriber
        )
    # judged at the rate it will be written at (rendered at 22.05 kHz instead, the example trumpet phrase in the
    # guitar's sound transcribes differently: onset F1 0.45 against 0.58)
    rate = timbre.library.sample_rate_hz
    library_f1 = _window_f1(timbre.library.render(window, rate, seed=seed), rate, window, transcriber)
    return replace(checked, use_library=library_f1 >= decoder_f1 - LIBRARY_TOLERANCE)


def _window_f1(
    y: npt.NDArray[np.float32], sample_rate_hz: int, window: NoteSequence, transcriber: Transcriber
) -> float:
    """Onset F1 of the rendering of the window, transcribed as hybrid writes it (loudness-normalised:
    basic-pitch's note picking depends on the level)."""
    from hybrid.audio import loudness_normalize
    from hybrid.metrics import note_scores
    from hybrid.transcription import transcribe_audio

    est = transcribe_audio(
        loudness_normalize(y), sample_rate_hz, transcriber=transcriber, with_tempo=False
    ).notes
    return note_scores(window, est).onset_f1


def _offset_check(
    renderer: Renderer, window: NoteSequence, timbre: FittedTimbre, transcriber: Transcriber, seed: int
) -> tuple[FittedTimbre, float | None]:
    """The share of the offset kept, and the window's onset F1 with it (None when there was nothing to check)."""
    if timbre.offset is None or timbre.strength(window) <= 0.0:
        return timbre, None
    order = (0.0, 1.0, 0.5)  # none first: the floor the others are held to
    assert set(order) == set(OFFSET_SHARES)
    timbres = [timbre.with_offset_share(s) for s in order]
    strength = timbre.strength(window)
    mixes = renderer.mixes(window, timbre.embedding, [t.scaled_offset(strength) for t in timbres], seed)

    def f1(i: int) -> float:
        return _window_f1(timbres[i].corrected(mixes[i], strength), SAMPLE_RATE_HZ, window, transcriber)

    floor = f1(0) - CHECK_TOLERANCE
    for i in (1, 2):
        score = f1(i)
        if score >= floor:
            return timbres[i], score
    return timbres[0], floor + CHECK_TOLERANCE
