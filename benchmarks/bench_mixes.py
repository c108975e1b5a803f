"""Whole songs: does keeping A's drums keep its groove, and does transcribing A less its drums find its notes?

Inputs (A), mixes with drums:
- three 20 s excerpts (at 30, 90 and 150 s) of Slakh2100 Track00001's full arrangement (`all_src.mid`: drums and
  ten pitched parts; CC BY 4.0), rendered with FluidR3 GM (drums on the GM kit); their pitched notes are the
  ground truth. Needs ../shared/data/notes/slakh (not in the repository) and the FluidR3 SoundFont;
- the example Vibe Ace (a real jazz combo with drums, 61 s; no ground truth).
B = the example trumpet phrase. Each A is transferred with `--drums drop` and `--drums keep`, side by side:

- groove: onset F1 of the output against A's own onsets (librosa's onset detector on both, drums included;
  mir_eval's 50 ms window);
- notes of A: note F1 (onset only) of the transcription hybrid plays (of A, or of A less its drums) against the
  ground truth's pitched notes;
- notes kept: note F1 of the output's notes (re-transcribed, without the drums) against the notes rendered;
- timbre score: d(out, A) / (d(out, A) + d(out, B)) at 16 kHz.

Run:  .venv/bin/python benchmarks/bench_mixes.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid.audio import load_audio, mono, resample  # noqa: E402
from hybrid.constants import FLUIDR3_GM, SAMPLE_RATE_HZ  # noqa: E402
from hybrid.metrics import note_scores, timbre_scores  # noqa: E402
from hybrid.notes import Note, NoteSequence  # noqa: E402

SLAKH = ROOT.parent / "shared" / "data" / "notes" / "slakh" / "slakh2100_flac_redux" / "train" / "Track00001"
EXCERPTS_S = (30.0, 90.0, 150.0)
EXCERPT_LEN_S = 20.0
RATE = 22_050


def slakh_mixes(drums: bool = True) -> list[tuple[str, np.ndarray, int, NoteSequence | None]]:
    """(name, audio, rate, pitched ground truth) of the rendered Slakh excerpts (without the drum track when
    `drums` is False)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(SLAKH / "all_src.mid"))
    out = []
    for t0 in EXCERPTS_S:
        t1 = t0 + EXCERPT_LEN_S
        ex = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        truth = []
        for inst in pm.instruments:
            if inst.is_drum and not drums:
                continue
            new = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum)
            for n in inst.notes:
                if t0 <= n.start < t1:
                    new.notes.append(pretty_midi.Note(n.velocity, n.pitch, n.start - t0, min(n.end, t1) - t0))
                    if not inst.is_drum:
                        truth.append(Note(n.start - t0, min(n.end, t1) - t0, float(n.pitch), n.velocity))
            ex.instruments.append(new)
        y = ex.fluidsynth(fs=RATE, synthesizer=str(FLUIDR3_GM))[: int(EXCERPT_LEN_S * RATE)]
        y = (0.5 * y / np.abs(y).max()).astype(np.float32)
        label = "" if drums else ", no drums"
        out.append((f"Slakh Track00001 at {t0:.0f} s{label}", y, RATE, NoteSequence(truth).sorted()))
    return out


def onsets_f1(a: np.ndarray, out: np.ndarray, rate: int) -> float:
    import librosa
    import mir_eval

    ref = librosa.onset.onset_detect(y=a, sr=rate, units="time")
    est = librosa.onset.onset_detect(y=out, sr=rate, units="time")
    return float(mir_eval.onset.f_measure(ref, est, window=0.05)[0])


def main() -> None:
    from hybrid.pipeline import TransferOptions, load_model, transcribe_rhythm, transfer_transcription

    model = load_model(device="cpu")
    b, sr_b = load_audio(ROOT / "examples" / "trumpet.ogg")
    timbre = model.fit_timbre(b, sr_b)
    b16 = resample(b, sr_b, SAMPLE_RATE_HZ)
    songs = slakh_mixes() if SLAKH.exists() else []
    vibe, sr_v = load_audio(ROOT / "examples" / "vibe_ace.ogg", sample_rate_hz=RATE)
    songs.append(("Vibe Ace (real)", vibe, sr_v, None))
    rows = []
    for name, a, rate, truth in songs:
        for drums in ("drop", "keep"):
            options = TransferOptions(drums=drums)
            t0 = time.perf_counter()
            song = transcribe_rhythm(a, rate, model, options)
            a_f1 = note_scores(truth, song.transcription.notes).onset_f1 if truth is not None else None
            result = transfer_transcription(song, timbre, model, options)
            wall = time.perf_counter() - t0
            out = resample(mono(result.audio), result.sample_rate_hz, rate)
            n = min(len(out), len(a))
            groove = onsets_f1(a[:n], out[:n], rate)
            ts = timbre_scores(resample(out, rate, SAMPLE_RATE_HZ), resample(a, rate, SAMPLE_RATE_HZ), b16)
            rows.append((name, f"{drums} ({result.drums})", groove, a_f1, result.onset_f1, ts.score, wall))
            print(
                f"{name} --drums {drums}: groove {groove:.3f}, notes of A {a_f1}, kept {result.onset_f1:.3f}",
                file=sys.stderr,
            )
    print(
        "| A | --drums | groove: onset F1 vs A | notes of A: note F1 vs truth | notes kept: note F1 | timbre score | s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, drums, groove, a_f1, kept, score, wall in rows:
        a_text = "-" if a_f1 is None else f"{a_f1:.3f}"
        print(f"| {name} | {drums} | {groove:.3f} | {a_text} | {kept:.3f} | {score:.3f} | {wall:.1f} |")
    for drums in ("drop", "keep"):
        sel = [r for r in rows if r[1].startswith(drums)]
        a_f1s = [r[3] for r in sel if r[3] is not None]
        print(
            f"| mean | {drums} | {np.mean([r[2] for r in sel]):.3f} | {np.mean(a_f1s) if a_f1s else float('nan'):.3f} | "
            f"{np.mean([r[4] for r in sel]):.3f} | {np.mean([r[5] for r in sel]):.3f} | {np.mean([r[6] for r in sel]):.1f} |"
        )


if __name__ == "__main__":
    main()
