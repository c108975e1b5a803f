"""Dataset builder speed and size: notes built per second with 1 and 2 workers, MB on disk per 1,000 notes.

uv run python benchmarks/bench_dataset.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from hybrid.data.build import BuildConfig, build_dataset
from hybrid.data.soundfont import default_soundfonts

PROGRAMS = tuple(range(0, 96, 4))  # 24 programs spread over the families
PITCHES = tuple(range(36, 85, 4))  # 13 pitches
VELOCITIES = (50, 100)


def main() -> None:
    fonts = {p.name: p for p in default_soundfonts()}
    rows = []
    for name in ("FluidR3_GM.sf2", "TimGM6mb.sf2"):
        if name not in fonts:
            continue
        for workers in (1, 2):
            cfg = BuildConfig(
                soundfonts=(str(fonts[name]),), programs=PROGRAMS, pitches=PITCHES, velocities=VELOCITIES
            )
            with tempfile.TemporaryDirectory() as d:
                t = time.perf_counter()
                report = build_dataset(cfg, d, workers=workers)
                wall = time.perf_counter() - t
                n = sum(report.notes.values())
                size = sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file())
            rows.append(
                (name, workers, n, sum(report.dropped.values()), wall, n / wall, size / n * 1000 / 1e6)
            )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(PROGRAMS)} programs x {len(PITCHES)} pitches x {len(VELOCITIES)} velocities"
    )
    print()
    print("| SoundFont | workers | notes kept | dropped | wall (s) | notes per second | MB per 1,000 notes |")
    print("|---|---|---|---|---|---|---|")
    for name, w, n, dropped, wall, rate, mb in rows:
        print(f"| {name} | {w} | {n} | {dropped} | {wall:.1f} | {rate:.0f} | {mb:.1f} |")


if __name__ == "__main__":
    main()
