"""Recorded notes -> NSynth-format notes: a sample library (one recording per note) becomes a training set.

Each folder given is one instrument; each audio file in it is one note. So is each SFZ file given: its regions
are its notes (hybrid.data.sfz), with the pitch, velocity and frames the region maps. Otherwise the pitch comes
from the file's name
(C4, F#3, Bb2, or Fs4 as SFZ libraries spell sharps; octave 4 holds middle C) or, when the name has none,
from the recording (the YIN median of its first 2 s, rounded to the nearest MIDI note); the velocity from a
`v100`-style token, else 100. A note is taken from its onset (the first sample above 5% of its peak, less
10 ms) for NSynth's 4 s, padded with silence or cut with a 50 ms fade. Notes that are silent, clipped or off
the pitch their name says are dropped, as the SoundFont builder drops them. The licence text given is written
into every record and into build_info.json, so the set says where its sound came from.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.data.build import BuildReport, check_note, write_index
from hybrid.data.gm import FAMILIES, SOURCES
from hybrid.data.nsynth import SPLITS, NoteName, make_record, split_dir
from hybrid.errors import HybridError

NOTE_S = 4.0  # NSynth's length
SAMPLE_ID_BASE = 9000  # instrument ids of sample folders: 9000, 9001, ... (GM builds use 0-1023)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")
_NOTE_RE = re.compile(r"(?<![A-Za-z])([A-Ga-g])(#|s|b)?(-1|[0-9])(?![0-9])")
_VELOCITY_RE = re.compile(r"(?<![A-Za-z])v(\d{1,3})(?![0-9])", re.IGNORECASE)
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True, kw_only=True)
class SamplesConfig:
    folders: tuple[str, ...] = ()
    sfz: tuple[str, ...] = ()  # SFZ instruments, one instrument each
    family: str = "keyboard"
    source: str = "acoustic"
    licence: str = ""
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    sample_rate_hz: int = 44_100
    seed: int = 0

    def __post_init__(self) -> None:
        from hybrid.data.build import BuildConfig

        if not self.folders and not self.sfz:
            raise HybridError("no sample folders or SFZ files given")
        if self.family not in FAMILIES:
            raise HybridError(f"--family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.source not in SOURCES:
            raise HybridError(f"--source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        # the fractions and the rate are checked as the SoundFont builder checks them
        BuildConfig(
            soundfonts=("-",),
            valid_fraction=self.valid_fraction,
            test_fraction=self.test_fraction,
            sample_rate_hz=self.sample_rate_hz,
        )
        for folder in self.folders:
            p = Path(folder)
            if not p.is_dir():
                raise HybridError(f"{p}: not a folder of recorded notes")
            if not any(f.suffix.lower() in AUDIO_SUFFIXES for f in p.iterdir()):
                raise HybridError(f"{p}: holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
        # SFZ files are read (once, and checked) by instruments(), before anything is written


@dataclass(frozen=True)
class Take:
    """One recorded note to take: its file, its pitch when known (else read from the name or measured), its
    velocity, and the frames to use (SFZ's offset and end)."""

    path: Path
    pitch: int | None
    velocity: int
    offset: int = 0
    end: int | None = None


def instruments(config: SamplesConfig) -> list[tuple[str, list[Take]]]:
    """(name, takes) per instrument: each folder's audio files, then each SFZ file's regions."""
    from hybrid.data.sfz import read_sfz

    out = []
    for folder in (Path(f) for f in config.folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        out.append(
            (folder.name, [Take(p, pitch_from_name(p.stem), velocity_from_name(p.stem)) for p in files])
        )
    for sfz in (Path(f) for f in config.sfz):
        regions = read_sfz(sfz)
        if not regions:
            raise HybridError(f"{sfz}: maps no recorded notes (no <region> with a sample)")
        takes = [
            Take(
                r.sample,
                r.pitch if r.pitch is not None else pitch_from_name(r.sample.stem),
                r.velocity,
                r.offset,
                r.end,
            )
            for r in regions
        ]
        out.append((sfz.stem, takes))
    return out


def load_take(take: Take, sample_rate_hz: int) -> npt.NDArray[np.float32]:
    """The take's frames (offset to end, at the file's own rate), mono, at `sample_rate_hz`."""
    from hybrid.audio import load_audio, resample

    if take.offset == 0 and take.end is None:
        return load_audio(take.path, sample_rate_hz=sample_rate_hz)[0]
    y, native = load_audio(take.path)
    y = y[take.offset : None if take.end is None else take.end + 1]  # SFZ's end is the last frame played
    if len(y) == 0:
        raise HybridError(f"{take.path}: offset {take.offset} is past its end")
    return resample(y, native, sample_rate_hz)


def pitch_from_name(stem: str) -> int | None:
    """The MIDI pitch a file name spells (the last note name in it), or None."""
    found = _NOTE_RE.findall(stem)
    if not found:
        return None
    letter, accidental, octave = found[-1]
    pitch = 12 * (int(octave) + 1) + _STEPS[letter.lower()] + {"#": 1, "s": 1, "b": -1}.get(accidental, 0)
    return pitch if 0 <= pitch <= 127 else None


def velocity_from_name(stem: str) -> int:
    found = _VELOCITY_RE.findall(stem)
    return int(np.clip(int(found[-1]), 1, 127)) if found else 100


def estimate_pitch(y: npt.NDArray[np.float32], sample_rate_hz: int) -> int | None:
    """The nearest MIDI note to the YIN median of the first 2 s (voiced, loud frames), or None."""
    import librosa

    held = y[: int(2.0 * sample_rate_hz)]
    f0 = librosa.yin(held, fmin=30.0, fmax=4200.0, sr=sample_rate_hz, frame_length=4096)
    rms = librosa.feature.rms(y=held, frame_length=4096, hop_length=1024)[0][: len(f0)]
    voiced = f0[rms > 0.1 * rms.max()] if rms.size and rms.max() > 0 else f0[:0]
    if voiced.size == 0:
        return None
    return int(np.round(librosa.hz_to_midi(float(np.median(voiced)))))


def note_from_onset(y: npt.NDArray[np.float32], sample_rate_hz: int) -> npt.NDArray[np.float32]:
    """NOTE_S seconds from the note's onset: padded with silence, or cut with a 50 ms fade."""
    n = int(NOTE_S * sample_rate_hz)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    loud = np.flatnonzero(np.abs(y) > 0.05 * peak) if peak > 0 else np.zeros(0, int)
    start = max(0, int(loud[0]) - int(0.01 * sample_rate_hz)) if loud.size else 0
    out = np.zeros(n, np.float32)
    seg = y[start : start + n]
    out[: len(seg)] = seg
    if len(y) - start > n:
        fade = int(0.05 * sample_rate_hz)
        out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def _splits(names: list[str], config: SamplesConfig) -> dict[str, str]:
    """folder name -> split, by a seeded hash (as the SoundFont builder holds out whole instruments)."""
    ordered = sorted(names, key=lambda s: hashlib.sha256(f"{config.seed}:{s}".encode()).hexdigest())
    n = len(ordered)
    n_test = max(1 if n >= 3 else 0, int(round(n * config.test_fraction)))
    n_valid = max(1 if n >= 2 else 0, int(round(n * config.valid_fraction)))
    return {
        name: "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
        for i, name in enumerate(ordered)
    }


def build_from_samples(config: SamplesConfig, out_root: str | Path) -> BuildReport:
    """Write the NSynth layout into out_root from the sample folders (see the module's docstring)."""
    import soundfile as sf

    from hybrid.outputs import atomic_path

    root = Path(out_root)
    if root.exists() and not root.is_dir():
        raise HybridError(f"{root}: exists and is not a folder (--out names the dataset's folder)")
    found = instruments(config)
    splits = _splits([name for name, _ in found], config)
    for s in SPLITS:
        (split_dir(root, s) / "audio").mkdir(parents=True, exist_ok=True)
    report = BuildReport()
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for i, (instrument, takes) in enumerate(found):
        split = splits[instrument]
        seen: set[tuple[int, int]] = set()
        for take in takes:
            try:
                y = load_take(take, config.sample_rate_hz)
            except HybridError:
                report.dropped["unreadable"] = report.dropped.get("unreadable", 0) + 1
                continue
            pitch = take.pitch if take.pitch is not None else estimate_pitch(y, config.sample_rate_hz)
            velocity = take.velocity
            if pitch is None or (pitch, velocity) in seen:
                skip = "no_pitch" if pitch is None else "duplicate"
                report.dropped[skip] = report.dropped.get(skip, 0) + 1
                continue
            note = note_from_onset(y, config.sample_rate_hz)
            reason = check_note(note, pitch, config.sample_rate_hz)
            if reason:
                report.dropped[reason] = report.dropped.get(reason, 0) + 1
                continue
            seen.add((pitch, velocity))
            name = NoteName(config.family, config.source, SAMPLE_ID_BASE + i, pitch, velocity)
            with atomic_path(split_dir(root, split) / "audio" / f"{name.note_str}.wav") as tmp:
                sf.write(str(tmp), note, config.sample_rate_hz, subtype="PCM_16", format="WAV")
            extra = {
                "sample_rate": config.sample_rate_hz,
                "sample_folder": instrument,  # the folder's name, or the SFZ file's
                "sample_file": take.path.name,
                "licence": config.licence,
            }
            by_split[split].append(make_record(name, 0, extra))
    write_index(root, by_split, report)
    with atomic_path(root / "build_info.json") as tmp:
        tmp.write_text(json.dumps({"samples": asdict(config), "report": asdict(report)}, indent=1))
    return report
