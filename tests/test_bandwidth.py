"""The decoder's band above 8 kHz, filled at B's balance (hybrid.calibration.bandwidth), checked against spectra
computed here with scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from hybrid.calibration import bandwidth
from hybrid.calibration.bandwidth import EDGES_HZ, HighBand, extend_band, measure_high_band

SR = 44_100


def noise(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def band_db(y: np.ndarray, lo: float, hi: float) -> float:
    f, p = welch(y.astype(np.float64), fs=SR, nperseg=4096)
    return float(10 * np.log10(p[(f >= lo) & (f < hi)].mean()))


def test_white_noise_is_flat_above_8_khz():
    high = measure_high_band(noise(), SR)
    assert high is not None and len(high.gains_db) == len(EDGES_HZ) - 1
    np.testing.assert_allclose(high.gains_db[:-1], 0.0, atol=0.5)


def test_a_recording_at_22_khz_has_no_band_above_its_nyquist():
    from hybrid.audio import resample

    high = measure_high_band(resample(noise(), SR, 22_050), 22_050)
    assert high is not None
    assert np.isfinite(high.gains_db[0])  # 8-10 kHz: within 11 kHz
    assert all(not np.isfinite(g) for g in high.gains_db[2:])  # 12 kHz and up: nothing there
    assert measure_high_band(noise()[:16000], 16_000) is None  # a 16 kHz song has no band above 8 kHz


@pytest.mark.parametrize("gain_db", [0.0, -10.0, -25.0])
def test_extension_puts_each_band_at_bs_balance(gain_db):
    # white noise low-passed at 8 kHz (as the decoder's output), extended with every band gain_db under the
    # 3.6-7.2 kHz octave: each band's power density lands within 1 dB of that
    sos = butter(12, 7900, fs=SR, output="sos")
    narrow = sosfiltfilt(sos, noise()).astype(np.float32)
    assert band_db(narrow, 9000, 12000) < band_db(narrow, 4000, 8000) - 40
    out = extend_band(narrow, SR, HighBand((gain_db,) * (len(EDGES_HZ) - 1)))
    ref = band_db(out, 3600, 7200)
    for lo, hi in ((9000, 12000), (12000, 16000), (16000, 20000)):  # above the low-pass's roll-off
        assert band_db(out, lo, hi) - ref == pytest.approx(gain_db, abs=1.0)
    spec_out, spec_in = np.fft.rfft(out.astype(np.float64)), np.fft.rfft(narrow.astype(np.float64))
    below = np.fft.rfftfreq(len(out), 1 / SR) < 7000  # below 7 kHz nothing changes (within 1%)
    assert np.abs(spec_out[below] - spec_in[below]).max() < 0.01 * np.abs(spec_in[below]).max()


def test_blocks_join_without_a_seam(monkeypatch):
    sos = butter(12, 7900, fs=SR, output="sos")
    narrow = sosfiltfilt(sos, noise(3.0, seed=2)).astype(np.float32)
    high = HighBand((-6.0,) * (len(EDGES_HZ) - 1))
    whole = extend_band(narrow, SR, high)  # one block
    monkeypatch.setattr(bandwidth, "BLOCK_FRAMES", 37)  # 37 frames of 256 samples: about 60 blocks
    np.testing.assert_allclose(extend_band(narrow, SR, high), whole, atol=1e-6)
    # in place (a long rendering is not copied): each block reads the samples before it as they were
    same = narrow.copy()
    assert extend_band(same, SR, high, inplace=True) is same
    np.testing.assert_allclose(same, whole, atol=1e-6)
    assert np.abs(whole - narrow).max() > 1e-3  # the band was filled


def test_high_band_round_trips_through_a_dict():
    high = HighBand((-3.0, -7.5, float("-inf"), float("-inf"), float("-inf"), float("-inf")))
    assert HighBand.from_dict(high.as_dict()) == high


def test_a_long_songs_spectrum_is_welchs_block_by_block(monkeypatch):
    # B's Welch spectrum made 3 segments at a time equals scipy's made at once
    y = np.random.default_rng(3).standard_normal(SR * 3).astype(np.float32)
    y[SR : 2 * SR] *= 0.1
    monkeypatch.setattr(bandwidth, "WELCH_BLOCK_SEGMENTS", 3)
    f, p = bandwidth._welch(y, SR, 4096)
    f_ref, p_ref = welch(y.astype(np.float64), fs=SR, nperseg=4096)
    np.testing.assert_array_equal(f, f_ref)
    np.testing.assert_allclose(p, p_ref, rtol=1e-9)


def test_match_high_band_brings_a_full_band_rendering_to_b_balance():
    from scipy.signal import welch

    from hybrid.calibration.bandwidth import HighBand, match_high_band, measure_high_band

    sr = 48000
    y = (0.1 * np.random.default_rng(3).standard_normal(sr * 6)).astype(np.float32)  # flat: every band 0 dB
    want = HighBand((-6.0, -10.0, -14.0, -18.0, -22.0, float("-inf")))
    out = match_high_band(y, sr, want)
    got = measure_high_band(out, sr)
    assert got is not None
    np.testing.assert_allclose(got.gains_db[:5], want.gains_db[:5], atol=1.0)
    assert got.gains_db[5] < -40  # a band B has nothing in is emptied (its neighbour leaks in at -55 dB)
    f, p0 = welch(y.astype(np.float64), sr, nperseg=2048)
    _, p1 = welch(out.astype(np.float64), sr, nperseg=2048)
    low = (f > 200) & (f < 7500)
    assert np.abs(10 * np.log10(p1[low].mean() / p0[low].mean())) < 0.1  # below 8 kHz as it was
    # a change beyond MATCH_RANGE_DB is held at it
    far = measure_high_band(match_high_band(y, sr, HighBand((-50.0,) * 6)), sr)
    assert far is not None and far.gains_db[2] == pytest.approx(-24.0, abs=1.0)
