"""Notes -> frame-rate conditioning for the decoder, one track per voice (at hybrid.constants.FRAME_RATE_HZ).

The channels, their order and their constants are the decoder's input format: a checkpoint records them
(`spec()`), and loading refuses one trained on another format.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid.constants import FRAME_RATE_HZ, midi_to_hz
from hybrid.notes import Note, NoteSequence

# Channels of the conditioning tensor, in order.
COND_CHANNELS = (
    "pitch",  # (MIDI pitch + bend - 60) / 24, held through the release
    "velocity",  # velocity / 127, held through the release
    "gate",  # 1 while the key is down
    "onset",  # 1 on the note's first two frames
    "since_onset_fast",  # exp(-t / 50 ms)
    "since_onset_mid",  # exp(-t / 0.5 s)
    "since_onset_slow",  # exp(-t / 2 s)
    "since_release_fast",  # exp(-t / 0.1 s) after the key is up, 0 while held
    "since_release_slow",  # exp(-t / 0.5 s) after the key is up
    "active",  # 1 from a note's onset until the next note of the voice (or the end)
)
N_COND = len(COND_CHANNELS)
CH = {name: i for i, name in enumerate(COND_CHANNELS)}  # channel name -> index
# The pitch channel is (MIDI pitch - PITCH_CENTER_MIDI) / PITCH_SCALE_SEMITONES: about -1..1 over the piano's
# middle four octaves.
PITCH_CENTER_MIDI = 60.0
PITCH_SCALE_SEMITONES = 24.0
ONSET_FRAMES = 2  # the onset channel is 1 on this many frames
SINCE_ONSET_S = (0.05, 0.5, 2.0)  # time constants of since_onset_fast, _mid, _slow
SINCE_RELEASE_S = (0.1, 0.5)  # time constants of since_release_fast, _slow
RELEASE_TAIL_S = 1.0  # how long a voice keeps sounding after its last note, at most


def spec() -> dict[str, object]:
    """The conditioning format as a checkpoint records it (format 2), to be compared on load."""
    return {
        "channels": list(COND_CHANNELS),
        "pitch_center_midi": PITCH_CENTER_MIDI,
        "pitch_scale_semitones": PITCH_SCALE_SEMITONES,
        "onset_frames": ONSET_FRAMES,
        "since_onset_s": list(SINCE_ONSET_S),
        "since_release_s": list(SINCE_RELEASE_S),
        "frame_rate_hz": FRAME_RATE_HZ,
    }


def pitch_channel(midi: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """MIDI pitch -> the pitch channel's value."""
    return (np.asarray(midi, np.float64) - PITCH_CENTER_MIDI) / PITCH_SCALE_SEMITONES


def channel_midi(value: Any) -> Any:
    """The pitch channel's value -> MIDI pitch (the inverse of pitch_channel). Arrays and tensors keep their
    type and precision."""
    return value * PITCH_SCALE_SEMITONES + PITCH_CENTER_MIDI


def allocate_voices(seq: NoteSequence, max_voices: int | None = None) -> list[list[Note]]:
    """Split notes into monophonic voices: each note goes to the voice that has been free the longest.
    With max_voices, a note that finds no free voice takes over the voice whose note started first."""
    voices: list[list[Note]] = []
    for n in seq.sorted().notes:
        free = [i for i, v in enumerate(voices) if v[-1].offset_s <= n.onset_s + 1e-6]
        if free:
            best = min(free, key=lambda i: voices[i][-1].offset_s)
            voices[best].append(n)
        elif max_voices is None or len(voices) < max_voices:
            voices.append([n])
        else:
            steal = min(range(len(voices)), key=lambda i: voices[i][-1].onset_s)
            last = voices[steal][-1]
            voices[steal][-1] = Note(
                last.onset_s, n.onset_s, last.pitch_midi, last.velocity, last.bend_semitones
            )
            voices[steal].append(n)
    return voices


def voice_conditioning(notes: list[Note], n_frames: int) -> npt.NDArray[np.float32]:
    """(N_COND, n_frames) conditioning of one monophonic voice."""
    c = np.zeros((N_COND, n_frames), np.float32)
    t = np.arange(n_frames) / FRAME_RATE_HZ
    for i, n in enumerate(notes):
        nxt = notes[i + 1].onset_s if i + 1 < len(notes) else n.offset_s + RELEASE_TAIL_S
        a = int(round(n.onset_s * FRAME_RATE_HZ))
        off = int(round(n.offset_s * FRAME_RATE_HZ))
        b = min(n_frames, int(round(nxt * FRAME_RATE_HZ)))
        if a >= n_frames or b <= a:
            continue
        seg = slice(a, b)
        pitch = np.full(b - a, n.pitch_midi, np.float64)
        if n.bend_semitones:
            held = max(1, min(off, b) - a)
            curve = np.interp(
                np.arange(held), np.linspace(0, held, len(n.bend_semitones), endpoint=False), n.bend_semitones
            )
            pitch[:held] += curve
            pitch[held:] += n.bend_semitones[-1]
        c[CH["pitch"], seg] = pitch_channel(pitch)
        c[CH["velocity"], seg] = n.velocity / 127.0
        c[CH["gate"], a : min(off, b)] = 1.0
        c[CH["onset"], a : min(a + ONSET_FRAMES, b)] = 1.0
        since_on = t[seg] - n.onset_s
        for name, tau in zip(
            ("since_onset_fast", "since_onset_mid", "since_onset_slow"), SINCE_ONSET_S, strict=True
        ):
            c[CH[name], seg] = np.exp(-since_on / tau)
        if off < b:
            since_off = np.maximum(t[off:b] - n.offset_s, 0)
            for name, tau in zip(("since_release_fast", "since_release_slow"), SINCE_RELEASE_S, strict=True):
                c[CH[name], off:b] = np.exp(-since_off / tau)
        c[CH["active"], seg] = 1.0
    return c


def sequence_conditioning(
    seq: NoteSequence, max_voices: int | None = None, tail_s: float = RELEASE_TAIL_S
) -> npt.NDArray[np.float32]:
    """(voices, N_COND, frames) for a whole note sequence."""
    n_frames = int(np.ceil((seq.end_s + tail_s) * FRAME_RATE_HZ))
    voices = allocate_voices(seq, max_voices)
    if not voices:
        return np.zeros((0, N_COND, n_frames), np.float32)
    return np.stack([voice_conditioning(v, n_frames) for v in voices])


def f0_hz(cond: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The f0 track (Hz) encoded in a conditioning array's pitch channel (any leading shape)."""
    return midi_to_hz(channel_midi(cond[..., CH["pitch"], :])).astype(np.float32)
