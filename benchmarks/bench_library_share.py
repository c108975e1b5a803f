"""How much of B's note library to mix under the decoder where the decoder plays: one pair, each share.

A = the example trumpet phrase, B = the example Vibe Ace mix (a pair where the note check gives the song to
the decoder: the mix's library loses the trumpet's notes). The song is rendered by the decoder as the note
check left it and by the library (both in B's room as hybrid writes them), the library brought to the
decoder's loudness and mixed under it at each share (hybrid.calibration.fitted.blend_under); each mix is
scored as `hybrid evaluate` scores (at 16 kHz: note F1 of the re-transcription against A's transcription,
the MFCC timbre score).

Run:  .venv/bin/python benchmarks/bench_library_share.py [--shares 0,0.08,0.15,0.3,0.5,1]
          [--rhythm examples/trumpet.ogg] [--timbre examples/vibe_ace.ogg]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid.audio import load_audio, loudness_normalize, mono, resample  # noqa: E402
from hybrid.calibration import render_timbre  # noqa: E402
from hybrid.calibration.fitted import blend_under  # noqa: E402
from hybrid.constants import OUTPUT_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ  # noqa: E402
from hybrid.metrics import note_scores, timbre_scores  # noqa: E402
from hybrid.pipeline import load_model, render_notes  # noqa: E402
from hybrid.transcription import BP_SAMPLE_RATE_HZ, transcribe_audio  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shares", default="0,0.08,0.15,0.3,0.5,1")
    ap.add_argument("--rhythm", default=str(ROOT / "examples" / "trumpet.ogg"))
    ap.add_argument("--timbre", default=str(ROOT / "examples" / "vibe_ace.ogg"))
    args = ap.parse_args()
    model = load_model()
    a22, _ = load_audio(args.rhythm, sample_rate_hz=BP_SAMPLE_RATE_HZ)
    b, sr_b = load_audio(args.timbre, mono=False)
    notes = transcribe_audio(a22, BP_SAMPLE_RATE_HZ, transcriber=model.transcriber).notes
    fitted = model.fit_timbre(b, sr_b, True, 0, defer_decoder=True)
    _, checked = render_notes(notes, fitted, model, 0, OUTPUT_SAMPLE_RATE_HZ)
    if fitted.library is None or checked.plays_library:
        raise SystemExit("the note check lets B's library play this pair: nothing to mix under the decoder")
    sr = OUTPUT_SAMPLE_RATE_HZ
    decoder = mono(render_timbre(model.renderer, notes, replace(checked, library_share=0.0), sr))
    library = mono(render_timbre(model.renderer, notes, replace(checked, use_library=True), sr))
    a = resample(a22, BP_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ)
    b16 = resample(mono(b), sr_b, SAMPLE_RATE_HZ)
    print(f"A = {Path(args.rhythm).name}, B = {Path(args.timbre).name}; the note check chose share")
    print(f"{checked.library_share} ({checked.player()})\n")
    print("| share of the library under the decoder | timbre score (0 A, 1 B) | note F1 |")
    print("|---|---|---|")
    for share in (float(x) for x in args.shares.split(",")):
        y = decoder.copy() if share < 1.0 else library.copy()
        if 0.0 < share < 1.0:
            y = blend_under(y, library, share)
        out = resample(loudness_normalize(y), sr, SAMPLE_RATE_HZ)
        f1 = note_scores(
            notes, transcribe_audio(out, SAMPLE_RATE_HZ, transcriber=model.transcriber).notes
        ).onset_f1
        print(f"| {share:g} | {timbre_scores(out, a, b16).score:.3f} | {f1:.3f} |")


if __name__ == "__main__":
    main()
