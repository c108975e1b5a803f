"""The neural half with tiny models: conditioning, synthesizer, networks, checkpoint format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hybrid.errors import HybridError
from hybrid.neural.checkpoint import load_checkpoint, save_checkpoint
from hybrid.neural.conditioning import (
    COND_CHANNELS,
    FRAME_RATE_HZ,
    allocate_voices,
    f0_hz,
    sequence_conditioning,
    voice_conditioning,
)
from hybrid.neural.models import DecoderConfig, EncoderConfig, TimbreEncoder, WaveNetDecoder
from hybrid.neural.synth import harmonic_synth, noise_synth
from hybrid.notes import Note, NoteSequence

from .conftest import Killed, kill_at_rename

TINY_ENC = EncoderConfig(channels=16, layers=2, embedding_dim=8)
TINY_DEC = DecoderConfig(channels=8, skip_channels=8, dilations=(1, 2), n_harmonics=4, embedding_dim=8)


def ch(name: str) -> int:
    return COND_CHANNELS.index(name)


def test_voice_allocation_by_hand():
    # A (0-1 s) and B (0.5-1.5 s) overlap -> two voices; C starts at 1.0 when A's voice is free again.
    a, b, c = Note(0.0, 1.0, 60), Note(0.5, 1.5, 64), Note(1.0, 2.0, 67)
    voices = allocate_voices(NoteSequence([a, b, c]))
    assert voices == [[a, c], [b]]
    # With one voice allowed, B cuts A short at 0.5 s.
    assert allocate_voices(NoteSequence([a, b]), max_voices=1) == [[Note(0.0, 0.5, 60), b]]


def test_conditioning_values_by_hand():
    # Bend samples at 0.2 s (0) and 0.4 s (+1 semitone), interpolated linearly between, held after.
    note = Note(0.2, 0.6, 72, 127, (0.0, 1.0))
    c = voice_conditioning([note], n_frames=500)
    f = lambda t: int(round(t * FRAME_RATE_HZ))  # noqa: E731
    assert c[ch("active"), f(0.1)] == 0 and c[ch("gate"), f(0.1)] == 0
    assert c[ch("pitch"), f(0.2)] == pytest.approx((72 - 60) / 24)
    assert c[ch("pitch"), f(0.3)] == pytest.approx((72.5 - 60) / 24)
    assert c[ch("pitch"), f(0.5)] == pytest.approx((73 - 60) / 24)
    assert c[ch("pitch"), f(1.0)] == pytest.approx((73 - 60) / 24)  # the release keeps the last pitch
    assert c[ch("velocity"), f(0.3)] == 1.0
    assert c[ch("gate"), f(0.59)] == 1 and c[ch("gate"), f(0.61)] == 0
    assert c[ch("onset"), f(0.2)] == 1 and c[ch("onset"), f(0.25)] == 0
    assert c[ch("since_onset_mid"), f(0.7)] == pytest.approx(np.exp(-0.5 / 0.5), rel=1e-3)
    assert c[ch("since_release_slow"), f(1.1)] == pytest.approx(np.exp(-0.5 / 0.5), rel=1e-3)
    assert c[ch("active"), f(1.59)] == 1 and c[ch("active"), f(1.61)] == 0  # 1 s release tail
    assert f0_hz(c[None])[0, f(0.2)] == pytest.approx(523.25, rel=1e-4)


def test_sequence_conditioning_shape():
    seq = NoteSequence([Note(0, 1, 60), Note(0, 1, 64), Note(0, 1, 67), Note(2, 3, 60)])
    c = sequence_conditioning(seq)
    assert c.shape == (3, len(COND_CHANNELS), int(np.ceil(4.0 * FRAME_RATE_HZ)))


def test_harmonic_synth_is_a_sine_at_f0_and_respects_nyquist():
    frames, n = 250, 16000
    f0 = torch.full((1, frames), 440.0)
    amps = torch.zeros(1, 20, frames)
    amps[0, 0] = 0.5  # only the fundamental
    amps[0, 19] = 0.5  # the 20th harmonic is 8.8 kHz, above Nyquist: must be silent
    y = harmonic_synth(f0, amps, n)[0].numpy()
    spec = np.abs(np.fft.rfft(y * np.hanning(n)))
    assert np.argmax(spec) == 440  # 1 Hz bins
    assert np.max(np.abs(y)) == pytest.approx(0.5, rel=0.01)
    assert spec[7000:].max() < 1e-3 * spec.max()


def test_a_harmonic_stays_in_phase_over_ten_minutes():
    # the 8th harmonic of a steady 440 Hz voice, ten minutes in, against sin(8 x the exact running phase).
    # Measured: within 2.5e-4 (with the phase summed in single precision: 0.065 at 30 s, 1.1 at 599 s)
    sr, seconds = 16000, 600
    frames = seconds * sr // 64
    amps = torch.zeros(1, 8, frames)
    amps[0, 7] = 1.0
    with torch.no_grad():
        y = harmonic_synth(torch.full((1, frames), 440.0), amps, seconds * sr)[0].numpy()
    for t in (30, 300, 599):
        i = np.arange(t * sr, t * sr + 1000)
        exact = np.sin(8 * (2 * np.pi * 440 / sr) * (i + 1))
        assert np.abs(y[i] - exact).max() < 2e-3, t


def test_noise_synth_follows_its_filter():
    frames, n = 250, 16000
    mags = torch.zeros(1, 65, frames)
    mags[0, 40:] = 1.0  # only the upper bands (5-8 kHz)
    y = noise_synth(mags, n, torch.Generator().manual_seed(0))[0].numpy()
    spec = np.abs(np.fft.rfft(y))
    low, high = spec[:4000].mean(), spec[5500:7500].mean()
    assert high > 20 * low


def test_decoder_shapes_receptive_field_and_silence():
    dec = WaveNetDecoder(TINY_DEC)
    assert dec.receptive_field_frames == 1 + 2 * (1 + 2)
    seq = NoteSequence([Note(0.5, 1.0, 60, 100)])
    cond = torch.tensor(sequence_conditioning(seq, tail_s=0.5))
    y = dec(cond, torch.nn.functional.normalize(torch.randn(1, 8), dim=1))
    assert y.shape == (1, cond.shape[-1] * 64)
    assert torch.all(y[0, : int(0.45 * 16000)] == 0)  # nothing sounds before the note


@pytest.mark.parametrize("killed_before", ["model.safetensors.next", "model.safetensors", "config.json"])
def test_checkpoint_killed_while_saving_still_loads(tmp_path, monkeypatch, killed_before):
    enc, dec = TimbreEncoder(TINY_ENC), WaveNetDecoder(TINY_DEC)
    d = save_checkpoint(tmp_path / "ck", enc, dec, {"steps": 5})
    new_dec = WaveNetDecoder(TINY_DEC)  # other weights: the save at step 10
    with monkeypatch.context() as m:
        kill_at_rename(m, killed_before)
        with pytest.raises(Killed):
            save_checkpoint(d, enc, new_dec, {"steps": 10})
    ck = load_checkpoint(d)
    # Killed before the new weights were in place: the old checkpoint, whole. After: the new one, whole.
    expected, steps = (new_dec, 10) if killed_before == "config.json" else (dec, 5)
    assert ck.provenance == {"steps": steps}
    for a, b in zip(expected.state_dict().values(), ck.decoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # The next save completes and replaces everything.
    save_checkpoint(d, enc, new_dec, {"steps": 15})
    assert load_checkpoint(d).provenance == {"steps": 15} and not (d / "config.json.next").exists()


def test_encoder_any_length_unit_norm():
    enc = TimbreEncoder(TINY_ENC).eval()
    with torch.no_grad():
        for n in (4096, 16000, 80000):
            e = enc(torch.randn(2, n) * 0.1)
            assert e.shape == (2, 8)
            assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
        # Loudness does not change the embedding (the mean log level is removed).
        x = torch.randn(1, 16000) * 0.1
        assert torch.allclose(enc(x), enc(x * 0.1), atol=1e-3)


def test_checkpoint_round_trip_and_strictness(tmp_path):
    enc, dec = TimbreEncoder(TINY_ENC), WaveNetDecoder(TINY_DEC)
    d = save_checkpoint(tmp_path / "ck", enc, dec, {"steps": 3})
    ck = load_checkpoint(d)
    for a, b in zip(dec.state_dict().values(), ck.decoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert ck.provenance == {"steps": 3}
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["format_version"] == 2 and cfg["decoder"]["n_harmonics"] == 4
    assert (
        cfg["decoder"]["architecture"] == "WaveNetDecoder"
        and cfg["encoder"]["architecture"] == "TimbreEncoder"
    )
    assert cfg["audio"] == {"sample_rate_hz": 16000, "frame_hop": 64}
    assert cfg["conditioning"]["channels"][0] == "pitch" and len(cfg["conditioning"]["channels"]) == 10
    assert cfg["conditioning"]["since_onset_s"] == [0.05, 0.5, 2.0] and cfg["mel"]["fmax_hz"] == 8000.0
    # A checkpoint trained for another sample rate, conditioning or mel analysis is refused, naming the field.
    for key, field, value in (
        ("audio", "sample_rate_hz", 44100),
        ("conditioning", "pitch_scale_semitones", 12.0),
    ):
        changed = json.loads(json.dumps(cfg))
        changed[key][field] = value
        (d / "config.json").write_text(json.dumps(changed))
        with pytest.raises(HybridError, match=f"another {key} format.*{field}: {value!r}"):
            load_checkpoint(d)
    unknown = {**cfg, "decoder": {**cfg["decoder"], "architecture": "Transformer"}}
    (d / "config.json").write_text(json.dumps(unknown))
    with pytest.raises(HybridError, match="unknown architecture 'Transformer'"):
        load_checkpoint(d)
    # Format 1 (no architecture names, no formats recorded) still loads, as the formats format 2 records.
    v1 = {k: v for k, v in cfg.items() if k not in ("audio", "conditioning", "mel")}
    v1["format_version"] = 1
    v1["encoder"] = {k: v for k, v in cfg["encoder"].items() if k != "architecture"}
    v1["decoder"] = {k: v for k, v in cfg["decoder"].items() if k != "architecture"}
    (d / "config.json").write_text(json.dumps(v1))
    assert load_checkpoint(d).decoder.cfg.n_harmonics == 4
    # An unknown format version is refused.
    (d / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(HybridError, match="format version 99 is not supported"):
        load_checkpoint(d)
    # Weights from another checkpoint are refused (sha256 recorded in config.json).
    (d / "config.json").write_text(json.dumps(cfg))
    other = save_checkpoint(tmp_path / "other", TimbreEncoder(TINY_ENC), WaveNetDecoder(TINY_DEC), {})
    (d / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(HybridError, match="does not match config.json"):
        load_checkpoint(d)
    # A config whose shapes differ from the weights is refused, strictly.
    (d / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    cfg2 = json.loads((other / "config.json").read_text())
    cfg2["decoder"]["n_harmonics"] = 5
    (other / "config.json").write_text(json.dumps(cfg2))
    with pytest.raises(HybridError, match="do not fit the configured decoder"):
        load_checkpoint(other)
    with pytest.raises(HybridError, match="not a hybrid checkpoint"):
        load_checkpoint(tmp_path)


def test_chunked_upsampling_equals_interpolate():
    from hybrid.neural.synth import _frames_to_samples, upsample

    x = torch.randn(2, 3, 40)
    full = upsample(x, 40 * 64)
    for start, stop in ((0, 700), (700, 1900), (1900, 2560)):
        assert torch.allclose(_frames_to_samples(x, start, stop), full[..., start:stop], atol=1e-5)


def test_rendering_fewer_voices_at_once_gives_the_same_audio(renderer, monkeypatch):
    # Long pieces are rendered with fewer voices per batch (bounded memory); a 6-voice passage rendered one
    # voice at a time equals the 8-at-once rendering: the same network per voice, and the noise generator
    # draws the same numbers in the same order. Measured difference: 3.4e-5 at most (the convolutions round
    # differently for another batch size), about one 16-bit step; the tolerance is 1e-4 (-80 dBFS).
    import hybrid.neural.renderer as r

    notes = NoteSequence(
        [Note(0.1 * i, 0.1 * i + 0.8, 48 + 4 * i, 90) for i in range(6)] + [Note(1.2, 1.6, 72, 70)]
    )
    emb = np.ones(renderer.encoder.cfg.embedding_dim, np.float32)
    emb /= np.linalg.norm(emb)
    frames_per_s = 16000 // 64  # a 10-minute piece is rendered a voice at a time, a 30 s one 8 at once
    assert r.voices_per_batch(600 * frames_per_s) == 1 and r.voices_per_batch(30 * frames_per_s) == 8
    assert r.voices_per_batch(1000) == r.VOICES_PER_BATCH
    together = renderer.render(notes, emb, seed=5)
    monkeypatch.setattr(r, "BATCH_FRAMES", 10)
    assert r.voices_per_batch(1000) == 1
    one_by_one = renderer.render(notes, emb, seed=5)
    assert np.abs(together).max() > 0.01
    np.testing.assert_allclose(one_by_one, together, atol=1e-4)


@pytest.mark.parametrize("chunk", [100_000, 333])
def test_rendering_features_equal_the_networks(renderer, monkeypatch, chunk):
    # features_for (the FiLM folded into the convolutions, residual and skip run as one, a long piece in
    # chunks with half the receptive field either side) against the network as trained, on random input
    # whose every frame reaches into its neighbours. Measured: within 8e-6 of values up to about 25.
    import hybrid.neural.models as m

    dec = renderer.decoder
    torch.manual_seed(0)
    cond = torch.randn(3, dec.cfg.cond_channels, 1500)
    emb = torch.nn.functional.normalize(torch.randn(1, dec.cfg.embedding_dim), dim=1)
    with torch.no_grad():
        expected = dec.features(cond, emb.expand(3, -1))
    monkeypatch.setattr(m, "FEATURE_CHUNK_FRAMES", chunk)
    got = dec.features_for(cond, emb)
    assert got.shape == expected.shape and expected.abs().max() > 5.0
    assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())


def test_a_long_piece_is_synthesised_span_by_span(renderer, monkeypatch):
    # synthesize_into, 2 s at a time (the phase carried from span to span, the noise drawn whole and
    # filtered span by span with 4 hops either side), against synthesize over the whole 7.3 s at once
    import hybrid.neural.models as m
    from hybrid.neural.synth import CHUNK_SAMPLES

    dec = renderer.decoder
    notes = NoteSequence([Note(0.3 * i, 0.3 * i + 1.5, 45 + 5 * (i % 6), 90) for i in range(20)])
    cond = torch.tensor(sequence_conditioning(notes, tail_s=1.0))
    emb = torch.nn.functional.normalize(torch.randn(1, dec.cfg.embedding_dim), dim=1)
    n = cond.shape[-1] * 64
    with torch.no_grad():
        ctl = dec.controls_from_features(dec.features_for(cond, emb), cond)
        whole = dec.synthesize(ctl, cond, n, torch.Generator().manual_seed(7)).sum(0).numpy()
        monkeypatch.setattr(m, "SYNTH_SPAN_SAMPLES", 2 * CHUNK_SAMPLES)
        spans = np.zeros(n, np.float32)
        dec.synthesize_into(spans, ctl, cond, torch.Generator().manual_seed(7))
    assert n > 3 * 2 * CHUNK_SAMPLES and np.abs(whole).max() > 0.05
    np.testing.assert_allclose(spans, whole, atol=1e-5)


@pytest.mark.slow  # (the default suite stays under 3 minutes)
def test_controls_written_over_the_features_equal_the_controls(renderer, monkeypatch):
    # controls_over_features, 300 frames at a time and over the features' own memory, against
    # controls_from_features on the whole, with an offset (as a fitted timbre renders)
    import hybrid.neural.models as m

    dec = renderer.decoder
    notes = NoteSequence([Note(0.25 * i, 0.25 * i + 1.0, 40 + 7 * (i % 5), 100) for i in range(12)])
    cond = torch.tensor(sequence_conditioning(notes, tail_s=0.5))
    emb = torch.nn.functional.normalize(torch.randn(1, dec.cfg.embedding_dim), dim=1)
    n_ch = 1 + dec.cfg.n_harmonics + dec.cfg.noise_bands
    offset = torch.linspace(-0.5, 0.5, n_ch)
    monkeypatch.setattr(m, "CONTROL_CHUNK_FRAMES", 300)
    with torch.no_grad():
        h = dec.features_for(cond, emb)
        expected = dec.controls_from_features(h, cond, offset)
        got = dec.controls_over_features(h, cond, offset)
    assert cond.shape[-1] > 3 * 300
    for key in ("amplitude", "harmonics", "noise"):
        assert got[key].data_ptr() >= h.data_ptr()  # written over h, not a new tensor
        assert got[key].shape == expected[key].shape
        torch.testing.assert_close(got[key], expected[key], rtol=2e-6, atol=1e-7)  # a few float32 ulps
    assert float(expected["amplitude"].max()) > 1e-3
