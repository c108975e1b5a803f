"""The code's shape: imports go one way, from higher layers to lower ones, and shared facts are declared once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hybrid"

# Lowest first. A module may import from lower layers, and from its own package (hybrid.neural.* from
# hybrid.neural.*); never from a higher layer or a sibling of its layer. The package's __init__ is a lazy facade
# over all of them and is not a layer.
LAYERS = [
    ["errors", "constants"],
    ["outputs"],
    ["audio"],
    ["notes"],
    ["beats", "transform", "parts"],
    ["transcription", "metrics", "neural", "data"],
    ["calibration", "baselines", "training"],
    ["report", "api"],
    ["pipeline"],
    ["evaluate", "serve"],
    ["cli"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_of(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def hybrid_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hybrid":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "hybrid"}
    return found


def unit(module: str) -> str:
    """hybrid.neural.models -> neural; hybrid.pipeline -> pipeline."""
    return module.split(".")[1]


def violations(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        src = module_of(path, package)
        if src == "hybrid":
            continue
        for dst in hybrid_imports(path):
            if dst == "hybrid" or unit(dst) not in LAYER:
                bad.append(f"{src} imports {dst}, which is in no layer")
            elif unit(dst) != unit(src) and LAYER[unit(dst)] >= LAYER[unit(src)]:
                bad.append(f"{src} (layer {LAYER[unit(src)]}) imports {dst} (layer {LAYER[unit(dst)]})")
    return bad


def test_every_module_has_a_layer():
    units = {unit(module_of(p)) for p in PACKAGE.rglob("*.py") if module_of(p) != "hybrid"}
    assert units == set(LAYER)


def test_imports_go_from_higher_layers_to_lower_ones():
    assert violations() == []


def test_the_neural_layer_knows_nothing_of_transcription_or_metrics():
    for path in (PACKAGE / "neural").glob("*.py"):
        assert not {m for m in hybrid_imports(path) if unit(m) in ("transcription", "metrics", "calibration")}


def test_the_layer_check_can_fail(tmp_path):
    # A module of the neural layer that imports the transcriber is caught, and so is an upward import.
    fake = tmp_path / "hybrid"
    (fake / "neural").mkdir(parents=True)
    (fake / "neural" / "bad.py").write_text("from hybrid.transcription import Transcriber\n")
    (fake / "audio.py").write_text("import hybrid.pipeline\n")
    assert violations(fake) == [
        "hybrid.audio (layer 2) imports hybrid.pipeline (layer 8)",
        "hybrid.neural.bad (layer 5) imports hybrid.transcription (layer 5)",
    ]


def test_the_stage_order_is_written_once():
    # The note check, the rendering and its loudness normalisation happen in one function of the package.
    calls = {
        "note_check(": [p for p in PACKAGE.rglob("*.py") if "note_check(" in p.read_text()],
        "render_timbre(": [
            p
            for p in PACKAGE.rglob("*.py")
            if "render_timbre(" in p.read_text() and p.parent.name != "calibration"
        ],
    }
    assert [p.name for p in calls["render_timbre("]] == ["pipeline.py"]
    assert (PACKAGE / "pipeline.py").read_text().count("render_timbre(") == 1
    callers = [p for p in calls["note_check("] if p.parent.name != "calibration"]
    assert [p.name for p in callers] == ["pipeline.py"]
    assert (PACKAGE / "pipeline.py").read_text().count("note_check(") == 1


@pytest.mark.parametrize(
    ("fact", "pattern"),
    [
        ("the decoder's sample rate", r"\b16_?000\b"),
        ("A4 = 440 Hz (MIDI <-> Hz)", r"\b440(\.0)?\b"),
        ("the FluidR3 GM SoundFont's path", r"FluidR3_GM\.sf2"),
        ("MIDI's default tempo", r"\b120\.0\b"),
        ("NSynth's 3 s hold", r"\b(HOLD_S|HOLD_END_S)\s*=|hold_s: float = 3\.0"),
        ("the frame hop", r"\bFRAME_HOP\s*=\s*\d"),
    ],
)
def test_each_shared_fact_is_declared_once(fact, pattern):
    where = [
        f"{p.relative_to(PACKAGE)}:{i + 1}"
        for p in sorted(PACKAGE.rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines())
        if re.search(pattern, line.split("#")[0])
    ]
    assert len(where) <= 1 and all(w.startswith("constants.py") for w in where), (fact, where)
