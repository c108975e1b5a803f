"""The `hybrid` command: a thin shell over hybrid's Python API.

Each command validates its input, calls one library function, writes its output and prints one line.
Heavy libraries (torch, onnxruntime, librosa) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from hybrid.constants import MAX_OUTPUT_SAMPLE_RATE_HZ, OUTPUT_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ
from hybrid.errors import HybridError

SR_TEXT = f"mono, {OUTPUT_SAMPLE_RATE_HZ / 1000:g} kHz unless --sample-rate"

app = typer.Typer(
    name="hybrid",
    help="Play song A's notes and rhythm with song B's timbre.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that the temporary files are removed on the way out."""


_signalled: list[int] = []  # SIGINT or SIGTERM received: any failure after it is reported as the interruption


def _terminate(signum: int, frame: object) -> None:
    _signalled.append(signum)
    raise Terminated


def _interrupt(signum: int, frame: object) -> None:
    _signalled.append(signum)
    raise KeyboardInterrupt


def _stopped_by_signal() -> None:
    """After Ctrl-C or SIGTERM, a library may turn the KeyboardInterrupt into its own error (an import that
    was under way fails with ImportError, a decoder's error is reported as a bad file): say what happened."""
    if _signalled:
        terminated = _signalled[0] == signal.SIGTERM
        typer.echo("terminated" if terminated else "interrupted", err=True)
        raise typer.Exit(143 if terminated else 130)


def friendly_errors(func: F) -> F:
    """Turn any failure into one line on stderr and exit status 1 (HYBRID_DEBUG=1 shows the traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import warnings

        try:
            with warnings.catch_warnings():
                # libraries' warnings (a short input to librosa, deprecations) are not for users
                if not os.environ.get("HYBRID_DEBUG"):
                    warnings.simplefilter("ignore")
                return func(*args, **kwargs)
        except typer.Exit:
            raise
        except Terminated:
            typer.echo("terminated", err=True)
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except HybridError as exc:
            _stopped_by_signal()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:  # the system refused a read or write: name the file and the reason
            _stopped_by_signal()
            if os.environ.get("HYBRID_DEBUG"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:  # an unexpected bug: still one line, unless debugging
            _stopped_by_signal()
            if os.environ.get("HYBRID_DEBUG"):
                raise
            msg = str(exc).splitlines()[0] if str(exc) else ""
            typer.echo(
                f"error: unexpected {type(exc).__name__}: {msg} (set HYBRID_DEBUG=1 for details)", err=True
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def check_workers(workers: int) -> None:
    if not 1 <= workers <= 256:
        raise HybridError(f"--workers must be between 1 and 256, got {workers}")


Force = Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")]


@app.command()
@friendly_errors
def transcribe(
    song: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, mp3, ...).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MIDI file to write.")],
    onset_threshold: Annotated[float, typer.Option(help="basic-pitch onset threshold.")] = 0.5,
    frame_threshold: Annotated[float, typer.Option(help="basic-pitch frame threshold.")] = 0.3,
    min_note_ms: Annotated[float, typer.Option(help="Shortest note kept, in ms.")] = 127.70,
    force: Force = False,
) -> None:
    """Transcribe SONG to MIDI notes (with pitch bends), with the song's tempo written into the file."""
    from hybrid.api import transcribe_to_midi
    from hybrid.transcription import TranscribeOptions

    opts = TranscribeOptions(
        onset_threshold=onset_threshold, frame_threshold=frame_threshold, min_note_length_ms=min_note_ms
    )
    result = transcribe_to_midi(song, output, opts, force)
    typer.echo(
        f"{output}: {len(result.notes)} notes, {result.duration_s:.1f} s, tempo {result.tempo_bpm:.1f} BPM"
    )


@app.command()
@friendly_errors
def stretch(
    source: Annotated[Path, typer.Argument(help="Audio or MIDI file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (same kind as the input).")],
    rate: Annotated[
        float | None, typer.Option(help="Speed factor: >1 plays faster (duration / rate).")
    ] = None,
    bpm: Annotated[float | None, typer.Option(help="Target tempo; the source tempo is estimated.")] = None,
    force: Force = False,
) -> None:
    """Time-stretch audio (Rubber Band, pitch kept) or MIDI (exact) by a rate or to a tempo."""
    from hybrid.api import stretch as do_stretch

    r = do_stretch(source, output, rate=rate, bpm=bpm, force=force)
    typer.echo(
        f"{r.output}: rate {r.rate:.4g}, tempo {r.source_tempo_bpm:.1f} -> {r.target_tempo_bpm:.1f} BPM"
    )


@app.command()
@friendly_errors
def score(
    reference: Annotated[
        Path, typer.Option("--reference", help="Audio, MIDI, or note list 'onset offset pitch'.")
    ],
    estimate: Annotated[Path, typer.Option("--estimate", help="Audio, MIDI, or note list.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    pitch_unit: Annotated[str, typer.Option(help="Pitch unit of note lists: hz or midi.")] = "hz",
) -> None:
    """Note precision/recall/F1 (mir_eval; onset-only and with offsets) and both tempos."""
    from hybrid.api import score as do_score

    report = do_score(reference, estimate, pitch_unit)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    n = report.notes

    def fmt(x: float | None, spec: str = ".1f") -> str:
        return "n/a" if x is None else format(x, spec)

    lines = [
        f"{'':14}{'precision':>10}{'recall':>10}{'F1':>10}",
        f"{'onset only':14}{n.onset_precision:>10.3f}{n.onset_recall:>10.3f}{n.onset_f1:>10.3f}",
        f"{'with offsets':14}{n.precision:>10.3f}{n.recall:>10.3f}{n.f1:>10.3f}",
        f"notes: reference {n.n_reference}, estimate {n.n_estimate}",
        f"tempo: reference {fmt(report.reference_tempo_bpm)} BPM, estimate {fmt(report.estimate_tempo_bpm)} BPM,"
        f" ratio {fmt(report.tempo_ratio, '.3f')}",
    ]
    typer.echo("\n".join(lines))


Device = Annotated[str, typer.Option(help="auto (GPU when present), cpu or cuda.")]
Calibrate = Annotated[
    bool,
    typer.Option(
        "--calibrate/--no-calibrate",
        help="Calibrate on B: render B's own notes, fit an offset of the decoder's output and a spectral "
        "correction until they sound like B.",
    ),
]
Library = Annotated[
    bool,
    typer.Option(
        "--library/--no-library",
        help="Play A's notes from B's own clean recorded notes where B has them (kept only as far as A's notes "
        "survive); --no-library: the decoder always.",
    ),
]
TimbreDrums = Annotated[
    str,
    typer.Option(
        "--timbre-drums",
        help="drop: the timbre song is a mix; fit its timbre on it less its percussive part (its drums).",
    ),
]
SampleRate = Annotated[
    int,
    typer.Option(
        "--sample-rate", help=f"Output sample rate in Hz ({SAMPLE_RATE_HZ}-{MAX_OUTPUT_SAMPLE_RATE_HZ})."
    ),
]
Dry = Annotated[
    bool,
    typer.Option(
        "--dry",
        help="Leave out B's acoustics (the room and noise floor fitted on B; a stereo B's width): a dry rendering.",
    ),
]
Cache = Annotated[
    bool,
    typer.Option(
        "--cache/--no-cache",
        help="Reuse B's fit when B was fitted before with the same settings ($HYBRID_CACHE_DIR, default "
        "~/.cache/hybrid/timbres; safe to delete).",
    ),
]
CheckpointOpt = Annotated[
    Path | None, typer.Option("--checkpoint", help="Checkpoint directory (default: the shipped model).")
]


@app.command()
@friendly_errors
def transfer(
    rhythm: Annotated[Path, typer.Option("--rhythm", help="Song A: its notes and rhythm are kept.")],
    timbre: Annotated[
        Path,
        typer.Option(
            "--timbre",
            help="Song B, whose sound is used (audio, or a .timbre file from `hybrid timbre fit`).",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help=f"Audio file to write ({SR_TEXT}).")],
    rate: Annotated[float | None, typer.Option(help="Tempo factor: >1 plays faster.")] = None,
    bpm: Annotated[float | None, typer.Option(help="Target tempo in BPM (from A's estimated tempo).")] = None,
    bpm_from_timbre: Annotated[bool, typer.Option("--bpm-from-timbre", help="Take B's tempo.")] = False,
    transpose: Annotated[int, typer.Option(help="Semitones up (negative: down).")] = 0,
    midi_out: Annotated[
        Path | None, typer.Option("--midi-out", help="Also write the notes, real tempo.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise generator (same seed, same output).")] = 0,
    calibrate: Calibrate = True,
    library: Library = True,
    sample_rate: SampleRate = OUTPUT_SAMPLE_RATE_HZ,
    dry: Dry = False,
    cache: Cache = True,
    device: Device = "auto",
    checkpoint: CheckpointOpt = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write an HTML report (plots, players).")
    ] = None,
    drums: Annotated[
        str,
        typer.Option(
            "--drums",
            help="keep (the default): when A has drums, its percussive part under the notes, and A less it "
            "transcribed (a solo is left as it is); always: the same without asking; drop: A's notes only.",
        ),
    ] = "keep",
    drums_level: Annotated[
        float, typer.Option("--drums-level", help="The kept drums' level in dB, relative to A's own balance.")
    ] = 0.0,
    timbre_drums: TimbreDrums = "keep",
    bass_timbre: Annotated[
        Path | None,
        typer.Option(
            "--bass-timbre",
            help="Song C: the bass line (lowest voice, or notes under --split-at) in its sound.",
        ),
    ] = None,
    split_at: Annotated[
        str | None,
        typer.Option(
            "--split-at", help="With --bass-timbre: the notes under this note (C3 or 48) are the bass."
        ),
    ] = None,
    stems: Annotated[
        Path | None,
        typer.Option(
            "--stems", help="Also write a folder of stems: one file per part and the drums, as mixed."
        ),
    ] = None,
    score: Annotated[
        bool,
        typer.Option(
            "--score/--no-score",
            help="Transcribe the output again and print its note F1 against A's notes (--no-score: skip it, "
            "half a second on a 30 s song; --report needs it).",
        ),
    ] = True,
    force: Force = False,
) -> None:
    """Play A's notes and rhythm with B's timbre; prints where the output went and its note F1 against A."""
    from rich.console import Console

    from hybrid.parts import parse_note
    from hybrid.pipeline import TransferOptions
    from hybrid.pipeline import transfer as do_transfer

    opts = TransferOptions(
        rate=rate,
        bpm=bpm,
        bpm_from_timbre=bpm_from_timbre,
        transpose=transpose,
        seed=seed,
        calibrate=calibrate,
        library=library,
        sample_rate_hz=sample_rate,
        acoustics=not dry,
        drums=drums,
        drums_level_db=drums_level,
        timbre_drums=timbre_drums,
        split_at=parse_note(split_at),
        score=score,
    )
    if split_at is not None and bass_timbre is None:
        raise HybridError("--split-at needs --bass-timbre (the part under it is played with that timbre)")
    console = Console(stderr=True)
    with console.status("starting") as status:
        result = do_transfer(
            rhythm,
            timbre,
            output,
            opts,
            midi_out,
            force,
            progress=lambda s: status.update(s),
            checkpoint=checkpoint,
            device=device,
            cache=cache,
            report=report,
            report_settings={"checkpoint": str(checkpoint or "default (shipped)"), "device": device},
            bass_timbre=bass_timbre,
            stems=stems,
        )
    f1 = "not scored (--no-score)" if result.onset_f1 is None else f"{result.onset_f1:.3f}"
    typer.echo(
        f"{result.output}: {len(result.notes)} notes at {result.notes.tempo_bpm:.1f} BPM (rate {result.rate:.3g}),"
        f" drums {result.drums}, note F1 vs A {f1}"
    )


@app.command()
@friendly_errors
def render(
    notes: Annotated[Path, typer.Argument(help="MIDI file to play.")],
    timbre: Annotated[Path, typer.Option("--timbre", help="Audio whose sound is used, or a .timbre file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=f"Audio file to write ({SR_TEXT}).")],
    seed: Annotated[int, typer.Option(help="Seed of the noise generator.")] = 0,
    calibrate: Calibrate = True,
    library: Library = True,
    sample_rate: SampleRate = OUTPUT_SAMPLE_RATE_HZ,
    dry: Dry = False,
    cache: Cache = True,
    device: Device = "auto",
    checkpoint: CheckpointOpt = None,
    force: Force = False,
) -> None:
    """Render a MIDI file with the timbre of an audio file."""
    from hybrid.pipeline import render_midi

    y = render_midi(
        notes,
        timbre,
        output,
        seed,
        calibrate,
        force,
        checkpoint=checkpoint,
        device=device,
        library=library,
        sample_rate_hz=sample_rate,
        cache=cache,
        acoustics=not dry,
    )
    typer.echo(f"{output}: {len(y) / sample_rate:.1f} s rendered at {sample_rate} Hz")


@app.command("report")
@friendly_errors
def report_cmd(
    rhythm: Annotated[Path, typer.Option("--rhythm", help="Song A.")],
    timbre: Annotated[Path, typer.Option("--timbre", help="Song B.")],
    output: Annotated[Path, typer.Option("--output", help="The transfer's output audio.")],
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Report to write (default: OUTPUT.html).")
    ] = None,
    force: Force = False,
) -> None:
    """An HTML report of an existing transfer output: players, piano roll, spectrograms, metrics."""
    from hybrid.outputs import check_output_path
    from hybrid.report import analyse, write_report

    path = check_output_path(html_out or output.with_suffix(".html"), [rhythm, timbre, output], force)
    data = analyse(rhythm, timbre, output, settings={"output": str(output)})
    write_report(data, path, force)
    typer.echo(f"{path}: report written")


@app.command()
@friendly_errors
def evaluate(
    pairs: Annotated[
        Path, typer.Argument(help="CSV: rhythm,timbre[,notes] (ground-truth notes of the rhythm song).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Results folder.")],
    system: Annotated[
        str, typer.Option(help="hybrid, copy-a, copy-b, nearest-gm, or a comma list.")
    ] = "hybrid,copy-a,copy-b,nearest-gm",
    workers: Annotated[int, typer.Option(help="Parallel processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the renderer.")] = 0,
    checkpoint: CheckpointOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the results folder OUT if it exists.")
    ] = False,
) -> None:
    """Score systems on many pairs: OUT/NAME.json and .md per system, OUT/summary.md side by side."""
    from hybrid.evaluate import evaluate as run_eval

    names = [s.strip() for s in system.split(",") if s.strip()]
    check_workers(workers)
    run_eval(
        pairs,
        out,
        names,
        str(checkpoint) if checkpoint else None,
        seed,
        workers,
        progress=lambda s, i, n: typer.echo(f"{s}: pair {i}/{n}", err=True),
        force=force,
    )
    typer.echo(f"{out}: results of {', '.join(names)}; summary in {out / 'summary.md'}")


@app.command()
@friendly_errors
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (another than 127.0.0.1 opens it to others).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    checkpoint: CheckpointOpt = None,
    device: Device = "auto",
) -> None:
    """A local web page: choose two songs, listen to the transfer, download it (Ctrl-C stops)."""
    import socket

    from hybrid.pipeline import load_model
    from hybrid.serve import is_local
    from hybrid.serve import serve as run_server

    if not 1 <= port <= 65535:
        raise HybridError(f"--port must be between 1 and 65535, got {port}")
    try:  # a busy port is reported before the model loads
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise HybridError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    if not is_local(host):
        typer.echo(
            f"warning: listening on {host}: anyone who can reach this machine can use the page", err=True
        )
    model = load_model(checkpoint, device)
    run_server(host, port, model, ready=lambda url: typer.echo(f"hybrid serve: open {url} (Ctrl-C stops)"))


timbre_app = typer.Typer(help="Fit a timbre song once, for any number of transfers.", no_args_is_help=True)
app.add_typer(timbre_app, name="timbre")


@timbre_app.command("fit")
@friendly_errors
def timbre_fit(
    song: Annotated[Path, typer.Argument(help="The timbre song B (audio).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The fitted timbre to write (.timbre).")],
    seed: Annotated[int, typer.Option(help="Seed of the calibration.")] = 0,
    calibrate: Calibrate = True,
    library: Library = True,
    timbre_drums: TimbreDrums = "keep",
    device: Device = "auto",
    checkpoint: CheckpointOpt = None,
    force: Force = False,
) -> None:
    """Fit B once (note library, embedding, calibration); then --timbre B.timbre in transfer or render."""
    from hybrid.audio import file_sha256, load_audio
    from hybrid.calibration.timbre_file import SUFFIX, save_timbre
    from hybrid.outputs import check_output_path
    from hybrid.pipeline import TransferOptions, fit_settings, load_model

    TransferOptions(seed=seed, timbre_drums=timbre_drums)  # their checks
    out = check_output_path(output, [song], force)
    if out.suffix.lower() != SUFFIX:
        raise HybridError(f"{out}: a fitted timbre is written to a {SUFFIX} file")
    y, sr = load_audio(song, mono=False)
    model = load_model(checkpoint, device)
    fitted = model.fit_timbre(y, sr, calibrate, seed, library, timbre_drums)
    settings = fit_settings(calibrate, seed, library, timbre_drums)
    save_timbre(fitted, out, model.renderer.weights_sha256, file_sha256(song), settings, replace=force)
    notes = 0 if fitted.library is None else len(fitted.library.notes)
    typer.echo(
        f"{out}: fitted on {fitted.calibration_notes} notes of {song.name}, {notes} in its note library"
    )


dataset_app = typer.Typer(help="Build and inspect NSynth-format note datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("build")
@friendly_errors
def dataset_build(
    out: Annotated[Path, typer.Option("--out", help="Output folder (NSynth layout).")],
    soundfont: Annotated[
        list[Path] | None, typer.Option("--soundfont", help="SoundFont (.sf2/.sf3); repeat for more.")
    ] = None,
    samples: Annotated[
        list[Path] | None,
        typer.Option(
            "--samples",
            help="A folder of recorded notes, one file per note (pitch in the name: C4, F#3; else measured); "
            "one instrument per folder; repeat for more.",
        ),
    ] = None,
    sfz: Annotated[
        list[Path] | None,
        typer.Option(
            "--sfz",
            help="An SFZ instrument: its regions' recorded notes (pitch, velocity, offset and end as it maps "
            "them); one instrument per file; repeat for more; may be given with --samples.",
        ),
    ] = None,
    family: Annotated[
        str, typer.Option(help="With --samples/--sfz: the NSynth family of the instruments.")
    ] = "keyboard",
    source: Annotated[
        str, typer.Option(help="With --samples/--sfz: acoustic, electronic or synthetic.")
    ] = "acoustic",
    licence: Annotated[
        str,
        typer.Option(help="With --samples/--sfz: the recordings' licence and author, kept in every record."),
    ] = "",
    programs: Annotated[str, typer.Option(help="GM programs, e.g. 0-127 or 0,24,40.")] = "0-127",
    pitches: Annotated[str, typer.Option(help="MIDI pitches.")] = "21-108",
    velocities: Annotated[str, typer.Option(help="MIDI velocities.")] = "25,50,75,100,127",
    valid_fraction: Annotated[
        float, typer.Option(help="Share of instruments held out for validation.")
    ] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Share of instruments held out for test.")] = 0.1,
    workers: Annotated[int, typer.Option(help="Parallel worker processes.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the instrument split.")] = 0,
    sample_rate: Annotated[
        int,
        typer.Option(
            "--sample-rate", help=f"Rate of the notes in Hz ({SAMPLE_RATE_HZ}-{MAX_OUTPUT_SAMPLE_RATE_HZ})."
        ),
    ] = OUTPUT_SAMPLE_RATE_HZ,
) -> None:
    """Render GM SoundFont programs, or take a sample library's recorded notes (folders or SFZ files), as
    NSynth-format notes (4 s; 44.1 kHz unless --sample-rate; training reads any rate)."""
    from rich.progress import Progress

    from hybrid.data.build import BuildConfig, build_dataset, parse_ranges

    check_workers(workers)
    recorded = bool(samples) or bool(sfz)
    if bool(soundfont) == recorded:
        raise HybridError("give --soundfont, or --samples/--sfz (SoundFonts or recordings per dataset)")
    if recorded:
        from hybrid.data.samples import SamplesConfig, build_from_samples

        scfg = SamplesConfig(
            folders=tuple(str(p) for p in samples or ()),
            sfz=tuple(str(p) for p in sfz or ()),
            family=family,
            source=source,
            licence=licence,
            valid_fraction=valid_fraction,
            test_fraction=test_fraction,
            sample_rate_hz=sample_rate,
            seed=seed,
        )
        report = build_from_samples(scfg, out)
    else:
        assert soundfont is not None
        cfg = BuildConfig(
            soundfonts=tuple(str(p) for p in soundfont),
            programs=parse_ranges(programs),
            pitches=parse_ranges(pitches),
            velocities=parse_ranges(velocities),
            valid_fraction=valid_fraction,
            test_fraction=test_fraction,
            seed=seed,
            sample_rate_hz=sample_rate,
        )
        with Progress(transient=True) as bar:
            task = bar.add_task("rendering instruments", total=None)
            report = build_dataset(
                cfg, out, workers, lambda done, total: bar.update(task, completed=done, total=total)
            )
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items())) or "none"
    notes = ", ".join(f"{s} {n}" for s, n in report.notes.items())
    typer.echo(f"{out}: notes {notes}; dropped {dropped}; reused {report.skipped_existing}")


@dataset_app.command("info")
@friendly_errors
def dataset_info_cmd(
    root: Annotated[Path, typer.Argument(help="NSynth-format folder (real NSynth or built).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts per split, family and source, and total hours."""
    from hybrid.data.nsynth import dataset_info

    info = dataset_info(root)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for split, d in info["splits"].items():  # type: ignore[attr-defined]
        typer.echo(f"{split}: {d['notes']} notes, {d['instruments']} instruments, {d['hours']:.2f} h")
        typer.echo("  families: " + ", ".join(f"{k} {v}" for k, v in d["families"].items()))
        typer.echo("  sources:  " + ", ".join(f"{k} {v}" for k, v in d["sources"].items()))
    typer.echo(f"total: {info['notes']} notes, {info['hours']:.2f} h")


@app.command()
@friendly_errors
def train(
    data: Annotated[Path, typer.Option("--data", help="NSynth-format folder (real NSynth or built).")],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory to write, e.g. checkpoints/mine.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Training config JSON (TrainConfig fields).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Decoder training steps (overrides the config).")] = None,
    encoder_steps: Annotated[
        int | None, typer.Option(help="Encoder training steps (overrides the config).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a killed run from its last checkpoint.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a checkpoint already in OUT.")] = False,
) -> None:
    """Train the timbre encoder, then the WaveNet decoder; checkpoints are saved atomically and resumable."""
    from hybrid.training import load_train_config
    from hybrid.training import train as run_training
    from hybrid.training.loops import check_output_dir

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise HybridError(f"device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise HybridError("--device cuda: no CUDA GPU is available here")
    check_output_dir(out, resume, force)
    cfg = load_train_config(config, {"steps": steps, "encoder_steps": encoder_steps, "seed": seed})
    result = run_training(
        data, out, cfg, device=device, resume=resume, log=lambda m: typer.echo(m, err=True), force=force
    )
    typer.echo(f"{result}: checkpoint written")


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _interrupt)
    app()


if __name__ == "__main__":
    main()
