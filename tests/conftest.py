"""Shared fixtures: the test data folder, one basic-pitch session, ground-truth readers, synthetic audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybrid.notes import Note, NoteSequence

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def transcriber():
    from hybrid.transcription import Transcriber

    return Transcriber()


def read_madmom_notes(path: Path) -> NoteSequence:
    """madmom's `.notes`: onset_s  midi_pitch  duration_s  velocity."""
    notes = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        on, pitch, dur, vel = line.split()
        notes.append(Note(float(on), float(on) + float(dur), float(pitch), int(vel)))
    return NoteSequence(notes).sorted()


def read_jams_notes(path: Path) -> NoteSequence:
    """All `note_midi` annotations of a JAMS file (one per guitar string)."""
    doc = json.loads(path.read_text())
    notes = [
        Note(o["time"], o["time"] + o["duration"], float(o["value"]))
        for ann in doc["annotations"]
        if ann["namespace"] == "note_midi"
        for o in ann["data"]
    ]
    return NoteSequence(notes).sorted()


def synth_notes(seq: NoteSequence, sr: int = 22050, tail_s: float = 0.5) -> np.ndarray:
    """A plain additive synth (5 decaying harmonics) for tests that need audio with known notes."""
    n = int((seq.end_s + tail_s) * sr)
    y = np.zeros(n, dtype=np.float64)
    for note in seq.notes:
        a, b = int(note.onset_s * sr), int(note.offset_s * sr)
        t = np.arange(b - a) / sr
        f0 = 440.0 * 2 ** ((note.pitch_midi - 69) / 12)
        env = (
            np.exp(-3.0 * t)
            * np.minimum(1.0, t / 0.005)
            * np.minimum(1.0, (b - a - np.arange(b - a)) / (0.01 * sr))
        )
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        y[a:b] += 0.2 * env * tone
    return (y / max(1e-9, np.abs(y).max()) * 0.8).astype(np.float32)
