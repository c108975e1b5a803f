"""General MIDI programs -> NSynth instrument families and sources.

NSynth labels every instrument with one of 11 families and one of 3 sources (how the sound was made). The
table below is our reading of the 128 General MIDI programs in those terms. Percussion (GM programs 113, 115-119:
unpitched or nearly so), sound effects (120-127), synth effects (96-103), the orchestra hit (55) and timpani
(47) are left out (None). Synth pads have no NSynth family of their own and are filed with synth_lead, the
family NSynth uses for sustained synthetic sounds.
"""

from __future__ import annotations

# NSynth's own enumerations (index = the integer id in examples.json).
FAMILIES = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)  # fmt: skip

_K, _E, _S = "acoustic", "electronic", "synthetic"

# (first program, last program, family, source) - inclusive ranges, in GM order.
GM_TABLE: tuple[tuple[int, int, str | None, str | None], ...] = (
    (0, 1, "keyboard", _K),  # acoustic grand, bright acoustic piano
    (2, 2, "keyboard", _E),  # electric grand
    (3, 3, "keyboard", _K),  # honky-tonk piano
    (4, 5, "keyboard", _E),  # electric pianos 1-2
    (6, 6, "keyboard", _K),  # harpsichord
    (7, 7, "keyboard", _E),  # clavinet
    (
        8,
        15,
        "mallet",
        _K,
    ),  # celesta, glockenspiel, music box, vibraphone, marimba, xylophone, tubular bells, dulcimer
    (16, 18, "organ", _E),  # drawbar, percussive, rock organ
    (19, 20, "organ", _K),  # church organ, reed organ
    (21, 23, "reed", _K),  # accordion, harmonica, tango accordion
    (24, 25, "guitar", _K),  # nylon, steel
    (26, 31, "guitar", _E),  # jazz, clean, muted, overdriven, distortion, harmonics
    (32, 32, "bass", _K),  # acoustic bass
    (33, 37, "bass", _E),  # finger, pick, fretless, slap 1-2
    (38, 39, "bass", _S),  # synth bass 1-2
    (40, 46, "string", _K),  # violin, viola, cello, contrabass, tremolo, pizzicato, harp
    (47, 47, None, None),  # timpani: percussion
    (48, 49, "string", _K),  # string ensembles 1-2
    (50, 51, "string", _S),  # synth strings 1-2
    (52, 53, "vocal", _K),  # choir aahs, voice oohs
    (54, 54, "vocal", _S),  # synth voice
    (55, 55, None, None),  # orchestra hit: an effect
    (56, 61, "brass", _K),  # trumpet, trombone, tuba, muted trumpet, french horn, brass section
    (62, 63, "brass", _S),  # synth brass 1-2
    (64, 71, "reed", _K),  # saxophones, oboe, english horn, bassoon, clarinet
    (72, 79, "flute", _K),  # piccolo, flute, recorder, pan flute, blown bottle, shakuhachi, whistle, ocarina
    (80, 95, "synth_lead", _S),  # leads 1-8, pads 1-8
    (96, 103, None, None),  # synth effects
    (104, 106, "guitar", _K),  # sitar, banjo, shamisen
    (107, 107, "string", _K),  # koto
    (108, 108, "mallet", _K),  # kalimba
    (109, 109, "reed", _K),  # bagpipe
    (110, 110, "string", _K),  # fiddle
    (111, 111, "reed", _K),  # shanai
    (112, 112, "mallet", _K),  # tinkle bell
    (113, 113, None, None),  # agogo
    (114, 114, "mallet", _K),  # steel drums
    (115, 127, None, None),  # woodblock, taiko, toms, synth drum, reverse cymbal, sound effects
)


def gm_family_source(program: int) -> tuple[str, str] | None:
    """(family, source) of a GM program 0-127, or None when it is left out of the data."""
    if not 0 <= program <= 127:
        raise ValueError(f"GM program must be 0-127, got {program}")
    for lo, hi, family, source in GM_TABLE:
        if lo <= program <= hi:
            return (family, source) if family and source else None
    raise AssertionError("GM_TABLE covers 0-127")


def gm_program_name(program: int) -> str:
    import pretty_midi

    return str(pretty_midi.program_to_instrument_name(program))
