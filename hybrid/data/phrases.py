"""Song-like material from single-instrument data: melodies and chords with their note lists.

Two ways: render a phrase with the instrument's own SoundFont preset (exact, for built sets), or assemble it
from the instrument's single 4 s notes (works for real NSynth too): each phrase note takes the recorded note
nearest in pitch and velocity, its first `duration` seconds, then the note's own release (the recording from
3 s on), joined with short crossfades.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from hybrid.constants import NSYNTH_HOLD_S, SAMPLE_RATE_HZ
from hybrid.data.nsynth import Example
from hybrid.notes import Note, NoteSequence


def random_phrase(
    rng: np.random.Generator,
    kind: str = "melody",
    duration_s: float = 4.0,
    pitch_range: tuple[int, int] = (48, 76),
    velocity_range: tuple[int, int] = (50, 110),
    max_voices: int = 4,
    min_ioi_s: float = 0.1,
) -> NoteSequence:
    """A random phrase: 'melody' (one voice, staccato to legato, 0.05-1 s notes) or 'chords' (2-max_voices
    notes struck together, sometimes rolled). Onsets are at least min_ioi_s apart (a transcription test
    wants notes longer than basic-pitch's 128 ms minimum)."""
    notes: list[Note] = []
    lo, hi = pitch_range
    t = float(rng.uniform(0.0, 0.2))
    pitch = int(rng.integers(lo, hi + 1))
    while t < duration_s - 0.1:
        ioi = max(min_ioi_s, float(rng.choice([0.1, 0.15, 0.25, 0.33, 0.5, 0.75, 1.0])))
        vel = int(rng.integers(velocity_range[0], velocity_range[1] + 1))
        if kind == "melody":
            pitch = int(np.clip(pitch + rng.integers(-5, 6), lo, hi))
            dur = ioi * float(rng.choice([0.5, 0.8, 0.95, 1.0]))  # staccato ... legato
            dur = max(dur, min(ioi, min_ioi_s))
            notes.append(Note(t, min(t + dur, duration_s), float(pitch), vel))
        else:
            n_voices = int(rng.integers(2, max_voices + 1))
            root = int(rng.integers(lo, max(lo + 1, hi - 12)))
            shape = sorted(rng.choice([0, 3, 4, 7, 10, 12, 14, 16], size=n_voices - 1, replace=False))
            ioi = max(ioi, 0.33)
            spread = float(rng.choice([0.0, 0.0, 0.03]))  # sometimes rolled
            # Each pitch once: a unison (step 0 drawn again) or two steps clamped to `hi` would be the same
            # note twice, which no transcription can tell apart.
            pitches = sorted({min(hi, root + int(step)) for step in [0, *shape]})
            for i, pitch in enumerate(pitches):
                on = t + i * spread
                notes.append(Note(on, min(t + ioi * 0.95, duration_s), float(pitch), vel))
        t += ioi
    return NoteSequence([n for n in notes if n.offset_s > n.onset_s + 0.02]).sorted()


def assemble_phrase(
    seq: NoteSequence,
    notes: Sequence[Example],
    audio: Sequence[npt.NDArray[np.float32]],
    release_s: float = 0.5,
    fade_s: float = 0.01,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> npt.NDArray[np.float32]:
    """Mix a phrase from one instrument's single notes (examples and their loaded audio at `sample_rate_hz`,
    same order)."""
    sr = sample_rate_hz
    out = np.zeros(int((seq.end_s + release_s) * sr) + 1, np.float32)
    pv = np.array([[ex.pitch, ex.velocity] for ex in notes], dtype=np.float64)
    fade = int(fade_s * sr)
    ramp = np.linspace(1.0, 0.0, fade, dtype=np.float32)
    for n in seq.notes:
        cost = np.abs(pv[:, 0] - n.pitch_midi) * 10 + np.abs(pv[:, 1] - n.velocity) / 127
        k = int(np.argmin(cost))
        y = audio[k]
        held = min(int(n.duration_s * sr), int(NSYNTH_HOLD_S * sr))
        body = y[:held].copy()
        tail = y[int(NSYNTH_HOLD_S * sr) : int(NSYNTH_HOLD_S * sr) + int(release_s * sr)].copy()
        if len(body) > fade and len(tail) > fade:
            # Crossfade from the held sound into the recorded release, scaled to meet the body's level.
            lvl_body = np.sqrt(np.mean(body[-fade:] ** 2)) + 1e-9
            lvl_tail = np.sqrt(np.mean(tail[:fade] ** 2)) + 1e-9
            tail *= min(1.0, lvl_body / lvl_tail)
            tail[:fade] = tail[:fade] * (1 - ramp) + body[-fade:] * ramp
            body = body[:-fade]
        seg = np.concatenate([body, tail])
        if abs(n.pitch_midi - notes[k].pitch) > 0.01:  # nearest note is off: shift by resampling
            factor = 2 ** ((n.pitch_midi - notes[k].pitch) / 12)
            idx = np.arange(0, len(seg) - 1, factor)
            seg = np.interp(idx, np.arange(len(seg)), seg).astype(np.float32)
        a = int(n.onset_s * sr)
        b = min(len(out), a + len(seg))
        out[a:b] += seg[: b - a]
    return out


def render_phrase(
    seq: NoteSequence, soundfont: str, bank: int, program: int, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> npt.NDArray[np.float32]:
    """Render a phrase with a SoundFont preset (the instrument a built note came from)."""
    from hybrid.data.soundfont import SoundFontRenderer

    with SoundFontRenderer(soundfont, sample_rate_hz, gain=1.0) as r:
        return r.sequence(seq, bank, program)
