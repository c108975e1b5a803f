"""The fitted timbre: what calibration produces and what a rendering takes (see the package's glossary)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hybrid.calibration.acoustics import Acoustics, Room
from hybrid.calibration.bandwidth import HighBand
from hybrid.calibration.correction import Correction
from hybrid.calibration.note_library import NoteLibrary, Partials
from hybrid.neural.conditioning import RELEASE_TAIL_S
from hybrid.notes import NoteSequence

if TYPE_CHECKING:
    from hybrid.neural.renderer import Offset, Renderer

# The calibration is trusted for notes within an octave of the timbre song's pitch range, and applied in
# proportion to the share of the notes (by duration) that lie there.
CALIBRATION_RANGE_MARGIN = 12.0
OFFSET_SHARES = (1.0, 0.5, 0.0)  # the note check's candidates: the whole offset, half of it, none


@dataclass(frozen=True)
class CalibrationSummary:
    """What the report shows of a calibration applied to some notes."""

    notes: int  # how many notes of the timbre song it was measured on
    pitch_range: tuple[float, float] | None  # their lowest and highest MIDI pitch
    strength: float  # how much of it these notes get
    envelope_db: npt.NDArray[np.float64]  # the correction's average gain per mel band, as applied
    scale: npt.NDArray[np.float64]  # its spread factor per cepstral coefficient, as applied
    harmonic_db: npt.NDArray[np.float64] | None  # the offset's change of each harmonic's level, as applied


@dataclass(eq=False)
class PendingFit:
    """The decoder's calibration of a timbre fitted with defer_decoder, still to fit: the calibration excerpt
    (SAMPLE_RATE_HZ) and seed; and once complete_timbre has fitted it, the fitted fields, which every timbre made
    from this one (the note check's variants) shares, so that it is fitted once."""

    excerpt: npt.NDArray[np.float32]
    seed: int = 0
    fitted: dict[str, Any] | None = None
    # called with the completed timbre once it is fitted (Model.timbre_of: the cache entry is written again whole)
    on_fitted: Callable[[FittedTimbre], None] | None = None


@dataclass(frozen=True)
class FittedTimbre:
    """A timbre song fitted for rendering: the embedding and, when calibrated, the offset and the corrections
    measured with the whole offset, half of it and none (for the note check to choose among)."""

    embedding: npt.NDArray[np.float32]
    correction: Correction | None = None
    calibration_notes: int = 0
    pitch_range: tuple[float, float] | None = None
    offset: Offset | None = None
    half_correction: Correction | None = None
    no_offset_correction: Correction | None = None  # measured without the offset
    library: NoteLibrary | None = None  # the timbre song's clean notes, when it has any
    use_library: bool = True  # False: the note check found that the library loses these notes
    # when the decoder plays (use_library False): the share of the library's rendering mixed under it, at the
    # decoder's loudness (the note check's choice: as much as these notes allow; 0: none)
    library_share: float = 0.0
    use_room: bool = True  # False: the note check found that B's room hides these notes
    acoustics: Acoustics | None = None  # B's room, noise floor and width, with the room fitted per player
    high_band: HighBand | None = None  # B's balance above 8 kHz, for the decoder's band extension
    # fitted with defer_decoder (hybrid.calibration.fit): what complete_timbre fits the decoder's offset,
    # corrections and room on when the decoder is to play
    pending: PendingFit | None = field(default=None, repr=False, compare=False)

    @property
    def plays_library(self) -> bool:
        """Whether a rendering plays from the note library (else the decoder plays)."""
        return self.library is not None and self.use_library

    @property
    def blends_library(self) -> bool:
        """Whether the decoder plays with the library's rendering mixed under it (library_share of it)."""
        return self.library is not None and not self.use_library and self.library_share > 0.0

    def player(self, song: str = "the timbre song") -> str:
        """Who plays, in words (the report; the web page, which calls the timbre song B)."""
        if self.plays_library:
            return f"{song}'s note library"
        if self.blends_library:
            return f"the decoder, with {self.library_share:.0%} of the note library under it"
        return "the decoder"

    def room(self) -> Room | None:
        """The room a rendering adds (None when there are no acoustics, or the note check left the room out)."""
        if self.acoustics is None or not self.use_room:
            return None
        return self.acoustics.library_room if self.plays_library else self.acoustics.decoder_room

    def with_offset_share(self, share: float) -> FittedTimbre:
        """This timbre with all, half or none of its offset (share 1, 0.5 or 0), each with the correction
        that was measured with that much of it."""
        if share not in OFFSET_SHARES:
            raise ValueError(f"offset share must be one of {OFFSET_SHARES}, got {share}")
        if self.offset is None or share == 1.0:
            return self
        if share == 0.0:
            return replace(self, offset=None, correction=self.no_offset_correction)
        return replace(self, offset=half_offset(self.offset), correction=self.half_correction)

    def strength(self, notes: NoteSequence) -> float:
        """How much of the calibration to apply to these notes: the share of their duration that lies within
        CALIBRATION_RANGE_MARGIN semitones of the pitch range it was measured on."""
        if (self.correction is None and self.offset is None) or self.pitch_range is None or not notes.notes:
            return 0.0
        lo, hi = (
            self.pitch_range[0] - CALIBRATION_RANGE_MARGIN,
            self.pitch_range[1] + CALIBRATION_RANGE_MARGIN,
        )
        dur = np.array([n.offset_s - n.onset_s for n in notes.notes])
        inside = np.array([lo <= n.pitch_midi <= hi for n in notes.notes])
        return float((dur * inside).sum() / max(dur.sum(), 1e-9))

    def scaled_offset(self, strength: float) -> Offset | None:
        """The offset a rendering at this strength uses."""
        return self.offset * strength if self.offset is not None and strength > 0.0 else None

    def corrected(
        self, mix: npt.NDArray[np.float32], strength: float, sample_rate_hz: int | None = None
    ) -> npt.NDArray[np.float32]:
        """The decoder's mix (16 kHz unless `sample_rate_hz` says) with the correction applied at this strength
        (unchanged without one)."""
        if self.correction is None or strength <= 0.0:
            return mix
        return self.correction.scaled(strength).apply(mix, sample_rate_hz)

    def summary(self, notes: NoteSequence) -> CalibrationSummary | None:
        """The calibration as applied to these notes, for the report (None when uncalibrated)."""
        from hybrid.calibration.offset import harmonic_levels_db

        if self.correction is None:
            return None
        strength = self.strength(notes)
        applied = self.correction.scaled(strength)
        return CalibrationSummary(
            self.calibration_notes,
            self.pitch_range,
            strength,
            applied.envelope_db,
            applied.scale,
            None if self.offset is None else harmonic_levels_db(self.offset * strength),
        )


def half_offset(offset: Offset) -> Offset:
    return (offset * 0.5).astype(np.float32)


def blend_under(
    y: npt.NDArray[np.float32], under: npt.NDArray[np.float32], share: float
) -> npt.NDArray[np.float32]:
    """(1 - share) of y and `share` of `under` brought to y's loudness (RMS), in y's array when they are as long
    (else a new one as long as the longer; mono)."""
    from hybrid.audio import rms

    gain = rms(y) / max(rms(under), 1e-12)  # each rendering's loudness over its own length
    if len(y) < len(under):
        y = np.pad(y, (0, len(under) - len(y)))
    y *= np.float32(1.0 - share)
    y[: len(under)] += np.float32(share * gain) * under
    return y


def render_fitted(
    renderer: Renderer,
    notes: NoteSequence,
    timbre: FittedTimbre,
    seed: int = 0,
    tail_s: float = RELEASE_TAIL_S,
    full_band: bool = False,
) -> npt.NDArray[np.float32]:
    """Mono audio of the notes with a fitted timbre: the decoder's mix with the offset, then the correction,
    both as far as `FittedTimbre.strength` trusts them for these notes. At 16 kHz, or with `full_band` at the
    decoder's own rate (renderer.sample_rate_hz)."""
    strength = timbre.strength(notes)
    mix = renderer.render(notes, timbre.embedding, timbre.scaled_offset(strength), seed, tail_s, full_band)
    return timbre.corrected(mix, strength, renderer.sample_rate_hz if full_band else None)


# a full-band decoder's band above 8 kHz brought to B's balance (bandwidth.match_high_band)
MATCH_HIGH_BAND = True


def render_timbre(
    renderer: Renderer,
    notes: NoteSequence,
    timbre: FittedTimbre,
    sample_rate_hz: int,
    seed: int = 0,
    tail_s: float = RELEASE_TAIL_S,
    acoustics: bool = True,
    made: Partials | None = None,
) -> npt.NDArray[np.float32]:
    """Audio of the notes at `sample_rate_hz`: played from the timbre song's note library when it has one
    (and the note check kept it; its partials made for the check's window are taken from `made`), else by the
    decoder (render_fitted, resampled to `sample_rate_hz`: a full-band decoder's at its own rate, its band
    above 8 kHz brought to B's balance; a 16 kHz decoder's with that band filled at B's balance:
    hybrid.calibration.bandwidth); then, with `acoustics`, put in the timbre song's fitted room (mono, or
    (n, 2) for a stereo timbre song)."""
    if timbre.plays_library:
        assert timbre.library is not None
        y = timbre.library.render(notes, sample_rate_hz, tail_s, seed, made=made)
    else:
        from hybrid.audio import resample
        from hybrid.constants import SAMPLE_RATE_HZ

        full = renderer.full_band
        rate = renderer.sample_rate_hz if full else SAMPLE_RATE_HZ
        y = resample(render_fitted(renderer, notes, timbre, seed, tail_s, full), rate, sample_rate_hz)
        if timbre.high_band is not None and sample_rate_hz > SAMPLE_RATE_HZ:
            from hybrid.calibration.bandwidth import extend_band, match_high_band

            if not full:  # above 8 kHz, at B's balance
                y = extend_band(y, sample_rate_hz, timbre.high_band, inplace=True)
            elif MATCH_HIGH_BAND:
                y = match_high_band(y, sample_rate_hz, timbre.high_band, inplace=True)
        if timbre.blends_library:
            assert timbre.library is not None
            lib = timbre.library.render(notes, sample_rate_hz, tail_s, seed, made=made)
            y = blend_under(y, lib, timbre.library_share)
    room = timbre.room()
    if not acoustics or room is None or timbre.acoustics is None:
        return y
    from hybrid.calibration.acoustics import apply_acoustics

    return apply_acoustics(y, sample_rate_hz, timbre.acoustics, room, seed, inplace=True)
