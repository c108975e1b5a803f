"""transfer(): the one place that knows the order of the stages.

transcribe A (notes, tempo) -> transform (stretch, transpose) -> embed and calibrate B -> render -> write -> score.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid.errors import HybridError
from hybrid.notes import NoteSequence

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TransferOptions:
    rate: float | None = None  # >1 faster
    bpm: float | None = None  # target tempo
    bpm_from_timbre: bool = False  # target tempo = B's estimated tempo
    transpose: int = 0  # semitones
    seed: int = 0
    device: str = "auto"
    checkpoint: str | None = None  # None: the shipped default model
    # Fit the rendering to B by resynthesising its own notes (hybrid.neural.refine, then .calibration).
    calibrate: bool = True
    score: bool = True  # re-transcribe the output and score it against the rendered notes


@dataclass
class TransferResult:
    output: Path
    notes: NoteSequence  # the notes that were rendered (after stretch and transpose), tempo included
    source_tempo_bpm: float  # A's tempo estimated from its audio
    rate: float
    onset_f1: float | None  # output re-transcribed vs the rendered notes
    output_tempo_bpm: float | None
    timings_s: dict[str, float] = field(default_factory=dict)
    audio: npt.NDArray[np.float32] | None = None
    output_notes: NoteSequence | None = None  # the output re-transcribed (when scored)
    timbre: Any = None  # hybrid.neural.render.Timbre of B: embedding and calibration


def choose_rate(source_bpm: float, opts: TransferOptions, timbre_bpm: float | None = None) -> float:
    from hybrid.transform import check_rate, rate_for_bpm

    given = sum(x is not None and x is not False for x in (opts.rate, opts.bpm, opts.bpm_from_timbre or None))
    if given > 1:
        raise HybridError("give at most one of --rate, --bpm and --bpm-from-timbre")
    if opts.rate is not None:
        return check_rate(opts.rate)
    if opts.bpm is not None:
        return rate_for_bpm(source_bpm, opts.bpm)
    if opts.bpm_from_timbre:
        assert timbre_bpm is not None
        return rate_for_bpm(source_bpm, timbre_bpm)
    return 1.0


def render(
    notes: PathLike | NoteSequence,
    timbre: PathLike,
    output: PathLike | None = None,
    seed: int = 0,
    device: str = "auto",
    checkpoint: str | None = None,
    force: bool = False,
    renderer: object | None = None,
    calibrate: bool = True,
) -> npt.NDArray[np.float32]:
    """Render a MIDI file (or notes) with the timbre of an audio file; write `output` when given.
    Returns the 16 kHz mono audio, loudness-normalised."""
    from hybrid.audio import check_output_path, load_audio, loudness_normalize, save_audio
    from hybrid.neural.conditioning import SAMPLE_RATE_HZ
    from hybrid.neural.render import Renderer
    from hybrid.notes import read_midi
    from hybrid.transcription import Transcriber

    inputs = [timbre] + ([notes] if not isinstance(notes, NoteSequence) else [])
    out = check_output_path(output, inputs, force) if output is not None else None
    seq = notes if isinstance(notes, NoteSequence) else read_midi(notes)
    if not seq.notes:
        raise HybridError(f"{notes}: holds no notes to render")
    b, _ = load_audio(timbre, sample_rate_hz=SAMPLE_RATE_HZ)
    r = renderer if isinstance(renderer, Renderer) else Renderer.load(checkpoint, device)
    transcriber = Transcriber() if calibrate else None  # one for the calibration and the note check
    timbre_b = r.timbre(b, calibrate, transcriber, seed)
    y = loudness_normalize(r.render(seq, r.keep_notes(seq, timbre_b, transcriber, seed), seed=seed))
    if out is not None:
        save_audio(out, y, SAMPLE_RATE_HZ)
    return y


def transfer(
    rhythm: PathLike,
    timbre: PathLike,
    output: PathLike,
    options: TransferOptions = TransferOptions(),
    midi_out: PathLike | None = None,
    force: bool = False,
    progress: object | None = None,
) -> TransferResult:
    """Play `rhythm`'s notes and rhythm with `timbre`'s timbre; write `output` (16 kHz wav/flac/ogg/mp3)."""
    from hybrid.audio import check_output_path, load_audio, loudness_normalize, resample, save_audio
    from hybrid.metrics import note_scores
    from hybrid.neural.conditioning import SAMPLE_RATE_HZ
    from hybrid.neural.render import Renderer
    from hybrid.notes import write_midi
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, Transcriber, estimate_tempo, transcribe_audio
    from hybrid.transform import stretch_notes, transpose_notes

    def step(name: str) -> None:
        if callable(progress):
            progress(name)

    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = round(now - clock, 3)
        clock = now

    out = check_output_path(output, [rhythm, timbre], force)
    midi_path = check_output_path(midi_out, [rhythm, timbre], force) if midi_out else None
    if midi_path is not None and midi_path.resolve() == out.resolve():
        raise HybridError(f"{out}: --midi-out and the output are the same file")
    step("loading")
    a, _ = load_audio(rhythm, sample_rate_hz=BP_SAMPLE_RATE_HZ)
    b, _ = load_audio(timbre, sample_rate_hz=SAMPLE_RATE_HZ)
    renderer = Renderer.load(options.checkpoint, options.device)
    transcriber = Transcriber()
    lap("load")
    step("transcribing the rhythm song")
    tr = transcribe_audio(a, BP_SAMPLE_RATE_HZ, transcriber=transcriber)
    if not tr.notes.notes:
        raise HybridError(f"{rhythm}: no notes found (is it music with a pitch?)")
    lap("transcribe")
    timbre_bpm = (
        estimate_tempo(resample(b, SAMPLE_RATE_HZ, BP_SAMPLE_RATE_HZ), BP_SAMPLE_RATE_HZ)[0]
        if options.bpm_from_timbre
        else None
    )
    rate = choose_rate(tr.tempo_bpm, options, timbre_bpm)
    notes = transpose_notes(stretch_notes(tr.notes, rate), options.transpose)
    if not notes.notes:
        raise HybridError(f"--transpose {options.transpose} moves every note out of the MIDI range")
    step("embedding and calibrating the timbre song" if options.calibrate else "embedding the timbre song")
    timbre_b = renderer.timbre(b, options.calibrate, transcriber, options.seed)
    lap("embed")
    if timbre_b.offset is not None:
        step("checking that the notes survive the refined timbre")
        timbre_b = renderer.keep_notes(notes, timbre_b, transcriber, options.seed)
        lap("check")
    step("rendering")
    y = loudness_normalize(renderer.render(notes, timbre_b, seed=options.seed))
    lap("render")
    save_audio(out, y, SAMPLE_RATE_HZ)
    if midi_path is not None:
        write_midi(notes, midi_path)
    lap("write")
    f1 = out_bpm = None
    again = None
    if options.score:
        step("scoring")
        again = transcribe_audio(y, SAMPLE_RATE_HZ, transcriber=transcriber)
        f1 = note_scores(notes, again.notes).onset_f1
        out_bpm = again.tempo_bpm
        lap("score")
    return TransferResult(
        out, notes, tr.tempo_bpm, rate, f1, out_bpm, t, y, again.notes if again else None, timbre_b
    )


def transfer_report(
    rhythm: PathLike, timbre: PathLike, result: TransferResult, options: TransferOptions, path: PathLike
) -> Path:
    """Write the HTML report of a finished transfer (reuses its notes; loads A and B again)."""
    from hybrid.audio import load_audio
    from hybrid.neural.conditioning import SAMPLE_RATE_HZ
    from hybrid.neural.refine import harmonic_levels_db
    from hybrid.report import ReportData, write_report

    if result.output_notes is None or result.output_tempo_bpm is None or result.audio is None:
        raise HybridError("a report needs the scored transfer (scoring was switched off)")
    a, _ = load_audio(rhythm, sample_rate_hz=SAMPLE_RATE_HZ)
    b, _ = load_audio(timbre, sample_rate_hz=SAMPLE_RATE_HZ)
    settings = {
        "checkpoint": options.checkpoint or "default (shipped)",
        "seed": options.seed,
        "stretch rate": f"{result.rate:.4g}",
        "transpose (semitones)": options.transpose,
        "device": options.device,
        "calibration": "on" if options.calibrate else "off (--no-calibrate)",
    }
    calibration = None
    tb = result.timbre
    if tb is not None and tb.correction is not None:
        strength = tb.correction_strength(result.notes)
        applied = tb.correction.scaled(strength)
        calibration = {
            "notes": tb.calibration_notes,
            "pitch_range": tb.pitch_range,
            "strength": strength,
            "envelope_db": applied.envelope_db,
            "scale": applied.scale,
            "harmonic_db": None if tb.offset is None else harmonic_levels_db(tb.offset * strength),
        }
    data = ReportData(
        Path(rhythm),
        Path(timbre),
        result.output,
        a,
        b,
        result.audio,
        result.notes,
        result.output_notes,
        result.source_tempo_bpm * result.rate,
        result.output_tempo_bpm,
        settings,
        calibration,
    )
    return write_report(data, path)
