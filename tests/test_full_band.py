"""A full-band decoder: the synth at 48 kHz, the same controls at 16 kHz for the calibration, the correction at
any rate, and training or fine-tuning at 48 kHz (checkpoint format 2 records the rate and hop)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.signal import welch

from hybrid.errors import HybridError
from hybrid.neural.checkpoint import load_checkpoint
from hybrid.neural.conditioning import voice_conditioning
from hybrid.neural.models import DecoderConfig, WaveNetDecoder, widened
from hybrid.neural.synth import harmonic_synth
from hybrid.notes import Note
from hybrid.training import TrainConfig, train

from .conftest import TINY_TRAIN_CONFIG


def band_db(y: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """Mean power density (dB per hertz) of y between lo and hi Hz, from scipy's Welch estimate."""
    f, p = welch(y.astype(np.float64), sr, nperseg=2048)
    return float(10 * np.log10(np.mean(p[(f >= lo) & (f < hi)])))


def test_harmonics_reach_the_top_of_a_48k_band_and_stop_at_8k_at_16k():
    frames = 250
    amps = torch.zeros(1, 20, frames)
    amps[0, 0], amps[0, 14] = 0.5, 0.25  # 1 kHz and its 15th harmonic, 15 kHz
    f0 = torch.full((1, frames), 1000.0)
    for hop, sr in ((192, 48000), (64, 16000)):
        y = harmonic_synth(f0, amps, frames * hop, hop=hop)[0].numpy()
        spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        freqs = np.fft.rfftfreq(len(y), 1 / sr)
        # a sine of amplitude a under a Hann window peaks at a * N / 4
        assert spec[np.argmin(np.abs(freqs - 1000))] == pytest.approx(0.5 * len(y) / 4, rel=0.02)
        top = spec[np.argmin(np.abs(freqs - 15000))] if sr > 30000 else 0.0
        assert top == pytest.approx(0.25 * len(y) / 4 if sr > 30000 else 0.0, rel=0.02, abs=1e-3)


def test_noise_keeps_its_level_per_hertz_at_any_rate():
    dec = WaveNetDecoder(DecoderConfig(channels=8, skip_channels=8, dilations=(1,), noise_bands=193))
    frames = 500
    cond = torch.tensor(voice_conditioning([Note(0.0, 1.9, 60.0, 100)], frames))[None]
    ctl = {
        "amplitude": torch.zeros(1, 1, frames),
        "harmonics": torch.zeros(1, dec.cfg.n_harmonics, frames),
        "noise": torch.full((1, 193, frames), 0.02),
    }
    with torch.no_grad():
        wide = dec.synthesize(ctl, cond, frames * 192, torch.Generator().manual_seed(0), hop=192)[0].numpy()
        low = dec.synthesize(ctl, cond, frames * 64, torch.Generator().manual_seed(0), hop=64)[0].numpy()
    # white noise shaped by flat magnitudes: the same density below 8 kHz at both rates, and at 48 kHz as much
    # again up to the top
    assert band_db(wide, 48000, 1000, 7000) == pytest.approx(band_db(low, 16000, 1000, 7000), abs=0.5)
    assert band_db(wide, 48000, 10000, 22000) == pytest.approx(band_db(wide, 48000, 1000, 7000), abs=0.5)
    assert dec.sample_rate_hz == 48000 and dec.hop == 192


def test_a_widened_decoder_renders_at_16k_what_it_rendered():
    torch.manual_seed(0)
    dec = WaveNetDecoder(DecoderConfig())  # a 16 kHz decoder, as the 16 kHz model was before its fine-tune
    wide = widened(dec, 192)
    assert wide.cfg.noise_bands == 193 and dec.cfg.noise_bands == 65
    frames = 400
    cond = torch.tensor(np.stack([voice_conditioning([Note(0.1, 1.0, p, 90)], frames) for p in (48, 67)]))
    emb = torch.nn.functional.normalize(torch.randn(1, dec.cfg.embedding_dim), dim=1).expand(2, -1)
    with torch.no_grad():
        a, b = dec.controls(cond, emb), wide.controls(cond, emb)
    assert torch.equal(a["amplitude"], b["amplitude"]) and torch.equal(a["harmonics"], b["harmonics"])
    # the first 65 noise bands, taken to 16 kHz's level per hertz, are the old ones (within exp_sigmoid's
    # departure from 2 * 10**x where it saturates); the new bands start as the old top band
    on = a["noise"] > 1e-6
    ratio = (b["noise"][:, :65] * np.sqrt(64 / 192))[on] / a["noise"][on]
    assert float(ratio.median()) == pytest.approx(1.0, abs=0.05)
    assert torch.allclose(b["noise"][:, 65:], b["noise"][:, 64:65].expand_as(b["noise"][:, 65:]))


def test_the_correction_at_48k_does_below_8k_what_it_does_at_16k_and_holds_its_top_band_above():
    from hybrid.calibration.correction import N_BANDS, Correction

    rng = np.random.default_rng(1)
    shift = np.zeros(N_BANDS)
    shift[1], shift[2] = 12.0, -6.0  # a tilt and a bump in the mean envelope
    corr = Correction(shift, np.ones(N_BANDS), np.ones(N_BANDS))
    gains = {}
    for sr in (16000, 48000):
        x = (0.1 * rng.standard_normal(sr * 4)).astype(np.float32)
        y = corr.apply(x, sr)
        gains[sr] = {
            band: band_db(y, sr, *band) - band_db(x, sr, *band)
            for band in ((200, 600), (1000, 2000), (3000, 5000), (6500, 7800), (10000, 20000))
            if band[1] <= sr / 2
        }
    for band, g in gains[16000].items():
        assert gains[48000][band] == pytest.approx(g, abs=1.0), band
    assert abs(gains[16000][(200, 600)] - gains[16000][(6500, 7800)]) > 3  # the correction does something
    assert gains[48000][(10000, 20000)] == pytest.approx(gains[48000][(6500, 7800)], abs=1.5)


def test_fine_tuning_at_48k_writes_a_full_band_checkpoint(tiny_checkpoint, tiny_dataset, tmp_path):
    from hybrid.neural.renderer import Renderer
    from hybrid.notes import NoteSequence

    cfg = TrainConfig(
        **{**TINY_TRAIN_CONFIG, "steps": 2}, init_from=str(tiny_checkpoint), sample_rate_hz=48000
    )
    out = train(tiny_dataset, tmp_path / "wide", cfg, log=lambda m: None)
    doc = json.loads((out / "config.json").read_text())
    assert doc["audio"] == {"sample_rate_hz": 48000, "frame_hop": 192}
    assert doc["decoder"]["noise_bands"] == 193
    r = Renderer.load(out)
    assert r.full_band and r.sample_rate_hz == 48000
    notes = NoteSequence([Note(0.0, 0.5, 69.0, 100)])
    emb = r.embed(np.zeros(8000, np.float32))
    full, low = r.render(notes, emb, full_band=True), r.render(notes, emb)
    assert len(full) == 3 * len(low) and len(low) % 64 == 0
    # a 48 kHz decoder cannot be fine-tuned back at 16 kHz (its band would be cut)
    with pytest.raises(HybridError, match="cannot be fine-tuned at 16000 Hz"):
        train(
            tiny_dataset,
            tmp_path / "narrow",
            TrainConfig(**{**TINY_TRAIN_CONFIG, "steps": 1}, init_from=str(out)),
        )
    # and a checkpoint whose recorded rate does not follow from its decoder's bands is refused
    doc["audio"]["sample_rate_hz"] = 44100
    (out / "config.json").write_text(json.dumps(doc))
    with pytest.raises(HybridError, match="another audio format"):
        load_checkpoint(out)


@pytest.mark.parametrize("rate", [44100, 8000, 96000, 16000.5])
def test_a_training_rate_off_the_control_grid_is_refused(rate):
    with pytest.raises(HybridError, match="sample_rate_hz must be 16000-48000 Hz in steps of 250"):
        TrainConfig(sample_rate_hz=rate)


def test_the_loss_weighs_the_band_above_8k_apart_at_48k():
    from hybrid.neural.models import loss_ffts, multi_resolution_stft_loss

    torch.manual_seed(0)
    x = torch.randn(1, 48000)
    spec = torch.fft.rfft(x)
    freqs = torch.fft.rfftfreq(48000, 1 / 48000)
    above = torch.fft.irfft(torch.where(freqs > 9000, spec * 0.1, spec), n=48000)  # differs above 9 kHz only
    below = torch.fft.irfft(torch.where((freqs > 1000) & (freqs < 7000), spec * 0.1, spec), n=48000)
    ffts = loss_ffts(192)
    assert ffts == (6144, 3072, 1536, 768, 384, 192)
    # a difference above 8 kHz counts only through high_weight (the windows' leakage across 8 kHz is small) ...
    assert float(multi_resolution_stft_loss(above, x, ffts, 0.0)) < 0.01 * float(
        multi_resolution_stft_loss(above, x, ffts, 1.0)
    )
    # ... one below it does not depend on it
    assert float(multi_resolution_stft_loss(below, x, ffts, 0.0)) == pytest.approx(
        float(multi_resolution_stft_loss(below, x, ffts, 1.0)), rel=0.02
    )
