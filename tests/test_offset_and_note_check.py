"""The calibration's offset (hybrid.calibration.offset) and the note check (hybrid.calibration.note_check).

Known answer: the "song" is the decoder's own rendering of some notes with a hidden offset (brighter upper
harmonics, a louder noise floor); fitting from zero must find an offset that sounds like it (librosa's
MFCCs, which the fit does not use, judge) and that points the same way as the hidden one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from hybrid.calibration import FittedTimbre, fit_timbre, note_check, render_fitted
from hybrid.calibration.fitted import PendingFit
from hybrid.calibration.note_check import check_window
from hybrid.calibration.offset import fit_offset
from hybrid.metrics import mfcc_stats
from hybrid.neural.conditioning import sequence_conditioning
from hybrid.notes import Note, NoteSequence

SR = 16000


def melody(pitches, start=0.1, step=0.4):
    return NoteSequence(
        [Note(start + step * i, start + step * i + 0.35, float(p), 90) for i, p in enumerate(pitches)]
    )


def hidden_offset(n: int, n_harmonics: int) -> np.ndarray:
    o = np.zeros(n, np.float32)
    o[1 + 6 : 1 + 20] = 1.5  # harmonics 7-20 up by e^1.5 (13 dB) against the rest
    o[1 + n_harmonics + 40 :] = 1.0  # the upper noise bands (about 5-8 kHz) louder
    return o


def test_offset_fit_recovers_a_hidden_offset(renderer):
    dec = renderer.decoder
    cfg = dec.cfg
    emb = renderer.embed(np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR).astype(np.float32))
    fit_notes = melody([55, 59, 62, 67, 64, 60, 57, 62, 65, 69])
    hidden = hidden_offset(1 + cfg.n_harmonics + cfg.noise_bands, cfg.n_harmonics)
    rng_range = (55.0, 69.0)
    song = render_fitted(renderer, fit_notes, FittedTimbre(emb, pitch_range=rng_range, offset=hidden), seed=1)

    fit = fit_offset(dec, sequence_conditioning(fit_notes), emb, song, steps=80, seed=0)
    assert fit is not None and fit.loss_after < 0.7 * fit.loss_before
    harm = slice(1, 1 + 15)  # harmonics 1-15: below 8 kHz for every one of these pitches, and audible
    h_fit = fit.offset[harm] - fit.offset[harm].mean()
    h_true = hidden[harm] - hidden[harm].mean()
    assert np.corrcoef(h_fit, h_true)[0, 1] > 0.9
    noise = fit.offset[1 + cfg.n_harmonics :]
    assert 0.7 < noise[45:].mean() < 1.3  # the hidden +1.0 on the upper bands (5.6-8 kHz), found

    # Other notes, in the same range: the fitted rendering is nearer the hidden timbre than the plain one.
    other = melody([57, 60, 64, 66, 62, 59])
    truth = mfcc_stats(
        render_fitted(renderer, other, FittedTimbre(emb, pitch_range=rng_range, offset=hidden))
    )
    fitted = mfcc_stats(
        render_fitted(renderer, other, FittedTimbre(emb, pitch_range=rng_range, offset=fit.offset))
    )
    plain = mfcc_stats(renderer.render(other, emb))
    assert np.linalg.norm(fitted - truth) < 0.5 * np.linalg.norm(plain - truth)


def test_offset_fit_needs_enough_audio(renderer):
    emb = np.zeros(renderer.decoder.cfg.embedding_dim, np.float32)
    notes = melody([60, 64, 67, 72, 76])  # 2.2 s and the release tail
    cond = sequence_conditioning(notes)
    assert fit_offset(renderer.decoder, cond, emb, np.zeros(3 * SR, np.float32), steps=2) is None  # silent
    assert fit_offset(renderer.decoder, cond, emb, np.ones(SR, np.float32), steps=2) is None  # 1 s
    assert fit_offset(renderer.decoder, cond, emb, np.ones(3 * SR, np.float32), steps=2) is not None
    assert fit_offset(renderer.decoder, cond[:0], emb, np.ones(3 * SR, np.float32), steps=2) is None


def test_offset_applies_as_far_as_the_notes_are_in_range(renderer):
    emb = np.zeros(renderer.decoder.cfg.embedding_dim, np.float32)
    offset = hidden_offset(1 + renderer.decoder.cfg.n_harmonics + renderer.decoder.cfg.noise_bands, 60)
    t = FittedTimbre(emb, pitch_range=(60.0, 72.0), offset=offset)
    far = NoteSequence([Note(0.1, 0.6, 36.0, 90)])  # two octaves below: strength 0
    near = NoteSequence([Note(0.1, 0.6, 64.0, 90)])
    np.testing.assert_array_equal(render_fitted(renderer, far, t), renderer.render(far, emb))
    assert not np.allclose(render_fitted(renderer, near, t), renderer.render(near, emb))
    # At full strength the renderer adds the offset to the decoder's raw output, as the decoder would.
    cond = torch.tensor(sequence_conditioning(near, tail_s=1.0))
    with torch.no_grad():
        y = renderer.decoder(
            cond,
            torch.tensor(emb[None]),
            cond.shape[-1] * 64,
            torch.Generator().manual_seed(0),
            torch.tensor(offset),
        )
    np.testing.assert_allclose(render_fitted(renderer, near, t), y.sum(0).numpy(), atol=1e-6)


def test_check_window_is_the_busiest_stretch():
    # Notes 3 s apart until 15 s (at most 3 in any 8 s), then eight 0.5 s apart from 20 s: the window is those
    # eight, moved to start at 0.1 s.
    sparse = [Note(3.0 * i, 3.0 * i + 0.3, 60.0, 90) for i in range(6)]
    busy = [Note(20.0 + 0.5 * i, 20.3 + 0.5 * i, 62.0 + i, 90) for i in range(8)]
    w = check_window(NoteSequence(sparse + busy), seconds=8.0)
    assert [n.pitch_midi for n in w.notes] == [62.0 + i for i in range(8)]
    assert w.notes[0].onset_s == pytest.approx(0.1) and w.notes[-1].offset_s == pytest.approx(0.1 + 3.5 + 0.3)
    # A sequence shorter than the window is checked as it is, unmoved.
    short = NoteSequence(busy)
    assert check_window(short, seconds=8.0) is short


# The notes checked: twelve across MIDI 48-72, leaping back and forth, 0.5 s apart.
LADDER = np.round(np.linspace(48, 72, 12))
CHECKED = NoteSequence(
    [
        Note(0.1 + 0.5 * i, 0.5 + 0.5 * i, float(p), 90)
        for i, p in enumerate(np.concatenate([LADDER[0::2], LADDER[1::2][::-1]]))
    ]
)


@pytest.mark.parametrize(
    ("name", "harmonic", "level", "kept"),
    [
        # Everything in the second harmonic, even at half strength: every note sounds an octave up, and the
        # notes are lost. (At +-2 instead of +-4, half strength is +-1, with which the notes survive since
        # the synthesizer's phase is summed in double precision: onset F1 0.96, as without the offset.)
        ("octave", 2, 4.0, 0.0),
        # The fourth: at full strength extra notes two octaves up; at half strength the notes survive.
        ("two octaves", 4, 2.0, 0.5),
        # A gentle tilt toward the low harmonics changes no note.
        ("tilt", None, 0.0, 1.0),
    ],
)
def test_note_check_keeps_the_offset_only_as_far_as_the_notes_survive(
    renderer, transcriber, name, harmonic, level, kept
):
    cfg = renderer.decoder.cfg
    emb = renderer.embed(np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR).astype(np.float32))
    offset = np.zeros(1 + cfg.n_harmonics + cfg.noise_bands, np.float32)
    if harmonic is None:
        offset[1 : 1 + cfg.n_harmonics] = np.linspace(0.5, -0.5, cfg.n_harmonics)
    else:
        offset[1 : 1 + cfg.n_harmonics] = -level
        offset[harmonic] = level
    timbre = FittedTimbre(emb, pitch_range=(48.0, 72.0), offset=offset)
    out = note_check(renderer, CHECKED, timbre, transcriber)
    if kept == 0.0:
        assert out.offset is None
    else:
        assert out.offset is not None
        np.testing.assert_allclose(out.offset, offset * kept, rtol=1e-6)


def test_dropping_the_offset_restores_the_correction_measured_without_it(renderer, transcriber):
    from hybrid.audio import load_audio

    from .conftest import EXAMPLES

    b, _ = load_audio(EXAMPLES / "trumpet.ogg", sample_rate_hz=SR)
    t = fit_timbre(renderer, b, transcriber=transcriber)
    assert t.offset is not None and t.correction is not None and t.no_offset_correction is not None
    plain = t.with_offset_share(0.0)
    assert plain.offset is None and plain.correction is t.no_offset_correction
    # ... which is the correction of the decoder's own resynthesis without an offset: calibrating with no offset fit.
    no_offset = fit_timbre(renderer, b, transcriber=transcriber, offset_steps=0)
    assert no_offset.offset is None
    np.testing.assert_allclose(plain.correction.envelope_db, no_offset.correction.envelope_db, atol=1e-5)
    # Half the offset comes with the correction of the resynthesis with half the offset, which differs from both.
    half = t.with_offset_share(0.5)
    np.testing.assert_allclose(half.offset, 0.5 * t.offset, rtol=1e-6)
    assert half.correction is t.half_correction
    for other in (t.correction, t.no_offset_correction):
        assert np.abs(half.correction.envelope_db - other.envelope_db).max() > 0.1
    assert t.with_offset_share(1.0) is t
    with pytest.raises(ValueError):
        t.with_offset_share(0.3)


def test_written_out_adam_matches_torch():
    from hybrid.calibration.offset import LEARNING_RATE, _adam_step

    torch.manual_seed(0)
    a = torch.randn(7, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([b], lr=LEARNING_RATE)
    moments = [(torch.zeros(7), torch.zeros(7))]
    for t in range(1, 11):
        for p in (a, b):
            p.grad = None
            (p**3 - 2 * p).sum().backward()
        _adam_step([a], moments, t)
        opt.step()
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


class _ScriptedLibrary:
    """A note library whose renderings the test scores itself (see _scripted_f1)."""

    sample_rate_hz = 44100

    def render(self, notes, sample_rate_hz, tail_s=1.0, seed=0, made=None, keep=False):
        return np.full(sample_rate_hz, 0.5, np.float32)  # marked: the library's rendering


class _CountingRenderer:
    """Records the offsets each run of the network is asked for; every mix is silence."""

    def __init__(self):
        self.calls: list[list] = []

    def mixes(self, notes, embedding, offsets, seed=0):
        self.calls.append([None if o is None else float(o.max()) for o in offsets])
        return [np.zeros(SR, np.float32) for _ in offsets]


@pytest.mark.parametrize(
    ("library_f1", "decoder_f1s", "plays_library", "share", "runs", "library_share"),
    [
        # the library within 0.2 of the decoder without its offset: it plays; the offset is not checked (the
        # decoder plays no note), so the network runs once, without an offset
        (0.70, [0.85], True, 1.0, [[None]], 0.0),
        # at 0.8 or more it plays whatever the decoder's F1, so the network does not run
        (0.80, [], True, 1.0, [], 0.0),
        # 0.3 below: the decoder plays, and keeps the whole offset, which loses no note against the floor 0.85;
        # then the library's rendering goes under it at the largest share (0.3, 0.15, 0.08) that loses no note
        # against the decoder as it plays (0.85): 0.3 does here
        (0.55, [0.85, 0.85, 0.85], False, 1.0, [[None], [2.0, 1.0]], 0.3),
        # ... and with half of the offset when the whole loses a note, none when half does too; 0.15 of the
        # library when 0.3 loses a note, 0.08 when 0.15 does too, none when every share does
        (0.55, [0.85, 0.80, 0.85, 0.80, 0.90], False, 0.5, [[None], [2.0, 1.0]], 0.15),
        (0.55, [0.85, 0.80, 0.84, 0.80, 0.84, 0.85], False, 0.0, [[None], [2.0, 1.0]], 0.08),
        (0.55, [0.85, 0.80, 0.84, 0.80, 0.84, 0.84], False, 0.0, [[None], [2.0, 1.0]], 0.0),
    ],
)
def test_the_library_is_held_to_the_decoder_without_its_offset(
    monkeypatch, library_f1, decoder_f1s, plays_library, share, runs, library_share
):
    import sys

    nc = sys.modules["hybrid.calibration.note_check"]  # the module (the package exports its function by name)
    scripted = iter(decoder_f1s)

    def scripted_f1(y, sample_rate_hz, window, transcriber):
        return library_f1 if y.max() == 0.5 else next(scripted)

    monkeypatch.setattr(nc, "_window_f1", scripted_f1)
    offset = np.full(8, 2.0, np.float32)
    # fitted with the decoder's calibration deferred: the check completes it only when the decoder is to play
    # (the scripted completion brings the offset)
    import hybrid.calibration.fit as fit

    completed = []

    def complete(renderer, t, transcriber=None):
        completed.append(t.pending is not None)
        return replace(t, offset=offset, pending=None)

    monkeypatch.setattr(fit, "complete_timbre", complete)
    timbre = FittedTimbre(
        np.ones(4, np.float32),
        pitch_range=(48.0, 72.0),
        library=_ScriptedLibrary(),
        pending=PendingFit(np.zeros(SR, np.float32)),
    )
    renderer = _CountingRenderer()
    out = note_check(renderer, melody([60, 64, 67]), timbre, transcriber=object())
    assert out.plays_library is plays_library
    assert out.library_share == library_share and out.blends_library is (library_share > 0)
    assert completed == ([] if plays_library else [True])
    assert (out.pending is None) is not plays_library
    assert renderer.calls == runs
    if plays_library or share == 0.0:  # the library plays: no offset was fitted
        assert out.offset is None
    else:
        np.testing.assert_allclose(out.offset, offset * share)
    assert next(scripted, None) is None  # every scripted F1 was asked for, no more


def test_the_library_goes_under_the_decoder_at_its_share_and_the_decoders_loudness():
    # render_timbre with the decoder playing and library_share 0.25: 0.75 of the decoder's rendering and 0.25 of
    # the library's brought to the decoder's RMS (computed here with numpy), the library's the longer one
    from hybrid.calibration import render_timbre

    t = np.arange(SR // 2) / SR
    decoded = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    class _Decoder:
        full_band = False  # a 16 kHz decoder, its band extended

        def render(self, notes, embedding, offset, seed=0, tail_s=1.0, full_band=False):
            return decoded.copy()

    timbre = FittedTimbre(
        np.ones(4, np.float32), library=_ScriptedLibrary(), use_library=False, library_share=0.25
    )
    assert timbre.blends_library and not timbre.plays_library
    assert timbre.player() == "the decoder, with 25% of the note library under it"
    y = render_timbre(_Decoder(), melody([60]), timbre, SR, acoustics=False)
    library = np.full(SR, 0.5)  # _ScriptedLibrary's rendering, a second long
    gain = np.sqrt(np.mean(decoded.astype(np.float64) ** 2)) / 0.5
    want = 0.25 * gain * library
    want[: len(decoded)] += 0.75 * decoded
    assert y.shape == (SR,)
    np.testing.assert_allclose(y, want, atol=1e-6)
    # share 0 (the check found that every share loses a note): the decoder alone, as before
    alone = render_timbre(_Decoder(), melody([60]), replace(timbre, library_share=0.0), SR, acoustics=False)
    np.testing.assert_array_equal(alone, decoded)


@pytest.mark.parametrize(("wet_f1", "kept"), [(0.9, True), (0.95, True), (0.85, False)])
def test_the_library_keeps_bs_room_only_while_the_notes_survive_it(monkeypatch, wet_f1, kept):
    # The library plays (0.9 on the window, dry); in B's room the window transcribes at wet_f1: the room stays
    # when that loses no note (ROOM_TOLERANCE 0), and is left out otherwise; with --dry it is not checked.
    import sys

    from hybrid.calibration.acoustics import Acoustics, Room

    nc = sys.modules["hybrid.calibration.note_check"]
    asked = []

    def scripted_f1(y, sample_rate_hz, window, transcriber):
        asked.append("dry" if y.max() == 0.5 and y.min() == 0.5 else "wet")
        return 0.9 if asked[-1] == "dry" else wet_f1

    monkeypatch.setattr(nc, "_window_f1", scripted_f1)
    room = Room(wet_db=-12.0, floor=False)
    acoustics = Acoustics((0.5, 0.5, 0.4, 0.3), float("-inf"), (0.0,) * 24, 0.0, 1, library_room=room)
    timbre = FittedTimbre(np.ones(4, np.float32), library=_ScriptedLibrary(), acoustics=acoustics)
    out = note_check(_CountingRenderer(), melody([60, 64, 67]), timbre, transcriber=object(), acoustics=True)
    assert out.plays_library and asked == ["dry", "wet"]
    assert out.use_room is kept and (out.room() == room) is kept
    asked.clear()
    assert note_check(_CountingRenderer(), melody([60, 64]), timbre, transcriber=object()).use_room
    assert asked == ["dry"]


@pytest.mark.parametrize(("library", "kept"), [(False, False), (True, True)])
def test_the_decoders_room_is_checked_too(monkeypatch, library, kept):
    # Without a library, and with no offset to check, the decoder's window is rendered once, transcribed dry
    # (0.9) and in the decoder's room (0.8): the room is left out. With a library that plays, the decoder's
    # room is not the one checked (the library's is dry here).
    import sys

    from hybrid.calibration.acoustics import Acoustics, Room

    nc = sys.modules["hybrid.calibration.note_check"]
    answers = iter([0.9, 0.8])
    monkeypatch.setattr(nc, "_window_f1", lambda y, sr, w, t: next(answers))
    acoustics = Acoustics((0.5,) * 4, float("-inf"), (0.0,) * 24, 0.0, 1, decoder_room=Room(wet_db=-6.0))
    timbre = FittedTimbre(
        np.ones(4, np.float32), acoustics=acoustics, library=_ScriptedLibrary() if library else None
    )
    renderer = _CountingRenderer()
    out = note_check(renderer, melody([60, 64, 67]), timbre, transcriber=object(), acoustics=True)
    assert out.use_room is kept and out.plays_library is library
    assert renderer.calls == ([] if library else [[None]])
    assert (next(answers, None) is None) is not library  # both answers asked for without a library
