"""The note check: keep B's note library, and as much of the offset, as the notes being rendered allow.

A faithful timbre can hide notes (a mallet's strong upper partials read as extra notes three octaves up), and
keeping A's notes comes first. The check renders the CHECK_S window that holds most of the notes' onsets and
transcribes it as hybrid writes it (loudness-normalised: basic-pitch's note picking depends on the level):
- with B's note library, when B has one, and with the decoder without the offset: the library plays when its
  onset F1 is within LIBRARY_TOLERANCE of the decoder's (then the offset plays no part and is not checked);
- else with the decoder's whole offset, half of it and none (one run of the network), keeping the largest share
  whose onset F1 is within CHECK_TOLERANCE of the rendering without the offset (the offset fitted now when the
  fit left it for when the decoder plays: hybrid.calibration.fit.complete_timbre);
- then, when the rendering goes into B's fitted room, with that room too: it is left out when a note is lost.
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
    from hybrid.calibration.acoustics import Room
    from hybrid.calibration.note_library import Partials
    from hybrid.neural.renderer import Renderer
    from hybrid.transcription import Transcriber

# Tolerance 0 (not one note lost to the offset) against 0.02: on 12 held-out 5 s phrases of up to 4 voices
# 0.903 against 0.896, with the same timbre identification (docs/design.md).
CHECK_S = 8.0
CHECK_TOLERANCE = 0.0
CHECK_ONSET_S = 0.1  # where the window's first onset is moved to
# The note library is kept when the window's onset F1 with it is at least the decoder's (without its
# offset) less this.
LIBRARY_TOLERANCE = 0.2
# B's room is kept when the window's onset F1 in it is at least the dry rendering's less this.
ROOM_TOLERANCE = 0.0
# When the decoder plays because the library loses notes, the largest of these shares of the library's
# rendering is mixed under the decoder's whose window loses no note (CHECK_TOLERANCE) against the decoder
# alone: B's own recorded sound, as far as the notes allow.
LIBRARY_SHARES = (0.3, 0.15, 0.08)


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
    acoustics: bool = False,
    made: Partials | None = None,
) -> FittedTimbre:
    """The timbre as these notes are rendered with it: with its note library when the library loses no more
    than LIBRARY_TOLERANCE of onset F1 against the decoder without the offset (the library plays alone then,
    so the offset is not checked); else the decoder with its whole offset, half of it, or none: the most of it
    with which these notes still transcribe as themselves. With `acoustics` (the rendering goes into B's
    fitted room), the playing one's room is kept only when the notes transcribe as well in it as dry."""
    if not notes.notes:
        return timbre
    from hybrid.transcription import Transcriber

    transcriber = transcriber or Transcriber()
    window = check_window(notes)
    if timbre.library is None:
        checked, rendered = _offset_check(renderer, window, timbre, transcriber, seed)
        return (
            _decoder_room_check(renderer, window, checked, rendered, transcriber, seed)
            if acoustics
            else checked
        )
    # judged at the rate it will be written at (rendered at 22.05 kHz instead, the example trumpet phrase in the
    # guitar's sound transcribes differently: onset F1 0.45 against 0.58)
    rate = timbre.library.sample_rate_hz
    dry = timbre.library.render(window, rate, seed=seed, made=made, keep=True)
    library_f1 = _window_f1(dry, rate, window, transcriber)
    # at 1 - LIBRARY_TOLERANCE or more, no decoder's F1 (at most 1) could take it from the library
    if library_f1 < 1.0 - LIBRARY_TOLERANCE:
        floor_mix, floor = _decoder_window(renderer, window, timbre.with_offset_share(0.0), transcriber, seed)
        if library_f1 < floor - LIBRARY_TOLERANCE:
            from hybrid.calibration.fit import complete_timbre

            # the decoder plays: its offset, corrections and room, when the fit left them for now
            timbre = complete_timbre(renderer, timbre, transcriber)
            checked, rendered = _offset_check(renderer, window, timbre, transcriber, seed, floor)
            # without the offset, the rendering is the floor's
            rendered = rendered or (floor_mix, floor)
            checked, rendered = _blend_check(
                replace(checked, use_library=False), rendered, dry, rate, window, transcriber
            )
            if not acoustics:
                return checked
            return _decoder_room_check(renderer, window, checked, rendered, transcriber, seed)
    with_library = replace(timbre, use_library=True)
    if not acoustics:
        return with_library
    return _room_check(with_library, dry, rate, library_f1, window, transcriber, seed)


def _decoder_window(
    renderer: Renderer, window: NoteSequence, timbre: FittedTimbre, transcriber: Transcriber, seed: int
) -> tuple[npt.NDArray[np.float32], float]:
    """The decoder's rendering of the window with this timbre (its offset and correction at the window's
    strength), and its onset F1."""
    strength = timbre.strength(window)
    (mix,) = renderer.mixes(window, timbre.embedding, [timbre.scaled_offset(strength)], seed)
    mix = timbre.corrected(mix, strength)
    return mix, _window_f1(mix, SAMPLE_RATE_HZ, window, transcriber)


def _blend_check(
    timbre: FittedTimbre,
    rendered: tuple[npt.NDArray[np.float32], float],
    library_window: npt.NDArray[np.float32],
    library_rate_hz: int,
    window: NoteSequence,
    transcriber: Transcriber,
) -> tuple[FittedTimbre, tuple[npt.NDArray[np.float32], float]]:
    """The decoder's timbre with the largest of LIBRARY_SHARES of the library's rendering mixed under it whose
    window keeps the decoder's onset F1 (less CHECK_TOLERANCE), and that window's rendering and F1; the timbre
    and `rendered` (the decoder's window and F1) as they are when every share loses a note."""
    from hybrid.audio import resample
    from hybrid.calibration.fitted import blend_under

    mix, f1 = rendered
    under = resample(library_window, library_rate_hz, SAMPLE_RATE_HZ)
    for share in LIBRARY_SHARES:
        blend = blend_under(mix.copy(), under, share)
        blend_f1 = _window_f1(blend, SAMPLE_RATE_HZ, window, transcriber)
        if blend_f1 >= f1 - CHECK_TOLERANCE:
            return replace(timbre, library_share=share), (blend, blend_f1)
    return timbre, rendered


def _room_to_check(timbre: FittedTimbre) -> Room | None:
    """The room this timbre's player adds (None when it adds none)."""
    room = timbre.room()
    return None if room is None or room.dry or timbre.acoustics is None else room


def _decoder_room_check(
    renderer: Renderer,
    window: NoteSequence,
    timbre: FittedTimbre,
    rendered: tuple[npt.NDArray[np.float32], float] | None,
    transcriber: Transcriber,
    seed: int,
) -> FittedTimbre:
    """_room_check for the decoder, on `rendered` (the window's rendering with this timbre and its F1), or on
    one made here when there is none (and a room to check)."""
    if _room_to_check(timbre) is None:
        return timbre
    mix, f1 = rendered or _decoder_window(renderer, window, timbre, transcriber, seed)
    return _room_check(timbre, mix, SAMPLE_RATE_HZ, f1, window, transcriber, seed)


def _room_check(
    timbre: FittedTimbre,
    dry: npt.NDArray[np.float32],
    sample_rate_hz: int,
    dry_f1: float,
    window: NoteSequence,
    transcriber: Transcriber,
    seed: int,
) -> FittedTimbre:
    """The timbre without its room (use_room False) when the window's dry rendering transcribes better than
    the same in the room, by more than ROOM_TOLERANCE of onset F1."""
    room = _room_to_check(timbre)
    if room is None:
        return timbre
    assert timbre.acoustics is not None
    from hybrid.audio import mono
    from hybrid.calibration.acoustics import apply_acoustics

    wet = mono(apply_acoustics(dry, sample_rate_hz, timbre.acoustics, room, seed))
    if _window_f1(wet, sample_rate_hz, window, transcriber) >= dry_f1 - ROOM_TOLERANCE:
        return timbre
    return replace(timbre, use_room=False)


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
    renderer: Renderer,
    window: NoteSequence,
    timbre: FittedTimbre,
    transcriber: Transcriber,
    seed: int,
    floor: float | None = None,
) -> tuple[FittedTimbre, tuple[npt.NDArray[np.float32], float] | None]:
    """The timbre with the share of the offset kept: the largest whose onset F1 on the window is at least
    `floor` (that of the rendering without the offset, less CHECK_TOLERANCE; measured here when not given);
    with the window's rendering with that share and its F1 (None when nothing was rendered: there is no offset
    to check, or the share is none and `floor` was given). The renderings with each share come from one run of
    the network, and are transcribed one by one, only as far as needed."""
    if timbre.offset is None or timbre.strength(window) <= 0.0:
        return timbre, None
    order = (0.0, 1.0, 0.5)  # none first: the floor the others are held to
    assert set(order) == set(OFFSET_SHARES)
    shares = order if floor is None else order[1:]
    timbres = [timbre.with_offset_share(s) for s in shares]
    strength = timbre.strength(window)
    raw = renderer.mixes(window, timbre.embedding, [t.scaled_offset(strength) for t in timbres], seed)
    mixes = [t.corrected(m, strength) for t, m in zip(timbres, raw, strict=True)]
    unchecked = None
    if floor is None:
        floor = _window_f1(mixes[0], SAMPLE_RATE_HZ, window, transcriber)
        unchecked = (mixes[0], floor)
        timbres, mixes = timbres[1:], mixes[1:]
    for t, m in zip(timbres, mixes, strict=True):
        f1 = _window_f1(m, SAMPLE_RATE_HZ, window, transcriber)
        if f1 >= floor - CHECK_TOLERANCE:
            return t, (m, f1)
    return timbre.with_offset_share(0.0), unchecked
