"""Transcription speed and peak memory: hybrid (batched ONNX, lazy windows) vs upstream
basic_pitch.inference.predict on the same ONNX model, on a 30 s and a 10-minute input; hybrid's beat tracker
(hybrid.beats) vs librosa.beat.beat_track inside the same transcription; Rubber Band stretch time per minute of
audio. Each measurement runs in a fresh process, so peak RSS is its own.

    uv run python benchmarks/bench_transcribe.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time, logging, warnings
warnings.simplefilter("ignore")
logging.getLogger().setLevel(logging.ERROR)
kind, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if kind == "hybrid":
    from hybrid.transcription import transcribe
    n = len(transcribe(path).notes)
elif kind == "hybrid-librosa-beats":
    # the beats from librosa.beat.beat_track itself, as before hybrid.beats (same beats, tests/test_beats.py)
    import hybrid.beats
    from hybrid.transcription import TEMPO_HOP, transcribe
    def librosa_beats(env, frame_rate_hz, bpm):
        import librosa.beat
        sr = frame_rate_hz * TEMPO_HOP
        return librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=TEMPO_HOP, bpm=bpm)[1]
    hybrid.beats.track_beats = librosa_beats
    n = len(transcribe(path).notes)
elif kind == "hybrid-notes":
    from hybrid.audio import load_audio
    from hybrid.transcription import transcribe_audio
    y, sr = load_audio(path)
    n = len(transcribe_audio(y, sr, with_tempo=False).notes)
elif kind == "upstream":
    from basic_pitch.inference import predict
    from hybrid.transcription import basic_pitch_model_path
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        n = len(predict(path, basic_pitch_model_path())[2])
elif kind == "stretch":
    from hybrid.audio import load_audio
    from hybrid.transform import stretch_audio
    y, sr = load_audio(path, mono=False)
    t0 = time.perf_counter()
    n = len(stretch_audio(y, sr, 1.25))
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "n": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_inputs(tmp: Path) -> dict[str, Path]:
    import numpy as np
    import soundfile as sf

    from hybrid.audio import load_audio

    y, sr = load_audio(ROOT / "examples" / "vibe_ace.ogg", mono=False)
    short = tmp / "vibe_ace_30s.wav"
    sf.write(short, y[: 30 * sr], sr)
    long = tmp / "vibe_ace_10min.wav"  # the 61 s song repeated to 10 minutes, stereo 44.1 kHz
    reps = int(np.ceil(600 * sr / len(y)))
    sf.write(long, np.tile(y, (reps, 1))[: 600 * sr], sr)
    return {"30 s": short, "10 min": long}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        inputs = make_inputs(Path(d))
        run("hybrid", inputs["30 s"])  # warm numba's cache so the first row is not penalised
        rows = []
        for label, path in inputs.items():
            for kind in ("hybrid", "hybrid-librosa-beats", "hybrid-notes", "upstream"):
                r = run(kind, path)
                rows.append((label, kind, r["wall_s"], r["peak_mb"], int(r["n"])))
        stretch = {label: run("stretch", path) for label, path in inputs.items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| input | implementation | wall time (s) | peak memory (MB) | notes |")
    print("|---|---|---|---|---|")
    for label, kind, wall, mb, n in rows:
        name = {
            "hybrid": "hybrid.transcribe (notes + tempo and beats)",
            "hybrid-librosa-beats": "the same, beats from librosa.beat.beat_track",
            "hybrid-notes": "hybrid, notes only (no tempo)",
            "upstream": "basic_pitch.inference.predict (notes only)",
        }[kind]
        print(f"| {label} | {name} | {wall:.2f} | {mb:.0f} | {n} |")
    print()
    print(
        "| input | Rubber Band stretch x1.25 (R3 engine), stereo 44.1 kHz | s per minute of audio | peak memory (MB) |"
    )
    print("|---|---|---|---|")
    for label, r in stretch.items():
        minutes = 0.5 if label == "30 s" else 10.0
        print(f"| {label} | {r['wall_s']:.2f} s | {r['wall_s'] / minutes:.2f} | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"\n(benchmark took {time.perf_counter() - t:.0f} s)")
