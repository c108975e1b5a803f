"""The note library (hybrid.calibration.note_library): B's clean notes analysed, and other notes played with them.

Known answers: the "recordings" are additive tones whose partial levels, noise level, tuning and spectral
envelope are set by hand; the analysis must read them back, and notes played at other pitches must keep the
envelope in absolute frequency (B's formant), the pitch asked for, and content up to Nyquist.
"""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.calibration.note_library import (
    HOP_S,
    MIN_NOTE_S,
    ONSET_RAMP_S,
    OVERLAP_MARGIN_S,
    POLY_GAP,
    REATTACK_DB,
    NoteLibrary,
    RecordedNote,
    _analyse_note,
    _clean_notes,
    _frame_map,
    _reattack_s,
    _with_others,
)
from hybrid.constants import midi_to_hz
from hybrid.notes import Note, NoteSequence

SR = 44100


def tone(
    pitch: float,
    seconds: float,
    levels_db,
    sr: int = SR,
    cents: float = 0.0,
    noise_rms: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A steady harmonic tone: partial k at levels_db(k * f0) dB (amplitude), plus white noise."""
    f0 = float(midi_to_hz(pitch)) * 2 ** (cents / 1200)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for k in range(1, int(sr / 2 / f0)):
        y += 10 ** (levels_db(k * f0) / 20) * np.sin(2 * np.pi * k * f0 * t)
    y += noise_rms * np.random.default_rng(seed).standard_normal(len(t))
    return y.astype(np.float32)


def formant(f_hz):
    """An envelope peaking at 1.5 kHz: -20 dB there, falling 18 dB per octave away from it."""
    return -20.0 - 18.0 * np.abs(np.log2(np.asarray(f_hz) / 1500.0))


def library_of(y: np.ndarray, pitch: float, seconds: float) -> NoteLibrary:
    lib = NoteLibrary.analyse(y, SR, NoteSequence([Note(0.0, seconds, pitch, 100)]))
    assert lib is not None
    return lib


def test_partials_and_noise_are_read_back():
    # Partials at -20, -26, -32 ... dB (6 dB per harmonic), white noise of RMS 0.001 (-60 dB).
    y = tone(57.0, 1.0, lambda f: -20.0 - 6.0 * (f / 220.0 - 1.0), noise_rms=1e-3)
    r = library_of(y, 57.0, 1.0).notes[0]
    middle = r.held // 2
    np.testing.assert_allclose(r.harmonic_db[middle, :6], -20.0 - 6.0 * np.arange(6), atol=1.0)
    np.testing.assert_allclose(r.harmonic_hz[middle, :3], [220.0, 440.0, 660.0], rtol=0.01)
    # The noise, as the variance of white noise of that density: 1e-6 -> -60 dB in every band.
    assert np.median(r.noise_db[middle]) == pytest.approx(-60.0, abs=2.0)


def test_tuning_is_not_kept_but_movement_is():
    # B plays 30 cents sharp: the library keeps no offset (A's notes are played at their own pitch).
    y = tone(69.0, 1.0, lambda f: -20.0 - 12.0 * np.log2(f / 440.0), cents=30.0)
    r = library_of(y, 69.0, 1.0).notes[0]
    assert np.abs(r.cents[5:-5]).max() < 3.0  # (the end frames straddle the recording's ends)
    out = library_of(y, 69.0, 1.0).render(NoteSequence([Note(0.0, 0.8, 64.0, 100)]), SR, tail_s=0.1)
    spec = np.abs(np.fft.rfft(out[int(0.2 * SR) : int(0.2 * SR) + int(0.5 * SR)] * np.hanning(int(0.5 * SR))))
    peak_hz = np.argmax(spec) * 2.0  # bins of 2 Hz
    assert peak_hz == pytest.approx(float(midi_to_hz(64.0)), abs=3.0)


def test_another_pitch_keeps_the_formant_in_absolute_frequency():
    # B at A3 (220 Hz) with its envelope peaking at 1.5 kHz; played at E4 (330 Hz) and A4 (440 Hz), the partial
    # nearest 1.5 kHz is the loudest (not the 7th harmonic, where B's loudest is).
    y = tone(57.0, 1.0, formant)
    lib = library_of(y, 57.0, 1.0)
    for pitch in (64.0, 69.0):
        out = lib.render(NoteSequence([Note(0.0, 0.8, pitch, 100)]), SR, tail_s=0.1)
        seg = out[int(0.2 * SR) : int(0.2 * SR) + int(0.5 * SR)] * np.hanning(int(0.5 * SR))
        spec = np.abs(np.fft.rfft(seg))
        f0 = float(midi_to_hz(pitch))
        levels = [spec[int(round(k * f0 / 2.0))] for k in range(1, 12)]
        loudest = (int(np.argmax(levels)) + 1) * f0
        nearest = min((k * f0 for k in range(1, 12)), key=lambda f: abs(f - 1500.0))
        assert loudest == pytest.approx(nearest)


def test_a_note_moved_an_octave_or_more_keeps_its_fundamental():
    # B at A2 (110 Hz) with its envelope peaking at 1.5 kHz. Played a fifth higher (165 Hz), B's envelope puts
    # the fundamental 57 dB under the loudest partial, so (more than KEEP_DB under) it is not played at all;
    # an octave or two higher (220, 440 Hz: 50 and 32 dB under) it is raised to 6 dB under the loudest.
    lib = library_of(tone(45.0, 1.0, formant), 45.0, 1.0)
    for pitch in (52.0, 57.0, 69.0):
        out = lib.render(NoteSequence([Note(0.0, 0.8, pitch, 100)]), SR, tail_s=0.1)
        spec = np.abs(
            np.fft.rfft(out[int(0.2 * SR) : int(0.2 * SR) + int(0.5 * SR)] * np.hanning(int(0.5 * SR)))
        )
        f0 = float(midi_to_hz(pitch))
        levels_db = [20 * np.log10(spec[int(round(k * f0 / 2.0))] + 1e-12) for k in range(1, int(8000 / f0))]
        under = max(levels_db) - levels_db[0]
        if pitch == 52.0:
            assert under > 60.0
        else:
            assert under == pytest.approx(6.0, abs=1.0)


def test_full_band_at_the_output_rate():
    # B's partials reach 15 kHz; a note played at 44.1 kHz has content above 8 kHz, and at 16 kHz none is asked
    # for above Nyquist (the render stays finite and the same length rule holds).
    y = tone(60.0, 1.0, lambda f: -20.0 - 2.0 * np.log2(f / 262.0))
    lib = library_of(y, 60.0, 1.0)
    notes = NoteSequence([Note(0.0, 0.5, 62.0, 100)])
    full = lib.render(notes, SR, tail_s=0.2)
    assert len(full) == int(np.ceil(0.7 * SR))
    spec = np.abs(np.fft.rfft(full)) ** 2
    freqs = np.fft.rfftfreq(len(full), 1 / SR)
    assert spec[freqs > 8000].sum() / spec.sum() > 0.05
    low = lib.render(notes, 16000, tail_s=0.2)
    assert len(low) == int(np.ceil(0.7 * 16000)) and np.isfinite(low).all()


def test_a_longer_note_sustains_and_a_decay_goes_on_decaying():
    # B: a 0.6 s note decaying at 20 dB/s. A 2 s note keeps decaying (no loop that swells back up).
    t = np.arange(int(0.6 * SR)) / SR
    y = tone(57.0, 0.6, lambda f: -20.0 - 0.0 * f) * 10 ** (-20.0 * t / 20.0).astype(np.float32)
    lib = library_of(y, 57.0, 0.6)
    out = lib.render(NoteSequence([Note(0.0, 2.0, 57.0, 100)]), SR, tail_s=0.0)
    rms = [np.sqrt(np.mean(out[int(a * SR) : int((a + 0.1) * SR)] ** 2)) for a in (0.3, 0.9, 1.5)]
    db = 20 * np.log10(rms)
    assert db[0] > db[1] > db[2]
    assert db[1] - db[2] == pytest.approx(20.0 * 0.6, abs=4.0)  # 20 dB/s over 0.6 s


def decaying(pitch: float, seconds: float, db_per_s: float, start_s: float = 0.0) -> np.ndarray:
    """tone() decaying at db_per_s, silent before start_s."""
    t = np.arange(int(seconds * SR)) / SR
    gain = 10 ** (-db_per_s * (t - start_s) / 20)
    y = tone(pitch, seconds, lambda f: -20.0 - 12.0 * np.log2(f / 100.0)) * gain
    return np.where(t >= start_s, y, 0.0).astype(np.float32)


def test_a_missed_attack_ends_the_note_there():
    # B: a plucked note decaying at 15 dB/s, struck again at 0.6 s (8 dB louder than it has decayed to), but
    # transcribed as one note of 1 s. The library's note ends at the second attack (less the margin), and its
    # release with it; where the rise begins is found within two frames.
    y = decaying(52.0, 1.2, 15.0) + 10 ** (-1.0 / 20) * decaying(52.0, 1.2, 15.0, start_s=0.6)
    again = _reattack_s(y, SR, Note(0.0, 1.0, 52.0, 100), 1.2)
    assert again == pytest.approx(0.6, abs=2 * HOP_S)
    (r,) = library_of(y, 52.0, 1.0).notes
    assert r.held == pytest.approx((0.6 - OVERLAP_MARGIN_S) / HOP_S, abs=2)
    assert r.frames * HOP_S <= 0.6 + HOP_S


def test_no_attack_is_found_in_a_decay_a_tremolo_or_a_low_note():
    note = Note(0.0, 1.5, 52.0, 100)
    assert _reattack_s(decaying(52.0, 1.5, 20.0), SR, note, 1.5) is None
    # a tremolo of +-2 dB at 5 Hz (4 dB from trough to peak, below REATTACK_DB)
    t = np.arange(int(1.5 * SR)) / SR
    tremolo = decaying(52.0, 1.5, 0.0) * 10 ** (2.0 * np.sin(2 * np.pi * 5.0 * t) / 20)
    assert 4.0 < REATTACK_DB
    assert _reattack_s(tremolo.astype(np.float32), SR, note, 1.5) is None
    # a low note (41 Hz, partials to the top): over a 23 ms window its level ripples with its waveform; over
    # four periods it does not
    low = decaying(28.0, 1.5, 3.0)
    assert _reattack_s(low, SR, Note(0.0, 1.5, 28.0, 100), 1.5) is None


def test_a_longer_note_stays_on_the_steady_frame_without_going_back():
    # B's note of 40 held frames and 10 of release; a note of 200 frames plays B's frames 0-30, then stays on
    # frame 30 with B's level trend (a decay of 0.1 dB per frame), then B's release from that level.
    held, frames = 40, 50
    level = np.concatenate([-0.1 * np.arange(held), -4.0 - 2.0 * np.arange(frames - held)])
    ref = RecordedNote(
        60.0,
        100,
        held,
        np.tile(np.arange(1, 4, dtype=np.float32) * 262.0, (frames, 1)),
        np.repeat(level[:, None], 3, axis=1).astype(np.float32),
        np.zeros((frames, 4), np.float32),
        np.zeros(frames, np.float32),
    )
    plan = _frame_map(ref, Note(0.0, 200 * HOP_S, 60.0, 100), tail_s=1.0)
    steady = 30
    np.testing.assert_array_equal(plan.spectrum[: steady + 1], np.arange(steady + 1))
    np.testing.assert_array_equal(plan.spectrum[steady + 1 : 200], steady)
    np.testing.assert_array_equal(plan.spectrum[200:], np.arange(held, frames))
    played = ref.level_db[plan.spectrum] + plan.level_db  # the level heard, frame by frame
    np.testing.assert_allclose(np.diff(played[:200]), -0.1, atol=1e-4)  # B's trend, without a jump
    assert played[200] == pytest.approx(played[199] + (level[held] - level[held - 1]), abs=1e-4)
    assert set(plan.movement[steady + 1 : 200]) <= set(range(held // 2, steady + 1))


def test_the_example_guitar_plays_long_notes_as_single_notes(transcriber):
    # examples/guitar.wav: a bass note, a chord, a bass note and a strum at the end of the file that the
    # transcription misses. Played from its library, long notes two octaves above B's transcribe as one note
    # each (before the missed strum ended B's note and the extension stayed on its steady frame: four to six).
    from pathlib import Path

    from hybrid.audio import load_audio, loudness_normalize, resample
    from hybrid.calibration.fit import library_excerpt
    from hybrid.constants import SAMPLE_RATE_HZ
    from hybrid.transcription import transcribe_audio

    y, sr = load_audio(Path(__file__).parent.parent / "examples" / "guitar.wav")
    b16 = resample(y, sr, SAMPLE_RATE_HZ)
    notes = transcribe_audio(b16, SAMPLE_RATE_HZ, transcriber=transcriber, with_tempo=False).notes
    lib = NoteLibrary.analyse(library_excerpt(b16, y, sr), SR, notes)
    assert lib is not None
    for pitch in (65.0, 72.0):
        out = lib.render(NoteSequence([Note(0.1, 1.6, pitch, 90)]), SR)
        heard = transcribe_audio(loudness_normalize(out), SR, transcriber=transcriber, with_tempo=False).notes
        assert [(round(n.onset_s, 1), n.pitch_midi) for n in heard.notes] == [(0.1, pitch)]


def test_clean_notes_ignore_quiet_partials_but_not_other_notes():
    main = Note(0.0, 1.0, 48.0, 100)
    octave_ghost = Note(0.1, 0.6, 60.0, 40)  # its own second harmonic, transcribed as a quieter note
    other = Note(0.2, 0.9, 51.0, 40)  # a minor third: another note
    assert _clean_notes(NoteSequence([main, octave_ghost])) == [main]
    # the other note disturbs the main one from its onset (less the margin) on, and sounds under the main one
    # at its own onset
    assert _clean_notes(NoteSequence([main, other])) == [Note(0.0, 0.2 - OVERLAP_MARGIN_S, 48.0, 100)]
    assert _clean_notes(NoteSequence([Note(0.0, 0.05, 60.0, 100)])) == []  # too short to learn from


def test_legato_notes_are_clean_until_the_next_begins_and_chords_are_not():
    # A legato phrase transcribed in a room: each note ends 0.4 s after the next begins, at the same level.
    # The first is clean until the second begins (less the margin); the others begin under their previous one.
    phrase = [Note(0.5 * i, 0.5 * i + 0.9, float(p), 90) for i, p in enumerate([57, 55, 60])]
    assert _clean_notes(NoteSequence(phrase)) == [Note(0.0, 0.5 - OVERLAP_MARGIN_S, 57.0, 90)]
    # one note transcribed in two parts: the first is clean until the second begins; the second, which has no
    # attack, is not (nor is a note that begins as one of another pitch ends)
    split = [Note(0.0, 0.3, 52.0, 100), Note(0.3, 4.0, 52.0, 100)]
    assert _clean_notes(NoteSequence(split)) == [Note(0.0, 0.3 - OVERLAP_MARGIN_S, 52.0, 100)]
    step = [Note(0.0, 0.3, 55.0, 100), Note(0.3, 4.0, 52.0, 100)]
    assert _clean_notes(NoteSequence(step)) == [Note(0.0, 0.3 - OVERLAP_MARGIN_S, 55.0, 100)]
    # a chord: every note has another sounding at its onset
    chord = [Note(0.0, 1.0, 60.0, 90), Note(0.01, 1.0, 64.0, 80), Note(0.0, 1.0, 67.0, 85)]
    assert _clean_notes(NoteSequence(chord)) == []
    # a note cut to less than MIN_NOTE_S is not kept
    assert _clean_notes(NoteSequence([Note(0.0, 1.0, 60.0, 90), Note(0.1, 0.5, 63.0, 90)])) == []


def test_a_note_that_another_sounds_with_keeps_its_own_partials():
    # A chord: the formant tone at A3 (57) and a louder flat-spectrum tone a major third up (61, -14 dB per
    # partial), whose partials lie between A3's or on them (A3's 5th, 1100 Hz, and its 4th, 1109 Hz). Read
    # with the other note masked, A3's first 12 partials are its own envelope (those on the other's read off
    # their neighbours) and what lies between them is no noise (the tones have none); read as if it were
    # alone, the other note's partials are taken for A3's and for noise.
    y = tone(57.0, 1.0, formant) + tone(61.0, 1.0, lambda f: -14.0 + 0.0 * f)
    a3, other = Note(0.0, 1.0, 57.0, 100), Note(0.0, 1.0, 61.0, 100)
    want = formant(midi_to_hz(57.0) * np.arange(1, 13))
    masked = _analyse_note(y, SR, a3, 1.0, (other,))
    alone = _analyse_note(y, SR, a3, 1.0)
    assert masked is not None and alone is not None
    m = masked.held // 2
    np.testing.assert_allclose(masked.harmonic_db[m, :12], want, atol=3.5)  # measured at most 3.1 dB off
    assert np.median(masked.noise_db[m]) < -80.0  # measured -87 dB
    assert np.abs(alone.harmonic_db[m, :12] - want).max() > 30.0  # measured 56 dB (the fundamental)
    assert np.median(alone.noise_db[m]) > -60.0  # measured -51 dB
    # an octave chord: every partial of the upper note is one of the lower's, so only the lower is kept
    octave = tone(48.0, 1.0, formant) + tone(60.0, 1.0, formant)
    chord = NoteSequence([Note(0.0, 1.0, 48.0, 100), Note(0.0, 1.0, 60.0, 100)])
    lib = NoteLibrary.analyse(octave, SR, chord)
    assert lib is not None and [r.pitch_midi for r in lib.notes] == [48.0]


def test_notes_with_others_fill_only_the_gaps_between_the_clean_notes():
    y = tone(57.0, 1.0, formant) + tone(61.0, 1.0, lambda f: -14.0 + 0.0 * f)
    chord = NoteSequence([Note(0.0, 1.0, 57.0, 100), Note(0.0, 1.0, 61.0, 100)])
    onsets = np.array([0.0, 0.0])
    # no clean note: the first of the chord (the longest first; here the first listed), and not the other,
    # a major third from it
    assert [r.pitch_midi for r in _with_others(y, SR, chord, [], onsets)] == [57.0]
    # a clean note less than POLY_GAP away: none; one farther: the chord's first
    assert _with_others(y, SR, chord, [57.0 + POLY_GAP - 0.5], onsets) == []
    assert [r.pitch_midi for r in _with_others(y, SR, chord, [57.0 - POLY_GAP], onsets)] == [57.0]


def test_only_short_notes_give_no_library():
    y = tone(57.0, 1.0, formant)
    short = NoteSequence([Note(0.1 * i, 0.1 * i + 0.08, 57.0, 100) for i in range(8)])
    assert NoteLibrary.analyse(y, SR, short) is None
    assert MIN_NOTE_S > 0.08


def test_the_note_check_keeps_the_library_only_while_it_keeps_the_notes(renderer, transcriber, monkeypatch):
    # A library made from a clean harmonic tone plays a melody that transcribes as itself: kept. The same
    # library made to play silence loses every note, against the decoder's rendering: dropped.
    import dataclasses

    from hybrid.calibration import FittedTimbre, note_check

    y = tone(60.0, 1.0, lambda f: -20.0 - 12.0 * np.log2(f / 262.0))
    lib = library_of(y, 60.0, 1.0)
    melody = NoteSequence(
        [Note(0.1 + 0.4 * i, 0.4 + 0.4 * i, float(p), 100) for i, p in enumerate([60, 64, 67, 72])]
    )
    emb = renderer.embed(y[::3].copy())  # any embedding: the decoder is what the library is held against
    timbre = FittedTimbre(emb, library=lib)
    assert note_check(renderer, melody, timbre, transcriber).use_library
    silent = dataclasses.replace(lib)
    monkeypatch.setattr(
        type(silent), "render", lambda self, notes, sr, tail_s=1.0, seed=0, **_: np.zeros(sr * 3, np.float32)
    )
    assert not note_check(
        renderer, melody, dataclasses.replace(timbre, library=silent), transcriber
    ).use_library


def test_shaped_noise_keeps_its_level_across_blocks():
    # 25 s of noise at one density: shaped in 10 s blocks, the level of every 0.5 s stays within 0.5 dB of the
    # asked variance (1e-4: -40 dB), at the joins too.
    from hybrid.calibration.note_library import NOISE_BANDS, NOISE_BLOCK, _add_shaped_noise

    hop = int(HOP_S * SR)
    frames = int(25.0 / HOP_S)
    y = np.zeros(frames * hop, np.float32)
    _add_shaped_noise(y, np.full((frames, NOISE_BANDS), 1e-4), hop, SR, SR, seed=0)
    y = y.astype(np.float64)
    seg = int(0.5 * SR)
    db = [10 * np.log10(np.mean(y[i : i + seg] ** 2)) for i in range(seg, len(y) - 2 * seg, seg // 2)]
    assert np.max(np.abs(np.array(db) + 40.0)) < 0.5, db
    assert NOISE_BLOCK * HOP_S < 25.0  # the span crosses at least two joins


def random_notes(seed: int, count: int, span_s: float, length_s: float) -> NoteSequence:
    """`count` notes of `length_s` at random onsets within `span_s` and random pitches C3-B4, velocity 90."""
    rng = np.random.default_rng(seed)
    onsets, pitches = np.sort(rng.uniform(0, span_s, count)), rng.integers(48, 72, count)
    return NoteSequence([Note(t, t + length_s, float(p), 90) for t, p in zip(onsets, pitches, strict=True)])


def test_notes_made_on_two_threads_add_up_the_same_every_time(monkeypatch):
    # The notes' partials are made on threads and added in the notes' order: the same samples on every run,
    # and the same as one note at a time (one thread).
    import hybrid.calibration.note_library as nl

    lib = library_of(tone(60.0, 1.0, formant, noise_rms=0.01), 60.0, 1.0)
    notes = random_notes(seed=3, count=40, span_s=4.0, length_s=0.6)
    first = lib.render(notes, 44100, seed=1)
    assert np.array_equal(first, lib.render(notes, 44100, seed=1))
    monkeypatch.setattr(nl, "SYNTH_THREADS", 1)
    assert np.array_equal(first, lib.render(notes, 44100, seed=1))
    assert np.abs(first).max() > 0.01


def test_the_song_takes_back_the_partials_made_for_the_check_window(monkeypatch):
    # The note check renders its window first and keeps the partials; the song, rendered after, takes those
    # of the same notes back instead of making them again: the same samples, fewer notes made.
    import hybrid.calibration.note_library as nl
    from hybrid.calibration.note_check import check_window

    lib = library_of(tone(60.0, 1.0, formant, noise_rms=0.01), 60.0, 1.0)
    notes = random_notes(seed=4, count=60, span_s=20.0, length_s=0.4)
    plain = lib.render(notes, 44100, seed=1)
    made: dict = {}
    window = check_window(notes)
    assert 10 < len(window.notes) < len(notes.notes)
    lib.render(window, 44100, seed=1, made=made, keep=True)
    calls = []
    original = nl.NoteLibrary._controls
    monkeypatch.setattr(nl.NoteLibrary, "_controls", staticmethod(lambda *a: calls.append(1) or original(*a)))
    assert np.array_equal(lib.render(notes, 44100, seed=1, made=made), plain)
    # every note is made or taken back; most of the window's notes are taken back
    assert len(made) <= len(window.notes)
    assert len(notes.notes) - len(calls) >= len(window.notes) - 3


def direct_sum(phase, amp, hop):
    """sum_k a_k(t) sin(k phase(t)) in double precision, each a_k ramped linearly between frames, faded in over
    ONSET_RAMP_S as every note is."""
    n = len(phase)
    j = np.arange(n) // hop
    r = (np.arange(n) % hop) / hop
    a_t = amp[j].astype(np.float64) + r[:, None] * (amp[j + 1].astype(np.float64) - amp[j])
    y = (a_t * np.sin(phase[:, None] * np.arange(1, amp.shape[1] + 1))).sum(axis=1)
    ramp = int(ONSET_RAMP_S * SR)
    y[:ramp] *= np.arange(ramp) / ramp
    return y


def gliding_note(partials, f0_hz, frames, hop=220, seed=0):
    """(phase, amp) of a note gliding up a semitone, partials of random levels, ending mid-frame."""
    rng = np.random.default_rng(seed)
    n = frames * hop - 77
    f0 = f0_hz * 2 ** (np.linspace(0.0, 1.0, n) / 12)
    amp = (rng.uniform(0.0, 1.0, (frames + 1, partials)) / np.arange(1, partials + 1)).astype(np.float32)
    return 2 * np.pi * np.cumsum(f0) / SR, amp


@pytest.mark.parametrize(("partials", "f0_hz", "atol"), [(256, 41.2, 1e-6), (64, 340.0, 3e-5)])
def test_partials_summed_by_recurrence_equal_the_direct_sum(partials, f0_hz, atol):
    # _sum_partials sums a_k(t) sin(k phase(t)) by Clenshaw's recurrence; the direct sum in double precision is
    # the answer: 256 partials (the most a note has; summed in double precision, measured error 5e-8) and 64
    # (the most summed in single precision, 1.3e-5).
    from hybrid.calibration.note_library import _sum_partials

    phase, amp = gliding_note(partials, f0_hz, 40)
    (got,) = _sum_partials([(phase, amp)], 220, SR)
    want = direct_sum(phase, amp, 220)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(want).max() > 0.9
    np.testing.assert_allclose(got, want, atol=atol)


def test_notes_summed_together_are_each_note_summed_alone(monkeypatch):
    # The partials of many notes are summed at once, laid side by side (a long note in several pieces): each
    # note comes out as it does alone, and as the direct sum.
    import hybrid.calibration.note_library as nl

    monkeypatch.setattr(nl, "SUM_FRAMES", 64)
    notes = [
        gliding_note(12, 900.0, 30, seed=1),
        gliding_note(100, 200.0, 150, seed=2),  # 3 pieces, double precision
        gliding_note(40, 500.0, 64, seed=3),
        gliding_note(3, 2000.0, 1, seed=4),
        gliding_note(70, 300.0, 20, seed=5),
    ]
    together = nl._sum_partials(notes, 220, SR)
    for (phase, amp), y in zip(notes, together, strict=True):
        (alone,) = nl._sum_partials([(phase, amp)], 220, SR)
        np.testing.assert_allclose(y, alone, atol=1e-6)
        np.testing.assert_allclose(y, direct_sum(phase, amp, 220), atol=3e-5)
