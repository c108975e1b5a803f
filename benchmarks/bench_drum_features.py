"""Can a simple feature tell a drum kit from a solo instrument's own attacks? (It could not: docs/design.md.)

For each recording, A is split as `--drums keep` splits it (hybrid.parts.split_drums) and five features of the
percussive part are printed: its share of the energy above 5 kHz, its share of all energy, the share of its
onsets (peaks of the onset strength) with no onset of the rest within 50 ms, the share of its energy more
than about 50 ms from every onset of the notes transcribed from the rest, and its noisy hits a second (onsets
whose spectrum, 200 Hz - 10.5 kHz, is flat, and which hold most of the high band, 4 - 10.5 kHz: the detector
`--drums keep` asks, hybrid.parts.drum_hits_per_s). Recordings:
the Slakh excerpts of bench_mixes.py with and without their drum track, the example songs (Vibe Ace also in
three 20 s excerpts), the licensed solo clips of ../shared/data/instruments and the vocadito sung phrases.
With `--kit DIR` (the Samples folder of the DrumGizmo MuldjordKit, CC BY 4.0, from the sfzinstruments
organisation; not in the repository), also 24 grooves played with its recorded hits over solo clips, at -24
to 0 dB against the clip.

Run:  .venv/bin/python benchmarks/bench_drum_features.py [--kit DIR]
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
from hybrid.parts import drum_hits_per_s, split_drums  # noqa: E402

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


def kit_grooves(kit: Path, solos: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """24 grooves (kick and snare on alternate beats, eighths on the closed hi-hat or the ride, a crash every
    16 beats; "busy" adds kicks and toms) at 70-170 BPM from the kit's recorded hits (overheads and close
    microphone summed; softest, middle and loudest), each over a solo clip of 3 s or more, at -24 to 0 dB."""
    import soundfile as sf

    from hybrid.audio import resample

    mics = {
        "KdrumL": "KdrumL",
        "Snare": "Snare_top",
        "HihatClosed": "Hihat",
        "RideL": "RideL",
        "CrashL": "OHL",
        "Tom1": "Tom1",
    }
    hits: dict[str, list[np.ndarray]] = {}
    for piece, close in mics.items():
        n = len(list((kit / piece).glob("*-OHL.flac")))
        for i in sorted({1, max(1, n // 2), n}):
            parts = [
                sf.read(kit / piece / f"{i}-{piece}-{m}.flac", always_2d=True) for m in ("OHL", "OHR", close)
            ]
            h = np.zeros(max(len(x) for x, _ in parts))
            for x, _ in parts:
                h[: len(x)] += x.mean(axis=1)
            h = resample(h.astype(np.float32), parts[0][1], RATE)
            hits.setdefault(piece, []).append(h / max(float(np.abs(h).max()), 1e-9))
    rng = np.random.default_rng(0)
    longer = [(name, y) for name, y in solos if len(y) > 3 * RATE]
    out = []
    for k in range(24):
        name, y = longer[rng.integers(len(longer))]
        style, bpm, level_db = (
            ("rock", "ride", "busy")[k % 3],
            float(rng.uniform(70, 170)),
            (-24, -18, -12, -6, 0)[k % 5],
        )
        d = np.zeros(len(y) + RATE, np.float32)

        def put(piece: str, t: float, gain: float, d: np.ndarray = d) -> None:
            h = hits[piece][rng.integers(len(hits[piece]))]
            a = int(t * RATE)
            b = min(len(d), a + len(h))
            if a < b:
                d[a:b] += gain * h[: b - a]

        beat, t, i = 60.0 / bpm, 0.0, 0
        while t < len(y) / RATE:
            for e in range(2):
                put(
                    "RideL" if style == "ride" else "HihatClosed",
                    t + e * beat / 2,
                    0.4 * rng.uniform(0.6, 1.0),
                )
            put("KdrumL" if i % 2 == 0 else "Snare", t, 1.0 if i % 2 == 0 else 0.8)
            if style == "busy" and rng.random() < 0.3:
                put("KdrumL", t + beat / 2, 0.8)
            if style == "busy" and i % 8 == 7:
                put("Tom1", t + beat / 2, 0.7)
            if i % 16 == 0:
                put("CrashL", t, 0.5)
            t, i = t + beat, i + 1
        d = d[: len(y)]
        m = y + d * (np.sqrt(np.mean(y**2)) / max(np.sqrt(np.mean(d**2)), 1e-9)) * 10 ** (level_db / 20)
        m = (0.5 * m / np.abs(m).max()).astype(np.float32)
        out.append((f"kit groove ({style}, {bpm:.0f} BPM, {level_db} dB) + {name}", m))
    return out


def features(y: np.ndarray, transcriber: object) -> tuple[float, float, float, float, float]:
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
    return (
        high_share,
        share,
        lone,
        off_note_share(d.percussive, d.rest, transcriber),
        drum_hits_per_s(y, RATE),
    )


def main() -> None:
    import argparse

    from bench_mixes import SLAKH, slakh_mixes

    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--kit", type=Path, help="the MuldjordKit's Samples folder: also grooves played with it"
    )
    args = parser.parse_args()

    songs = []
    if SLAKH.exists():
        songs += [(name, y) for name, y, _, _ in slakh_mixes(True) + slakh_mixes(False)]
    for p in [ROOT / "examples" / n for n in ("trumpet.ogg", "guitar.wav", "vibe_ace.ogg")]:
        songs.append((p.name, load_audio(p, sample_rate_hz=RATE)[0]))
    vibe = songs[-1][1]
    songs += [(f"vibe_ace.ogg {t}-{t + 20} s", vibe[t * RATE : (t + 20) * RATE]) for t in (0, 20, 40)]
    shared = ROOT.parent / "shared" / "data"
    solos = []
    for p in sorted((shared / "instruments").glob("*/*.wav")) + sorted(
        (shared / "recordings" / "vocadito").glob("*.wav")
    ):
        solos.append((p.name, load_audio(p, sample_rate_hz=RATE)[0]))
    songs += solos
    if args.kit:
        songs += kit_grooves(args.kit, solos)
    from hybrid.transcription import Transcriber

    transcriber = Transcriber()
    print(
        "| recording | percussive share above 5 kHz | percussive share of all energy | lone percussive onsets "
        "| percussive energy away from note onsets | noisy percussive hits a second |"
    )
    print("|---|---|---|---|---|---|")
    for name, y in songs:
        hs, share, lone, off, noisy = features(y, transcriber)
        print(f"| {name} | {hs:.2f} | {share:.3f} | {lone:.2f} | {off:.2f} | {noisy:.2f} |", flush=True)


if __name__ == "__main__":
    main()
