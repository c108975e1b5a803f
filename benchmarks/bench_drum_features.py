"""Can a simple feature tell a drum kit from a solo instrument's own attacks? (It could not: docs/design.md.)

For each recording, A is split as `--drums keep` splits it (hybrid.parts.split_drums) and four features of the
percussive part are printed: its share of the energy above 5 kHz, its share of all energy, the share of its
onsets (peaks of the onset strength) with no onset of the rest within 50 ms, and the share of its energy more
than about 50 ms from every onset of the notes transcribed from the rest. Recordings: the Slakh excerpts
of bench_mixes.py with and without their drum track, the example songs, and the licensed solo clips of
../shared/data/instruments.

Run:  .venv/bin/python benchmarks/bench_drum_features.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hybrid.audio import load_audio  # noqa: E402
from hybrid.beats import onset_strength  # noqa: E402
from hybrid.parts import split_drums  # noqa: E402

RATE = 22_050
HOP = 256


def off_note_share(percussive: np.ndarray, rest: np.ndarray, transcriber: object) -> float:
    """The share of the percussive part's energy more than about 50 ms from every onset of the notes
    transcribed from the rest (drums sound between notes; a solo's attacks sit on its notes)."""
    from hybrid.transcription import transcribe_audio

    notes = transcribe_audio(rest, RATE, transcriber=transcriber, with_tempo=False).notes  # type: ignore[arg-type]
    n = len(percussive) // HOP
    e = np.add.reduceat(percussive[: n * HOP].astype(np.float64) ** 2, np.arange(0, n * HOP, HOP))
    near = np.zeros(n, bool)
    for note in notes.notes:
        i = int(note.onset_s * RATE / HOP)
        near[max(0, i - 4) : i + 5] = True
    return float(e[~near].sum() / max(e.sum(), 1e-20))


def features(y: np.ndarray, transcriber: object) -> tuple[float, float, float, float]:
    import librosa
    from scipy.signal import find_peaks

    d = split_drums(y, RATE)
    spec_all = np.abs(librosa.stft(y, n_fft=2048, hop_length=512)) ** 2
    spec_p = np.abs(librosa.stft(d.percussive, n_fft=2048, hop_length=512)) ** 2
    high = librosa.fft_frequencies(sr=RATE, n_fft=2048) >= 5000.0
    high_share = float(spec_p[high].sum() / max(spec_all[high].sum(), 1e-20))
    share = float(
        np.mean(d.percussive.astype(np.float64) ** 2) / max(np.mean(y.astype(np.float64) ** 2), 1e-20)
    )
    ep, eh = onset_strength(d.percussive, RATE, HOP), onset_strength(d.rest, RATE, HOP)
    pk, _ = find_peaks(ep, height=np.percentile(ep, 90), distance=4)
    hk, _ = find_peaks(eh, height=np.percentile(eh, 90), distance=4)
    tol = int(0.05 * RATE / HOP)
    lone = float(np.mean([len(hk) == 0 or np.min(np.abs(hk - p)) > tol for p in pk])) if len(pk) else 0.0
    return high_share, share, lone, off_note_share(d.percussive, d.rest, transcriber)


def main() -> None:
    from bench_mixes import SLAKH, slakh_mixes

    songs = []
    if SLAKH.exists():
        songs += [(name, y) for name, y, _, _ in slakh_mixes(True) + slakh_mixes(False)]
    for p in [ROOT / "examples" / n for n in ("trumpet.ogg", "guitar.wav", "vibe_ace.ogg")]:
        songs.append((p.name, load_audio(p, sample_rate_hz=RATE)[0]))
    clips = ROOT.parent / "shared" / "data" / "instruments"
    for p in sorted(clips.glob("*/*.wav")):
        songs.append((p.name, load_audio(p, sample_rate_hz=RATE)[0]))
    from hybrid.transcription import Transcriber

    transcriber = Transcriber()
    print(
        "| recording | percussive share above 5 kHz | percussive share of all energy | lone percussive onsets "
        "| percussive energy away from note onsets |"
    )
    print("|---|---|---|---|---|")
    for name, y in songs:
        hs, share, lone, off = features(y, transcriber)
        print(f"| {name} | {hs:.2f} | {share:.3f} | {lone:.2f} | {off:.2f} |")


if __name__ == "__main__":
    main()
