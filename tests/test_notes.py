"""Notes -> MIDI -> notes, tempo and pitch bends included; note lists."""

from __future__ import annotations

import mido
import pytest

from hybrid.errors import HybridError
from hybrid.notes import Note, NoteSequence, read_midi, read_note_list, write_midi


def test_midi_round_trip_keeps_notes_and_tempo(tmp_path):
    seq = NoteSequence(
        [Note(0.25, 0.75, 60, 90), Note(0.5, 1.5, 64, 70), Note(2.0, 2.4, 67, 127, (0.0, 0.5, 1.0, 0.5))],
        tempo_bpm=93.5,
    )
    path = write_midi(seq, tmp_path / "n.mid")
    back = read_midi(path)
    assert back.tempo_bpm == pytest.approx(93.5, rel=1e-4)
    assert len(back) == 3
    for a, b in zip(seq.notes, back.notes, strict=True):
        # MIDI stores ticks: at 93.5 BPM and 220 ticks per beat one tick is 2.9 ms.
        assert b.onset_s == pytest.approx(a.onset_s, abs=3e-3)
        assert b.offset_s == pytest.approx(a.offset_s, abs=3e-3)
        assert (b.pitch_midi, b.velocity) == (a.pitch_midi, a.velocity)
    # The bend (non-overlapping note) comes back in semitones; 14-bit resolution over +-2 semitones.
    assert back.notes[2].bend_semitones == pytest.approx((0.0, 0.5, 1.0, 0.5), abs=1e-3)


def test_midi_tempo_is_in_the_file_itself(tmp_path):
    # Read the set_tempo meta message with mido, independently of pretty_midi.
    path = write_midi(NoteSequence([Note(0, 1, 60)], tempo_bpm=75.0), tmp_path / "t.mid")
    tempos = [m.tempo for tr in mido.MidiFile(path).tracks for m in tr if m.type == "set_tempo"]
    assert tempos and mido.tempo2bpm(tempos[0]) == pytest.approx(75.0, rel=1e-5)


def test_one_beat_lasts_60_over_tempo_seconds(tmp_path):
    # A note one beat long at 75 BPM is 0.8 s; its length in ticks must be exactly one beat.
    path = write_midi(NoteSequence([Note(0.0, 0.8, 60)], tempo_bpm=75.0), tmp_path / "b.mid")
    mid = mido.MidiFile(path)
    ticks = 0
    on_tick = off_tick = None
    for msg in mido.merge_tracks(mid.tracks):
        ticks += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            on_tick = ticks
        elif msg.type in ("note_off", "note_on"):
            off_tick = ticks
    assert off_tick - on_tick == mid.ticks_per_beat


def test_scaled_notes_and_tempo():
    seq = NoteSequence([Note(1.0, 2.0, 60)], tempo_bpm=100.0).scaled(0.5)
    assert (seq.notes[0].onset_s, seq.notes[0].offset_s, seq.tempo_bpm) == (0.5, 1.0, 200.0)


def test_transpose_drops_out_of_range():
    seq = NoteSequence([Note(0, 1, 60), Note(0, 1, 125)]).transposed(5)
    assert [n.pitch_midi for n in seq.notes] == [65]


def test_note_list_hz_and_midi(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("# comment\n0.0 0.5 440.0\n0.5, 1.0, 261.6255653\n")
    seq = read_note_list(f, "hz")
    assert [round(n.pitch_midi, 6) for n in seq.notes] == [69.0, 60.0]
    f.write_text("0.0 0.5 69\n")
    assert read_note_list(f, "midi").notes[0].pitch_midi == 69


def test_bad_note_list_names_line(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("0.0 0.5 440\n1.0 0.5 440\n")
    with pytest.raises(HybridError, match=r"bad.txt:2: offset"):
        read_note_list(f)


def test_corrupt_midi_is_a_clear_error(tmp_path):
    f = tmp_path / "x.mid"
    f.write_bytes(b"not midi at all")
    with pytest.raises(HybridError, match="not a readable MIDI file"):
        read_midi(f)


@pytest.mark.parametrize("line", ["nan 1.0 440", "0.5 inf 440", "0.1 0.5 nan"])
def test_non_finite_note_times_are_refused(tmp_path, line):
    p = tmp_path / "n.txt"
    p.write_text(f"0.0 0.4 440\n{line}\n")
    with pytest.raises(HybridError, match=r"n.txt:2: expected 'onset offset pitch' \(finite numbers\)"):
        read_note_list(p)
