"""hybrid: play song A's notes and rhythm with song B's timbre.

The public Python API (imported lazily, so `import hybrid` is instant):

    hybrid.transcribe(path) -> Transcription        notes + tempo of an audio file
    hybrid.transcribe_to_midi(path, midi_out)       the same, written to MIDI with the real tempo
    hybrid.stretch(src, out, rate=|bpm=)            audio (Rubber Band) or MIDI tempo stretch
    hybrid.score(reference, estimate) -> ScoreReport note P/R/F1 (mir_eval) and tempos
    hybrid.transfer(a, b, out, TransferOptions(...))  A's notes and rhythm with B's timbre (files)
    hybrid.render_midi(midi, timbre, out)           a MIDI file with the timbre of an audio file

On arrays, with the model loaded once:

    model = hybrid.load_model()                     checkpoint and transcriber (checkpoint=, device=)
    timbre = model.fit_timbre(b, sr_b)              the timbre song, fitted (hybrid.calibration)
    result = hybrid.transfer_audio(a, sr_a, timbre, model, TransferOptions(...))
    audio, _ = hybrid.render_notes(notes, timbre, model)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "transcribe": "hybrid.transcription",
    "transcribe_audio": "hybrid.transcription",
    "Transcription": "hybrid.transcription",
    "TranscribeOptions": "hybrid.transcription",
    "transcribe_to_midi": "hybrid.api",
    "stretch": "hybrid.api",
    "score": "hybrid.api",
    "ScoreReport": "hybrid.api",
    "transfer": "hybrid.pipeline",
    "render_midi": "hybrid.pipeline",
    "render_notes": "hybrid.pipeline",
    "transfer_audio": "hybrid.pipeline",
    "load_model": "hybrid.pipeline",
    "Model": "hybrid.pipeline",
    "FittedTimbre": "hybrid.calibration",
    "TransferOptions": "hybrid.pipeline",
    "TransferResult": "hybrid.pipeline",
    "Note": "hybrid.notes",
    "NoteSequence": "hybrid.notes",
    "read_midi": "hybrid.notes",
    "write_midi": "hybrid.notes",
    "load_audio": "hybrid.audio",
    "HybridError": "hybrid.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hybrid' has no attribute {name!r}")
