"""A fitted timbre as a file (`.timbre`, safetensors): fit a timbre song once, use it for any number of songs.

The file holds every array of a FittedTimbre (the embedding, the offset, the three corrections, the note
library's notes; for a timbre whose decoder calibration was deferred, the excerpt it is to be fitted on) and,
in its metadata, the acoustics (estimates and fitted rooms), the format version, the sha256 of the checkpoint
weights it was fitted with and of the timbre song, and the fit's settings. Loading refuses another format, a damaged file, or a
file fitted with other weights (the embedding and the offset belong to one model).
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.calibration.acoustics import Acoustics, Room
from hybrid.calibration.bandwidth import HighBand
from hybrid.calibration.correction import Correction
from hybrid.calibration.fitted import FittedTimbre, PendingFit
from hybrid.calibration.note_library import NoteLibrary, RecordedNote
from hybrid.errors import HybridError

FORMAT = "hybrid-timbre"
VERSION = 1
SUFFIX = ".timbre"
CORRECTIONS = ("correction", "half_correction", "no_offset_correction")
NOTE_ARRAYS = ("harmonic_hz", "harmonic_db", "noise_db", "cents")


def save_timbre(
    timbre: FittedTimbre,
    path: str | os.PathLike[str],
    weights_sha256: str,
    song_sha256: str,
    settings: dict[str, Any],
    replace: bool = True,
) -> Path:
    """Write the fitted timbre atomically (see hybrid.audio.atomic_path)."""
    from safetensors.numpy import save_file

    from hybrid.outputs import atomic_path

    tensors: dict[str, np.ndarray] = {"embedding": np.asarray(timbre.embedding, np.float32)}
    if timbre.offset is not None:
        tensors["offset"] = np.asarray(timbre.offset, np.float32)
    for name in CORRECTIONS:
        c = getattr(timbre, name)
        if c is not None:
            for f in fields(Correction):
                tensors[f"{name}.{f.name}"] = np.ascontiguousarray(getattr(c, f.name), np.float64)
    if timbre.pending is not None:  # what complete_timbre fits the decoder's calibration on
        tensors["pending_excerpt"] = np.ascontiguousarray(timbre.pending.excerpt, np.float32)
    library = None
    if timbre.library is not None:
        notes = []
        for i, r in enumerate(timbre.library.notes):
            for a in NOTE_ARRAYS:
                tensors[f"library.{i}.{a}"] = np.ascontiguousarray(getattr(r, a), np.float32)
            notes.append({"pitch_midi": r.pitch_midi, "velocity": r.velocity, "held": r.held})
        library = {"sample_rate_hz": timbre.library.sample_rate_hz, "notes": notes}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "weights_sha256": weights_sha256,
        "song_sha256": song_sha256,
        "settings": settings,
        "calibration_notes": timbre.calibration_notes,
        "pitch_range": list(timbre.pitch_range) if timbre.pitch_range is not None else None,
        "library": library,
        "acoustics": _acoustics_meta(timbre.acoustics),
        "high_band": None if timbre.high_band is None else timbre.high_band.as_dict(),
        "pending_seed": None if timbre.pending is None else timbre.pending.seed,
    }
    out = Path(path)
    with atomic_path(out, replace) as tmp:
        save_file(tensors, str(tmp), metadata={"timbre": json.dumps(meta)})
    return out


def _acoustics_meta(ac: Acoustics | None) -> dict[str, Any] | None:
    """The acoustics as JSON (no infinities: a floor that was not found is null)."""
    if ac is None:
        return None
    d = ac.as_dict()
    d["floor_db"] = ac.floor_db if ac.has_floor else None
    return d


def _acoustics_from_meta(d: dict[str, Any] | None) -> Acoustics | None:
    """The acoustics read back (None from a file written before they were fitted)."""
    if d is None:
        return None
    return Acoustics(
        rt60_s=tuple(float(x) for x in d["rt60_s"]),
        floor_db=float("-inf") if d["floor_db"] is None else float(d["floor_db"]),
        floor_spectrum_db=tuple(float(x) for x in d["floor_spectrum_db"]),
        width=float(d["width"]),
        channels=int(d["channels"]),
        library_room=Room(**d["library_room"]),
        decoder_room=Room(**d["decoder_room"]),
    )


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a timbre file, checked to be one (format and version)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            raw = (f.metadata() or {}).get("timbre")
    except (SafetensorError, OSError, ValueError) as exc:
        raise HybridError(f"{path}: not a readable timbre file ({str(exc).splitlines()[0]})") from None
    try:
        meta = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise HybridError(f"{path}: not a hybrid timbre file")
    if meta.get("version") != VERSION:
        raise HybridError(
            f"{path}: timbre file version {meta.get('version')!r} (this hybrid reads {VERSION})"
        )
    return meta


def load_timbre(path: str | os.PathLike[str], weights_sha256: str) -> FittedTimbre:
    """The fitted timbre in `path`, refused unless it was fitted with the checkpoint weights `weights_sha256`."""
    from safetensors.numpy import load_file

    meta = read_meta(path)
    if meta["weights_sha256"] != weights_sha256:
        raise HybridError(
            f"{path}: fitted with another checkpoint (weights {meta['weights_sha256'][:12]}, loaded "
            f"{weights_sha256[:12]}); fit it again with `hybrid timbre fit`"
        )
    t = load_file(str(path))
    try:
        corrections = {
            name: Correction(*(t[f"{name}.{f.name}"] for f in fields(Correction)))
            if f"{name}.shift" in t
            else None
            for name in CORRECTIONS
        }
        library = None
        if meta["library"] is not None:
            notes = tuple(
                RecordedNote(
                    n["pitch_midi"], n["velocity"], n["held"], *(t[f"library.{i}.{a}"] for a in NOTE_ARRAYS)
                )
                for i, n in enumerate(meta["library"]["notes"])
            )
            library = NoteLibrary(notes, int(meta["library"]["sample_rate_hz"]))
        pitch_range = tuple(meta["pitch_range"]) if meta["pitch_range"] is not None else None
        return FittedTimbre(
            embedding=t["embedding"],
            correction=corrections["correction"],
            calibration_notes=int(meta["calibration_notes"]),
            pitch_range=pitch_range,  # type: ignore[arg-type]
            offset=t.get("offset"),
            half_correction=corrections["half_correction"],
            no_offset_correction=corrections["no_offset_correction"],
            library=library,
            acoustics=_acoustics_from_meta(meta.get("acoustics")),
            high_band=HighBand.from_dict(meta["high_band"]) if meta.get("high_band") else None,
            pending=PendingFit(t["pending_excerpt"], int(meta["pending_seed"]))
            if "pending_excerpt" in t
            else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HybridError(f"{path}: damaged timbre file ({exc})") from None
