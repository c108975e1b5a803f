"""Whole songs: A's drums kept (--drums keep), the bass line with its own timbre, stems and MIDI per part."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hybrid.cli import app
from hybrid.errors import HybridError
from hybrid.notes import Note, NoteSequence
from hybrid.parts import DRUM_HITS_PER_S, bass_line, drum_hits_per_s, parse_note, split_drums, without_drums

from .conftest import EXAMPLES

SR = 22_050


def song_with_drums(seconds: float = 4.0) -> np.ndarray:
    """A held two-note harmony (A2 and E4, harmonic) under a click every 0.25 s (a bare hi-hat)."""
    t = np.arange(int(seconds * SR)) / SR
    tones = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for f0 in (110.0, 329.6) for k in range(1, 6))
    clicks = np.zeros_like(t)
    rng = np.random.default_rng(0)
    for start in np.arange(0.125, seconds - 0.1, 0.25):
        i = int(start * SR)
        clicks[i : i + 200] += 0.8 * rng.standard_normal(200) * np.exp(-np.arange(200) / 40)
    return (tones + clicks).astype(np.float32)


@pytest.mark.slow
def test_the_clicks_go_to_the_drums_and_the_tones_stay():
    y = song_with_drums()
    d = split_drums(y, SR)
    np.testing.assert_allclose(d.percussive + d.rest, y, atol=1e-6)  # the two parts are A, split
    t = np.arange(len(y)) / SR
    near_click = (t % 0.25 > 0.12) & (t % 0.25 < 0.14)
    between = (t % 0.25 > 0.18) & (t % 0.25 < 0.24)
    # the percussive part is loud at the clicks and quiet between them; the rest keeps the tones between them
    assert np.sqrt(np.mean(d.percussive[near_click] ** 2)) > 10 * np.sqrt(np.mean(d.percussive[between] ** 2))
    assert np.sqrt(np.mean(d.rest[between] ** 2)) == pytest.approx(np.sqrt(np.mean(y[between] ** 2)), rel=0.1)


def test_blocks_of_the_separation_join_without_a_seam(monkeypatch):
    from hybrid import parts

    y = song_with_drums(6.0)
    whole = split_drums(y, SR).percussive
    monkeypatch.setattr(parts, "HPSS_BLOCK_S", 1.0)  # six blocks, each with 2 s of context
    np.testing.assert_allclose(split_drums(y, SR).percussive, whole, atol=1e-4)


@pytest.mark.parametrize("shape", [(1025, 300), (40, 7), (9, 40)])
def test_the_median_filters_are_scipys(shape):
    # torch's medians in blocks of rows, against scipy's median_filter (librosa's), along each axis; the
    # short shapes reflect more than once
    from scipy.ndimage import median_filter

    from hybrid import parts

    x = np.abs(np.random.default_rng(1).standard_normal(shape)).astype(np.float32)
    for axis in (0, 1):
        size = [1, 1]
        size[axis] = parts.HPSS_KERNEL
        np.testing.assert_array_equal(parts._median(x, axis), median_filter(x, size=size, mode="reflect"))


def test_the_percussive_part_is_librosas():
    import librosa

    from hybrid.parts import HPSS_HOP, HPSS_MARGIN, HPSS_N_FFT, _percussive

    spec = librosa.stft(song_with_drums(), n_fft=HPSS_N_FFT, hop_length=HPSS_HOP)
    _, theirs = librosa.decompose.hpss(spec, margin=HPSS_MARGIN)
    ours = _percussive(spec)
    # the same masks; the product taken in another order (measured: within 1.9e-6 of a peak of 23)
    assert np.abs(theirs).max() > 1.0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_the_detector_hears_the_combos_drums_and_none_in_the_solos():
    from hybrid.audio import load_audio, mono

    # measured: Vibe Ace 0.59 noisy hits a second, the trumpet and guitar phrases none; every solo recording
    # of ../shared/data/instruments 0.34 or less (docs/design.md)
    vibe, sr = load_audio(EXAMPLES / "vibe_ace.ogg", sample_rate_hz=22_050)
    assert drum_hits_per_s(vibe, sr) > DRUM_HITS_PER_S + 0.1
    for solo in ("trumpet.ogg", "guitar.wav"):
        y, sr = load_audio(EXAMPLES / solo)
        assert drum_hits_per_s(mono(y), sr) < 0.1
    assert drum_hits_per_s(np.zeros(3 * SR, np.float32), SR) == 0.0


def test_a_long_song_is_heard_through_three_excerpts(monkeypatch):
    from hybrid import parts

    heard = []
    monkeypatch.setattr(parts, "_noisy_hits", lambda y: heard.append(len(y)) or 3)
    rate = 8_000
    # 60 s: heard whole (resampled to 22.05 kHz); 200 s: three 30 s excerpts, 3 hits in each
    assert drum_hits_per_s(np.zeros(60 * rate, np.float32), rate) == pytest.approx(3 / 60)
    assert heard == [60 * 22_050]
    heard.clear()
    assert drum_hits_per_s(np.zeros(200 * rate, np.float32), rate) == pytest.approx(9 / 90)
    assert heard == [30 * 22_050] * 3


@pytest.mark.slow
def test_a_solo_with_drums_keep_is_left_as_it_is(model):
    from hybrid.audio import load_audio
    from hybrid.pipeline import TransferOptions, result_settings, transfer_audio

    b, sr_b = sf.read(EXAMPLES / "guitar.wav", dtype="float32")
    timbre = model.fit_timbre(b if b.ndim == 1 else b.mean(axis=1), sr_b, library=False)
    a, sr_a = load_audio(EXAMPLES / "trumpet.ogg")
    dropped = transfer_audio(a, sr_a, timbre, model, TransferOptions(drums="drop", score=False))
    kept = transfer_audio(a, sr_a, timbre, model, TransferOptions(score=False))  # keep, the default
    assert kept.drums == "none found" and kept.drum_hits_per_s is not None and kept.drum_hits_per_s < 0.1
    np.testing.assert_array_equal(kept.audio, dropped.audio)  # nothing to keep: the same output
    said = result_settings(kept, TransferOptions())["drums"]
    assert said.startswith("none found (0.00 noisy percussive hits a second in A, drums from 0.45;")
    always = transfer_audio(a, sr_a, timbre, model, TransferOptions(drums="always", score=False))
    assert always.drums == "kept" and "drums" in always.stems


def test_split_in_place_is_the_same_split():
    a = song_with_drums(2.0)
    whole = split_drums(a.copy(), SR)
    own = a.copy()
    in_place = split_drums(own, SR, overwrite=True)
    assert in_place.rest is own  # A's own array became A less its drums
    np.testing.assert_array_equal(in_place.percussive, whole.percussive)
    np.testing.assert_array_equal(in_place.rest, whole.rest)
    np.testing.assert_allclose(whole.rest + whole.percussive, a, atol=1e-6)


@pytest.mark.slow
def test_the_mix_built_without_stems_is_the_mix_with_them(model, monkeypatch):
    # a transfer that writes no stems mixes the drums into the notes' own array, in blocks; the same mix
    # (two parts: the bass line in its own timbre, and the rest)
    from hybrid import pipeline
    from hybrid.pipeline import TransferOptions, transcribe_rhythm, transfer_transcription

    b, sr_b = sf.read(EXAMPLES / "guitar.wav", dtype="float32")
    timbre = model.fit_timbre(b if b.ndim == 1 else b.mean(axis=1), sr_b, library=False)
    options = TransferOptions(drums="always", drums_level_db=-3.0)
    song = transcribe_rhythm(song_with_drums(), SR, model, options)
    drums = song.drums.copy()
    with_stems = transfer_transcription(song, timbre, model, options, bass_timbre=timbre)
    assert set(with_stems.stems) == {"bass", "rest", "drums"}
    without = transfer_transcription(song, timbre, model, options, bass_timbre=timbre, keep_stems=False)
    assert without.stems == {}
    np.testing.assert_allclose(without.audio, with_stems.audio, atol=1e-6)
    assert without.output_notes == with_stems.output_notes
    np.testing.assert_array_equal(song.drums, drums)  # A's drums are read, not written
    # a caller that lets the song go: its drums wait on disk while the notes render; the same mix
    let_go = transfer_transcription(song, timbre, model, options, bass_timbre=timbre, release=True)
    assert song.drums is None and let_go.drums == "kept"
    np.testing.assert_array_equal(let_go.audio, with_stems.audio)
    assert let_go.output_notes == with_stems.output_notes  # scored while the output waited on disk
    # as `hybrid transfer` runs it: A handed over, its drums on disk from the split on, read back in many
    # blocks, resampled as a stream (22.05 -> 44.1 kHz); the level is summed in other blocks
    handed = pipeline._transcribe_rhythm([song_with_drums()], SR, model, options, overwrite=True, spill=True)
    assert handed.drums is None and handed.drums_file is not None
    assert handed.transcription.notes == song.transcription.notes
    monkeypatch.setattr(pipeline, "MIX_BLOCK", 10_000)
    streamed = transfer_transcription(
        handed, timbre, model, options, bass_timbre=timbre, keep_stems=False, release=True
    )
    np.testing.assert_allclose(streamed.audio, with_stems.audio, atol=1e-6)
    # one part, at A's own rate: the blocks as they are
    at_a = replace(options, sample_rate_hz=SR)
    handed = pipeline._transcribe_rhythm([song_with_drums()], SR, model, at_a, overwrite=True, spill=True)
    streamed = transfer_transcription(handed, timbre, model, at_a, keep_stems=False, release=True)
    whole = transfer_transcription(transcribe_rhythm(song_with_drums(), SR, model, at_a), timbre, model, at_a)
    np.testing.assert_array_equal(streamed.audio, whole.audio)
    # no drums: the output waits on disk while it is scored; the same
    plain = transcribe_rhythm(song_with_drums(), SR, model, TransferOptions(drums="drop"))
    held = transfer_transcription(plain, timbre, model, options, release=True)
    kept = transfer_transcription(plain, timbre, model, options)
    np.testing.assert_array_equal(held.audio, kept.audio)
    assert held.output_notes == kept.output_notes and held.onset_f1 == kept.onset_f1
    # the blocks: a mono part added into a stereo mix, scaled, from a shorter part
    y = np.ones((5, 2), np.float32)
    mixed = pipeline._sum_into(y, np.arange(3, dtype=np.float32), scale=2.0)
    np.testing.assert_array_equal(mixed, [[1, 1], [3, 3], [5, 5], [1, 1], [1, 1]])


def test_a_mix_as_timbre_song_is_fitted_without_its_drums(model):
    from hybrid.pipeline import FIT_VERSION, TransferOptions, fit_settings

    y = song_with_drums()
    stereo = np.stack([y, 0.5 * y], axis=1)
    harmonic = without_drums(stereo, SR)
    # channel by channel, the rest of split_drums
    np.testing.assert_array_equal(harmonic[:, 0], split_drums(y, SR).rest)
    np.testing.assert_array_equal(harmonic[:, 1], split_drums(0.5 * y, SR).rest)
    np.testing.assert_array_equal(without_drums(y, SR), split_drums(y, SR).rest)
    # fitted less its drums, the timbre is nearer to that of the tones alone than the timbre of the whole is
    t = np.arange(len(y)) / SR
    tones = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for f0 in (110.0, 329.6) for k in range(1, 6))
    clean = model.fit_timbre(tones.astype(np.float32), SR, calibrate=False).embedding
    whole = model.fit_timbre(stereo, SR, calibrate=False).embedding
    less = model.fit_timbre(stereo, SR, calibrate=False, drums="drop").embedding
    assert np.linalg.norm(less - clean) < 0.7 * np.linalg.norm(whole - clean)
    # the cache key and the .timbre file record the choice; timbres fitted whole keep their keys from before
    assert fit_settings(True, 3, True) == {
        "calibrate": True,
        "seed": 3,
        "library": True,
        "fit_version": FIT_VERSION,
    }
    assert fit_settings(True, 3, True, "drop")["drums"] == "drop"
    with pytest.raises(HybridError, match="--timbre-drums must be one of keep, drop"):
        TransferOptions(timbre_drums="maybe")


def n(on, off, pitch):
    return Note(on, off, float(pitch), 80)


def test_bass_line_is_the_lowest_voice_or_the_notes_under_the_split():
    seq = NoteSequence(
        [n(0.0, 2.0, 40), n(0.0, 0.5, 64), n(0.5, 1.0, 67), n(1.0, 1.5, 36), n(2.0, 2.5, 60), n(2.0, 2.5, 55)]
    )
    bass, rest = bass_line(seq)
    # 40 and 36 are lowest at their onsets; 64 and 67 sound over 40; at 2.0 s the lower of 60 and 55 is the bass
    assert sorted(x.pitch_midi for x in bass.notes) == [36, 40, 55]
    assert sorted(x.pitch_midi for x in rest.notes) == [60, 64, 67]
    bass, rest = bass_line(seq, split_at=48.0)
    assert sorted(x.pitch_midi for x in bass.notes) == [36, 40]
    assert len(rest.notes) == 4


def test_split_at_takes_names_and_numbers():
    assert parse_note("C3") == 48.0 and parse_note("F#2") == 42.0 and parse_note("50") == 50.0
    assert parse_note(None) is None
    with pytest.raises(HybridError, match="neither a note name"):
        parse_note("H9")


@pytest.mark.slow
def test_stems_sum_to_the_output_and_the_drums_keep_the_groove(model):
    from hybrid.pipeline import TransferOptions, result_settings, transfer_audio

    b, sr_b = sf.read(EXAMPLES / "guitar.wav", dtype="float32")
    timbre = model.fit_timbre(b if b.ndim == 1 else b.mean(axis=1), sr_b, library=False)
    y = song_with_drums()
    kept = transfer_audio(
        y, SR, timbre, model, TransferOptions(drums="always", score=False), bass_timbre=timbre
    )
    assert kept.drums == "kept" and set(kept.stems) == {"bass", "rest", "drums"}
    total = np.sum(list(kept.stems.values()), axis=0)
    np.testing.assert_allclose(total, kept.audio, atol=1e-4)
    assert {len(s) for s in kept.stems.values()} == {len(kept.audio)}
    assert {round(x.pitch_midi) for x in kept.parts["bass"].notes} <= {45}  # A2 is the bass line
    dropped = transfer_audio(y, SR, timbre, model, TransferOptions(drums="drop", score=False))
    assert dropped.drums == "not kept" and dropped.stems == {}
    assert result_settings(dropped, TransferOptions(drums="drop"))["drums"] == "not kept (--drums drop)"
    out_sr = kept.sample_rate_hz
    t = np.arange(len(kept.audio)) / out_sr
    clicks = (t % 0.25 > 0.125) & (t % 0.25 < 0.135) & (t < 3.9)
    before = (t % 0.25 > 0.105) & (t % 0.25 < 0.115) & (t < 3.9)

    def rise(z):
        return np.sqrt(np.mean(z[clicks[: len(z)]] ** 2)) / np.sqrt(np.mean(z[before[: len(z)]] ** 2))

    # the clicks rise over the notes as much as in A (measured: A 1.39, kept 1.36, dropped 0.73, the drums
    # stem alone 26)
    t_a = np.arange(len(y)) / SR
    at, ahead = (t_a % 0.25 > 0.125) & (t_a % 0.25 < 0.135), (t_a % 0.25 > 0.105) & (t_a % 0.25 < 0.115)
    rise_a = np.sqrt(np.mean(y[at] ** 2)) / np.sqrt(np.mean(y[ahead] ** 2))
    assert rise(kept.audio) == pytest.approx(rise_a, rel=0.1)
    assert rise(dropped.audio) < 1.0 < rise_a
    assert rise(kept.stems["drums"]) > 10.0


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow  # the CLI end to end, with a report
def test_cli_writes_stems_and_a_track_per_part(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_CACHE_DIR", "")
    a = tmp_path / "a.wav"
    sf.write(a, song_with_drums(), SR)
    r = run(
        "transfer", "--rhythm", a, "--timbre", EXAMPLES / "trumpet.ogg", "--bass-timbre", EXAMPLES / "guitar.wav",
        "-o", tmp_path / "o.wav", "--midi-out", tmp_path / "o.mid", "--stems", tmp_path / "stems", "--drums", "always", "--report", tmp_path / "r.html",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "drums kept" in r.output
    names = sorted(p.name for p in (tmp_path / "stems").iterdir())
    assert names == ["bass.wav", "drums.wav", "rest.wav"]
    lengths = {sf.info(str(tmp_path / "stems" / x)).frames for x in names}
    assert lengths == {sf.info(str(tmp_path / "o.wav")).frames}
    page = (tmp_path / "r.html").read_text()
    assert "kept (level +0 dB)" in page and "bass (" in page and "rest (" in page
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "o.mid"))
    assert [i.name for i in midi.instruments] == ["bass", "rest"]
    for extra, message in (
        (["--split-at", "C3"], "--split-at needs --bass-timbre"),
        (["--drums", "maybe"], "--drums must be one of keep, drop"),
    ):
        r = run(
            "transfer", "--rhythm", a, "--timbre", EXAMPLES / "trumpet.ogg", "-o", tmp_path / "x.wav", *extra
        )
        assert r.exit_code == 1 and message in r.output
