"""Peak memory of a long transfer, stage by stage: where a long song's memory goes.

A = the example Vibe Ace (or --song) looped to --seconds (default 1799: the 30 minutes hybrid accepts, less one second),
B = the example trumpet phrase; with --long timbre the other way round (a long timbre song, fitted), B at
44.1 kHz in stereo (the right channel 10 ms later and 2 dB down); --cd makes a long A so too (A is read at its
own rate where its drums may be kept, the default). One process: the model is loaded, then `hybrid.pipeline.transfer` runs with a
progress callback while a thread samples the resident set every 20 ms; the table gives each stage's peak. Run
it under GNU time for the process's own peak:

With --cache DIR, fitted timbres are cached in DIR (else the cache is off): run it twice, and the second run
reads B's fit from there, as a second transfer with the same B does.

Run:  /usr/bin/time -f "%e s %M KB" .venv/bin/python benchmarks/bench_memory.py [--seconds 1799]
          [--long rhythm|timbre] [--cd] [--song trumpet.ogg] [--timbre vibe_ace.ogg] [--no-library]
          [--cache DIR] [--drums keep|drop] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=1799)
    ap.add_argument("--long", choices=("rhythm", "timbre"), default="rhythm", help="which song is long")
    ap.add_argument(
        "--no-library", action="store_true", help="the decoder plays (as where B has no clean note)"
    )
    ap.add_argument("--drums", default="keep", choices=("keep", "drop"), help="--drums (keep: the default)")
    ap.add_argument(
        "--song", default="vibe_ace.ogg", help="the example looped (trumpet.ogg: a solo, no drums)"
    )
    ap.add_argument(
        "--timbre",
        default="trumpet.ogg",
        help="the example that is the short song (vibe_ace.ogg: the decoder plays)",
    )
    ap.add_argument("--checkpoint", default=None, help="the model (default: the shipped one)")
    ap.add_argument("--cd", action="store_true", help="a long A as a CD rip too (44.1 kHz stereo, as B is)")
    ap.add_argument("--cache", default="", help="cache fitted timbres in this folder (default: no cache)")
    args = ap.parse_args()
    stage = {"now": "imports"}
    peaks: dict[str, int] = {}

    def sample() -> None:
        while True:
            now = stage["now"]
            peaks[now] = max(peaks.get(now, 0), rss_mib())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    import numpy as np
    import soundfile as sf

    from hybrid.audio import load_audio, resample
    from hybrid.pipeline import TransferOptions, load_model, transfer

    os.environ["HYBRID_CACHE_DIR"] = args.cache
    with tempfile.TemporaryDirectory() as d:
        stage["now"] = "making the long song"
        song, sr = load_audio(ROOT / "examples" / args.song)
        long = Path(d) / "long.wav"
        cd = args.long == "timbre" or args.cd
        if cd:  # as a CD rip: 44.1 kHz stereo (the right channel 10 ms later, 2 dB down)
            song, sr = resample(song, sr, 44_100), 44_100
        y = np.tile(song, int(np.ceil(args.seconds * sr / len(song))))[: args.seconds * sr]
        del song
        if cd:
            y = np.stack([y, 0.8 * np.roll(y, sr // 100)], axis=1)
        sf.write(long, y, sr)
        del y
        short = ROOT / "examples" / args.timbre
        a, b = (long, short) if args.long == "rhythm" else (short, long)
        stage["now"] = "loading the model"
        model = load_model(args.checkpoint)
        t0 = time.perf_counter()
        result = transfer(
            a,
            b,
            Path(d) / "out.wav",
            TransferOptions(library=not args.no_library, drums=args.drums),
            progress=lambda s: stage.update(now=s),
            model=model,
            cache=bool(args.cache),
        )
        wall = time.perf_counter() - t0
        stage["now"] = "done"
        time.sleep(0.1)
    print(
        f"{args.seconds} s of {'A' if args.long == 'rhythm' else 'B'}, {len(result.notes)} notes, "
        f"note F1 vs A {result.onset_f1:.3f}: {wall:.1f} s\n"
    )
    print("| stage | peak resident set (MiB) |")
    print("|---|---|")
    for name, peak in peaks.items():
        print(f"| {name} | {peak} |")


if __name__ == "__main__":
    main()
