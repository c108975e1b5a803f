"""One self-contained HTML report of a transfer: players, piano roll, spectrograms, timbre plot, metrics.

Everything is inline (audio as Ogg Vorbis data URIs, plots as PNG data URIs), so the file opens offline and
makes no network request.
"""

from __future__ import annotations

import base64
import html
import io
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid.calibration.fitted import CalibrationSummary
from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.metrics import NoteScores, TimbreScores
from hybrid.notes import NoteSequence

SR = SAMPLE_RATE_HZ


@dataclass
class ReportData:
    rhythm: Path
    timbre: Path
    output: Path
    a_audio: npt.NDArray[np.float32]  # 16 kHz mono
    b_audio: npt.NDArray[np.float32]
    out_audio: npt.NDArray[np.float32]
    reference_notes: NoteSequence  # what the output should play (A's notes after stretch/transpose)
    output_notes: NoteSequence  # the output re-transcribed
    a_tempo_bpm: float
    output_tempo_bpm: float
    settings: dict[str, object] = field(default_factory=dict)
    calibration: CalibrationSummary | None = None  # as applied to the output (None: uncalibrated)
    out_full_band: tuple[npt.NDArray[np.float32], int] | None = None  # the output at its own rate
    b_full_band: tuple[npt.NDArray[np.float32], int] | None = None  # the timbre song at its own rate
    acoustics: dict[str, str] | None = None  # B's acoustics as estimated, and the room applied


def analyse(
    rhythm: str | os.PathLike[str],
    timbre: str | os.PathLike[str],
    output: str | os.PathLike[str],
    reference_notes: NoteSequence | None = None,
    a_tempo_bpm: float | None = None,
    settings: dict[str, object] | None = None,
) -> ReportData:
    """Load A, B and the output; transcribe what is not given; return everything a report shows."""
    from hybrid.audio import load_audio, resample
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, Transcriber, transcribe_audio

    tr = Transcriber()
    a22, _ = load_audio(rhythm, sample_rate_hz=BP_SAMPLE_RATE_HZ)
    b_full = load_audio(timbre)
    o_full = load_audio(output)
    b, o = resample(b_full[0], b_full[1], SR), resample(o_full[0], o_full[1], SR)
    if reference_notes is None or a_tempo_bpm is None:
        ta = transcribe_audio(a22, BP_SAMPLE_RATE_HZ, transcriber=tr)
        reference_notes = reference_notes or ta.notes
        a_tempo_bpm = a_tempo_bpm or ta.tempo_bpm
    to = transcribe_audio(o, SR, transcriber=tr)
    return ReportData(
        Path(rhythm),
        Path(timbre),
        Path(output),
        resample(a22, BP_SAMPLE_RATE_HZ, SR),
        b,
        o,
        reference_notes,
        to.notes,
        float(a_tempo_bpm),
        to.tempo_bpm,
        dict(settings or {}),
        out_full_band=o_full,
        b_full_band=b_full,
    )


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _audio_uri(y: npt.NDArray[np.float32], sample_rate_hz: int = SR) -> str:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1, 1), sample_rate_hz, format="OGG", subtype="VORBIS")
    return "data:audio/ogg;base64," + base64.b64encode(buf.getvalue()).decode()


def piano_roll(d: ReportData) -> str:
    """Reference notes (outlined) against the output's notes: matched green, missed red, extra orange."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hybrid.metrics import note_matching

    pairs = note_matching(d.reference_notes, d.output_notes)
    ref_hit = {i for i, _ in pairs}
    est_hit = {j for _, j in pairs}
    fig, ax = plt.subplots(figsize=(11, 3.6))
    for i, n in enumerate(d.reference_notes.notes):
        color = "#2e7d32" if i in ref_hit else "#c62828"
        ax.add_patch(
            plt.Rectangle((n.onset_s, n.pitch_midi - 0.4), n.duration_s, 0.8, fill=False, ec=color, lw=1.4)
        )
    for j, n in enumerate(d.output_notes.notes):
        color = "#66bb6a" if j in est_hit else "#ef6c00"
        ax.add_patch(
            plt.Rectangle((n.onset_s, n.pitch_midi - 0.3), n.duration_s, 0.6, color=color, alpha=0.6)
        )
    notes = d.reference_notes.notes + d.output_notes.notes
    end = max((n.offset_s for n in notes), default=1.0)
    pitches = [n.pitch_midi for n in notes] or [60]
    ax.set_xlim(0, end + 0.2)
    ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    beat = 60.0 / d.reference_notes.tempo_bpm
    top = ax.secondary_xaxis(
        "top", functions=(lambda t: np.asarray(t) / beat, lambda b: np.asarray(b) * beat)
    )
    top.set_xlabel(f"beats at {d.reference_notes.tempo_bpm:.1f} BPM")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(fc="none", ec="#2e7d32", label="A's note, matched"),
            Patch(fc="none", ec="#c62828", label="A's note, missed"),
            Patch(color="#66bb6a", label="output note, matched"),
            Patch(color="#ef6c00", label="output note, extra"),
        ],
        loc="upper right",
        fontsize=8,
        ncol=4,
    )
    ax.set_title(
        f"notes: {len(pairs)} matched, {len(d.reference_notes) - len(pairs)} missed, {len(d.output_notes) - len(pairs)} extra"
    )
    return _png(fig)


def spectrograms(d: ReportData) -> str:
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=False, gridspec_kw={"hspace": 0.5})
    for ax, (name, y) in zip(
        axes, (("A (rhythm)", d.a_audio), ("B (timbre)", d.b_audio), ("output", d.out_audio)), strict=True
    ):
        m = librosa.feature.melspectrogram(y=y[: 60 * SR], sr=SR, n_fft=1024, hop_length=256, n_mels=96)
        db = librosa.power_to_db(m, ref=1.0, top_db=None)
        im = ax.imshow(
            db,
            origin="lower",
            aspect="auto",
            vmin=-80,
            vmax=0,
            cmap="magma",
            extent=(0, db.shape[1] * 256 / SR, 0, 96),
        )
        ax.set_ylabel("mel band")
        ax.set_title(name, fontsize=10, loc="left")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes, label="dB (same scale for all three)")
    return _png(fig)


def spectrum_plot(d: ReportData) -> str:
    """Long-term average spectra up to each recording's Nyquist: what the output holds above 8 kHz, beside B."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3))
    for name, full, colour in (
        ("B (timbre)", d.b_full_band, "#ad1457"),
        ("output", d.out_full_band, "#2e7d32"),
    ):
        if full is None:
            continue
        y, sr = full
        f, p = _average_spectrum(y, sr)
        ax.semilogx(f[1:], p[1:], label=f"{name}, {sr / 1000:g} kHz", color=colour, lw=1)
    ax.axvline(8000, color="#888", ls="--", lw=1)
    ax.annotate("8 kHz: above it, B's balance", (8000, 0), (4, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB (loudest bin 0)")
    ax.set_ylim(-100, 5)
    ax.legend(fontsize=8)
    ax.set_title("average spectrum, full band", fontsize=10)
    return _png(fig)


def _average_spectrum(y: npt.NDArray[np.float32], sample_rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """(Hz, dB relative to the loudest bin) of the mean power spectrum (Welch, 4096-point frames)."""
    from scipy.signal import welch

    f, p = welch(np.asarray(y, np.float64), fs=sample_rate_hz, nperseg=min(4096, max(256, len(y))))
    return f, 10.0 * np.log10(p / (p.max() + 1e-30) + 1e-12)


def timbre_plot(scores: TimbreScores) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = scores
    fig, ax = plt.subplots(figsize=(7, 1.6))
    ax.plot([0, 1], [0, 0], color="#888", lw=2)
    ax.scatter([0, 1], [0, 0], s=120, color=["#1565c0", "#ad1457"], zorder=3)
    ax.scatter([s.score], [0], s=160, marker="D", color="#2e7d32", zorder=4)
    ax.annotate("A", (0, 0), (0, 12), textcoords="offset points", ha="center")
    ax.annotate("B", (1, 0), (0, 12), textcoords="offset points", ha="center")
    ax.annotate(f"output ({s.score:.2f})", (s.score, 0), (0, -18), textcoords="offset points", ha="center")
    ax.set_xlim(-0.1, 1.1)
    ax.axis("off")
    ax.set_title("timbre: where the output sits between A and B (MFCC statistics)", fontsize=10)
    return _png(fig)


def calibration_plot(cal: CalibrationSummary) -> str:
    """What the calibration applied: the level of each harmonic the offset changed (when there is one), the
    average gain per mel band of the correction, and how the correction widened or narrowed the spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hybrid.calibration.correction import band_centres_hz

    harm = cal.harmonic_db
    panels = 3 if harm is not None else 2
    ratios = [2, 3, 2] if harm is not None else [3, 2]
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 2.6), gridspec_kw={"width_ratios": ratios})
    if harm is not None:
        h = np.asarray(harm)[:20]
        ax0 = axes[0]
        ax0.bar(np.arange(1, len(h) + 1), h, color=["#2e7d32" if v >= 0 else "#c62828" for v in h])
        ax0.axhline(0, color="#888", lw=1)
        ax0.set_xlabel("harmonic")
        ax0.set_ylabel("dB")
        ax0.set_title("offset: level per harmonic", fontsize=10)
    ax, ax2 = axes[-2], axes[-1]
    f = band_centres_hz()
    env = np.asarray(cal.envelope_db)
    ax.axhline(0, color="#888", lw=1)
    ax.fill_between(f, 0, env, where=env >= 0, color="#2e7d32", alpha=0.5, step="mid")
    ax.fill_between(f, 0, env, where=env < 0, color="#c62828", alpha=0.5, step="mid")
    ax.plot(f, env, color="#222", lw=1, drawstyle="steps-mid")
    ax.set_xscale("log")
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB")
    ax.set_title("correction: average gain per mel band", fontsize=10)
    scale = np.asarray(cal.scale)[1:20]
    ax2.bar(np.arange(1, 20), scale, color=["#2e7d32" if s >= 1 else "#c62828" for s in scale])
    ax2.axhline(1, color="#888", lw=1)
    ax2.set_xlabel("cepstral coefficient")
    ax2.set_title("correction: spread over time, x", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def metrics_of(d: ReportData) -> tuple[NoteScores, TimbreScores, float]:
    """(note scores, timbre scores, tempo ratio output/A) of a report's data."""
    from hybrid.metrics import note_scores, tempo_ratio, timbre_scores

    ns = note_scores(d.reference_notes, d.output_notes)
    ts = timbre_scores(d.out_audio, d.a_audio, d.b_audio)
    return ns, ts, tempo_ratio(d.a_tempo_bpm, d.output_tempo_bpm)


def calibration_section(d: ReportData) -> str:
    cal = d.calibration
    if not cal:
        return (
            "<h2>Calibration</h2><p>None recorded: it was switched off, B held nothing to measure it on, or "
            "this report was made from an existing output.</p>"
        )
    lo, hi = cal.pitch_range or (0.0, 0.0)
    with_offset = cal.harmonic_db is not None
    text = (
        f"B's own notes ({cal.notes}, MIDI {lo:.0f}-{hi:.0f}) were rendered with B's embedding"
        + (
            ", with an offset of the decoder's output fitted until that rendering sounded like B,"
            if with_offset
            else ""
        )
        + " and compared with B; the difference was applied to the output at strength "
        + f"{cal.strength:.2f} (the share of the notes within an octave of that range). Green: boosted, "
        "red: cut."
    )
    return (
        f"<h2>Calibration</h2><p>{html.escape(text)}</p>"
        f'<img id="calibration" alt="calibration" src="{calibration_plot(cal)}">'
    )


def acoustics_section(d: ReportData) -> str:
    if not d.acoustics:
        return (
            "<h2>B's acoustics</h2><p>None estimated: calibration was off, or this report was made from an "
            "existing output.</p>"
        )
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in d.acoustics.items())
    text = (
        "Estimated blindly from B: how fast its sound dies away in each band (the room), its noise floor and "
        "its stereo width. How much reverberation and noise to add was fitted by rendering B's own notes and "
        "keeping what brought them nearest to B; --dry leaves them out."
    )
    return f'<h2>B\'s acoustics</h2><p>{esc(text)}</p><table id="acoustics">{rows}</table>'


def write_report(d: ReportData, path: str | os.PathLike[str], force: bool = True) -> Path:
    """Render the report to one HTML file (atomically; without force, never over an existing file)."""
    from hybrid.outputs import atomic_path

    page = report_html(d)
    out = Path(path)
    with atomic_path(out, force) as tmp:
        tmp.write_text(page)
    return out


def report_html(d: ReportData) -> str:
    """The report: one self-contained HTML page (players, plots and tables inline, no outside requests)."""
    from importlib.metadata import version

    ns, ts, ratio = metrics_of(d)
    rows = [
        (
            "onset-only precision / recall / F1",
            f"{ns.onset_precision:.3f} / {ns.onset_recall:.3f} / {ns.onset_f1:.3f}",
        ),
        ("with offsets precision / recall / F1", f"{ns.precision:.3f} / {ns.recall:.3f} / {ns.f1:.3f}"),
        ("notes: A (after transforms) / output", f"{ns.n_reference} / {ns.n_estimate}"),
        ("tempo: A / output (BPM)", f"{d.a_tempo_bpm:.1f} / {d.output_tempo_bpm:.1f}"),
        ("tempo ratio (output / A)", f"{ratio:.3f}"),
        (
            "timbre distance output-A / output-B / A-B",
            f"{ts.output_to_a:.1f} / {ts.output_to_b:.1f} / {ts.a_to_b:.1f}",
        ),
        ("timbre score (0 = A, 1 = B)", f"{ts.score:.3f}"),
    ]
    settings = {**d.settings, "hybrid": version("hybrid"), "python": platform.python_version()}
    esc = html.escape
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    sets = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in settings.items())
    out_y, out_sr = d.out_full_band or (d.out_audio, SR)
    players = "".join(
        f'<figure><figcaption>{esc(label)}: {esc(p.name)}</figcaption><audio controls preload="metadata" src="{_audio_uri(y, sr)}"></audio></figure>'
        for label, p, y, sr in (
            ("A, rhythm", d.rhythm, d.a_audio, SR),
            ("B, timbre", d.timbre, d.b_audio, SR),
            ("output", d.output, out_y, out_sr),
        )
    )
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'">
<title>hybrid transfer: {esc(d.output.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
figure{{display:inline-block;margin:0 1em 1em 0}}img{{max-width:100%}}</style></head>
<body><h1>hybrid transfer</h1>
<p>{esc(d.rhythm.name)}'s notes and rhythm with {esc(d.timbre.name)}'s timbre &rarr; {esc(d.output.name)}</p>
<h2>Listen</h2>{players}
<h2>Metrics</h2><table id="metrics">{table}</table>
<h2>Notes</h2><img id="pianoroll" alt="piano roll" src="{piano_roll(d)}">
<h2>Timbre</h2><img id="timbre" alt="timbre position" src="{timbre_plot(ts)}">
<h2>Spectrograms</h2><img id="spectrograms" alt="spectrograms" src="{spectrograms(d)}">
<h2>Spectrum</h2><img id="spectrum" alt="average spectrum" src="{spectrum_plot(d)}">
{calibration_section(d)}
{acoustics_section(d)}
<h2>Settings</h2><table id="settings">{sets}</table>
</body></html>"""
    return doc
