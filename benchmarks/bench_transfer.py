"""Wall time and peak memory of `hybrid transfer`, side by side in one run: as shipped (note library where B
has clean notes) fitting B, the same with B fitted before (`hybrid timbre fit`, as the cache gives a second
transfer with the same B), that without the score (--no-score: the output is not transcribed again), with the
decoder only (--no-library), and the plain pipeline (basic-pitch notes
played by the nearest FluidR3 GM program). A has drums, which hybrid keeps by default (`--drums keep`: the drum
finder, the split, A less its drums transcribed); the last row drops them (A as it is). Each row is a fresh process, so imports and model loading are included and its
peak resident memory is its own. The Python API rows time the call alone, with the model loaded, and give its
stages (load, fit, transcribe, render with the note check, score, write).

Inputs: the first N seconds of the example Vibe Ace (looped to reach N), B = the example trumpet phrase.
Needs GNU time at /usr/bin/time (Debian package `time`) for the peak memory.

Run:  .venv/bin/python benchmarks/bench_transfer.py [--lengths 30,120]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HYBRID = ROOT / ".venv" / "bin" / "hybrid"
PYTHON = ROOT / ".venv" / "bin" / "python"

PLAIN = r"""
import sys
from hybrid.audio import load_audio, loudness_normalize, save_audio
from hybrid.baselines import GMLookup
from hybrid.constants import FLUIDR3_GM, SAMPLE_RATE_HZ
from hybrid.transcription import transcribe
a, b, out = sys.argv[1:4]
notes = transcribe(a).notes
lookup = GMLookup.build(FLUIDR3_GM)
y = loudness_normalize(lookup.render(notes, lookup.nearest(load_audio(b, sample_rate_hz=SAMPLE_RATE_HZ)[0])))
save_audio(out, y, SAMPLE_RATE_HZ)
"""


# The same transfer through the Python API with the model already loaded, as `hybrid serve` and a script that
# renders many songs run it: one warm-up call (which fits B and caches it), then the call that is timed. It
# prints its own wall time, which replaces the process's, and its stages (TransferResult.timings_s: the note
# check is part of "render").
WARM = r"""
import os, sys, tempfile, time
os.environ["HYBRID_CACHE_DIR"] = tempfile.mkdtemp()
from hybrid.pipeline import TransferOptions, load_model, transfer
a, b, out = sys.argv[1], sys.argv[2], sys.argv[-1]
options = TransferOptions(drums=sys.argv[3]) if len(sys.argv) > 4 else TransferOptions()
model = load_model()
transfer(a, b, out, options, force=True, model=model)
t0 = time.perf_counter()
r = transfer(a, b, out, options, force=True, model=model)
print(f"wall {time.perf_counter() - t0:.2f}; " + ", ".join(f"{k} {v:.2f}" for k, v in r.timings_s.items()))
"""


# The same with B not fitted before: a warm-up call with the other example as B (the process's one-time costs),
# then the call that fits B and transfers, timed.
WARM_FIT = r"""
import os, sys, tempfile, time
os.environ["HYBRID_CACHE_DIR"] = tempfile.mkdtemp()
from hybrid.pipeline import TransferOptions, load_model, transfer
a, b, other, out = sys.argv[1:5]
model = load_model()
transfer(a, other, out, TransferOptions(), force=True, model=model)
t0 = time.perf_counter()
r = transfer(a, b, out, TransferOptions(), force=True, model=model)
print(f"wall {time.perf_counter() - t0:.2f}; " + ", ".join(f"{k} {v:.2f}" for k, v in r.timings_s.items()))
"""


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, peak resident memory MB, the last line it printed) of one run, in a fresh process; the peak is
    read by /usr/bin/time (GNU time, Debian's `time` package)."""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip().splitlines()[-2:]}")
    peak_mb = float(r.stderr.strip().splitlines()[-1]) / 1024
    return wall, peak_mb, (r.stdout.strip().splitlines() or [""])[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="30", help="input lengths in seconds, comma-separated")
    args = ap.parse_args()
    import numpy as np
    import soundfile as sf

    from hybrid.audio import load_audio

    song, sr = load_audio(ROOT / "examples" / "vibe_ace.ogg")
    b = ROOT / "examples" / "trumpet.ogg"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| input | system | wall time (s) | peak memory (MB) | output |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        fitted = Path(d) / "b.timbre"
        subprocess.run(
            [str(HYBRID), "timbre", "fit", str(b), "-o", str(fitted)], check=True, capture_output=True
        )
        for seconds in [int(x) for x in args.lengths.split(",")]:
            a = Path(d) / f"a{seconds}.wav"
            sf.write(a, np.tile(song, int(np.ceil(seconds * sr / len(song))))[: seconds * sr], sr)
            transfer = [str(HYBRID), "transfer", "--rhythm", str(a), "--no-cache", "--timbre"]
            rows = [
                ("hybrid (as shipped), fitting B", [*transfer, str(b)]),
                ("hybrid (as shipped), B fitted before", [*transfer, str(fitted)]),
                ("hybrid --no-score, B fitted before", [*transfer, str(fitted), "--no-score"]),
                ("hybrid --no-library, fitting B", [*transfer, str(b), "--no-library"]),
                ("basic-pitch -> nearest GM program", [str(PYTHON), "-c", PLAIN, str(a), str(b)]),
                (
                    "Python API, model loaded, fitting B (the call alone)",
                    [str(PYTHON), "-c", WARM_FIT, str(a), str(b), str(ROOT / "examples" / "guitar.wav")],
                ),
                (
                    "Python API, model loaded, B fitted before (the call alone)",
                    [str(PYTHON), "-c", WARM, str(a), str(b)],
                ),
                (
                    "Python API, model loaded, B fitted before, --drums drop (the call alone)",
                    [str(PYTHON), "-c", WARM, str(a), str(b), "drop"],
                ),
            ]
            for name, cmd in rows:
                out = Path(d) / f"{len(cmd)}_{name.split()[-1]}_{seconds}.wav"
                full = [*cmd, "-o", str(out), "--force"] if cmd[0] == str(HYBRID) else [*cmd, str(out)]
                wall, peak, line = timed(full)
                if line.startswith("wall "):  # the API rows: the call's own wall time, and its stages
                    wall = float(line.split()[1].rstrip(";"))
                    shown = "stages (s): " + line.split("; ", 1)[-1]
                else:
                    shown = line.split(": ", 1)[-1][-60:]
                print(f"| {seconds} s | {name} | {wall:.1f} | {peak:.0f} | {shown} |")


if __name__ == "__main__":
    main()
