"""Batch evaluation of a system (hybrid or a baseline) on rhythm/timbre pairs, with a Markdown table.

Systems:
- hybrid: the transfer itself.
- hybrid-uncalibrated: the transfer without the calibration by resynthesis (the decoder's embedding alone).
- copy-a: the output is A (keeps every note, none of B's timbre): the notes ceiling.
- copy-b: the output is B cut to A's length (B's timbre, none of A's notes): the timbre ceiling.
- nearest-gm: A's transcription played by the General MIDI program of FluidR3_GM nearest to B by MFCC
  statistics: the simplest alternative to a learned renderer.
- b-sampler: A's transcription played by a crude sampler made of B's own transcribed notes (hybrid.baselines).

hybrid renders at OUTPUT_SAMPLE_RATE_HZ and writes that; every system is scored at SR.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.constants import FLUIDR3_GM, OUTPUT_SAMPLE_RATE_HZ
from hybrid.constants import SAMPLE_RATE_HZ as SR
from hybrid.errors import HybridError

SYSTEMS = ("hybrid", "hybrid-uncalibrated", "copy-a", "copy-b", "nearest-gm", "b-sampler")


@dataclass(frozen=True)
class Pair:
    rhythm: Path
    timbre: Path
    notes: Path | None  # ground-truth notes of the rhythm song (MIDI or note list in Hz), optional


def read_pairs(csv_path: str | os.PathLike[str]) -> list[Pair]:
    """CSV with a header: rhythm,timbre[,notes]; relative paths are relative to the CSV's folder."""
    p = Path(csv_path)
    if not p.exists():
        raise HybridError(f"{p}: file not found")
    base = p.parent
    pairs = []
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, strict=True)
            if reader.fieldnames is None or not {"rhythm", "timbre"} <= set(reader.fieldnames):
                raise HybridError(f"{p}: needs a header with the columns rhythm,timbre[,notes]")
            for row in reader:
                rhythm, timbre = (row.get("rhythm") or "").strip(), (row.get("timbre") or "").strip()
                if not rhythm or not timbre:
                    raise HybridError(f"{p}, line {reader.line_num}: a row needs a rhythm and a timbre file")
                notes = (row.get("notes") or "").strip()
                pairs.append(Pair(base / rhythm, base / timbre, base / notes if notes else None))
    except csv.Error:
        raise HybridError(f"{p}: not a readable CSV file (check the quotes and commas)") from None
    except UnicodeDecodeError:
        raise HybridError(f"{p}: not a readable CSV file (not UTF-8 text)") from None
    for i, pair in enumerate(pairs, 2):
        for path in (pair.rhythm, pair.timbre, pair.notes):
            if path is not None and not path.is_file():
                # a quoted name may hold a line break: quoted, so that the message stays one line
                shown = str(path) if str(path).isprintable() else repr(str(path))
                raise HybridError(f"{shown}: file not found (named on line {i} of {p})")
    if not pairs:
        raise HybridError(f"{p}: no pairs")
    return pairs


class Systems:
    """Models shared by every pair of a run (loaded once)."""

    def __init__(self, names: list[str], checkpoint: str | None, seed: int) -> None:
        from hybrid.neural.renderer import Renderer
        from hybrid.pipeline import Model
        from hybrid.transcription import Transcriber

        self.transcriber = Transcriber()
        self.seed = seed
        self.checkpoint = checkpoint
        self.model: Model | None = None
        self.lookup = None
        if "hybrid" in names or "hybrid-uncalibrated" in names:
            self.model = Model(Renderer.load(checkpoint, "auto"), self.transcriber)
        if "nearest-gm" in names:
            from hybrid.baselines import GMLookup

            if not FLUIDR3_GM.exists():
                raise HybridError(f"{FLUIDR3_GM}: missing (sudo apt-get install fluid-soundfont-gm)")
            self.lookup = GMLookup.build(FLUIDR3_GM)


def run_pair(system: str, pair: Pair, systems: Systems, out_dir: Path, index: int) -> dict[str, Any]:
    from hybrid.audio import load_audio, loudness_normalize, mono, resample, save_audio
    from hybrid.metrics import note_scores, tempo_ratio, timbre_scores
    from hybrid.notes import load_notes
    from hybrid.pipeline import render_notes
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, transcribe_audio

    row: dict[str, Any] = {"pair": index, "rhythm": pair.rhythm.name, "timbre": pair.timbre.name}
    t0 = time.perf_counter()
    a22, _ = load_audio(pair.rhythm, sample_rate_hz=BP_SAMPLE_RATE_HZ)
    b_native, sr_b = load_audio(pair.timbre, mono=False)  # a stereo B gives a stereo output, as in transfer
    b = resample(mono(b_native), sr_b, SR)
    a = resample(a22, BP_SAMPLE_RATE_HZ, SR)
    out_sr = SR
    ta = transcribe_audio(a22, BP_SAMPLE_RATE_HZ, transcriber=systems.transcriber)
    truth = load_notes(pair.notes) if pair.notes else None
    if system in ("hybrid", "hybrid-uncalibrated"):
        model = systems.model
        assert model is not None
        # fitted as a transfer fits B: the decoder's calibration when the note check finds that it plays
        fitted = model.fit_timbre(b_native, sr_b, system == "hybrid", systems.seed, defer_decoder=True)
        out_sr = OUTPUT_SAMPLE_RATE_HZ
        out, _ = render_notes(ta.notes, fitted, model, systems.seed, out_sr)
    elif system == "copy-a":
        out = a
    elif system == "copy-b":
        reps = int(np.ceil(len(a) / len(b)))
        out = np.tile(b, reps)[: len(a)]
    elif system == "nearest-gm":
        lk = systems.lookup
        prog = lk.nearest(b)  # type: ignore[union-attr]
        row["gm_program"] = prog
        out = loudness_normalize(lk.render(ta.notes, prog))  # type: ignore[union-attr]
    elif system == "b-sampler":
        from hybrid.baselines import BSampler

        out = loudness_normalize(BSampler.build(b, systems.transcriber).render(ta.notes))
    else:
        raise HybridError(f"unknown system {system!r} (use {', '.join(SYSTEMS)})")
    wall = time.perf_counter() - t0
    save_audio(out_dir / f"pair{index:02d}.wav", out, out_sr)
    out = resample(mono(out), out_sr, SR)  # scored as every system is, at SR
    to = transcribe_audio(out, SR, transcriber=systems.transcriber)
    reference = truth if truth is not None else ta.notes
    row["reference"] = "ground truth" if truth is not None else "A's transcription"
    row["note_f1"] = note_scores(reference, to.notes).onset_f1
    row["a_transcription_f1"] = note_scores(truth, ta.notes).onset_f1 if truth is not None else None
    row["tempo_ratio"] = tempo_ratio(ta.tempo_bpm, to.tempo_bpm)
    ts = timbre_scores(out, a, b)
    row.update(
        {
            "timbre_out_a": ts.output_to_a,
            "timbre_out_b": ts.output_to_b,
            "timbre_a_b": ts.a_to_b,
            "timbre_score": ts.score,
            "nearer_b": ts.nearer_b,
        }
    )
    row["wall_s"] = wall
    row["real_time_factor"] = wall / (len(a) / SR)
    return row


def run_pair_or_fail(
    system: str, pair: Pair, systems: Systems | Exception, out_dir: Path, index: int
) -> dict[str, Any]:
    """run_pair, with a failure (or models that could not be loaded) as a row with its error, not a crash."""
    try:
        if isinstance(systems, Exception):
            raise systems
        return run_pair(system, pair, systems, out_dir, index)
    except Exception as exc:
        return {
            "pair": index,
            "rhythm": pair.rhythm.name,
            "timbre": pair.timbre.name,
            "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        }


_WORKER_SYSTEMS: Systems | Exception | None = None  # each worker process loads the models once


def _init_worker(system: str, checkpoint: str | None, seed: int) -> None:
    global _WORKER_SYSTEMS
    try:
        _WORKER_SYSTEMS = Systems([system], checkpoint, seed)
    except Exception as exc:
        _WORKER_SYSTEMS = exc


def _worker(args: tuple[str, Pair, str, int]) -> dict[str, Any]:
    system, pair, out_dir, index = args
    assert _WORKER_SYSTEMS is not None
    return run_pair_or_fail(system, pair, _WORKER_SYSTEMS, Path(out_dir), index)


COLUMNS = (
    ("note_f1", "note F1"),
    ("a_transcription_f1", "A's transcription F1 (ceiling)"),
    ("tempo_ratio", "tempo ratio"),
    ("timbre_out_a", "timbre d(out, A)"),
    ("timbre_out_b", "timbre d(out, B)"),
    ("timbre_score", "timbre score (0 A, 1 B)"),
    ("wall_s", "wall s"),
    ("real_time_factor", "RTF"),
)


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    out: dict[str, Any] = {
        "pair": "mean",
        "rhythm": f"{len(ok)} ok",
        "timbre": f"{len(rows) - len(ok)} failed",
    }
    for key, _ in COLUMNS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        out[key] = float(np.mean(vals)) if vals else None
    return out


def markdown(system: str, rows: list[dict[str, Any]]) -> str:
    head = "| pair | rhythm | timbre | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [f"### {system}", "", head, "|" + "---|" * (3 + len(COLUMNS))]
    for r in [*rows, mean_row(rows)]:
        if "error" in r:
            lines.append(
                f"| {r['pair']} | {r['rhythm']} | {r['timbre']} | failed: {r['error']} |"
                + " |" * (len(COLUMNS) - 1)
            )
            continue
        cells = ["" if r.get(k) is None else f"{r[k]:.3f}" for k, _ in COLUMNS]
        lines.append(f"| {r['pair']} | {r['rhythm']} | {r['timbre']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary(results_dir: Path) -> str:
    """Every system evaluated in results_dir, mean rows side by side: the notes-vs-timbre trade-off."""
    lines = [
        "| system | note F1 | tempo ratio | timbre score (0 A, 1 B) | output nearer B | RTF |",
        "|---|---|---|---|---|---|",
    ]
    for name in [*SYSTEMS, *sorted(p.stem for p in results_dir.glob("*.json") if p.stem not in SYSTEMS)]:
        f = results_dir / f"{name}.json"
        if not f.exists():
            continue
        rows = [r for r in json.loads(f.read_text())["rows"] if "error" not in r]
        m = mean_row(rows)
        nearer = sum(bool(r["nearer_b"]) for r in rows)
        fmt = lambda x: "" if x is None else f"{x:.3f}"  # noqa: E731
        lines.append(
            f"| {name} | {fmt(m['note_f1'])} | {fmt(m['tempo_ratio'])} | {fmt(m['timbre_score'])} | {nearer}/{len(rows)} | {fmt(m['real_time_factor'])} |"
        )
    return "\n".join(lines) + "\n"


def tradeoff_plot(results_dir: Path) -> Path | None:
    """note F1 (keeping A's notes) against timbre score (reaching B's timbre), one point per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for f in sorted(results_dir.glob("*.json")):
        rows = [r for r in json.loads(f.read_text())["rows"] if "error" not in r]
        if rows:
            m = mean_row(rows)
            points.append((f.stem, m["timbre_score"], m["note_f1"]))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, x, y in points:
        ax.scatter([x], [y], s=60)
        ax.annotate(name, (x, y), (6, 4), textcoords="offset points")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("timbre score (0 = sounds like A, 1 = like B)")
    ax.set_ylabel("note F1 against A's notes")
    ax.set_title("keeping A's notes vs reaching B's timbre", fontsize=10)
    ax.grid(alpha=0.3)
    out = results_dir / "tradeoff.png"
    fig.savefig(out, dpi=96, bbox_inches="tight")
    plt.close(fig)
    return out


def evaluate(
    pairs_csv: str | os.PathLike[str],
    out: str | os.PathLike[str],
    systems: list[str],
    checkpoint: str | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: Any = None,
    force: bool = False,
) -> Path:
    """Run each system on every pair; write OUT/NAME.json, OUT/NAME.md, OUT/summary.md and OUT/tradeoff.png
    (all of them or none; an existing OUT with anything in it is replaced only with force)."""
    from hybrid.outputs import Outputs

    for s in systems:
        if s not in SYSTEMS:
            raise HybridError(f"unknown system {s!r} (use {', '.join(SYSTEMS)})")
    pairs = read_pairs(pairs_csv)
    inputs = [p for pair in pairs for p in (pair.rhythm, pair.timbre, pair.notes) if p is not None]
    outs = Outputs([pairs_csv, *inputs], force)
    out_dir = outs.add(out, folder=True)
    assert out_dir is not None
    inside = next(
        (p for p in [Path(pairs_csv), *inputs] if p.resolve().is_relative_to(out_dir.resolve())), None
    )
    if inside is not None:
        raise HybridError(f"{inside}: an input of the pairs lies in the results folder; choose another --out")
    # the results are written into a temporary folder beside OUT, which becomes OUT when all are done
    with outs.writing() as tmp:
        _run_systems(pairs, pairs_csv, tmp(out_dir), systems, checkpoint, seed, workers, progress)
    return out_dir


def _run_systems(
    pairs: list[Pair],
    pairs_csv: str | os.PathLike[str],
    out_dir: Path,
    systems: list[str],
    checkpoint: str | None,
    seed: int,
    workers: int,
    progress: Any,
) -> None:
    from hybrid.outputs import atomic_path

    for system in systems:
        audio_dir = out_dir / system
        audio_dir.mkdir(exist_ok=True)
        rows: list[dict[str, Any]] = []
        if workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            jobs = [(system, p, str(audio_dir), i) for i, p in enumerate(pairs)]
            with ProcessPoolExecutor(
                workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(system, checkpoint, seed),
            ) as pool:
                rows = list(pool.map(_worker, jobs))
        else:
            shared = Systems([system], checkpoint, seed)
            for i, p in enumerate(pairs):
                rows.append(run_pair_or_fail(system, p, shared, audio_dir, i))
                if callable(progress):
                    progress(system, i + 1, len(pairs))
        with atomic_path(out_dir / f"{system}.json") as tmp:
            tmp.write_text(
                json.dumps(
                    {"system": system, "pairs": str(pairs_csv), "rows": rows, "mean": mean_row(rows)},
                    indent=1,
                )
            )
        with atomic_path(out_dir / f"{system}.md") as tmp:
            tmp.write_text(markdown(system, rows))
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text(summary(out_dir))
    tradeoff_plot(out_dir)
