"""Shared fixtures: the test data folder, one basic-pitch session, the shipped renderer, ground-truth readers, synthetic audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybrid.notes import Note, NoteSequence

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="session", autouse=True)
def session_timbre_cache(tmp_path_factory):
    """Fitted timbres are cached in the session's temporary folder, never in the user's home (set before any
    fixture of a wider scope runs a transfer)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYBRID_CACHE_DIR", str(tmp_path_factory.mktemp("timbre-cache")))
        yield


@pytest.fixture
def timbre_cache(tmp_path_factory, monkeypatch) -> Path:
    """A cache folder of this test's own."""
    folder = tmp_path_factory.mktemp("timbre-cache")
    monkeypatch.setenv("HYBRID_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def transcriber():
    from hybrid.transcription import Transcriber

    return Transcriber()


@pytest.fixture(scope="session")
def renderer():
    """The shipped checkpoint on the CPU, loaded once for the session."""
    from hybrid.neural.renderer import Renderer

    return Renderer.load(None, "cpu")


@pytest.fixture(scope="session")
def model(renderer, transcriber):
    """The shipped checkpoint and the transcriber, as hybrid.load_model() gives them."""
    from hybrid.pipeline import Model

    return Model(renderer, transcriber)


class Killed(BaseException):
    """Stands for SIGKILL at one chosen point: nothing after it runs."""


def kill_at_rename(monkeypatch, name: str) -> None:
    """Kill the process just before a file is moved (linked or renamed) onto `name`."""
    import os

    for fn in ("replace", "rename", "link"):
        real = getattr(os, fn)

        def move(src, dst, *args, _real=real, **kwargs):
            if os.path.basename(str(dst)) == name:
                raise Killed
            return _real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, fn, move)


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


TINY_TRAIN_CONFIG = {
    "encoder": {"channels": 16, "layers": 2, "embedding_dim": 8},
    "decoder": {"channels": 8, "skip_channels": 8, "dilations": [1, 2], "n_harmonics": 4, "embedding_dim": 8},
    "encoder_steps": 4,
    "encoder_batch": 4,
    "steps": 6,
    "batch": 2,
    "checkpoint_every": 2,
    "validate_every": 3,
    "embeddings_per_instrument": 2,
}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Four TimGM6mb programs x 3 pitches x 2 velocities: two instruments train, one validates, one tests."""
    from hybrid.data.build import BuildConfig, build_dataset
    from hybrid.data.soundfont import timgm6mb

    root = tmp_path_factory.mktemp("tinyset")
    cfg = BuildConfig(
        soundfonts=(str(timgm6mb()),),
        programs=(0, 24, 40, 73),
        pitches=(55, 60, 67),
        velocities=(60, 110),
        valid_fraction=0.25,
        test_fraction=0.25,
        sample_rate_hz=16000,
    )
    build_dataset(cfg, root)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained checkpoint with a few thousand parameters: for plumbing tests, not quality."""
    import torch

    from hybrid.neural.checkpoint import save_checkpoint
    from hybrid.neural.models import DecoderConfig, EncoderConfig, TimbreEncoder, WaveNetDecoder

    torch.manual_seed(0)
    enc = TimbreEncoder(EncoderConfig(channels=16, layers=2, embedding_dim=8))
    dec = WaveNetDecoder(
        DecoderConfig(channels=8, skip_channels=8, dilations=(1, 2), n_harmonics=4, embedding_dim=8)
    )
    return save_checkpoint(
        tmp_path_factory.mktemp("tinyck") / "ck", enc, dec, {"note": "untrained, for tests"}
    )
