"""The decoder's band above 8 kHz, two ways, side by side in one run: a 16 kHz decoder whose band is extended
(hybrid.calibration.bandwidth.extend_band) against a full-band 48 kHz decoder (its band matched to B's balance,
match_high_band, or as it renders).

For each timbre song B (the example guitar and trumpet, whose notes the note library would play: the decoder
is made to play them, as with `--no-library`, for a mix as B) and A's notes (the example Vibe Ace's, looped to
`--seconds`), it reports:
- the time to render the notes at 44.1 kHz, dry (render_timbre, the decoder's part of a transfer: the network,
  the synth, the correction, the band above 8 kHz and the resampling), median of `--repeats`, the checkpoints
  alternating;
- the output's level in the bands above 8 kHz against its 3.6-7.2 kHz octave (dB), beside B's own.

The timbre and note scores on real recordings are bench_real.py's (`--checkpoint`).

Run:  .venv/bin/python benchmarks/bench_full_band.py --full-band DIR [--narrow DIR] [--seconds 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid.audio import load_audio  # noqa: E402
from hybrid.calibration import fitted as fitted_module  # noqa: E402
from hybrid.calibration.bandwidth import EDGES_HZ, measure_high_band  # noqa: E402
from hybrid.constants import OUTPUT_SAMPLE_RATE_HZ  # noqa: E402
from hybrid.neural.renderer import Renderer  # noqa: E402
from hybrid.notes import Note, NoteSequence  # noqa: E402
from hybrid.pipeline import Model  # noqa: E402
from hybrid.transcription import Transcriber, transcribe  # noqa: E402

B_SONGS = [ROOT / "examples" / "guitar.wav", ROOT / "examples" / "trumpet.ogg"]
A_SONG = ROOT / "examples" / "vibe_ace.ogg"


def looped(notes: NoteSequence, span_s: float, seconds: float) -> NoteSequence:
    out = []
    k = 0
    while k * span_s < seconds:
        out += [
            Note(n.onset_s + k * span_s, n.offset_s + k * span_s, n.pitch_midi, n.velocity)
            for n in notes.notes
            if n.offset_s + k * span_s <= seconds
        ]
        k += 1
    return NoteSequence(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full-band", required=True, help="a full-band (48 kHz) checkpoint directory")
    ap.add_argument("--narrow", default=None, help="the 16 kHz checkpoint (default: the shipped one)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tr = Transcriber()
    a = transcribe(A_SONG, transcriber=tr)
    notes = looped(a.notes, a.notes.end_s, args.seconds)
    narrow, full = (
        Model(Renderer.load(args.narrow, "cpu"), tr),
        Model(Renderer.load(args.full_band, "cpu"), tr),
    )
    rows = {  # the decoder, and whether a full-band one's band is matched to B
        "16 kHz decoder, band extended": (narrow, True),
        "48 kHz decoder, band matched to B": (full, True),
        "48 kHz decoder, as it renders": (full, False),
    }
    print(
        f"A: {len(notes.notes)} notes over {args.seconds:g} s (the example Vibe Ace's, looped); "
        f"rendered at {OUTPUT_SAMPLE_RATE_HZ} Hz, dry\n"
    )
    bands = " | ".join(
        f"{lo / 1000:g}-{hi / 1000:g} kHz" for lo, hi in zip(EDGES_HZ[:-1], EDGES_HZ[1:], strict=True)
    )
    print(f"| B | decoder | render s (median of {args.repeats}) | {bands} |")
    print("|---|---|---|" + "---|" * (len(EDGES_HZ) - 1))
    for b_path in B_SONGS:
        b, sr = load_audio(b_path)
        own = measure_high_band(b if b.ndim == 1 else b.mean(axis=1), sr)
        fits = {}
        for model, _ in rows.values():
            if id(model) not in fits:
                fits[id(model)] = model.fit_timbre(b, sr, library=False)
        times: dict[str, list[float]] = {name: [] for name in rows}
        outs = {}
        for _ in range(args.repeats):
            for name, (model, match) in rows.items():
                fitted_module.MATCH_HIGH_BAND = match
                timbre = fits[id(model)]
                t0 = time.perf_counter()
                outs[name] = fitted_module.render_timbre(
                    model.renderer, notes, timbre, OUTPUT_SAMPLE_RATE_HZ, acoustics=False
                )
                times[name].append(time.perf_counter() - t0)
        fitted_module.MATCH_HIGH_BAND = True
        assert own is not None
        print(f"| {b_path.name} (its own) | | | " + " | ".join(f"{g:.1f}" for g in own.gains_db) + " |")
        for name in rows:
            got = measure_high_band(outs[name], OUTPUT_SAMPLE_RATE_HZ)
            levels = " | ".join(f"{g:.1f}" for g in got.gains_db) if got else "-"
            print(f"| {b_path.name} | {name} | {np.median(times[name]):.2f} | {levels} |")


if __name__ == "__main__":
    main()
