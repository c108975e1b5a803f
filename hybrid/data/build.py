"""Build an NSynth-format set by rendering General MIDI SoundFont presets with FluidSynth.

Each (SoundFont, bank 0, GM program) is one instrument. Every note is 4 s: key held 3 s, then 1 s of release, as
NSynth was recorded; at 44.1 kHz unless `sample_rate_hz` says otherwise (16-48 kHz: NSynth itself is 16 kHz, and
training reads any rate, resampled to the decoder's). Whole instruments are held out for the valid and test splits. Notes that
come out silent, clipped, or off their pitch (outside the preset's samples) are dropped and counted.
Rerunning after an interruption skips notes already on disk; each wav is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.constants import (
    MAX_OUTPUT_SAMPLE_RATE_HZ,
    NSYNTH_HOLD_S,
    NSYNTH_RELEASE_S,
    OUTPUT_SAMPLE_RATE_HZ,
    SAMPLE_RATE_HZ,
    midi_to_hz,
)
from hybrid.data.gm import gm_family_source, gm_program_name
from hybrid.data.nsynth import SPLITS, NoteName, make_record, split_dir
from hybrid.errors import HybridError

SILENT_PEAK = 10 ** (-60 / 20)  # a note whose peak stays under -60 dBFS is silent
CLIP_PEAK = 0.999
PITCH_TOLERANCE_CENTS = 100.0  # octave errors of the pitch tracker are forgiven; anything else drops the note


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    soundfonts: tuple[str, ...]
    programs: tuple[int, ...] = tuple(range(128))
    pitches: tuple[int, ...] = tuple(range(21, 109))
    velocities: tuple[int, ...] = (25, 50, 75, 100, 127)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    gain: float = 1.0
    seed: int = 0
    sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ

    def __post_init__(self) -> None:
        if not SAMPLE_RATE_HZ <= self.sample_rate_hz <= MAX_OUTPUT_SAMPLE_RATE_HZ:
            raise HybridError(
                f"--sample-rate must be {SAMPLE_RATE_HZ}-{MAX_OUTPUT_SAMPLE_RATE_HZ} Hz, got {self.sample_rate_hz}"
            )
        for name, values, lo in (
            ("GM programs", self.programs, 0),
            ("MIDI pitches", self.pitches, 0),
            ("MIDI velocities", self.velocities, 1),
        ):
            if not values:
                raise HybridError(f"no {name} given")
            bad = next((v for v in values if not lo <= v <= 127), None)
            if bad is not None:
                raise HybridError(f"{name} are {lo}-127, got {bad}")
        v, t = self.valid_fraction, self.test_fraction
        if not (0.0 <= v <= 1.0 and 0.0 <= t <= 1.0 and v + t <= 1.0):
            raise HybridError(
                f"--valid-fraction and --test-fraction must be 0-1 and add up to at most 1, got {v} and {t}"
            )
        if not (np.isfinite(self.gain) and self.gain > 0):
            raise HybridError(f"gain must be positive, got {self.gain}")


@dataclass(frozen=True)
class Instrument:
    soundfont: str
    soundfont_index: int
    bank: int
    program: int
    family: str
    source: str

    @property
    def instrument_id(self) -> int:
        return self.soundfont_index * 128 + self.program

    @property
    def instrument_str(self) -> str:
        return f"{self.family}_{self.source}_{self.instrument_id:03d}"


@dataclass
class BuildReport:
    notes: dict[str, int] = field(default_factory=dict)  # per split
    instruments: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # per reason
    skipped_existing: int = 0
    missing_presets: list[str] = field(default_factory=list)


def parse_ranges(text: str, lowest: int = 0, highest: int = 127) -> tuple[int, ...]:
    """'0-3,8,10-11' -> (0, 1, 2, 3, 8, 10, 11); every number within lowest..highest (MIDI's 0-127)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                bounds = [lo, hi]
            elif part:
                lo = hi = int(part)
                bounds = [lo]
            else:
                continue
            bad = next((x for x in bounds if not lowest <= x <= highest), None)
            if bad is not None:
                raise HybridError(f"{text!r}: {bad} is outside {lowest}-{highest}")
            out.extend(range(lo, hi + 1))
    except ValueError:
        raise HybridError(f"cannot read the list {text!r} (use e.g. '0-3,8')") from None
    return tuple(sorted(set(out)))


def instruments_of(config: BuildConfig) -> list[Instrument]:
    insts = []
    for i, sf in enumerate(config.soundfonts):
        for prog in config.programs:
            fs = gm_family_source(prog)
            if fs is not None:
                insts.append(Instrument(str(Path(sf).resolve()), i, 0, prog, fs[0], fs[1]))
    return insts


def assign_splits(instruments: Sequence[Instrument], config: BuildConfig) -> dict[str, str]:
    """instrument_str -> split. Ordered by a seeded hash so the choice is stable and spread over families;
    with two or more instruments at least one is held out for validation, with three or more one for test."""

    def key(inst: Instrument) -> str:
        return hashlib.sha256(
            f"{config.seed}:{Path(inst.soundfont).name}:{inst.program}".encode()
        ).hexdigest()

    ordered = sorted(instruments, key=key)
    n = len(ordered)
    n_test = max(1 if n >= 3 else 0, int(round(n * config.test_fraction)))
    n_valid = max(1 if n >= 2 else 0, int(round(n * config.valid_fraction)))
    out = {}
    for rank, inst in enumerate(ordered):
        out[inst.instrument_str] = (
            "test" if rank < n_test else "valid" if rank < n_test + n_valid else "train"
        )
    return out


def check_note(
    audio: npt.NDArray[np.float32], pitch: int, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> str | None:
    """Why a rendered note (at sample_rate_hz) must be dropped, or None when it is fine."""
    peak = float(np.max(np.abs(audio)))
    if peak < SILENT_PEAK:
        return "silent"
    if peak >= CLIP_PEAK:
        return "clipped"
    import librosa

    from hybrid.audio import resample

    # the pitch is tracked at 16 kHz whatever the note's rate: the same frames and limits for every rate
    audio = resample(np.asarray(audio, np.float32), sample_rate_hz, SAMPLE_RATE_HZ)
    target = float(midi_to_hz(pitch))
    held = audio[int(0.1 * SAMPLE_RATE_HZ) : int(NSYNTH_HOLD_S * SAMPLE_RATE_HZ)]
    f_lo, f_hi = max(30.0, target / 2.2), min(7900.0, target * 2.2)
    frame = 2048 if f_lo < 80 else 1024
    f0 = librosa.yin(held, fmin=f_lo, fmax=f_hi, sr=SAMPLE_RATE_HZ, frame_length=frame)
    rms = librosa.feature.rms(y=held, frame_length=frame, hop_length=frame // 4)[0][: len(f0)]
    voiced = f0[rms[: len(f0)] > 0.1 * rms.max()] if rms.size else f0
    if voiced.size == 0:
        return "silent"
    cents = 1200 * np.log2(np.median(voiced) / target)
    folded = abs(cents - 1200 * np.round(cents / 1200))
    return "off_pitch" if folded > PITCH_TOLERANCE_CENTS else None


def _render_instruments(
    args: tuple[list[Instrument], BuildConfig, dict[str, str], str],
) -> list[tuple[str, list[dict], dict[str, int], int]]:
    """Worker: render (or find on disk) every note of a few instruments of one SoundFont, loading it once.
    Returns, per instrument, its records, drop counts and how many notes were already on disk."""
    import soundfile as sf

    from hybrid.data.soundfont import SoundFontRenderer
    from hybrid.outputs import atomic_path

    insts, config, splits, out_root = args
    renderer: SoundFontRenderer | None = None
    results = []
    try:
        for inst in insts:
            audio_dir = split_dir(out_root, splits[inst.instrument_str]) / "audio"
            records: list[dict] = []
            dropped: dict[str, int] = {}
            skipped = 0
            extra = {
                "sample_rate": config.sample_rate_hz,
                "soundfont": Path(inst.soundfont).name,
                "bank": inst.bank,
                "program": inst.program,
                "program_name": gm_program_name(inst.program),
            }
            for pitch in config.pitches:
                for vel in config.velocities:
                    name = NoteName(inst.family, inst.source, inst.instrument_id, pitch, vel)
                    wav = audio_dir / f"{name.note_str}.wav"
                    if wav.exists() and sf.info(str(wav)).samplerate == config.sample_rate_hz:
                        skipped += 1
                        records.append(make_record(name, 0, extra))
                        continue
                    if renderer is None:
                        renderer = SoundFontRenderer(inst.soundfont, config.sample_rate_hz, gain=config.gain)
                    if not renderer.has_preset(inst.bank, inst.program):
                        dropped = {"missing_preset": 1}
                        records = []
                        break
                    y = renderer.note(inst.bank, inst.program, pitch, vel, NSYNTH_HOLD_S, NSYNTH_RELEASE_S)
                    reason = check_note(y, pitch, config.sample_rate_hz)
                    if reason:
                        dropped[reason] = dropped.get(reason, 0) + 1
                        continue
                    with atomic_path(wav) as tmp:
                        sf.write(str(tmp), y, config.sample_rate_hz, subtype="PCM_16", format="WAV")
                    records.append(make_record(name, 0, extra))
                if dropped.get("missing_preset"):
                    break
            results.append((inst.instrument_str, records, dropped, skipped))
    finally:
        if renderer is not None:
            renderer.close()
    return results


JOB_INSTRUMENTS = 8  # instruments per job: a SoundFont is loaded once per job (MuseScore's sf3 takes ~6 s)


def build_dataset(
    config: BuildConfig,
    out_root: str | os.PathLike[str],
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Render the set into out_root (NSynth layout) and write each split's examples.json at the end."""
    from hybrid.data.soundfont import SoundFontRenderer
    from hybrid.outputs import sweep_once

    root = Path(out_root)
    if root.exists() and not root.is_dir():
        raise HybridError(f"{root}: exists and is not a folder (--out names the dataset's folder)")
    if not root.parent.is_dir():
        raise HybridError(f"{root.parent}: is not a folder, so {root.name} cannot be made in it")
    for sf_path in config.soundfonts:
        SoundFontRenderer(sf_path).close()  # a SoundFont FluidSynth cannot load fails here, before any work
    insts = instruments_of(config)
    if not insts:
        raise HybridError("no instruments to build: the programs given are all drums or effects")
    splits = assign_splits(insts, config)
    for s in SPLITS:
        (split_dir(root, s) / "audio").mkdir(parents=True, exist_ok=True)
    # what a killed build was writing (notes, indexes, build_info.json) goes before any work, not at the first write
    for folder in (
        root,
        *(split_dir(root, s) for s in SPLITS),
        *(split_dir(root, s) / "audio" for s in SPLITS),
    ):
        sweep_once(folder)
    jobs = []
    for sf_path in sorted({i.soundfont for i in insts}):
        mine = [i for i in insts if i.soundfont == sf_path]
        per_job = max(1, min(JOB_INSTRUMENTS, -(-len(mine) // max(1, workers))))
        jobs += [(mine[k : k + per_job], config, splits, str(root)) for k in range(0, len(mine), per_job)]
    report = BuildReport()
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    done = 0
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for batch in pool.imap_unordered(_render_instruments, jobs):
                for res in batch:
                    done += 1
                    _collect(res, splits, by_split, report)
                if progress:
                    progress(done, len(insts))
    else:
        for job in jobs:
            for res in _render_instruments(job):
                done += 1
                _collect(res, splits, by_split, report)
            if progress:
                progress(done, len(insts))
    write_index(root, by_split, report)
    from hybrid.outputs import atomic_path

    with atomic_path(root / "build_info.json") as tmp:
        tmp.write_text(json.dumps({"config": asdict(config), "report": asdict(report)}, indent=1))
    return report


def write_index(root: Path, by_split: dict[str, list[dict]], report: BuildReport) -> None:
    """Each split's examples.json (records sorted by note_str, numbered across the splits), written atomically;
    the notes and instruments of each split counted into the report."""
    from hybrid.outputs import atomic_path

    note_id = 0
    for s in SPLITS:
        doc = {}
        for rec in sorted(by_split[s], key=lambda r: str(r["note_str"])):
            rec["note"] = note_id
            note_id += 1
            doc[str(rec["note_str"])] = rec
        with atomic_path(split_dir(root, s) / "examples.json") as tmp:
            tmp.write_text(json.dumps(doc, indent=1))
        report.notes[s] = len(doc)
        report.instruments[s] = sorted({str(r["instrument_str"]) for r in doc.values()})


def _collect(
    res: tuple[str, list[dict], dict[str, int], int],
    splits: dict[str, str],
    by_split: dict[str, list[dict]],
    report: BuildReport,
) -> None:
    inst_str, records, dropped, skipped = res
    by_split[splits[inst_str]].extend(records)
    report.skipped_existing += skipped
    for reason, n in dropped.items():
        if reason == "missing_preset":
            report.missing_presets.append(inst_str)
        else:
            report.dropped[reason] = report.dropped.get(reason, 0) + n
