"""The one place that knows the order of the stages.

    transfer_audio:  transcribe A -> transform (stretch, transpose) -> render_notes -> score
    render_notes:    note check -> render with the fitted timbre -> loudness-normalise

Both work on arrays with a model that is already loaded (`load_model`), so a caller that renders many songs
loads once and calls them in a loop. `transfer` and `render_midi` are the file-level wrappers the CLI calls:
they read the songs, fit the timbre song (`Model.fit_timbre`), call the array functions and write the files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.calibration import FittedTimbre
from hybrid.errors import HybridError
from hybrid.neural.renderer import Renderer
from hybrid.notes import NoteSequence
from hybrid.transcription import Transcriber

PathLike = str | os.PathLike[str]
Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class TransferOptions:
    """Per-call options of a transfer (the model and device are chosen when it is loaded)."""

    rate: float | None = None  # tempo factor, >1 faster
    bpm: float | None = None  # target tempo (from A's estimated tempo)
    bpm_from_timbre: bool = False  # target tempo = the timbre song's estimated tempo (file level only)
    transpose: int = 0  # semitones
    seed: int = 0  # seed of the noise generator and of the calibration: same seed, same output
    calibrate: bool = True  # fit the offset and the correction on the timbre song (hybrid.calibration)
    score: bool = True  # re-transcribe the output and score it against the rendered notes


@dataclass
class TransferResult:
    audio: npt.NDArray[np.float32]  # mono, SAMPLE_RATE_HZ, loudness-normalised
    notes: NoteSequence  # the notes that were rendered (after stretch and transpose), tempo included
    source_tempo_bpm: float  # A's tempo estimated from its audio
    rate: float
    timbre: FittedTimbre  # as rendered: with the share of its offset the note check kept
    onset_f1: float | None = None  # output re-transcribed vs the rendered notes
    output_tempo_bpm: float | None = None
    output_notes: NoteSequence | None = None  # the output re-transcribed (when scored)
    timings_s: dict[str, float] = field(default_factory=dict)
    output: Path | None = None  # where the file-level transfer wrote it


@dataclass
class Model:
    """Everything a transfer runs: the renderer (encoder and decoder) and the transcriber, loaded once."""

    renderer: Renderer
    transcriber: Transcriber

    def fit_timbre(
        self, audio: npt.NDArray[np.float32], sample_rate_hz: int, calibrate: bool = True, seed: int = 0
    ) -> FittedTimbre:
        """The fitted timbre of a timbre song (mono audio at any rate)."""
        from hybrid.audio import resample
        from hybrid.calibration import fit_timbre
        from hybrid.constants import SAMPLE_RATE_HZ

        b = resample(np.asarray(audio, np.float32), sample_rate_hz, SAMPLE_RATE_HZ)
        return fit_timbre(self.renderer, b, calibrate, self.transcriber, seed)


def load_model(checkpoint: PathLike | None = None, device: str = "auto") -> Model:
    """The checkpoint directory `checkpoint` (None: the shipped model) on `device`, with a transcriber."""
    return Model(Renderer.load(checkpoint, device), Transcriber())


def choose_rate(source_bpm: float, options: TransferOptions) -> float:
    """The stretch rate that --rate or --bpm asks for (1 when neither)."""
    from hybrid.transform import check_rate, rate_for_bpm

    given = sum(x is not None for x in (options.rate, options.bpm)) + options.bpm_from_timbre
    if given > 1:
        raise HybridError("give at most one of --rate, --bpm and --bpm-from-timbre")
    if options.rate is not None:
        return check_rate(options.rate)
    if options.bpm is not None:
        return rate_for_bpm(source_bpm, options.bpm)
    return 1.0


def render_notes(
    notes: NoteSequence, timbre: FittedTimbre, model: Model, seed: int = 0
) -> tuple[npt.NDArray[np.float32], FittedTimbre]:
    """Notes -> mono SAMPLE_RATE_HZ audio as hybrid writes it, and the timbre as rendered: the note check keeps
    as much of the calibration's offset as the notes allow, then the notes are rendered and normalised."""
    from hybrid.audio import loudness_normalize
    from hybrid.calibration import note_check, render_fitted

    checked = note_check(model.renderer, notes, timbre, model.transcriber, seed)
    return loudness_normalize(render_fitted(model.renderer, notes, checked, seed)), checked


def transfer_audio(
    a: npt.NDArray[np.float32],
    sample_rate_hz: int,
    timbre: FittedTimbre,
    model: Model,
    options: TransferOptions = TransferOptions(),
    progress: Progress | None = None,
) -> TransferResult:
    """Play the notes and rhythm of song A (mono audio at any rate) with a fitted timbre."""
    from hybrid.constants import SAMPLE_RATE_HZ
    from hybrid.metrics import note_scores
    from hybrid.transcription import transcribe_audio
    from hybrid.transform import stretch_notes, transpose_notes

    if options.bpm_from_timbre:
        raise HybridError("bpm_from_timbre needs the timbre song: give its tempo as bpm")
    laps = _Laps(progress)
    laps.start("transcribing the rhythm song")
    tr = transcribe_audio(a, sample_rate_hz, transcriber=model.transcriber)
    if not tr.notes.notes:
        raise HybridError("song A: no notes found (is it music with a pitch?)")
    rate = choose_rate(tr.tempo_bpm, options)
    notes = transpose_notes(stretch_notes(tr.notes, rate), options.transpose)
    if not notes.notes:
        raise HybridError(f"--transpose {options.transpose} moves every note out of the MIDI range")
    laps.start("rendering", "transcribe")
    y, rendered = render_notes(notes, timbre, model, options.seed)
    result = TransferResult(y, notes, tr.tempo_bpm, rate, rendered)
    if options.score:
        laps.start("scoring", "render")
        again = transcribe_audio(y, SAMPLE_RATE_HZ, transcriber=model.transcriber)
        result.onset_f1 = note_scores(notes, again.notes).onset_f1
        result.output_tempo_bpm = again.tempo_bpm
        result.output_notes = again.notes
        laps.stop("score")
    else:
        laps.stop("render")
    result.timings_s = laps.times
    return result


def transfer(
    rhythm: PathLike,
    timbre: PathLike,
    output: PathLike,
    options: TransferOptions = TransferOptions(),
    midi_out: PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
    model: Model | None = None,
    checkpoint: PathLike | None = None,
    device: str = "auto",
) -> TransferResult:
    """Play `rhythm`'s notes and rhythm with `timbre`'s timbre; write `output` (wav, flac, ogg or mp3) and,
    with `midi_out`, the rendered notes at their real tempo. Loads the model (`checkpoint` on `device`) unless
    one is given."""
    from dataclasses import replace

    from hybrid.audio import check_output_path, load_audio, save_audio
    from hybrid.constants import SAMPLE_RATE_HZ
    from hybrid.notes import write_midi
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, estimate_tempo

    out = check_output_path(output, [rhythm, timbre], force)
    midi_path = check_output_path(midi_out, [rhythm, timbre], force) if midi_out else None
    if midi_path is not None and midi_path.resolve() == out.resolve():
        raise HybridError(f"{out}: --midi-out and the output are the same file")
    choose_rate(1.0, options)  # the options' own checks, before any slow work
    laps = _Laps(progress)
    laps.start("loading")
    a, _ = load_audio(rhythm, sample_rate_hz=BP_SAMPLE_RATE_HZ)
    b, _ = load_audio(timbre, sample_rate_hz=SAMPLE_RATE_HZ)
    model = model or load_model(checkpoint, device)
    if options.bpm_from_timbre:
        from hybrid.audio import resample

        timbre_bpm = estimate_tempo(resample(b, SAMPLE_RATE_HZ, BP_SAMPLE_RATE_HZ), BP_SAMPLE_RATE_HZ)[0]
        options = replace(options, bpm=timbre_bpm, bpm_from_timbre=False)
    laps.start("fitting the timbre song" if options.calibrate else "embedding the timbre song", "load")
    fitted = model.fit_timbre(b, SAMPLE_RATE_HZ, options.calibrate, options.seed)
    laps.stop("fit")
    result = transfer_audio(a, BP_SAMPLE_RATE_HZ, fitted, model, options, progress)
    laps.start("writing")
    save_audio(out, result.audio, SAMPLE_RATE_HZ)
    if midi_path is not None:
        write_midi(result.notes, midi_path)
    laps.stop("write")
    result.timings_s = {**laps.times, **result.timings_s}
    result.output = out
    return result


def render_midi(
    notes: PathLike | NoteSequence,
    timbre: PathLike,
    output: PathLike | None = None,
    seed: int = 0,
    calibrate: bool = True,
    force: bool = False,
    model: Model | None = None,
    checkpoint: PathLike | None = None,
    device: str = "auto",
) -> npt.NDArray[np.float32]:
    """Render a MIDI file (or notes) with the timbre of an audio file; write `output` when given.
    Returns the mono SAMPLE_RATE_HZ audio, loudness-normalised."""
    from hybrid.audio import check_output_path, load_audio, save_audio
    from hybrid.constants import SAMPLE_RATE_HZ
    from hybrid.notes import read_midi

    inputs = [timbre] + ([notes] if not isinstance(notes, NoteSequence) else [])
    out = check_output_path(output, inputs, force) if output is not None else None
    seq = notes if isinstance(notes, NoteSequence) else read_midi(notes)
    if not seq.notes:
        raise HybridError(f"{notes}: holds no notes to render")
    b, _ = load_audio(timbre, sample_rate_hz=SAMPLE_RATE_HZ)
    model = model or load_model(checkpoint, device)
    y, _ = render_notes(seq, model.fit_timbre(b, SAMPLE_RATE_HZ, calibrate, seed), model, seed)
    if out is not None:
        save_audio(out, y, SAMPLE_RATE_HZ)
    return y


def transfer_report(
    rhythm: PathLike,
    timbre: PathLike,
    result: TransferResult,
    path: PathLike,
    options: TransferOptions = TransferOptions(),
    settings: dict[str, str] | None = None,
) -> Path:
    """Write the HTML report of a finished, scored transfer (reuses its notes; loads A and B again)."""
    from hybrid.audio import load_audio
    from hybrid.constants import SAMPLE_RATE_HZ
    from hybrid.report import ReportData, write_report

    if result.output_notes is None or result.output_tempo_bpm is None or result.output is None:
        raise HybridError("a report needs the scored transfer (scoring was switched off)")
    a, _ = load_audio(rhythm, sample_rate_hz=SAMPLE_RATE_HZ)
    b, _ = load_audio(timbre, sample_rate_hz=SAMPLE_RATE_HZ)
    data = ReportData(
        rhythm=Path(rhythm),
        timbre=Path(timbre),
        output=result.output,
        a_audio=a,
        b_audio=b,
        out_audio=result.audio,
        reference_notes=result.notes,
        output_notes=result.output_notes,
        a_tempo_bpm=result.source_tempo_bpm * result.rate,
        output_tempo_bpm=result.output_tempo_bpm,
        settings={**(settings or {}), **result_settings(result, options)},
        calibration=result.timbre.summary(result.notes),
    )
    return write_report(data, path)


def result_settings(result: TransferResult, options: TransferOptions) -> dict[str, str]:
    """The settings a report lists for a transfer."""
    return {
        "seed": str(options.seed),
        "stretch rate": f"{result.rate:.4g}",
        "transpose (semitones)": str(options.transpose),
        "calibration": "on" if options.calibrate else "off (--no-calibrate)",
    }


class _Laps:
    """Wall time of each stage, and the progress callback told when each starts."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.times: dict[str, float] = {}
        self.clock = time.perf_counter()

    def start(self, message: str, finished: str | None = None) -> None:
        """A stage begins: the one `finished` ends (else the time since the last lap is not counted)."""
        if finished is not None:
            self.stop(finished)
        else:
            self.clock = time.perf_counter()
        if callable(self.progress):
            self.progress(message)

    def stop(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self.clock, 3)
        self.clock = now
