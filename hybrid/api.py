"""File-level operations: what the CLI commands call, usable directly from Python."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.errors import HybridError
from hybrid.metrics import NoteScores, note_scores, tempo_ratio
from hybrid.notes import NoteSequence, load_notes, write_midi
from hybrid.transcription import TranscribeOptions, Transcriber, Transcription

PathLike = str | os.PathLike[str]
MIDI_EXTENSIONS = (".mid", ".midi")
NOTE_LIST_EXTENSIONS = (".txt", ".csv", ".tsv", ".notes", ".lab")


def is_midi(path: PathLike) -> bool:
    return Path(path).suffix.lower() in MIDI_EXTENSIONS


def transcribe_to_midi(
    song: PathLike,
    midi_out: PathLike,
    options: TranscribeOptions = TranscribeOptions(),
    force: bool = False,
) -> Transcription:
    """Transcribe `song` and write its notes to `midi_out` with the tempo estimated from the audio."""
    from hybrid.outputs import check_output_path
    from hybrid.transcription import transcribe

    out = check_output_path(midi_out, [song], force)
    if out.suffix.lower() not in (".mid", ".midi"):
        raise HybridError(f"{out}: transcribe writes MIDI; name a .mid or .midi file")
    result = transcribe(song, options)
    write_midi(result.notes, out, replace=force)
    return result


@dataclass(frozen=True)
class StretchResult:
    output: Path
    rate: float
    source_tempo_bpm: float
    target_tempo_bpm: float


def stretch(
    source: PathLike,
    output: PathLike,
    rate: float | None = None,
    bpm: float | None = None,
    force: bool = False,
) -> StretchResult:
    """Time-stretch an audio or MIDI file by `rate` (>1 faster) or to a tempo `bpm`, keeping pitch.

    Audio goes through Rubber Band; MIDI note times are scaled exactly and the MIDI tempo updated. With bpm,
    the source tempo is the MIDI file's tempo or, for audio, the tempo estimated from it.
    """
    from hybrid.audio import load_audio, save_audio
    from hybrid.outputs import check_output_path
    from hybrid.transform import check_bpm, check_rate, rate_for_bpm, stretch_audio, stretch_notes

    if (rate is None) == (bpm is None):
        raise HybridError("give exactly one of --rate or --bpm")
    if rate is not None:
        check_rate(float(rate))
    if bpm is not None:
        check_bpm(bpm)
    out = check_output_path(output, [source], force)
    if is_midi(source) != is_midi(out):
        raise HybridError(
            f"{out}: a {'MIDI' if is_midi(source) else 'audio'} input needs a matching output type"
        )
    if is_midi(source):
        seq = load_notes(source)
        r = rate_for_bpm(seq.tempo_bpm, bpm) if bpm is not None else check_rate(float(rate))  # type: ignore[arg-type]
        stretched = stretch_notes(seq, r)
        write_midi(stretched, out, replace=force)
        return StretchResult(out, r, seq.tempo_bpm, stretched.tempo_bpm)
    from hybrid.transcription import estimate_tempo

    y, sr = load_audio(source, mono=False)
    mono = y.mean(axis=1)
    source_bpm = estimate_tempo(mono, sr)[0]
    r = rate_for_bpm(source_bpm, bpm) if bpm is not None else check_rate(float(rate))  # type: ignore[arg-type]
    stretched_audio = stretch_audio(y if y.shape[1] > 1 else mono, sr, r)
    save_audio(out, stretched_audio, sr, replace=force)
    return StretchResult(out, r, source_bpm, source_bpm * r)


@dataclass(frozen=True)
class ScoreReport:
    notes: NoteScores
    reference_tempo_bpm: float | None
    estimate_tempo_bpm: float | None

    @property
    def tempo_ratio(self) -> float | None:
        if self.reference_tempo_bpm is None or self.estimate_tempo_bpm is None:
            return None
        return tempo_ratio(self.reference_tempo_bpm, self.estimate_tempo_bpm)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.notes.as_dict(),
            "reference_tempo_bpm": self.reference_tempo_bpm,
            "estimate_tempo_bpm": self.estimate_tempo_bpm,
            "tempo_ratio": self.tempo_ratio,
        }


def notes_of(
    path: PathLike,
    transcriber: Transcriber | None = None,
    pitch_unit: str = "hz",
    audio: tuple[npt.NDArray[np.float32], int] | None = None,
) -> tuple[NoteSequence, float | None]:
    """Notes and tempo of an audio file (transcribed; `audio`: its samples already read), a MIDI file, or a
    plain note list (no tempo)."""
    from hybrid.transcription import transcribe

    p = Path(path)
    if is_midi(p):
        seq = load_notes(p)
        return seq, seq.tempo_bpm
    if p.suffix.lower() in NOTE_LIST_EXTENSIONS:
        return load_notes(p, pitch_unit), None
    t = transcribe(p, transcriber=transcriber, audio=audio)
    return t.notes, t.tempo_bpm


def score(reference: PathLike, estimate: PathLike, pitch_unit: str = "hz") -> ScoreReport:
    """Note scores of `estimate` against `reference` (audio, MIDI or a note list), and both tempos."""
    from hybrid.audio import load_audio
    from hybrid.transcription import BP_SAMPLE_RATE_HZ

    if pitch_unit not in ("hz", "midi"):
        raise HybridError(f"--pitch-unit must be hz or midi, got {pitch_unit!r}")
    # audio is read (and a bad file refused) before the transcriber loads, and read once
    decoded = {
        p: load_audio(p, sample_rate_hz=BP_SAMPLE_RATE_HZ)
        for p in (reference, estimate)
        if not is_midi(p) and Path(p).suffix.lower() not in NOTE_LIST_EXTENSIONS
    }
    transcriber = Transcriber() if decoded else None
    ref, ref_bpm = notes_of(reference, transcriber, pitch_unit, decoded.get(reference))
    est, est_bpm = notes_of(estimate, transcriber, pitch_unit, decoded.get(estimate))
    return ScoreReport(note_scores(ref, est), ref_bpm, est_bpm)
