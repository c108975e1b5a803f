"""Notes and note lists; MIDI in and out with the song's real tempo.

A `Note` is what every stage exchanges: onset and offset in seconds, MIDI pitch, velocity (1-127) and an
optional pitch-bend curve (semitones, evenly spaced from onset to offset, as basic-pitch estimates it).
A `NoteSequence` adds the tempo (BPM) that MIDI export writes, so a DAW shows the song's real tempo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.constants import DEFAULT_TEMPO_BPM, hz_to_midi, midi_to_hz
from hybrid.errors import HybridError

# MIDI pitch-bend range assumed in and out: +-2 semitones (the General MIDI default, and basic-pitch's).
BEND_RANGE_SEMITONES = 2.0


@dataclass(frozen=True)
class Note:
    onset_s: float
    offset_s: float
    pitch_midi: float  # an integer for MIDI notes; fractional when a note list gives a frequency in Hz
    velocity: int = 100
    bend_semitones: tuple[float, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass
class NoteSequence:
    notes: list[Note] = field(default_factory=list)
    tempo_bpm: float = DEFAULT_TEMPO_BPM

    def __len__(self) -> int:
        return len(self.notes)

    @property
    def end_s(self) -> float:
        return max((n.offset_s for n in self.notes), default=0.0)

    def sorted(self) -> NoteSequence:
        return NoteSequence(sorted(self.notes, key=lambda n: (n.onset_s, n.pitch_midi)), self.tempo_bpm)

    def intervals_pitches(self) -> tuple[np.ndarray, np.ndarray]:
        """(intervals (n, 2) in seconds, pitches (n,) in Hz): mir_eval's note format."""
        if not self.notes:
            return np.zeros((0, 2)), np.zeros(0)
        iv = np.array([[n.onset_s, n.offset_s] for n in self.notes], dtype=np.float64)
        hz = midi_to_hz(np.array([n.pitch_midi for n in self.notes], dtype=np.float64))
        return iv, hz

    def scaled(self, time_factor: float) -> NoteSequence:
        """Multiply every time by time_factor; the tempo divides by it (the beat grid follows the notes)."""
        if time_factor <= 0:
            raise HybridError(f"time factor must be positive, got {time_factor}")
        notes = [
            replace(n, onset_s=n.onset_s * time_factor, offset_s=n.offset_s * time_factor) for n in self.notes
        ]
        return NoteSequence(notes, self.tempo_bpm / time_factor)

    def transposed(self, semitones: int) -> NoteSequence:
        notes = []
        for n in self.notes:
            p = n.pitch_midi + semitones
            if 0 <= p <= 127:
                notes.append(replace(n, pitch_midi=p))
        return NoteSequence(notes, self.tempo_bpm)


def midi_file_parts(parts: dict[str, NoteSequence]) -> Any:
    """A pretty_midi.PrettyMIDI with one track per part (named after it), at the first part's tempo."""
    tracks = [midi_file(seq) for seq in parts.values()]
    pm = tracks[0]
    pm.instruments[0].name = next(iter(parts))
    for name, other in zip(list(parts)[1:], tracks[1:], strict=True):
        other.instruments[0].name = name
        pm.instruments.append(other.instruments[0])
    return pm


def midi_file(seq: NoteSequence, program: int = 0) -> Any:
    """A one-track pretty_midi.PrettyMIDI whose tempo is seq.tempo_bpm; note times stay in seconds. Pitch bends
    are kept for notes that do not overlap another note (MIDI bends a whole channel)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(seq.tempo_bpm))
    inst = pretty_midi.Instrument(program=program)
    notes = seq.sorted().notes
    for i, n in enumerate(notes):
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(np.clip(n.velocity, 1, 127)),
                pitch=int(round(n.pitch_midi)),
                start=n.onset_s,
                end=n.offset_s,
            )
        )
        overlaps = (i > 0 and notes[i - 1].offset_s > n.onset_s) or (
            i + 1 < len(notes) and notes[i + 1].onset_s < n.offset_s
        )
        if n.bend_semitones and not overlaps:
            times = np.linspace(n.onset_s, n.offset_s, len(n.bend_semitones), endpoint=False)
            for t, b in zip(times, n.bend_semitones, strict=True):
                value = int(np.clip(round(b / BEND_RANGE_SEMITONES * 8192), -8192, 8191))
                inst.pitch_bends.append(pretty_midi.PitchBend(value, float(t)))
            inst.pitch_bends.append(pretty_midi.PitchBend(0, float(n.offset_s)))
    pm.instruments.append(inst)
    return pm


def write_midi(
    seq: NoteSequence, path: str | os.PathLike[str], program: int = 0, replace: bool = True
) -> Path:
    """Write midi_file(seq) atomically (see hybrid.audio.atomic_path)."""
    from hybrid.outputs import atomic_path

    out = Path(path)
    if out.suffix.lower() not in (".mid", ".midi"):
        raise HybridError(f"{out}: MIDI is written to a .mid or .midi file")
    with atomic_path(out, replace) as tmp:
        midi_file(seq, program).write(str(tmp))
    return out


def read_midi(path: str | os.PathLike[str]) -> NoteSequence:
    """Read every non-drum note of a MIDI file, with its first tempo and per-note pitch bends."""
    import pretty_midi

    p = Path(path)
    if not p.exists():
        raise HybridError(f"{p}: file not found")
    try:
        pm = pretty_midi.PrettyMIDI(str(p))
    except Exception as exc:
        raise HybridError(f"{p}: not a readable MIDI file ({type(exc).__name__})") from None
    _, tempi = pm.get_tempo_changes()
    tempo = float(tempi[0]) if len(tempi) else DEFAULT_TEMPO_BPM
    notes: list[Note] = []
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        bends = sorted(inst.pitch_bends, key=lambda b: b.time)
        bend_t = np.array([b.time for b in bends])
        bend_v = np.array([b.pitch / 8192 * BEND_RANGE_SEMITONES for b in bends])
        for n in inst.notes:
            if n.end <= n.start:
                continue
            curve: tuple[float, ...] = ()
            if len(bends):
                inside = (bend_t >= n.start - 1e-6) & (bend_t < n.end - 1e-6)
                if inside.any():
                    curve = tuple(float(v) for v in bend_v[inside])
            notes.append(Note(float(n.start), float(n.end), float(n.pitch), int(n.velocity), curve))
    return NoteSequence(notes, tempo).sorted()


def read_note_list(path: str | os.PathLike[str], pitch_unit: str = "hz") -> NoteSequence:
    """Read a plain-text note list: one note per line, `onset_s offset_s pitch [velocity]`, separated by
    whitespace or commas; '#' starts a comment. pitch_unit "hz" (mir_eval's convention; kept exact as a
    fractional MIDI pitch) or "midi".
    """
    if pitch_unit not in ("hz", "midi"):
        raise HybridError(f"pitch unit must be 'hz' or 'midi', got {pitch_unit!r}")
    p = Path(path)
    if not p.exists():
        raise HybridError(f"{p}: file not found")
    notes: list[Note] = []
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise HybridError(f"{p}: not a text note list (and not a .mid file)") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        parts = line.split()
        try:
            on, off, pitch = float(parts[0]), float(parts[1]), float(parts[2])
            if not all(np.isfinite(v) for v in (on, off, pitch)):
                raise ValueError
        except (IndexError, ValueError):
            raise HybridError(f"{p}:{lineno}: expected 'onset offset pitch' (finite numbers)") from None
        if pitch <= 0:
            raise HybridError(f"{p}:{lineno}: pitch must be positive, got {pitch}")
        if off <= on:
            raise HybridError(f"{p}:{lineno}: offset {off} is not after onset {on}")
        midi = pitch if pitch_unit == "midi" else float(hz_to_midi(pitch))
        if not 0 <= midi <= 127:
            raise HybridError(f"{p}:{lineno}: pitch {pitch:g} {pitch_unit} is outside the MIDI range")
        notes.append(Note(on, off, midi))
    if not notes:
        raise HybridError(f"{p}: holds no notes")
    return NoteSequence(notes).sorted()


def load_notes(path: str | os.PathLike[str], pitch_unit: str = "hz") -> NoteSequence:
    """Read notes from a MIDI file (.mid/.midi) or a plain note list (anything else)."""
    if Path(path).suffix.lower() in (".mid", ".midi"):
        return read_midi(path)
    return read_note_list(path, pitch_unit)
