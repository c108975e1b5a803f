"""Where a new process's first 30 s transfer spends its time, and two ways tried to start it sooner.

The issue's bar is a 30 s transfer in 5 s of wall time on two cores, from a new process with nothing cached but
the model. This prints, side by side in one run (each number the median of --runs fresh processes):

1. What importing costs: `python -c "import X"` for each library a transfer imports, less an empty Python's
   start; the last row imports them all together, as a transfer does.
2. A fresh process's transfer through the Python API (A = the first 30 s of the example Vibe Ace, looped;
   B = the example trumpet, fitted in the call): its wall time from the start of the process, and each stage's
   (TransferResult.timings_s: load is reading both songs and the model, with torch's import; transcribe
   includes basic-pitch's import).
3. The first stages run one after the other (load the model, then transcribe A) against the model loaded in a
   thread while A is transcribed (torch's import beside basic-pitch's import and the ONNX and numba work),
   alternating, each in a fresh process.
4. The call with the model loaded and B fitted before (the warm call; the median of --runs calls in one
   process): its wall time, the process's CPU time over it (cores kept busy), and basic-pitch's passes in it
   (how many, their wall time).
5. basic-pitch's model on the 30 s A (best of --runs): as hybrid runs it (ONNX Runtime's default threads, 4
   windows per call), on one thread, and with 16 windows per call.

Run:  .venv/bin/python benchmarks/bench_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

QUIET = "import logging, warnings; logging.disable(logging.WARNING); warnings.simplefilter('ignore'); "
IMPORTS = [
    ("torch", "import torch"),
    (
        "basic-pitch's note_creation (mir_eval, librosa, resampy, pretty_midi, scipy)",
        "import basic_pitch.note_creation",
    ),
    ("mir_eval (scipy.stats through its alignment and segment modules)", "import mir_eval"),
    ("scipy.signal (imports scipy.stats itself)", "import scipy.signal"),
    ("onnxruntime", "import onnxruntime"),
    ("numba", "import numba"),
    (
        "all of them together, as a transfer imports them",
        "import torch, basic_pitch.note_creation, mir_eval, scipy.signal, onnxruntime, numba",
    ),
]

# A 30 s transfer in a new process, through the API: prints the process's wall time to the end of the call
STAGES = r"""
import time
t0 = time.perf_counter()
import os, sys, tempfile
os.environ["HYBRID_CACHE_DIR"] = tempfile.mkdtemp()
from hybrid.pipeline import TransferOptions, transfer
r = transfer(sys.argv[1], sys.argv[2], sys.argv[3], TransferOptions(), force=True)
print("wall", time.perf_counter() - t0 + float(sys.argv[4]), *(f"{k}={v}" for k, v in r.timings_s.items()))
"""

# Loading the model and transcribing A (--drums keep: the drum finder, the split, A less its drums
# transcribed), one after the other or the model in a thread meanwhile; prints the wall time from the start
OVERLAP = r"""
import time
t0 = time.perf_counter()
import sys
from concurrent.futures import ThreadPoolExecutor
from hybrid.audio import load_audio
from hybrid.pipeline import Model, TransferOptions, _transcribe_rhythm
from hybrid.transcription import Transcriber

def load():
    from hybrid.neural.renderer import Renderer
    return Renderer.load(None, "cpu")

a, sr = load_audio(sys.argv[1])
if sys.argv[2] == "thread":
    pending = ThreadPoolExecutor(1).submit(load)
    model = Model(None, Transcriber())  # type: ignore[arg-type]
    song = _transcribe_rhythm([a], sr, model, TransferOptions(), True, True)
    pending.result()
else:
    model = Model(load(), Transcriber())
    song = _transcribe_rhythm([a], sr, model, TransferOptions(), True, True)
print("wall", time.perf_counter() - t0 + float(sys.argv[3]), len(song.transcription.notes))
"""


# The warm call: the model loaded and B fitted by a first call; then --runs calls, each timed with the process's
# CPU time and basic-pitch's passes (hybrid.transcription.transcribe_audio wrapped)
WARM = r"""
import os, resource, statistics, sys, tempfile, time
os.environ["HYBRID_CACHE_DIR"] = tempfile.mkdtemp()
import hybrid.transcription as T
from hybrid.pipeline import TransferOptions, load_model, transfer

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

passes = []
plain = T.transcribe_audio
def counted(*args, **kwargs):
    t0 = time.perf_counter()
    out = plain(*args, **kwargs)
    passes.append(time.perf_counter() - t0)
    return out
T.transcribe_audio = counted
model = load_model()
transfer(sys.argv[1], sys.argv[2], sys.argv[3], TransferOptions(), force=True, model=model)
rows = []
for _ in range(int(sys.argv[4])):
    passes.clear()
    t0, c0 = time.perf_counter(), cpu()
    transfer(sys.argv[1], sys.argv[2], sys.argv[3], TransferOptions(), force=True, model=model)
    wall = time.perf_counter() - t0
    rows.append((wall, (cpu() - c0) / wall, len(passes), sum(passes)))
print(*(statistics.median(r[i] for r in rows) for i in range(4)))
"""

# basic-pitch's model on A: as hybrid runs it, on one thread, with 16 windows per ONNX call (best of n)
ORT = r"""
import sys, time
import hybrid.transcription as T
from hybrid.audio import load_audio
a, _ = load_audio(sys.argv[1], sample_rate_hz=T.BP_SAMPLE_RATE_HZ)
def best(t, n):
    t.model_output(a[: 8 * T.BP_SAMPLE_RATE_HZ])
    times = []
    for _ in range(n):
        t0 = time.perf_counter(); t.model_output(a); times.append(time.perf_counter() - t0)
    return min(times)
n = int(sys.argv[2])
shipped, one = T.Transcriber(), T.Transcriber(threads=1)
rows = [best(shipped, n), best(one, n)]
T.WINDOWS_PER_BATCH = 16
rows.append(best(shipped, n))
print(*rows)
"""


def run(args: list[str]) -> str:
    r = subprocess.run([str(PYTHON), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{args[:2]} failed: {r.stderr.strip().splitlines()[-3:]}")
    return (r.stdout.strip().splitlines() or [""])[-1]


def process_wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    run(args)
    return time.perf_counter() - t0


def interpreter_start(runs: int) -> float:
    """An empty Python's start, which each in-process clock above misses."""
    return statistics.median(process_wall(["-c", "pass"]) for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(ROOT))
    from hybrid.audio import load_audio

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    empty = interpreter_start(args.runs)
    print(f"An empty Python starts in {empty:.2f} s.\n")
    print("| import (a new process) | s |")
    print("|---|---|")
    for name, stmt in IMPORTS:
        s = statistics.median(process_wall(["-c", QUIET + stmt]) for _ in range(args.runs)) - empty
        print(f"| {name} | {s:.2f} |")

    with tempfile.TemporaryDirectory() as d:
        song, sr = load_audio(ROOT / "examples" / "vibe_ace.ogg")
        a = Path(d) / "a30.wav"
        sf.write(a, np.tile(song, int(np.ceil(30 * sr / len(song))))[: 30 * sr], sr)
        b = ROOT / "examples" / "trumpet.ogg"
        rows: list[dict[str, float]] = []
        for _ in range(args.runs):
            line = run(["-c", STAGES, str(a), str(b), str(Path(d) / "out.wav"), str(empty)]).split()
            rows.append(
                {"wall": float(line[1]), **{k: float(v) for k, v in (x.split("=") for x in line[2:])}}
            )
        print("\n| a new process's 30 s transfer, fitting B (median) | s |")
        print("|---|---|")
        for key in rows[0]:
            label = "whole (the process's start to the call's end)" if key == "wall" else key
            print(f"| {label} | {statistics.median(r[key] for r in rows):.2f} |")

        times: dict[str, list[float]] = {"one after the other": [], "the model loaded in a thread": []}
        for _ in range(args.runs):
            for name, how in zip(times, ("sequential", "thread"), strict=True):
                times[name].append(float(run(["-c", OVERLAP, str(a), how, str(empty)]).split()[1]))
        print(
            "\n| loading the model and transcribing A (30 s, drums kept), a new process | s (median) | runs |"
        )
        print("|---|---|---|")
        for name, ts in times.items():
            print(f"| {name} | {statistics.median(ts):.2f} | {', '.join(f'{t:.2f}' for t in ts)} |")

        wall, cores, n, pass_s = (
            float(x)
            for x in run(["-c", WARM, str(a), str(b), str(Path(d) / "o.wav"), str(args.runs)]).split()
        )
        print("\n| the call with the model loaded, B fitted before (median) | |")
        print("|---|---|")
        print(f"| wall time | {wall:.2f} s |")
        print(f"| cores kept busy (CPU time / wall time) | {cores:.2f} of {os.cpu_count()} |")
        print(f"| basic-pitch passes | {n:.0f}, {pass_s:.2f} s |")

        shipped, one, batch16 = (float(x) for x in run(["-c", ORT, str(a), str(args.runs)]).split())
        print("\n| basic-pitch's model on 30 s of A (best) | s |")
        print("|---|---|")
        print(f"| as hybrid runs it (ONNX Runtime's default threads, 4 windows per call) | {shipped:.2f} |")
        print(f"| one thread | {one:.2f} |")
        print(f"| 16 windows per call | {batch16:.2f} |")


if __name__ == "__main__":
    main()
