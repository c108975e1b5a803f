"""B's acoustics: the blind estimates against rooms, floors and widths made here with numpy, the fit of the room,
and what transfer and render write with them (hybrid.calibration.acoustics)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import fftconvolve
from typer.testing import CliRunner

from hybrid.calibration.acoustics import (
    REVERB_BANDS_HZ,
    Room,
    apply_acoustics,
    estimate_acoustics,
    fit_room,
)
from hybrid.cli import app

from .conftest import EXAMPLES

SR = 44_100
DATA = EXAMPLES.parent / "tests" / "data"


def tones(gap_s: float = 2.0, n: int = 5, dur_s: float = 0.4, seed: int = 0) -> np.ndarray:
    """n harmonic notes of dur_s, abruptly cut, one every gap_s: their ends show the room's free decay."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * n * gap_s)) / SR
    y = np.zeros_like(t)
    for i in range(n):
        f0 = (196.0, 262.0, 330.0, 392.0, 440.0)[i % 5]
        gate = (t >= i * gap_s) & (t < i * gap_s + dur_s)
        for k in range(1, 30):
            if k * f0 < SR / 2:
                y += gate * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def in_room(y: np.ndarray, rt60_s: float, wet_db: float, seed: int = 1) -> np.ndarray:
    """y plus its convolution with exponentially decaying noise (60 dB in rt60_s), at wet_db."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.5 * rt60_s * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.908 * t / rt60_s)
    ir /= np.sqrt(np.sum(ir**2))
    return (y + 10 ** (wet_db / 20) * fftconvolve(y, ir)[: len(y)]).astype(np.float32)


@pytest.mark.parametrize("rt60_s", [0.3, 0.6, 1.2])
def test_decay_time_follows_the_room_above_2_khz(rt60_s):
    # Measured: 0.20/0.25, 0.57/0.58, 0.92/1.15 s in the 2-8 kHz and 8 kHz+ bands. The two low bands hold one
    # or two partials whose tails beat, and read short (0.22-0.53 s): documented in docs/design.md.
    est = estimate_acoustics(in_room(tones(), rt60_s, -6.0), SR).rt60_s
    assert len(est) == len(REVERB_BANDS_HZ)
    for band in (2, 3):
        assert est[band] == pytest.approx(rt60_s, rel=0.35)


def test_a_dry_recording_decays_at_once():
    assert max(estimate_acoustics(tones(), SR).rt60_s) < 0.1


@pytest.mark.parametrize("floor_db", [-30.0, -45.0, -60.0])
def test_noise_floor_is_found_at_its_level(floor_db):
    # white noise at floor_db under the notes' RMS: measured within 0.5 dB of it
    y = tones()
    note_rms = float(np.sqrt(np.mean(y[: int(0.4 * SR)] ** 2)))
    noise = note_rms * 10 ** (floor_db / 20) * np.random.default_rng(3).standard_normal(len(y))
    assert estimate_acoustics((y + noise).astype(np.float32), SR).floor_db == pytest.approx(floor_db, abs=1.5)


def test_no_floor_when_the_quietest_frames_are_the_music():
    t = np.arange(3 * SR) / SR
    organ = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # one held note, no silence
    assert not estimate_acoustics(organ, SR).has_floor


def test_stereo_width_is_side_over_mid():
    mid = tones()
    side = np.roll(mid, 500) * 0.25  # side at a quarter of the mid's level
    est = estimate_acoustics(np.stack([mid + side, mid - side], axis=1), SR)
    assert est.channels == 2
    assert est.width == pytest.approx(float(np.sqrt(np.mean(side**2)) / np.sqrt(np.mean(mid**2))), rel=1e-4)
    assert estimate_acoustics(mid, SR).width == 0.0


def test_a_dry_room_leaves_a_mono_rendering_untouched():
    y = tones()
    ac = estimate_acoustics(in_room(y, 0.6, -6.0), SR)
    np.testing.assert_array_equal(apply_acoustics(y, SR, ac, Room()), y)


def test_applied_room_and_floor_are_found_again():
    # the room put on a dry rendering is estimated from the result as it was estimated from the source (2-8 kHz:
    # 0.61 s from the source, 0.68-0.71 s from the result over three seeds; floor -37.6 and -38.1 dB)
    src = in_room(tones(), 0.6, -6.0)
    noisy = src + 0.3 * 10 ** (-45 / 20) * np.random.default_rng(5).standard_normal(len(src)).astype(
        np.float32
    )
    ac = estimate_acoustics(noisy, SR)
    out = apply_acoustics(tones(seed=2), SR, ac, Room(-6.0, True), seed=7)
    again = estimate_acoustics(out, SR)
    assert again.floor_db == pytest.approx(ac.floor_db, abs=2.0)
    assert again.rt60_s[2] == pytest.approx(ac.rt60_s[2], rel=0.35)


def test_stereo_timbre_song_gives_stereo_at_its_width():
    mid = tones()
    side = np.roll(mid, 500) * 0.4
    ac = estimate_acoustics(np.stack([mid + side, mid - side], axis=1), SR)
    out = apply_acoustics(tones(seed=4), SR, ac, Room(-12.0, False))
    assert out.shape == (len(mid), 2)
    m, s = out.mean(axis=1), (out[:, 0] - out[:, 1]) / 2
    assert float(np.sqrt(np.mean(s**2)) / np.sqrt(np.mean(m**2))) == pytest.approx(ac.width, rel=1e-3)


def test_fit_room_adds_a_room_only_when_the_song_has_one():
    from hybrid.audio import resample

    dry16 = resample(tones(), SR, 16_000)
    wet_song = resample(in_room(tones(), 0.8, -6.0), SR, 16_000)
    ac = estimate_acoustics(in_room(tones(), 0.8, -6.0), SR)
    assert fit_room(lambda: dry16, wet_song, 16_000, ac).wet_db is not None
    assert fit_room(lambda: dry16, dry16, 16_000, ac) == Room()


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow  # two CLI renders end to end
def test_stereo_b_gives_a_stereo_transfer_and_dry_gives_mono(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_CACHE_DIR", "")
    b = DATA / "stereo_sample.wav"
    assert sf.info(str(b)).channels == 2
    r = run("render", EXAMPLES / "guitar_notes.mid", "--timbre", b, "-o", tmp_path / "s.wav")
    assert r.exit_code == 0, r.output
    y, _ = sf.read(tmp_path / "s.wav")
    assert y.ndim == 2 and y.shape[1] == 2 and np.abs(y[:, 0] - y[:, 1]).max() > 1e-3
    r = run("render", EXAMPLES / "guitar_notes.mid", "--timbre", b, "-o", tmp_path / "d.wav", "--dry")
    assert r.exit_code == 0, r.output
    assert sf.read(tmp_path / "d.wav")[0].ndim == 1


@pytest.mark.slow  # (the default suite stays under 3 minutes)
def test_the_timbre_file_keeps_the_acoustics(model, tmp_path):
    from hybrid.audio import load_audio
    from hybrid.calibration.timbre_file import load_timbre, save_timbre

    y, sr = load_audio(EXAMPLES / "vibe_ace.ogg")
    fitted = model.fit_timbre(y[: 6 * sr], sr)
    assert fitted.acoustics is not None
    path = save_timbre(fitted, tmp_path / "v.timbre", model.renderer.weights_sha256, "0" * 64, {})
    back = load_timbre(path, model.renderer.weights_sha256).acoustics
    assert back == fitted.acoustics


def test_room_and_floor_added_block_by_block_equal_the_whole_signal_at_once():
    # a song longer than two blocks: the reverb equals one convolution of the whole, and the floor equals one
    # filtering of the whole white-noise stream (the same draws)
    from hybrid.calibration import acoustics as ac_mod

    n = 2 * ac_mod.BLOCK + 12_345
    y = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1
    ir = np.random.default_rng(1).standard_normal(4_000).astype(np.float32) * np.exp(-np.arange(4_000) / 800)
    out = np.zeros(n, np.float32)
    ac_mod._add_reverb(out, y, ir, 0.5)
    np.testing.assert_allclose(out, 0.5 * fftconvolve(y.astype(np.float64), ir)[:n], atol=2e-6)

    est = estimate_acoustics(tones(), SR)
    noise = np.zeros(n, np.float32)
    ac_mod._add_floor(noise, est, SR, 0.01, seed=3)
    fir = ac_mod._floor_fir(est, SR)
    rng = np.random.default_rng(3)
    history = rng.standard_normal(len(fir) - 1)
    white = np.concatenate(
        [history] + [rng.standard_normal(min(ac_mod.BLOCK, n - s)) for s in range(0, n, ac_mod.BLOCK)]
    )
    whole = 0.01 / np.sqrt(np.sum(fir**2)) * fftconvolve(white, fir, mode="valid")
    np.testing.assert_allclose(noise, whole, atol=1e-7)
    assert float(np.sqrt(np.mean(noise.astype(np.float64) ** 2))) == pytest.approx(0.01, rel=0.02)


def test_a_long_songs_acoustics_are_read_block_by_block(monkeypatch):
    # the spectrogram's reductions made 97 frames at a time (a long song's blocks) are those of one pass, and
    # the width, summed block by block, is the RMS ratio of side to mid computed here in one go
    from hybrid.calibration import acoustics

    mid = in_room(tones(), 0.6, -6.0)
    side = 0.3 * in_room(tones(seed=5), 0.6, -6.0, seed=2)
    y = np.stack([mid + side, mid - side], axis=1)
    whole = estimate_acoustics(y, SR)
    monkeypatch.setattr(acoustics, "ENVELOPE_BLOCK_FRAMES", 97)
    monkeypatch.setattr(acoustics, "BLOCK", 10_000)
    blocks = estimate_acoustics(y, SR)
    np.testing.assert_allclose(blocks.rt60_s, whole.rt60_s, rtol=1e-9)
    np.testing.assert_allclose(blocks.floor_spectrum_db, whole.floor_spectrum_db, atol=1e-9)
    assert blocks.floor_db == whole.floor_db
    width = np.sqrt(np.mean(side.astype(np.float64) ** 2) / np.mean(mid.astype(np.float64) ** 2))
    assert blocks.width == pytest.approx(width, rel=1e-6) and whole.width == pytest.approx(width, rel=1e-6)
    assert 0.6 * 0.8 < max(whole.rt60_s) < 0.6 * 1.25  # and the estimate is still the room's
