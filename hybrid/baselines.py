"""The simplest alternative to the neural renderer: play the notes with the General MIDI program of a
SoundFont whose sound is nearest to the timbre song (by the same MFCC-statistics descriptor)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.data.gm import gm_family_source
from hybrid.metrics import mfcc_stats
from hybrid.notes import Note, NoteSequence

# The phrase each program is described by: an 8-note figure over two octaves, mixing short and long notes.
PROBE = NoteSequence(
    [
        Note(0.1 + 0.45 * i, 0.1 + 0.45 * i + (0.3 if i % 2 else 0.6), float(p), 90)
        for i, p in enumerate([48, 55, 60, 64, 67, 72, 64, 57])
    ]
)


@dataclass
class GMLookup:
    """MFCC statistics of every melodic GM program of one SoundFont, for nearest-program lookup."""

    soundfont: str
    programs: list[int]
    descriptors: npt.NDArray[np.float64]

    @classmethod
    def build(cls, soundfont: str | os.PathLike[str]) -> GMLookup:
        from hybrid.data.soundfont import SoundFontRenderer

        programs, descs = [], []
        with SoundFontRenderer(soundfont, SAMPLE_RATE_HZ, gain=1.0) as r:
            for p in range(128):
                if gm_family_source(p) is None or not r.has_preset(0, p):
                    continue
                y = r.sequence(PROBE, 0, p)
                if np.max(np.abs(y)) < 1e-4:
                    continue
                programs.append(p)
                descs.append(mfcc_stats(y))
        return cls(str(soundfont), programs, np.stack(descs))

    def nearest(self, timbre_audio: npt.NDArray[np.float32], sample_rate_hz: int = SAMPLE_RATE_HZ) -> int:
        d = np.linalg.norm(self.descriptors - mfcc_stats(timbre_audio, sample_rate_hz)[None], axis=1)
        return self.programs[int(np.argmin(d))]

    def render(self, notes: NoteSequence, program: int) -> npt.NDArray[np.float32]:
        from hybrid.data.soundfont import SoundFontRenderer

        with SoundFontRenderer(self.soundfont, SAMPLE_RATE_HZ, gain=1.0) as r:
            return r.sequence(notes, 0, program)
