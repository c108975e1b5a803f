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


MIN_SAMPLE_S = 0.2  # the B sampler's shortest usable note


@dataclass
class BSampler:
    """The crude sampler made from the timbre song itself: B is transcribed, its notes of MIN_SAMPLE_S or more
    become samples, and each note to play takes the sample nearest in pitch, resampled to the note's pitch and
    cut (with a 50 ms fade) to its length. A baseline for 'B's own sound': B's recorded notes, nothing learned;
    it loses notes where B's samples hold other notes too, and resampling moves B's formants with the pitch."""

    samples: list[tuple[float, npt.NDArray[np.float32]]]  # (MIDI pitch, audio at SAMPLE_RATE_HZ)

    @classmethod
    def build(cls, audio: npt.NDArray[np.float32], transcriber: object | None = None) -> BSampler:
        """From mono SAMPLE_RATE_HZ audio of the timbre song."""
        from hybrid.transcription import Transcriber, transcribe_audio

        tr = transcriber if isinstance(transcriber, Transcriber) else Transcriber()
        notes = transcribe_audio(audio, SAMPLE_RATE_HZ, transcriber=tr, with_tempo=False).notes
        samples = []
        for n in notes.notes:
            if n.duration_s >= MIN_SAMPLE_S:
                a, b = int(n.onset_s * SAMPLE_RATE_HZ), int(n.offset_s * SAMPLE_RATE_HZ)
                samples.append((n.pitch_midi, audio[a:b].astype(np.float32)))
        if not samples:  # nothing transcribed long enough: the whole song as one sample at its median pitch
            pitch = float(np.median([n.pitch_midi for n in notes.notes])) if notes.notes else 60.0
            samples.append((pitch, audio.astype(np.float32)))
        return cls(samples)

    def render(self, notes: NoteSequence, tail_s: float = 0.0) -> npt.NDArray[np.float32]:
        from hybrid.audio import resample

        out = np.zeros(int((notes.end_s + tail_s) * SAMPLE_RATE_HZ) + 1, np.float32)
        fade = int(0.05 * SAMPLE_RATE_HZ)
        for n in notes.notes:
            pitch, y = min(self.samples, key=lambda s: abs(s[0] - n.pitch_midi))
            ratio = 2.0 ** ((n.pitch_midi - pitch) / 12.0)  # > 1: higher, so played faster (fewer samples)
            src = int(round(SAMPLE_RATE_HZ * ratio))
            z = resample(y, src, SAMPLE_RATE_HZ) if src != SAMPLE_RATE_HZ else y
            z = z[: max(1, int(n.duration_s * SAMPLE_RATE_HZ))].copy()
            k = min(fade, len(z))
            z[len(z) - k :] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
            a = int(n.onset_s * SAMPLE_RATE_HZ)
            seg = out[a : a + len(z)]
            seg += z[: len(seg)] * (n.velocity / 100.0)
        return out
