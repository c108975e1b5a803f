"""The two networks. Each architecture is one small dataclass stored in the checkpoint's config.json.

- TimbreEncoder: log-mel (64 bands) -> dilated 1-D convolutions -> energy-weighted mean+std pooling over time
  -> a unit-length embedding. Any length in, one vector out.
- WaveNetDecoder: a non-causal stack of dilated, gated residual convolutions with skip connections at
  250 frames/s (WaveNet's layer), conditioned locally on the notes and globally on the timbre embedding by
  FiLM; it outputs the controls of a harmonic-plus-noise synthesizer, so it renders whole pieces at once
  without sample-by-sample autoregression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
import torch.nn as nn
import torch.nn.functional as F

from hybrid.constants import FRAME_HOP, mel_filters, midi_to_hz
from hybrid.neural.conditioning import CH, N_COND, channel_midi
from hybrid.neural.synth import (
    CHUNK_SAMPLES,
    harmonic_span,
    harmonic_synth,
    harmonics_below_nyquist,
    noise_frames,
    noise_span,
    noise_synth,
    rate_of,
)

MEL_FMIN_HZ, MEL_FMAX_HZ = 30.0, 8000.0  # the encoder's mel bands span 30 Hz to Nyquist at 16 kHz
FEATURE_CHUNK_FRAMES = 5000  # frames the decoder runs at once when rendering (20 s)
CONTROL_CHUNK_FRAMES = 5000  # frames made into synth controls at once, over the features (20 s)
SYNTH_SPAN_SAMPLES = 20 * CHUNK_SAMPLES  # samples the synthesizer makes at once when rendering (20 s)


@dataclass(frozen=True)
class EncoderConfig:
    n_mels: int = 64
    n_fft: int = 1024
    hop: int = 256  # 62.5 frames per second at 16 kHz
    channels: int = 128
    layers: int = 5
    embedding_dim: int = 64


@dataclass(frozen=True)
class DecoderConfig:
    channels: int = 96
    skip_channels: int = 96
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 1, 2, 4)
    n_harmonics: int = 60
    # The bins of a 2*hop-point STFT at the decoder's rate, 125 Hz apart: 65 (to 8 kHz, a 16 kHz decoder);
    # 193 (to 24 kHz, a full-band 48 kHz one). The band it was trained on, and so its rate, follow from it.
    noise_bands: int = FRAME_HOP + 1
    embedding_dim: int = 64
    cond_channels: int = N_COND


class LogMel(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        fb = mel_filters(cfg.n_fft, cfg.n_mels, fmin=MEL_FMIN_HZ, fmax=MEL_FMAX_HZ)
        self.fb: torch.Tensor
        self.window: torch.Tensor
        self.register_buffer("fb", torch.tensor(fb, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.n_fft, self.hop = cfg.n_fft, cfg.hop

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, samples) -> log-mel (B, n_mels, frames) and frame energy (B, frames)."""
        spec = torch.stft(audio, self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        mel = torch.matmul(self.fb, spec**2)
        energy = mel.sum(dim=1)
        return torch.log(mel + 1e-6), energy


class TimbreEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mel = LogMel(cfg)
        self.norm = nn.InstanceNorm1d(cfg.n_mels, affine=False)
        layers: list[nn.Module] = []
        ch_in = cfg.n_mels
        for i in range(cfg.layers):
            d = 2 ** min(i, 3)
            layers += [
                nn.Conv1d(ch_in, cfg.channels, 3, padding=d, dilation=d),
                nn.GroupNorm(8, cfg.channels),
                nn.GELU(),
            ]
            ch_in = cfg.channels
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * cfg.channels + cfg.n_mels, cfg.embedding_dim)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) at 16 kHz -> (B, embedding_dim), unit length."""
        logmel, energy = self.mel(audio)
        # Loudness-invariant: subtract the clip's mean log level; keep the mean spectral shape as a feature.
        logmel = logmel - logmel.mean(dim=(1, 2), keepdim=True)
        h = self.convs(logmel)
        w = energy / (energy.sum(dim=1, keepdim=True) + 1e-9)  # loud frames count, silence does not
        mean = (h * w[:, None]).sum(-1)
        std = torch.sqrt(((h - mean[..., None]) ** 2 * w[:, None]).sum(-1) + 1e-5)
        shape = (logmel * w[:, None]).sum(-1)
        return F.normalize(self.proj(torch.cat([mean, std, shape], dim=1)), dim=1)


class GatedResidualLayer(nn.Module):
    """WaveNet's layer: dilated conv -> FiLM(timbre) -> tanh * sigmoid -> residual and skip 1x1 convs."""

    def __init__(self, cfg: DecoderConfig, dilation: int) -> None:
        super().__init__()
        c = cfg.channels
        pad = dilation * (cfg.kernel_size - 1) // 2
        self.conv = nn.Conv1d(c, 2 * c, cfg.kernel_size, padding=pad, dilation=dilation)
        self.film = nn.Linear(cfg.embedding_dim, 4 * c)
        self.res = nn.Conv1d(c, c, 1)
        self.skip = nn.Conv1d(c, cfg.skip_channels, 1)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gamma, beta = self.film(emb)[:, :, None].chunk(2, dim=1)
        h = self.conv(x) * (1 + gamma) + beta
        a, b = h.chunk(2, dim=1)
        h = torch.tanh(a) * torch.sigmoid(b)
        return (x + self.res(h)) * 0.7071, self.skip(h)


def _bias(conv: nn.Conv1d) -> torch.Tensor:
    assert conv.bias is not None  # every convolution of the decoder has one
    return conv.bias


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's positive output nonlinearity: 2 * sigmoid(x) ** ln(10) + 1e-7."""
    return 2.0 * torch.sigmoid(x) ** 2.302585 + 1e-7


class WaveNetDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Conv1d(cfg.cond_channels, cfg.channels, 1)
        self.inp_film = nn.Linear(cfg.embedding_dim, 2 * cfg.channels)
        self.layers = nn.ModuleList(GatedResidualLayer(cfg, d) for d in cfg.dilations)
        self.out1 = nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1)
        self.out2 = nn.Conv1d(cfg.skip_channels, 1 + cfg.n_harmonics + cfg.noise_bands, 1)

    @property
    def hop(self) -> int:
        """Samples per control frame at the decoder's own rate (64 at 16 kHz, 192 at 48 kHz)."""
        return self.cfg.noise_bands - 1

    @property
    def sample_rate_hz(self) -> int:
        """The rate the decoder was trained at: its band reaches half of it."""
        return rate_of(self.hop)

    def _at_rate(
        self, f0: torch.Tensor, harm: torch.Tensor, noise: torch.Tensor, hop: int, in_place: bool = False
    ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """(harmonics_below_nyquist's (harmonic numbers, mask, amplitudes), the noise bands) to synthesise at the
        rate of `hop`: harmonics above
        the lower of its Nyquist and the decoder's band silenced; the noise bands cut (or padded with
        silence) to the rate's, at the same level per hertz (white noise of a given variance is spread over a
        band that grows with the rate). With `in_place`, `harm` itself is silenced."""
        limit = min(rate_of(hop), self.sample_rate_hz) / 2
        prepared = harmonics_below_nyquist(f0, harm, in_place=in_place, limit_hz=limit)
        if hop != self.hop:
            noise = noise[:, : hop + 1] * math.sqrt(hop / self.hop)
            if noise.shape[1] < hop + 1:
                noise = F.pad(noise, (0, 0, 0, hop + 1 - noise.shape[1]))
        return prepared, noise

    @property
    def receptive_field_frames(self) -> int:
        return 1 + sum(d * (self.cfg.kernel_size - 1) for d in self.cfg.dilations)

    def features(self, cond: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """cond (B, N_COND, frames), emb (B, embedding_dim) -> the output layer's raw values
        (B, 1 + n_harmonics + noise_bands, frames), before the synth controls' nonlinearities."""
        g, b = self.inp_film(emb)[:, :, None].chunk(2, dim=1)
        x = self.inp(cond) * (1 + g) + b
        skips = torch.zeros((), device=cond.device)
        for layer in self.layers:
            x, s = layer(x, emb)
            skips = skips + s
        return self.out2(F.relu(self.out1(F.relu(skips))))

    def features_for(self, cond: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """`features` with one embedding (1, embedding_dim) for every voice, for rendering (no gradients): each
        FiLM, the same for every voice, folded into its convolution's weights, each layer's residual and skip
        convolutions run as one, and a long piece run FEATURE_CHUNK_FRAMES frames at a time with the receptive
        field's half either side, so that memory does not grow with the piece. The same values within float
        rounding (tested)."""
        with torch.no_grad():
            g, b = self.inp_film(emb.reshape(1, -1))[0].chunk(2)
            first = (self.inp.weight * (1 + g)[:, None, None], _bias(self.inp) * (1 + g) + b)
            layers = []
            for module in self.layers:
                layer = cast(GatedResidualLayer, module)
                gamma, beta = layer.film(emb.reshape(1, -1))[0].chunk(2)
                w = layer.conv.weight * (1 + gamma)[:, None, None]
                bias = _bias(layer.conv) * (1 + gamma) + beta
                w_out = torch.cat([layer.res.weight * 0.7071, layer.skip.weight])
                b_out = torch.cat([_bias(layer.res) * 0.7071, _bias(layer.skip)])
                pad, dilation = int(layer.conv.padding[0]), int(layer.conv.dilation[0])
                layers.append((w, bias, w_out, b_out, pad, dilation))
            total = cond.shape[-1]
            if total <= FEATURE_CHUNK_FRAMES:
                return self._folded_features(cond, first, layers)
            context = self.receptive_field_frames // 2 + 1
            out: torch.Tensor | None = None
            for t0 in range(0, total, FEATURE_CHUNK_FRAMES):
                t1 = min(total, t0 + FEATURE_CHUNK_FRAMES)
                a0, a1 = max(0, t0 - context), min(total, t1 + context)
                part = self._folded_features(cond[..., a0:a1], first, layers)[..., t0 - a0 : t1 - a0]
                if out is None:
                    out = part.new_empty((*part.shape[:-1], total))
                out[..., t0:t1] = part
            assert out is not None
            return out

    def _folded_features(
        self,
        cond: torch.Tensor,
        first: tuple[torch.Tensor, torch.Tensor],
        layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, int]],
    ) -> torch.Tensor:
        c = self.cfg.channels
        x = F.conv1d(cond, *first)
        skips: torch.Tensor | None = None
        for w, bias, w_out, b_out, padding, dilation in layers:
            h = F.conv1d(x, w, bias, padding=padding, dilation=dilation)
            a, g = h.chunk(2, dim=1)
            gated = torch.tanh(a).mul_(torch.sigmoid(g))
            both = F.conv1d(gated, w_out, b_out)
            x = torch.add(both[:, :c], x, alpha=0.7071)
            skips = both[:, c:].clone() if skips is None else skips.add_(both[:, c:])
        assert skips is not None
        return self.out2(F.relu(self.out1(F.relu(skips))))

    def controls_from_features(
        self, h: torch.Tensor, cond: torch.Tensor, offset: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Synth controls at frame rate from `features`; `offset` (1 + n_harmonics + noise_bands,) is added
        to the raw values first (the calibration's offset, hybrid.calibration.offset)."""
        if offset is not None:
            h = h + offset[None, :, None]
        a = CH["active"]
        active = cond[:, a : a + 1]  # silence outside notes and their release tails
        amp = exp_sigmoid(h[:, :1] - 3.0) * active
        dist = torch.softmax(h[:, 1 : 1 + self.cfg.n_harmonics], dim=1)
        noise = exp_sigmoid(h[:, 1 + self.cfg.n_harmonics :] - 5.0) * active
        return {"amplitude": amp, "harmonics": dist, "noise": noise}

    def controls_over_features(
        self, h: torch.Tensor, cond: torch.Tensor, offset: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """controls_from_features written over `h` itself, CONTROL_CHUNK_FRAMES at a time (the values are made
        frame by frame), so that a long piece's controls take no memory beyond its features; `h` is used up
        (no gradient flows). The same values as controls_from_features (tested)."""
        assert not h.requires_grad, "controls_over_features overwrites the features: rendering only"
        n = 1 + self.cfg.n_harmonics
        for s in range(0, h.shape[-1], CONTROL_CHUNK_FRAMES):
            e = s + CONTROL_CHUNK_FRAMES
            ctl = self.controls_from_features(h[..., s:e], cond[..., s:e], offset)
            h[:, :1, s:e] = ctl["amplitude"]
            h[:, 1:n, s:e] = ctl["harmonics"]
            h[:, n:, s:e] = ctl["noise"]
        return {"amplitude": h[:, :1], "harmonics": h[:, 1:n], "noise": h[:, n:]}

    def controls(
        self, cond: torch.Tensor, emb: torch.Tensor, offset: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """cond (B, N_COND, frames), emb (B, embedding_dim) -> synth controls at frame rate."""
        return self.controls_from_features(self.features(cond, emb), cond, offset)

    def synthesize(
        self,
        ctl: dict[str, torch.Tensor],
        cond: torch.Tensor,
        n_samples: int,
        generator: torch.Generator | None = None,
        hop: int = FRAME_HOP,
    ) -> torch.Tensor:
        """Synth controls -> audio (B, n_samples) at the f0 in cond's pitch channel, at the rate of `hop` (16 kHz
        unless asked: the calibration's; `self.hop` gives the decoder's own band)."""
        f0 = midi_to_hz(channel_midi(cond[:, CH["pitch"]]))
        (_, _, harm), noise = self._at_rate(f0, ctl["amplitude"] * ctl["harmonics"], ctl["noise"], hop)
        return harmonic_synth(f0, harm, n_samples, hop=hop) + noise_synth(noise, n_samples, generator, hop)

    def synthesize_into(
        self,
        out: npt.NDArray[np.float32],
        ctl: dict[str, torch.Tensor],
        cond: torch.Tensor,
        generator: torch.Generator | None = None,
        hop: int = FRAME_HOP,
    ) -> None:
        """Add synthesize's audio (at the rate of `hop`), summed over the voices, to `out` (its length is the
        piece's samples), SYNTH_SPAN_SAMPLES (at 16 kHz; as long in seconds at any rate) at a time, so that
        memory does not grow with the piece: the noise is drawn whole, the same numbers, and each span carries
        the running phase on (tested against synthesize). It takes `ctl`'s harmonics and noise out of it, and
        works on them in place."""
        n_samples = len(out)
        f0 = midi_to_hz(channel_midi(cond[:, CH["pitch"]]))
        harm = ctl.pop("harmonics").mul_(ctl["amplitude"])
        prepared, noise_bands = self._at_rate(f0, harm, ctl.pop("noise"), hop, in_place=True)
        del harm
        noise = torch.rand(cond.shape[0], n_samples, generator=generator, device=cond.device).mul_(2).sub_(1)
        mags = noise_frames(noise_bands, n_samples, hop)
        phase = torch.zeros(cond.shape[0], dtype=torch.float64, device=cond.device)
        span = SYNTH_SPAN_SAMPLES * hop // FRAME_HOP
        for s in range(0, n_samples, span):
            e = min(n_samples, s + span)
            harm, phase = harmonic_span(f0, prepared[2], s, e, phase, prepared, hop)
            out[s:e] += (harm + noise_span(mags, noise, s, e, hop)).sum(0).cpu().numpy()

    def forward(
        self,
        cond: torch.Tensor,
        emb: torch.Tensor,
        n_samples: int | None = None,
        generator: torch.Generator | None = None,
        offset: torch.Tensor | None = None,
        hop: int = FRAME_HOP,
    ) -> torch.Tensor:
        """-> audio (B, n_samples) at the rate of `hop` (16 kHz unless asked)."""
        n = n_samples or cond.shape[-1] * hop
        return self.synthesize(self.controls(cond, emb, offset), cond, n, generator, hop)


LOSS_FFTS = (2048, 1024, 512, 256, 128, 64)  # at 16 kHz


def loss_ffts(hop: int) -> tuple[int, ...]:
    """The loss's FFT sizes at the rate of `hop`: the same durations (128 ms to 4 ms) as LOSS_FFTS at 16 kHz."""
    return tuple(n * hop // FRAME_HOP for n in LOSS_FFTS)


def widened(decoder: WaveNetDecoder, hop: int) -> WaveNetDecoder:
    """A copy of `decoder` made to render at the rate of `hop`: its output layer given the noise bands of that
    rate, the new ones (above the old band) starting as copies of its top band, so that fine-tuning on
    full-band targets starts from the trained decoder with a flat noise floor above its old band. The noise
    bands' biases are raised so that their level per hertz stays what it was at the old rate (the same
    magnitudes shape noise spread over a wider band): exp_sigmoid is about 2 * 10**x where it is small."""
    from dataclasses import replace

    old = decoder.cfg.noise_bands
    if hop + 1 == old:
        return decoder
    if hop + 1 < old:
        raise ValueError(f"a decoder with {old} noise bands cannot be narrowed to {hop + 1}")
    wide = WaveNetDecoder(replace(decoder.cfg, noise_bands=hop + 1)).to(next(decoder.parameters()).device)
    state = decoder.state_dict()
    w, b = state.pop("out2.weight"), state.pop("out2.bias")
    wide.load_state_dict(state, strict=False)
    out_w, out_b = wide.out2.weight, _bias(wide.out2)
    with torch.no_grad():
        rows = 1 + decoder.cfg.n_harmonics + old
        out_w[:rows] = w
        out_b[:rows] = b
        out_w[rows:] = w[rows - 1]
        out_b[rows:] = b[rows - 1]
        out_b[1 + decoder.cfg.n_harmonics :] += 0.5 * math.log10(hop / decoder.hop)
    return wide


def multi_resolution_stft_loss(
    pred: torch.Tensor, target: torch.Tensor, ffts: tuple[int, ...] = LOSS_FFTS, high_weight: float = 1.0
) -> torch.Tensor:
    """Sum over resolutions of mean |linear magnitude difference| and mean |log magnitude difference|. At a
    higher rate than 16 kHz (ffts that many times LOSS_FFTS: loss_ffts) the bins above 8 kHz are averaged
    apart and count `high_weight` times beside the mean of those below, so that a full-band decoder's band
    below 8 kHz weighs what a 16 kHz decoder's does (at 48 kHz two thirds of the bins lie above it)."""
    loss = pred.new_zeros(())
    scale = ffts[0] // LOSS_FFTS[0]  # the rate over 16 kHz
    for n in ffts:
        w = torch.hann_window(n, device=pred.device)
        p = torch.stft(pred, n, n // 4, window=w, return_complex=True).abs()
        t = torch.stft(target, n, n // 4, window=w, return_complex=True).abs()
        lin = (p - t).abs()
        log = (torch.log(p + 1e-5) - torch.log(t + 1e-5)).abs()
        if scale == 1:
            loss = loss + lin.mean() + log.mean()
            continue
        edge = n // 2 // scale + 1  # the bins up to 8 kHz
        loss = loss + lin[:, :edge].mean() + log[:, :edge].mean()
        loss = loss + high_weight * (lin[:, edge:].mean() + log[:, edge:].mean())
    return loss
