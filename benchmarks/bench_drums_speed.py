"""What the drum finder and the drum split cost, with the median filters as running medians (hybrid.parts,
numba) side by side with torch's medians of every window (what hybrid.parts ran before; kept here as the
alternative), alternately in one run, and whether they give the same values.

Inputs: the example trumpet phrase looped (a solo: the finder runs on every transfer, since `--drums keep` is
the default), the example Vibe Ace looped (a combo with drums: the finder, then the split at A's own rate).
Each cell is the best of three calls, after a warm-up call (numba's kernel is compiled once and cached on
disk; a fresh process loads it in about 0.2 s).

Run:  .venv/bin/python benchmarks/bench_drums_speed.py [--lengths 30,120]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hybrid import parts  # noqa: E402
from hybrid.audio import load_audio  # noqa: E402


def torch_median(x: np.ndarray, axis: int) -> np.ndarray:
    """hybrid.parts._median as it was: torch's median of each window, in blocks of 128 rows."""
    import torch

    rows = np.moveaxis(x, axis, -1)
    half = parts.HPSS_KERNEL // 2
    padded = np.pad(rows, [(0, 0), (half, half)], mode="symmetric")
    out = np.empty(rows.shape, x.dtype)
    for i in range(0, len(rows), 128):
        block = torch.from_numpy(np.ascontiguousarray(padded[i : i + 128]))
        out[i : i + 128] = block.unfold(1, parts.HPSS_KERNEL, 1).median(dim=-1).values.numpy()
    return np.moveaxis(out, -1, axis)


def best_of(f, *args, n: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = f(*args)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="30,120", help="input lengths in seconds, comma-separated")
    args = ap.parse_args()
    running = parts._median
    songs = {}
    for name in ("trumpet.ogg", "vibe_ace.ogg"):
        y, sr = load_audio(ROOT / "examples" / name)
        songs[name.split(".")[0]] = (y, sr)
    print("| input | step | torch's medians (s) | running medians (s) | same values |")
    print("|---|---|---|---|---|")
    for seconds in [int(x) for x in args.lengths.split(",")]:
        for name, (song, sr) in songs.items():
            y = np.tile(song, int(np.ceil(seconds * sr / len(song))))[: seconds * sr]
            steps = [("drum finder", parts.drum_hits_per_s)]
            if name == "vibe_ace":
                steps.append(("split at A's rate", lambda y, sr: parts.split_drums(y, sr).percussive))
            for step, f in steps:
                results = {}
                for median in (torch_median, running, torch_median, running):  # alternately
                    parts._median = median
                    f(y[: 5 * sr], sr)  # warm-up
                    t, out = best_of(f, y, sr)
                    key = median.__name__
                    results[key] = (min(t, results.get(key, (np.inf,))[0]), out)
                parts._median = running
                same = np.array_equal(results["torch_median"][1], results["_median"][1])
                print(
                    f"| {name} {seconds} s | {step} | {results['torch_median'][0]:.2f} | "
                    f"{results['_median'][0]:.2f} | {'yes' if same else 'no'} |"
                )


if __name__ == "__main__":
    main()
