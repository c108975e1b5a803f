"""SFZ instruments -> the recorded notes they map: one take per region, for the sample-library builder.

SFZ (https://sfzformat.com) is a text format: headers (<control>, <global>, <master>, <group>, <region>) each
followed by `opcode=value` pairs; a region inherits what the headers above it set. What is read:

- `sample` (relative to the file's folder and <control>'s `default_path`; `\\` taken as `/`; built-in
  generators such as `*sine` skipped), `offset` and `end` (in the sample's frames);
- the pitch: `pitch_keycenter`, else `key`, else a region of one key (`lokey` = `hikey`); numbers or names
  (c4 = 60, as SFZ spells them; `c#4`, `db4`); none: the builder reads the sample's name or measures it;
- the velocity: `hivel` (the top of the region's layer; 127 when unset);
- `#define $NAME value` and `#include "file"` (from the top file's folder, else the including file's; a
  path may name a define; at most 16 deep);
- `//` and `/* */` comments. Regions played on release (`trigger=release`, `release_key`) are skipped.
Everything else (envelopes, filters, round robins, curves, effects) is ignored: the builder keeps each
recording as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hybrid.errors import HybridError

MAX_INCLUDE_DEPTH = 16
_HEADERS = ("control", "global", "master", "group", "region")
_TOKEN_RE = re.compile(r"<(\w+)>|([A-Za-z0-9_]+)=")
_NOTE_RE = re.compile(r"^([a-g])(#|b)?(-1|[0-9])$")
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True)
class Region:
    """One recorded note an SFZ file maps: its file, pitch (None: not given), velocity and frames to use."""

    sample: Path
    pitch: int | None
    velocity: int
    offset: int = 0
    end: int | None = None  # the last frame played (SFZ's `end`), None: to the file's end


def sfz_note(value: str) -> int | None:
    """An SFZ key: a MIDI number or a name (c4 = 60, c#4, db4); None when it is neither or out of range."""
    v = value.strip().lower()
    if re.fullmatch(r"-?\d+", v):
        n = int(v)
    else:
        m = _NOTE_RE.match(v)
        if not m:
            return None
        letter, accidental, octave = m.groups()
        n = 12 * (int(octave) + 1) + _STEPS[letter] + {"#": 1, "b": -1}.get(accidental or "", 0)
    return n if 0 <= n <= 127 else None


def _source(path: Path, depth: int = 0, top: Path | None = None) -> str:
    """The file's text, comments removed, #include'd files read in place: found, as sforzando finds them,
    from the folder of the top file (`top`), else from the including file's."""
    if depth > MAX_INCLUDE_DEPTH:
        raise HybridError(f"{path}: #include nested more than {MAX_INCLUDE_DEPTH} deep")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HybridError(f"{path}: cannot read the SFZ file ({exc.strerror or exc})") from None
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)

    def include(m: re.Match[str]) -> str:
        # a path may name a #define made above it (`#define $DIR Data` then `#include "$DIR/x.sfz"`)
        defined = dict(re.findall(r"#define\s+(\$\w+)\s+(\S+)", text[: m.start()]))
        name = _substituted(m.group(1), defined).replace("\\", "/")
        root = path.parent if top is None else top
        found = root / name if (root / name).exists() else path.parent / name
        return "\n" + _source(found, depth + 1, root) + "\n"

    return re.sub(r'#include\s+"([^"]+)"', include, text)


def _expand(text: str) -> str:
    """#define $NAME value: each $NAME after it is replaced (longest names first)."""
    defines: dict[str, str] = {}
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*#define\s+(\$\w+)\s+(.*?)\s*$", line)
        if m:
            defines[m.group(1)] = m.group(2)
            continue
        out.append(_substituted(line, defines))
    return "\n".join(out)


def _substituted(text: str, defines: dict[str, str]) -> str:
    """Each $NAME of `defines` in `text` replaced by its value (longest names first: $VEL before $V)."""
    for name in sorted(defines, key=len, reverse=True):
        text = text.replace(name, defines[name])
    return text


def _opcodes(line_text: str) -> list[tuple[str, str, str]]:
    """(kind, name, value) in order: ('header', 'region', '') or ('opcode', 'sample', 'a b.wav'). A value runs
    to the next opcode or header on its line (so sample names may hold spaces)."""
    found: list[tuple[str, str, str]] = []
    marks = list(_TOKEN_RE.finditer(line_text))
    for i, m in enumerate(marks):
        if m.group(1) is not None:
            found.append(("header", m.group(1).lower(), ""))
            continue
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(line_text)
        found.append(("opcode", m.group(2).lower(), line_text[m.end() : stop].strip()))
    return found


def read_sfz(path: str | Path) -> list[Region]:
    """The regions of an SFZ instrument (see the module's docstring), in the file's order."""
    path = Path(path)
    if not path.is_file():
        raise HybridError(f"{path}: no such SFZ file")
    text = _expand(_source(path))
    levels: dict[str, dict[str, str]] = {h: {} for h in _HEADERS}
    current: str | None = None
    regions: list[dict[str, str]] = []

    def close() -> None:
        if current == "region":
            merged: dict[str, str] = {}
            for h in _HEADERS:
                merged.update(levels[h])
            regions.append(merged)

    for line in text.splitlines():
        for kind, name, value in _opcodes(line):
            if kind == "header":
                close()
                current = name if name in _HEADERS else None  # <curve>, <effect>, ... are skipped
                if current is not None:
                    # a header starts afresh below itself: a new group forgets the last group's opcodes
                    for h in _HEADERS[_HEADERS.index(current) :]:
                        levels[h] = {}
            elif current is not None:
                levels[current][name] = value
    close()
    return [r for r in (_region(path, o) for o in regions) if r is not None]


def _region(path: Path, o: dict[str, str]) -> Region | None:
    sample = o.get("sample", "").replace("\\", "/")
    if (
        not sample
        or sample.startswith("*")
        or o.get("trigger", "attack").lower() in ("release", "release_key")
    ):
        return None
    base = path.parent / o.get("default_path", "").replace("\\", "/")
    pitch = None
    for key in ("pitch_keycenter", "key"):
        if key in o:
            pitch = sfz_note(o[key])
            break
    if pitch is None and "lokey" in o and o.get("lokey") == o.get("hikey"):
        pitch = sfz_note(o["lokey"])

    def frames(key: str) -> int | None:
        try:
            return max(0, int(float(o[key]))) if key in o else None
        except ValueError:
            return None

    try:
        velocity = int(float(o.get("hivel", "127")))
    except ValueError:
        velocity = 127
    return Region(base / sample, pitch, min(max(velocity, 1), 127), frames("offset") or 0, frames("end"))
