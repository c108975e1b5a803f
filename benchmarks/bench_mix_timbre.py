"""B as a mix: is a timbre song with drums better fitted as it is, or less its percussive part
(`--timbre-drums drop`)?

Timbre songs (B), mixes with drums: the example Vibe Ace (a real jazz combo, 61 s), and, when
../shared/data/notes/slakh and the FluidR3 SoundFont are there, the three 20 s Slakh excerpts of bench_mixes.py
(drums and ten pitched parts, rendered with FluidR3 GM). Rhythm songs (A): bench_real.py's four real phrases
(at most 8 s each). Each pair is transferred with B fitted as it is and fitted less its drums, side by side:
note F1 of the output (re-transcribed) against A's transcription, and the timbre score
d(out, A) / (d(out, A) + d(out, B)) at 16 kHz against the whole of B, drums included, as `hybrid evaluate`
scores it.

Run:  .venv/bin/python benchmarks/bench_mix_timbre.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hybrid.audio import load_audio, mono, resample  # noqa: E402
from hybrid.constants import SAMPLE_RATE_HZ  # noqa: E402
from hybrid.metrics import note_scores, timbre_scores  # noqa: E402

SR = SAMPLE_RATE_HZ
MODES = ("keep", "drop")


def main() -> None:
    from bench_mixes import SLAKH, slakh_mixes
    from bench_real import A_MAX_S, A_SONGS

    from hybrid.pipeline import TransferOptions, load_model, transfer_audio
    from hybrid.transcription import transcribe_audio

    model = load_model(device="cpu")
    bs = [("Vibe Ace (real)", *load_audio(ROOT / "examples" / "vibe_ace.ogg", mono=False))]
    if SLAKH.exists():
        bs += [(name, y, rate) for name, y, rate, _ in slakh_mixes(True)]
    songs = []
    for p in [p for p in A_SONGS if p.exists()]:
        a, _ = load_audio(p, sample_rate_hz=SR)
        a = a[: int(A_MAX_S * SR)]
        songs.append((p.name, a, transcribe_audio(a, SR, transcriber=model.transcriber).notes))
    rows = []
    for b_name, b, rate in bs:
        b16 = resample(mono(b), rate, SR)
        for mode in MODES:
            timbre = model.fit_timbre(b, rate, drums=mode)
            for a_name, a, notes in songs:
                result = transfer_audio(a, SR, timbre, model, TransferOptions(score=False))
                y = resample(mono(result.audio), result.sample_rate_hz, SR)
                est = transcribe_audio(y, SR, transcriber=model.transcriber, with_tempo=False).notes
                ts = timbre_scores(y, a, b16)
                f1 = note_scores(notes, est).onset_f1
                rows.append((b_name, a_name, mode, f1, ts.score, ts.output_to_b < ts.output_to_a))
                print(f"{b_name} / {a_name} / {mode}: F1 {f1:.3f}, timbre {ts.score:.3f}", file=sys.stderr)
    print("| B | A | B fitted | note F1 | timbre score (0 A, 1 B) |")
    print("|---|---|---|---|---|")
    for b_name, a_name, mode, f1, score, _ in rows:
        print(
            f"| {b_name} | {a_name} | {'less its drums' if mode == 'drop' else 'as it is'} | {f1:.3f} | {score:.3f} |"
        )
    print()
    print("| B fitted | note F1 | timbre score | output nearer B |")
    print("|---|---|---|---|")
    for mode in MODES:
        sel = [r for r in rows if r[2] == mode]
        print(
            f"| {'less its drums (--timbre-drums drop)' if mode == 'drop' else 'as it is'} | "
            f"{np.mean([r[3] for r in sel]):.3f} | {np.mean([r[4] for r in sel]):.3f} | "
            f"{sum(r[5] for r in sel)}/{len(sel)} |"
        )


if __name__ == "__main__":
    main()
