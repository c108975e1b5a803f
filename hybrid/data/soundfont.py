"""Render notes and note sequences with FluidSynth and a SoundFont (reverb and chorus off)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.constants import FLUIDR3_GM, NSYNTH_HOLD_S, NSYNTH_RELEASE_S, SAMPLE_RATE_HZ
from hybrid.errors import HybridError, native_stderr_captured
from hybrid.notes import NoteSequence

FULL_SCALE = 32768.0  # FluidSynth writes 16-bit samples
BLOCK = 64  # FluidSynth renders in 64-sample blocks


def default_soundfonts() -> list[Path]:
    """SoundFonts found on this machine: FluidR3_GM (Debian fluid-soundfont-gm), MuseScore General, TimGM6mb."""
    import pretty_midi

    candidates = [
        FLUIDR3_GM,
        Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"),
        Path(pretty_midi.__file__).parent / "TimGM6mb.sf2",
    ]
    return [p for p in candidates if p.exists()]


def timgm6mb() -> Path:
    """The small GM SoundFont that ships inside pretty_midi (always present)."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


class SoundFontRenderer:
    """One FluidSynth instance with one SoundFont loaded; renders mono float32 audio."""

    def __init__(
        self, soundfont: str | os.PathLike[str], sample_rate_hz: int = SAMPLE_RATE_HZ, gain: float = 0.5
    ) -> None:
        import fluidsynth

        path = Path(soundfont)
        if not path.is_file():
            raise HybridError(f"{path}: SoundFont not found")
        self.path = path
        self.sample_rate_hz = sample_rate_hz
        self.synth = fluidsynth.Synth(
            gain=gain,
            samplerate=float(sample_rate_hz),
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512},
        )
        with native_stderr_captured() as said:
            self.sfid = self.synth.sfload(str(path))
        if self.sfid < 0:
            self.synth.delete()
            why = next((line.split("error:", 1)[1].strip() for line in said if "error:" in line), "")
            raise HybridError(f"{path}: FluidSynth cannot load this SoundFont" + (f" ({why})" if why else ""))

    def close(self) -> None:
        self.synth.delete()

    def __enter__(self) -> SoundFontRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_preset(self, bank: int, program: int) -> bool:
        return self.synth.sfpreset_name(self.sfid, bank, program) is not None

    def preset_name(self, bank: int, program: int) -> str | None:
        name = self.synth.sfpreset_name(self.sfid, bank, program)
        return None if name is None else str(name)

    def _select(self, channel: int, bank: int, program: int) -> None:
        if not self.has_preset(bank, program):
            raise HybridError(f"{self.path}: no preset at bank {bank}, program {program}")
        self.synth.program_select(channel, self.sfid, bank, program)

    def _samples(self, n: int) -> npt.NDArray[np.float32]:
        if n <= 0:
            return np.zeros(0, np.float32)
        s = np.asarray(self.synth.get_samples(n), dtype=np.float32).reshape(-1, 2)
        return s.mean(axis=1) / FULL_SCALE

    def _silence_all(self) -> None:
        for ch in range(16):
            self.synth.all_sounds_off(ch)
        self._samples(BLOCK * 8)  # flush what the voices had queued

    def note(
        self,
        bank: int,
        program: int,
        pitch: int,
        velocity: int,
        hold_s: float = NSYNTH_HOLD_S,
        release_s: float = NSYNTH_RELEASE_S,
    ) -> npt.NDArray[np.float32]:
        """One note: key down for hold_s, then release_s of release (NSynth: 3 s + 1 s)."""
        self._silence_all()
        self._select(0, bank, program)
        self.synth.noteon(0, pitch, velocity)
        held = self._samples(int(round(hold_s * self.sample_rate_hz)))
        self.synth.noteoff(0, pitch)
        tail = self._samples(int(round(release_s * self.sample_rate_hz)))
        self._silence_all()
        return np.concatenate([held, tail])

    def sequence(
        self, seq: NoteSequence, bank: int, program: int, tail_s: float = 1.0
    ) -> npt.NDArray[np.float32]:
        """A note sequence on one instrument (pitch bends applied, +-2 semitone range)."""
        self._silence_all()
        self._select(0, bank, program)
        self.synth.pitch_bend(0, 0)
        sr = self.sample_rate_hz
        events: list[tuple[int, int, int, int]] = []  # (sample, order, kind, value); order: offs before ons
        for n in seq.notes:
            p = int(round(n.pitch_midi))
            events.append((int(round(n.onset_s * sr)), 1, p, int(np.clip(n.velocity, 1, 127))))
            events.append((int(round(n.offset_s * sr)), 0, p, 0))
            if n.bend_semitones:
                times = np.linspace(n.onset_s, n.offset_s, len(n.bend_semitones), endpoint=False)
                for t, b in zip(times, n.bend_semitones, strict=True):
                    events.append((int(round(t * sr)), 2, -1, int(np.clip(round(b / 2 * 8192), -8192, 8191))))
                events.append((int(round(n.offset_s * sr)), 2, -1, 0))
        events.sort()
        total = int(round((seq.end_s + tail_s) * sr))
        out: list[npt.NDArray[np.float32]] = []
        pos = 0
        for at, order, pitch, value in events:
            if at > pos:
                out.append(self._samples(at - pos))
                pos = at
            if order == 1:
                self.synth.noteon(0, pitch, value)
            elif order == 0:
                self.synth.noteoff(0, pitch)
            else:
                self.synth.pitch_bend(0, value)
        out.append(self._samples(max(0, total - pos)))
        self.synth.pitch_bend(0, 0)
        self._silence_all()
        return np.concatenate(out)[:total]
