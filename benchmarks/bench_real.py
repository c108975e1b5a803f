"""Timbre on real recordings: does the output sound like B's instrument, and does it keep A's notes?

Needs the development machines' set of licensed real solo recordings (not in the repository):
    ../shared/data/instruments/<instrument>/*.wav with index.csv
Every instrument with two or more recordings takes part: its first recording (in index.csv's order) is the
timbre song B, its second is the instrument's "truth" on other notes. Each A (real phrases: the example trumpet,
the EGSet12 guitar, a sung phrase, a piano clip) is played with each B.

Reported per system, in one run:
- note F1: the output re-transcribed against A's transcription (onset only, mir_eval's 50 ms);
- timbre score: d(out, A) / (d(out, A) + d(out, B)) with MFCC statistics (hybrid.metrics; 0 = A, 1 = B),
  analysed at 16 kHz as `hybrid evaluate` scores, and at 22.05 kHz (the mel bands then reach 11 kHz: the
  baselines render at 16 kHz, hybrid at 44.1 kHz);
- identification: the output's nearest truth recording by MFCC and spectral statistics (standardised over the
  truths), top-1 / top-3 against the instrument of B; chance is 1/n and 3/n for n instruments.

Run:  .venv/bin/python benchmarks/bench_real.py [--systems hybrid,nearest-gm,b-sampler,copy-a,copy-b]
          [--instruments DIR] [--max-a 4] [--max-instruments 0] [--json-out FILE] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid.audio import load_audio, loudness_normalize, resample  # noqa: E402
from hybrid.constants import FLUIDR3_GM, OUTPUT_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ  # noqa: E402
from hybrid.metrics import note_scores, spectral_stats, standardized_distances, timbre_scores  # noqa: E402
from hybrid.transcription import Transcriber, transcribe_audio  # noqa: E402

SR = SAMPLE_RATE_HZ
WIDE = 22_050  # the second analysis rate of the timbre score
A_SONGS = [  # real phrases, each at most A_MAX_S long
    ROOT / "examples" / "trumpet.ogg",
    ROOT / "tests" / "data" / "egset12_guitar_01.wav",
    ROOT.parent / "shared" / "data" / "recordings" / "vocadito" / "vocadito_10.wav",
    ROOT / "tests" / "data" / "stereo_sample.wav",
]
A_MAX_S = 8.0
# hybrid as shipped (the note library where B has clean notes, else the decoder; B's fitted room); hybrid-dry:
# the same without B's acoustics (--dry); hybrid-decoder: the decoder always (--no-library), as hybrid
# rendered before the note library, with B's room; hybrid-decoder-dry: that, dry; hybrid-decoder-narrow: that,
# without the band above 8 kHz (hybrid.calibration.bandwidth)
HYBRIDS = ("hybrid", "hybrid-dry", "hybrid-decoder", "hybrid-decoder-dry", "hybrid-decoder-narrow")
ALL_SYSTEMS = (*HYBRIDS, "nearest-gm", "b-sampler", "copy-a", "copy-b")


def instruments(folder: Path, limit: int) -> list[tuple[str, Path, Path]]:
    """(instrument, timbre song B, truth) for every instrument with two or more recordings."""
    by: dict[str, list[Path]] = {}
    with open(folder / "index.csv", newline="") as f:
        for row in csv.DictReader(f):
            by.setdefault(row["instrument"], []).append(folder / row["file"])
    chosen = [(name, files[0], files[1]) for name, files in by.items() if len(files) >= 2]
    return chosen[:limit] if limit > 0 else chosen


class Systems:
    def __init__(self, names: list[str], transcriber: Transcriber, checkpoint: str | None = None) -> None:
        self.names, self.tr = names, transcriber
        self.model = self.lookup = None
        self.played_from_library = 0
        # who played the last hybrid rendering (library, decoder, decoder (check)), and whether the note check
        # left B's room out
        self.player = ""
        if any(n in HYBRIDS for n in names):
            from hybrid.neural.renderer import Renderer
            from hybrid.pipeline import Model

            self.model = Model(Renderer.load(checkpoint, "cpu"), transcriber)
        if "nearest-gm" in names:
            from hybrid.baselines import GMLookup

            self.lookup = GMLookup.build(FLUIDR3_GM)

    def prepare(self, name: str, b: np.ndarray, b_native: tuple[np.ndarray, int]) -> object:
        """What a system keeps of B (fitted once per B)."""
        if name in HYBRIDS:
            from dataclasses import replace

            fitted = self.model.fit_timbre(  # type: ignore[union-attr]
                *b_native,
                library="decoder" not in name,
                defer_decoder=True,  # as a transfer fits B
            )
            return replace(fitted, high_band=None) if name.endswith("-narrow") else fitted
        if name == "nearest-gm":
            return self.lookup.nearest(b)  # type: ignore[union-attr]
        if name == "b-sampler":
            from hybrid.baselines import BSampler

            return BSampler.build(b, self.tr)
        return resample(*b_native, WIDE)

    def render(self, name: str, kept: object, a_wide: np.ndarray, notes: object) -> tuple[np.ndarray, int]:
        """The output and its rate."""
        if name in HYBRIDS:
            from hybrid.audio import mono
            from hybrid.pipeline import render_notes

            y, rendered = render_notes(
                notes,  # type: ignore[arg-type]
                kept,  # type: ignore[arg-type]
                self.model,  # type: ignore[arg-type]
                sample_rate_hz=OUTPUT_SAMPLE_RATE_HZ,
                acoustics=not name.endswith("-dry"),
            )
            self.played_from_library += rendered.plays_library
            played = (
                "library"
                if rendered.plays_library
                else "decoder"
                if rendered.library is None
                else f"decoder (check), {rendered.library_share:.0%} of the library under it"
                if rendered.blends_library
                else "decoder (check)"
            )
            self.player = played + ("" if rendered.use_room else ", room left out")
            return mono(y), OUTPUT_SAMPLE_RATE_HZ
        if name == "nearest-gm":
            return loudness_normalize(self.lookup.render(notes, kept)), SR  # type: ignore[union-attr, arg-type]
        if name == "b-sampler":
            return loudness_normalize(kept.render(notes)), SR  # type: ignore[attr-defined]
        if name == "copy-a":
            return a_wide, WIDE
        b = np.asarray(kept)  # B at WIDE (prepare)
        return np.tile(b, int(np.ceil(len(a_wide) / len(b))))[: len(a_wide)], WIDE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instruments", default=str(ROOT.parent / "shared" / "data" / "instruments"))
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    ap.add_argument("--max-a", type=int, default=len(A_SONGS))
    ap.add_argument("--max-instruments", type=int, default=0, help="0: all with two or more recordings")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--checkpoint", default=None, help="the hybrids' model (default: the shipped one)")
    args = ap.parse_args()
    names = [s for s in args.systems.split(",") if s]
    tr = Transcriber()
    systems = Systems(names, tr, args.checkpoint)
    insts = instruments(Path(args.instruments), args.max_instruments)
    songs = []
    for p in [p for p in A_SONGS if p.exists()][: args.max_a]:
        a, _ = load_audio(p, sample_rate_hz=SR)
        a = a[: int(A_MAX_S * SR)]
        a_wide = load_audio(p, sample_rate_hz=WIDE)[0][: int(A_MAX_S * WIDE)]
        songs.append((p.name, a, a_wide, transcribe_audio(a, SR, transcriber=tr).notes))
    natives = [load_audio(b) for _, b, _ in insts]
    bs = [resample(y, sr, SR) for y, sr in natives]
    bs_wide = [resample(y, sr, WIDE) for y, sr in natives]
    truths = np.stack([spectral_stats(load_audio(t, sample_rate_hz=SR)[0]) for _, _, t in insts])
    n = len(insts)
    results: dict[str, object] = {
        "instruments": [i for i, _, _ in insts],
        "a_songs": [s[0] for s in songs],
    }
    table = []
    for name in names:
        t0 = time.perf_counter()
        rows = []
        systems.played_from_library = 0
        for j, b in enumerate(bs):
            kept = systems.prepare(name, b, natives[j])
            for song, a, a_wide, notes in songs:
                out, rate = systems.render(name, kept, a_wide, notes)
                y = resample(out, rate, SR)  # scored at SR, as `hybrid evaluate` scores
                est = transcribe_audio(y, SR, transcriber=tr, with_tempo=False).notes
                ts = timbre_scores(y, a, b)
                wide = timbre_scores(resample(out, rate, WIDE), a_wide, bs_wide[j], WIDE, WIDE)
                d = standardized_distances(spectral_stats(y)[None], truths)[0]
                rank = int(np.sum(d < d[j]))
                rows.append(
                    {
                        "instrument": insts[j][0],
                        "a": song,
                        "note_f1": note_scores(notes, est).onset_f1,
                        "timbre_score": ts.score,
                        "timbre_score_22k": wide.score,
                        "nearer_b": ts.nearer_b,
                        "rank": rank,
                        "player": systems.player if name in HYBRIDS else "",
                    }
                )
        wall = time.perf_counter() - t0
        summary = {
            "note_f1": float(np.mean([r["note_f1"] for r in rows])),
            "timbre_score": float(np.mean([r["timbre_score"] for r in rows])),
            "timbre_score_22k": float(np.mean([r["timbre_score_22k"] for r in rows])),
            "nearer_b": int(sum(r["nearer_b"] for r in rows)),
            "top1": float(np.mean([r["rank"] == 0 for r in rows])),
            "top3": float(np.mean([r["rank"] < 3 for r in rows])),
            "pairs": len(rows),
            "wall_s": wall,
            "played_from_library": systems.played_from_library,
        }
        results[name] = {"summary": summary, "rows": rows}
        table.append((name, summary))
        print(f"{name}: {summary}", file=sys.stderr)
    print(
        f"\n{n} instruments x {len(songs)} real phrases as A; identification chance {1 / n:.2f} top-1, "
        f"{min(1.0, 3 / n):.2f} top-3\n"
    )
    print(
        "| system | note F1 | timbre score (0 A, 1 B) | at 22.05 kHz | output nearer B | identification top-1 / top-3 "
        "| s per pair |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, s in table:
        print(
            f"| {name} | {s['note_f1']:.3f} | {s['timbre_score']:.3f} | {s['timbre_score_22k']:.3f} | "
            f"{s['nearer_b']}/{s['pairs']} | "
            f"{s['top1']:.2f} / {s['top3']:.2f} | {s['wall_s'] / s['pairs']:.2f} |"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
