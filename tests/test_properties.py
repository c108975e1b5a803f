"""Properties that must hold for any input (hypothesis draws the inputs, and shrinks any failure it finds)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid.constants import hz_to_midi, midi_to_hz
from hybrid.neural.conditioning import allocate_voices
from hybrid.notes import Note, NoteSequence, read_midi, write_midi
from hybrid.transform import MAX_RATE, MIN_RATE, stretch_notes, transpose_notes

TICKS_PER_BEAT = 220  # pretty_midi's default resolution, which write_midi uses


@st.composite
def note_sequences(draw, max_notes: int = 12, integer_pitch: bool = True) -> NoteSequence:
    n = draw(st.integers(1, max_notes))
    notes = []
    for _ in range(n):
        onset = draw(st.floats(0.0, 20.0, allow_nan=False))
        dur = draw(st.floats(0.05, 3.0, allow_nan=False))
        pitch = draw(st.integers(21, 108)) if integer_pitch else draw(st.floats(21.0, 108.0))
        notes.append(Note(onset, onset + dur, float(pitch), draw(st.integers(1, 127))))
    tempo = draw(st.floats(40.0, 240.0, allow_nan=False))
    return NoteSequence(notes, tempo).sorted()


@settings(max_examples=40, deadline=None)
@given(note_sequences())
def test_midi_round_trip_keeps_every_note_to_a_tick(tmp_path_factory, seq):
    # MIDI cannot hold two sounding notes of one pitch on one channel: such overlaps are left out of the input.
    last_off: dict[float, float] = {}
    notes = []
    for n in seq.notes:
        if n.onset_s >= last_off.get(n.pitch_midi, -1.0) + 0.05:
            notes.append(n)
            last_off[n.pitch_midi] = n.offset_s
    seq = NoteSequence(notes, seq.tempo_bpm)
    path = tmp_path_factory.mktemp("midi") / "n.mid"
    write_midi(seq, path)
    back = read_midi(path)
    tick_s = 60.0 / (seq.tempo_bpm * TICKS_PER_BEAT)
    assert back.tempo_bpm == np.float64(seq.tempo_bpm) or abs(back.tempo_bpm - seq.tempo_bpm) < 1e-3
    key = lambda n: (round(n.onset_s / tick_s), n.pitch_midi)  # noqa: E731
    a, b = sorted(seq.notes, key=key), sorted(back.notes, key=key)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.pitch_midi == y.pitch_midi and x.velocity == y.velocity
        assert abs(x.onset_s - y.onset_s) <= tick_s and abs(x.offset_s - y.offset_s) <= tick_s


@settings(max_examples=60, deadline=None)
@given(note_sequences(), st.floats(MIN_RATE, MAX_RATE))
def test_stretch_divides_times_multiplies_tempo_and_undoes(seq, rate):
    fast = stretch_notes(seq, rate)
    assert fast.tempo_bpm == np.float64(seq.tempo_bpm * rate) or np.isclose(
        fast.tempo_bpm, seq.tempo_bpm * rate
    )
    np.testing.assert_allclose(
        [n.onset_s for n in fast.notes], [n.onset_s / rate for n in seq.notes], rtol=1e-12
    )
    assert [n.pitch_midi for n in fast.notes] == [n.pitch_midi for n in seq.notes]
    if MIN_RATE <= 1.0 / rate <= MAX_RATE:
        back = stretch_notes(fast, 1.0 / rate)
        np.testing.assert_allclose(
            [n.offset_s for n in back.notes], [n.offset_s for n in seq.notes], rtol=1e-9
        )


@settings(max_examples=60, deadline=None)
@given(note_sequences(), st.integers(-30, 30))
def test_transpose_moves_pitches_keeps_times_and_drops_only_out_of_range(seq, k):
    up = transpose_notes(seq, k)
    kept = [n for n in seq.notes if 0 <= n.pitch_midi + k <= 127]
    assert [n.pitch_midi for n in up.notes] == [n.pitch_midi + k for n in kept]
    assert [n.onset_s for n in up.notes] == [n.onset_s for n in kept]
    if len(kept) == len(seq.notes):
        assert transpose_notes(up, -k).notes == seq.notes


@settings(max_examples=80, deadline=None)
@given(note_sequences(max_notes=20), st.one_of(st.none(), st.integers(1, 4)))
def test_voice_allocation_never_overlaps_and_keeps_every_onset(seq, max_voices):
    voices = allocate_voices(seq, max_voices)
    if max_voices is not None:
        assert len(voices) <= max_voices
    for v in voices:
        for prev, nxt in zip(v, v[1:], strict=False):
            assert prev.offset_s <= nxt.onset_s + 1e-6  # monophonic: each note ends before the next begins
    # Every note is played from its onset, in exactly one voice (a stolen voice shortens its note, no more).
    onsets = sorted((n.onset_s, n.pitch_midi) for v in voices for n in v)
    assert onsets == sorted((n.onset_s, n.pitch_midi) for n in seq.notes)


@given(st.floats(1.0, 20000.0))
def test_hz_and_midi_are_inverse(hz):
    assert np.isclose(midi_to_hz(hz_to_midi(hz)), hz, rtol=1e-12)
    assert float(midi_to_hz(69)) == 440.0 and np.isclose(hz_to_midi(261.6255653005986), 60.0)  # A4, middle C
