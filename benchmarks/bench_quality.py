"""Quality and speed of the renderer against issue #4's bars, with the alternatives beside it.

Needs the held-out set built from MuseScore General (instruments never seen in training):
    sudo apt-get install musescore-general-soundfont
    hybrid dataset build --soundfont /usr/share/sounds/sf3/MuseScore_General_Full.sf3 \
        --out data/musescore-heldout --programs 0-111 --pitches 36-84 --velocities 100 \
        --valid-fraction 0 --test-fraction 1 --workers 2
Run:  uv run python benchmarks/bench_quality.py [--checkpoint DIR] [--heldout data/musescore-heldout] [--draws 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid.audio import loudness_normalize  # noqa: E402
from hybrid.baselines import GMLookup  # noqa: E402
from hybrid.calibration import fit_timbre, render_fitted  # noqa: E402
from hybrid.constants import FLUIDR3_GM, SAMPLE_RATE_HZ  # noqa: E402
from hybrid.data.nsynth import NSynthReader  # noqa: E402
from hybrid.data.phrases import random_phrase  # noqa: E402
from hybrid.data.soundfont import SoundFontRenderer  # noqa: E402
from hybrid.metrics import (  # noqa: E402
    note_scores,  # noqa: E402
    spectral_stats,
    standardized_distances,
)
from hybrid.notes import Note, NoteSequence  # noqa: E402
from hybrid.pipeline import load_model, render_notes  # noqa: E402
from hybrid.transcription import transcribe_audio  # noqa: E402

SR = SAMPLE_RATE_HZ
# The identification phrase: 8 notes, pitches 48-72, 5.2 s (as in shared/docs/FINDINGS.md).
PHRASE = NoteSequence(
    [
        Note(0.1 + 0.6 * i, 0.1 + 0.6 * i + 0.5, float(p), 90)
        for i, p in enumerate([48, 52, 55, 60, 64, 67, 72, 60])
    ]
)


def heldout_instruments(root: Path, n: int) -> list[tuple[str, int, list]]:
    """n instruments spread over the programs (every k-th), each with its notes."""
    reader = NSynthReader(root, ("test",))
    by: dict[str, list] = {}
    for ex in reader:
        by.setdefault(ex.instrument_str, []).append(ex)
    insts = sorted(by, key=lambda s: int(by[s][0].record["program"]))
    step = max(1, len(insts) // n)
    chosen = insts[::step][:n]
    return [(s, int(by[s][0].record["program"]), by[s]) for s in chosen]


def enrol_audio(notes: list, rng: np.random.Generator, k: int = 3) -> np.ndarray:
    """The timbre song for an instrument: k of its notes (not the phrase), 1.5 s each, one after another."""
    picks = [notes[i] for i in rng.choice(len(notes), size=min(k, len(notes)), replace=False)]
    return np.concatenate([ex.load()[: int(1.5 * SR)] for ex in picks])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--heldout", default=str(ROOT / "data" / "musescore-heldout"))
    ap.add_argument("--instruments", type=int, default=28)
    ap.add_argument("--phrases", type=int, default=12)
    ap.add_argument("--draws", type=int, default=3, help="independent draws of the timbre songs")
    ap.add_argument("--json-out", default=None, help="also write the results here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    model = load_model(args.checkpoint, "cpu")
    renderer, tr = model.renderer, model.transcriber
    insts = heldout_instruments(Path(args.heldout), args.instruments)
    sf_path = json.loads((Path(args.heldout) / "build_info.json").read_text())["config"]["soundfonts"][0]
    true_sf = SoundFontRenderer(sf_path, SR, gain=1.0)
    lookup = GMLookup.build(FLUIDR3_GM)
    results: dict[str, object] = {
        "checkpoint": str(renderer.provenance.get("decoder_steps")),
        "instruments": len(insts),
    }

    # ---- timbre identification: hybrid (calibrated, and the embedding alone) vs nearest GM program, for two
    # kinds of timbre song: an 8 s melody of other notes, and 3 single notes (1.5 s each). One song per
    # instrument is a noisy measure, so it is repeated with `--draws` independent draws of the songs (the first
    # from the benchmark's main generator, so that the later sections see the same phrases whatever --draws).
    truth = np.stack([spectral_stats(true_sf.sequence(PHRASE, 0, prog)) for _, prog, _ in insts])
    per_draw: dict[str, dict[str, list[tuple[float, float]]]] = {}
    embeddings = []
    for draw in range(args.draws):
        g = rng if draw == 0 else np.random.default_rng([0, draw])
        songs = {
            "melody": [
                true_sf.sequence(random_phrase(g, "melody", 8.0, (45, 80), min_ioi_s=0.15), 0, prog)
                for _, prog, _ in insts
            ],
            "3 notes": [enrol_audio(notes, g) for _, _, notes in insts],
        }
        timbres = {k: [fit_timbre(renderer, b, transcriber=tr) for b in v] for k, v in songs.items()}
        if draw == 0:
            embeddings = timbres["melody"]
        for kind, song_list in songs.items():
            queries = {
                # as `hybrid transfer` renders: the offset kept as far as the phrase's notes survive it
                "hybrid": [render_notes(PHRASE, t, model)[0] for t in timbres[kind]],
                "hybrid, embedding only (no calibration)": [
                    renderer.render(PHRASE, t.embedding) for t in timbres[kind]
                ],
                "nearest FluidR3 GM program": [lookup.render(PHRASE, lookup.nearest(b)) for b in song_list],
            }
            for name, outs in queries.items():
                d = standardized_distances(np.stack([spectral_stats(y) for y in outs]), truth)
                ranks = np.array([int(np.sum(d[i] < d[i, i])) for i in range(len(d))])
                per_draw.setdefault(kind, {}).setdefault(name, []).append(
                    (float(np.mean(ranks == 0)), float(np.mean(ranks < 3)))
                )
    ident = {
        kind: {
            name: {
                "top1": float(np.mean([t1 for t1, _ in v])),
                "top3": float(np.mean([t3 for _, t3 in v])),
                "per_draw": v,
            }
            for name, v in systems.items()
        }
        for kind, systems in per_draw.items()
    }
    results["timbre_identification"] = ident

    # ---- notes survive: held-out phrases, mono and up to four voices; FluidSynth renderings as the ceiling
    survive: dict[str, dict[str, list[float]]] = {
        "mono": {"hybrid": [], "fluidsynth": []},
        "poly": {"hybrid": [], "fluidsynth": []},
    }
    for i in range(args.phrases):
        j = i % len(insts)
        _, prog, _ = insts[j]
        for kind, label in (("melody", "mono"), ("chords", "poly")):
            seq = random_phrase(rng, kind, 5.0, (48, 76), max_voices=4, min_ioi_s=0.25)
            # both transcribed as they would be written to a file (loudness-normalised)
            y_h, _ = render_notes(seq, embeddings[j], model)
            y_f = loudness_normalize(true_sf.sequence(seq, 0, prog))
            survive[label]["hybrid"].append(
                note_scores(seq, transcribe_audio(y_h, SR, transcriber=tr, with_tempo=False).notes).onset_f1
            )
            survive[label]["fluidsynth"].append(
                note_scores(seq, transcribe_audio(y_f, SR, transcriber=tr, with_tempo=False).notes).onset_f1
            )
    results["notes_survive_onset_f1"] = {
        k: {s: float(np.mean(v)) for s, v in d.items()} for k, d in survive.items()
    }

    # ---- pitch: single rendered notes, pyin median absolute error in cents
    import librosa

    errs = []
    for i, p in enumerate(range(40, 84, 3)):
        y = render_fitted(
            renderer, NoteSequence([Note(0.05, 1.05, float(p), 100)]), embeddings[i % len(embeddings)]
        )
        target = librosa.midi_to_hz(p)
        f0, voiced, _ = librosa.pyin(
            y[int(0.1 * SR) : int(1.0 * SR)], fmin=target / 1.5, fmax=target * 1.5, sr=SR
        )
        f0 = f0[voiced & np.isfinite(f0)]
        if f0.size:
            errs.append(abs(1200 * np.log2(np.median(f0) / target)))
    results["pitch_median_abs_error_cents"] = float(np.median(errs))

    # ---- speed: a 30 s four-voice piece, and `hybrid transfer` on 30 s of audio
    piece = []
    for _v, (lo, dur) in enumerate([(72, 0.25), (64, 0.5), (55, 1.0), (40, 2.0)]):
        t = 0.0
        while t < 30.0:
            piece.append(Note(t, min(30.0, t + dur * 0.9), float(lo + (int(t / dur) * 5) % 12), 90))
            t += dur
    seq = NoteSequence(piece)
    render_fitted(renderer, NoteSequence(piece[:8]), embeddings[0])  # warm-up
    t0 = time.perf_counter()
    render_fitted(renderer, seq, embeddings[0])
    render_s = time.perf_counter() - t0
    results["render_30s_4voices"] = {"notes": len(seq), "seconds": render_s, "x_real_time": 30.0 / render_s}
    # The alternative: every note rendered on its own (its span plus a 1 s tail), then summed.
    t0 = time.perf_counter()
    mix = np.zeros(int(31.5 * SR), np.float32)
    for note in seq.notes:
        y = renderer.render(
            NoteSequence([Note(0.0, note.duration_s, note.pitch_midi, note.velocity)]),
            embeddings[0].embedding,
        )
        a = int(note.onset_s * SR)
        mix[a : a + len(y)] += y[: len(mix) - a]
    if embeddings[0].correction is not None:  # corrected once, on the mix
        embeddings[0].correction.apply(mix)
    per_note_s = time.perf_counter() - t0
    results["render_30s_per_note"] = {"seconds": per_note_s, "x_real_time": 30.0 / per_note_s}
    lk0 = time.perf_counter()
    lookup.render(seq, 0)
    results["render_30s_fluidsynth_s"] = time.perf_counter() - lk0
    with tempfile.TemporaryDirectory() as d:
        import soundfile as sf

        from hybrid.audio import load_audio

        a, sr_a = load_audio(ROOT / "examples" / "vibe_ace.ogg")
        sf.write(Path(d) / "a30.wav", a[: 30 * sr_a], sr_a)
        cmd = [
            str(Path(sys.executable).parent / "hybrid"),
            "transfer",
            "--rhythm",
            str(Path(d) / "a30.wav"),
            "--timbre",
            str(ROOT / "examples" / "trumpet.ogg"),
            "-o",
            str(Path(d) / "o.wav"),
        ]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        results["transfer_30s_wall_s"] = time.perf_counter() - t0
        results["transfer_30s_output"] = r.stdout.strip() or r.stderr.strip()[-300:]

    print(json.dumps(results, indent=1))
    print()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    ns = results["notes_survive_onset_f1"]
    print("| measure | hybrid | alternative | bar |")
    print("|---|---|---|---|")
    for kind, ti in ident.items():
        h, e, g = (ti[k] for k in ti)
        spread = ", ".join(f"{a:.2f} / {b:.2f}" for a, b in h["per_draw"])
        print(
            f"| timbre identification, {len(insts)} held-out MuseScore instruments, timbre song = {kind}, "
            f"top-1 / top-3, mean of {args.draws} draws ({spread}) | {h['top1']:.2f} / {h['top3']:.2f} | "
            f"embedding only: {e['top1']:.2f} / {e['top3']:.2f}; nearest FluidR3 GM program: "
            f"{g['top1']:.2f} / {g['top3']:.2f} | 0.60 / 0.85 |"
        )
    print(
        f"| notes survive, onset F1 after basic-pitch, mono | {ns['mono']['hybrid']:.3f} | true rendering (FluidSynth): {ns['mono']['fluidsynth']:.3f} | 0.95 |"
    )
    print(
        f"| notes survive, onset F1, poly (up to 4 voices) | {ns['poly']['hybrid']:.3f} | true rendering (FluidSynth): {ns['poly']['fluidsynth']:.3f} | 0.90 |"
    )
    print(
        f"| pitch, median abs error on single notes (pyin) | {results['pitch_median_abs_error_cents']:.1f} cents | | 20 cents |"
    )
    rs = results["render_30s_4voices"]
    print(
        f"| render 30 s, 4 voices, {rs['notes']} notes, 2 CPU threads | {rs['seconds']:.2f} s ({rs['x_real_time']:.0f}x real time)"
        f" | each note rendered alone: {results['render_30s_per_note']['seconds']:.2f} s; FluidSynth:"
        f" {results['render_30s_fluidsynth_s']:.2f} s | 20x |"
    )
    print(
        f"| `hybrid transfer` on 30 s of audio, wall time incl. model loading | {results['transfer_30s_wall_s']:.1f} s | | 15 s |"
    )


if __name__ == "__main__":
    main()
