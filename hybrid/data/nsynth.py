"""NSynth's json+wav layout: names, records, and the reader for real NSynth and hybrid-built sets.

Layout (as NSynth ships it): ROOT/nsynth-{train,valid,test}/examples.json and .../audio/<note_str>.wav,
16 kHz mono 16-bit, 4 s per note. examples.json maps note_str -> record.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.constants import NSYNTH_HOLD_S, NSYNTH_RELEASE_S, SAMPLE_RATE_HZ
from hybrid.data.gm import FAMILIES, QUALITIES, SOURCES
from hybrid.errors import HybridError

SPLITS = ("train", "valid", "test")
NOTE_SECONDS = NSYNTH_HOLD_S + NSYNTH_RELEASE_S
# <family>_<source>_<instrument id>-<MIDI pitch, 3 digits>-<velocity, 3 digits>, e.g. bass_synthetic_135-067-025
NOTE_STR_RE = re.compile(
    r"^(?P<family>[a-z_]+?)_(?P<source>acoustic|electronic|synthetic)_(?P<instrument>\d{3,})-(?P<pitch>\d{3})-(?P<velocity>\d{3})$"
)
REQUIRED_FIELDS = (
    "note_str",
    "instrument_str",
    "pitch",
    "velocity",
    "instrument_family_str",
    "instrument_source_str",
)


@dataclass(frozen=True)
class NoteName:
    family: str
    source: str
    instrument_id: int
    pitch: int
    velocity: int

    @property
    def instrument_str(self) -> str:
        return f"{self.family}_{self.source}_{self.instrument_id:03d}"

    @property
    def note_str(self) -> str:
        return f"{self.instrument_str}-{self.pitch:03d}-{self.velocity:03d}"


def parse_note_str(note_str: str) -> NoteName:
    """Parse an NSynth note_str; raises HybridError for anything else (including path tricks like '../')."""
    m = NOTE_STR_RE.match(note_str)
    if m is None or m["family"] not in FAMILIES:
        raise HybridError(f"not an NSynth note name: {note_str!r}")
    return NoteName(m["family"], m["source"], int(m["instrument"]), int(m["pitch"]), int(m["velocity"]))


@dataclass(frozen=True)
class Example:
    """One note of an NSynth-format split: its record from examples.json and where its audio is."""

    note_str: str
    instrument_str: str
    instrument: int
    pitch: int
    velocity: int
    family: str
    source: str
    qualities: tuple[str, ...]
    audio_path: Path
    record: dict[str, object]

    def load(self, sample_rate_hz: int = SAMPLE_RATE_HZ) -> npt.NDArray[np.float32]:
        """The note's audio, float32 in [-1, 1] at `sample_rate_hz` (by default the 16 kHz decoder's; a note
        stored at another rate, such as the builder's 44.1 kHz, is resampled)."""
        import soundfile as sf

        try:
            y, sr = sf.read(str(self.audio_path), dtype="float32", always_2d=True)
        except Exception as exc:
            if not self.audio_path.exists():
                raise HybridError(f"{self.audio_path}: audio file missing") from None
            raise HybridError(f"{self.audio_path}: cannot read audio ({type(exc).__name__})") from None
        y = y.mean(axis=1)
        if sr != sample_rate_hz:
            from hybrid.audio import resample

            return resample(y, sr, sample_rate_hz)
        return y


def split_dir(root: str | os.PathLike[str], split: str) -> Path:
    if split not in SPLITS:
        raise HybridError(f"unknown split {split!r} (use one of {', '.join(SPLITS)})")
    return Path(root) / f"nsynth-{split}"


def _record_to_example(note_str: str, rec: object, folder: Path, json_path: Path) -> Example:
    if not isinstance(rec, dict):
        raise HybridError(f"{json_path}: entry {note_str!r} is not an object")
    missing = [f for f in REQUIRED_FIELDS if f not in rec]
    if missing:
        raise HybridError(f"{json_path}: entry {note_str!r} lacks {', '.join(missing)}")
    name = parse_note_str(note_str)  # also refuses names that would leave the audio folder
    if rec["note_str"] != note_str:
        raise HybridError(f"{json_path}: key {note_str!r} holds note_str {rec['note_str']!r}")
    try:
        pitch, velocity = int(rec["pitch"]), int(rec["velocity"])  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise HybridError(f"{json_path}: entry {note_str!r} has a non-integer pitch or velocity") from None
    if (pitch, velocity) != (name.pitch, name.velocity):
        raise HybridError(f"{json_path}: entry {note_str!r} disagrees with its name on pitch or velocity")
    qualities = rec.get("qualities_str", [])
    return Example(
        note_str=note_str,
        instrument_str=str(rec["instrument_str"]),
        instrument=int(rec.get("instrument", name.instrument_id)),  # type: ignore[call-overload]
        pitch=pitch,
        velocity=velocity,
        family=str(rec["instrument_family_str"]),
        source=str(rec["instrument_source_str"]),
        qualities=tuple(str(q) for q in qualities) if isinstance(qualities, list) else (),
        audio_path=folder / "audio" / f"{note_str}.wav",
        record=rec,
    )


def read_split(root: str | os.PathLike[str], split: str) -> list[Example]:
    """Every note of one split, checked; raises HybridError naming the file on a malformed examples.json."""
    folder = split_dir(root, split)
    json_path = folder / "examples.json"
    if not json_path.exists():
        raise HybridError(f"{json_path}: not found (is {root} an NSynth-format folder?)")
    try:
        doc = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HybridError(f"{json_path}: malformed JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise HybridError(f"{json_path}: expected an object mapping note_str to records")
    return [_record_to_example(k, v, folder, json_path) for k, v in sorted(doc.items())]


@dataclass(frozen=True)
class NoteFilter:
    """Which notes to keep; None means any. Ranges are inclusive."""

    families: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    instruments: tuple[str, ...] | None = None  # instrument_str values
    pitch_range: tuple[int, int] | None = None
    velocity_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for fam in self.families or ():
            if fam not in FAMILIES:
                raise HybridError(f"unknown family {fam!r} (NSynth's: {', '.join(FAMILIES)})")
        for src in self.sources or ():
            if src not in SOURCES:
                raise HybridError(f"unknown source {src!r} (NSynth's: {', '.join(SOURCES)})")

    def keep(self, ex: Example) -> bool:
        return (
            (self.families is None or ex.family in self.families)
            and (self.sources is None or ex.source in self.sources)
            and (self.instruments is None or ex.instrument_str in self.instruments)
            and (self.pitch_range is None or self.pitch_range[0] <= ex.pitch <= self.pitch_range[1])
            and (
                self.velocity_range is None or self.velocity_range[0] <= ex.velocity <= self.velocity_range[1]
            )
        )


class NSynthReader:
    """Reads real NSynth or a hybrid-built set: filtered notes of one or more splits, audio on demand."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        splits: Iterable[str] = ("train",),
        note_filter: NoteFilter = NoteFilter(),
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise HybridError(f"{self.root}: dataset folder not found")
        self.examples = [ex for s in splits for ex in read_split(self.root, s) if note_filter.keep(ex)]

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __getitem__(self, i: int) -> tuple[npt.NDArray[np.float32], Example]:
        ex = self.examples[i]
        return ex.load(), ex

    def instruments(self) -> list[str]:
        return sorted({ex.instrument_str for ex in self.examples})


def available_splits(root: str | os.PathLike[str]) -> list[str]:
    return [s for s in SPLITS if (split_dir(root, s) / "examples.json").exists()]


def dataset_info(root: str | os.PathLike[str]) -> dict[str, object]:
    """Counts per split, family and source, and total hours, of an NSynth-format folder."""
    splits = available_splits(root)
    if not splits:
        raise HybridError(f"{root}: no nsynth-{{train,valid,test}}/examples.json found")
    info: dict[str, object] = {"root": str(root), "splits": {}}
    total = 0
    for s in splits:
        exs = read_split(root, s)
        fam: dict[str, int] = {}
        src: dict[str, int] = {}
        for ex in exs:
            fam[ex.family] = fam.get(ex.family, 0) + 1
            src[ex.source] = src.get(ex.source, 0) + 1
        info["splits"][s] = {  # type: ignore[index]
            "notes": len(exs),
            "instruments": len({ex.instrument_str for ex in exs}),
            "families": dict(sorted(fam.items())),
            "sources": dict(sorted(src.items())),
            "hours": len(exs) * NOTE_SECONDS / 3600,
        }
        total += len(exs)
    info["notes"] = total
    info["hours"] = total * NOTE_SECONDS / 3600
    return info


def make_record(name: NoteName, note_id: int, extra: dict[str, object] | None = None) -> dict[str, object]:
    """An examples.json record with NSynth's fields (qualities unknown: all zero) plus `extra`."""
    rec: dict[str, object] = {
        "note": note_id,
        "note_str": name.note_str,
        "instrument": name.instrument_id,
        "instrument_str": name.instrument_str,
        "pitch": name.pitch,
        "velocity": name.velocity,
        "sample_rate": SAMPLE_RATE_HZ,
        "qualities": [0] * len(QUALITIES),
        "qualities_str": [],
        "instrument_family": FAMILIES.index(name.family),
        "instrument_family_str": name.family,
        "instrument_source": SOURCES.index(name.source),
        "instrument_source_str": name.source,
    }
    if extra:
        rec.update(extra)
    return rec
