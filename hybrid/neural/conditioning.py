"""Notes -> frame-rate conditioning for the decoder, one track per voice.

Constants (all derived from NSynth's 16 kHz):
- FRAME_HOP = 64 samples -> 250 frames per second: fine enough for 4 ms onset placement, coarse enough that a
  30 s piece is only 7,500 frames per voice.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hybrid.notes import Note, NoteSequence

SAMPLE_RATE_HZ = 16000
FRAME_HOP = 64
FRAME_RATE_HZ = SAMPLE_RATE_HZ / FRAME_HOP  # 250
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
RELEASE_TAIL_S = 1.0  # how long a voice keeps sounding after its last note, at most


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
        c[0, seg] = (pitch - 60.0) / 24.0
        c[1, seg] = n.velocity / 127.0
        c[2, a : min(off, b)] = 1.0
        c[3, a : min(a + 2, b)] = 1.0
        since_on = t[seg] - n.onset_s
        c[4, seg] = np.exp(-since_on / 0.05)
        c[5, seg] = np.exp(-since_on / 0.5)
        c[6, seg] = np.exp(-since_on / 2.0)
        if off < b:
            since_off = t[off:b] - n.offset_s
            c[7, off:b] = np.exp(-np.maximum(since_off, 0) / 0.1)
            c[8, off:b] = np.exp(-np.maximum(since_off, 0) / 0.5)
        c[9, seg] = 1.0
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
    midi = cond[..., 0, :] * 24.0 + 60.0
    return (440.0 * 2 ** ((midi - 69.0) / 12.0)).astype(np.float32)
