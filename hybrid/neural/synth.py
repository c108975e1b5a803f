"""Differentiable harmonic-plus-filtered-noise synthesizer (as in DDSP), driven at frame rate.

Harmonics above Nyquist are silenced, and the sinusoids are computed in time chunks so memory stays at
(voices x chunk x harmonics) however long the piece is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hybrid.constants import FRAME_HOP, SAMPLE_RATE_HZ

CHUNK_SAMPLES = SAMPLE_RATE_HZ  # 1 s of sinusoids at a time


def upsample(x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(B, C, frames) -> (B, C, n_samples), linear interpolation between frame centres."""
    return F.interpolate(x, size=n_samples, mode="linear", align_corners=False)


def _frames_to_samples(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Samples start..stop of the linear upsampling of frame-rate x (B, C, frames), hop FRAME_HOP: the same
    values as F.interpolate(x, frames * FRAME_HOP, mode="linear", align_corners=False), one chunk at a time
    (only the frames around the chunk, plus one on each side, are interpolated)."""
    lo, hi = max(0, start // FRAME_HOP - 1), min(x.shape[-1], -(-stop // FRAME_HOP) + 1)
    seg = F.interpolate(x[..., lo:hi], size=(hi - lo) * FRAME_HOP, mode="linear", align_corners=False)
    return seg[..., start - lo * FRAME_HOP : stop - lo * FRAME_HOP]


INAUDIBLE = 1e-5  # -100 dBFS: harmonics whose amplitude never exceeds this in a chunk are not rendered


def harmonic_synth(
    f0_hz: torch.Tensor, amplitudes: torch.Tensor, n_samples: int, initial_phase: torch.Tensor | None = None
) -> torch.Tensor:
    """f0 (B, frames) Hz, harmonic amplitudes (B, H, frames) -> audio (B, n_samples)."""
    n_harm = amplitudes.shape[1]
    k = torch.arange(1, n_harm + 1, device=f0_hz.device, dtype=f0_hz.dtype)
    # Silence harmonics at or above Nyquist (per frame), before upsampling.
    below = f0_hz[:, None, :] * k[None, :, None] < SAMPLE_RATE_HZ / 2  # (B, H, frames)
    amplitudes = amplitudes * below.to(amplitudes.dtype)
    f0 = upsample(f0_hz[:, None, :], n_samples)[:, 0]
    # The running phase in double precision, wrapped before it is multiplied by each harmonic's number: in
    # single precision its steps near 300 s of a 440 Hz voice are 0.06 rad, 2 rad at the 32nd harmonic.
    phase = torch.cumsum(2 * math.pi * f0.double() / SAMPLE_RATE_HZ, dim=-1)
    if initial_phase is not None:
        phase = phase + initial_phase[:, None]
    phase = torch.remainder(phase, 2 * math.pi).to(f0.dtype)
    rendering = not torch.is_grad_enabled()
    out = torch.zeros(f0.shape, device=f0.device, dtype=f0.dtype)
    for s in range(0, n_samples, CHUNK_SAMPLES):
        e = min(n_samples, s + CHUNK_SAMPLES)
        lo, hi = max(0, s // FRAME_HOP - 1), min(amplitudes.shape[-1], e // FRAME_HOP + 2)
        # Rendering skips silent chunks and the harmonics that stay inaudible in this one; with gradients
        # (training, the calibration's offset) only those above Nyquist throughout the chunk, which are exactly zero.
        if rendering:
            kept = amplitudes[:, :, lo:hi].amax(dim=(0, 2)) > INAUDIBLE
        else:
            kept = below[:, :, lo:hi].any(dim=2).any(dim=0)
        used = torch.nonzero(kept)
        if used.numel() == 0:
            continue
        top = int(used.max()) + 1
        a = _frames_to_samples(amplitudes[:, :top], s, e)
        ph = phase[:, None, s:e] * k[None, :top, None]
        out[:, s:e] = (torch.sin(ph) * a).sum(dim=1)
    return out


def noise_synth(
    magnitudes: torch.Tensor, n_samples: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Filtered noise: white noise shaped per frame by (B, bands, frames) magnitudes (bands = n_fft/2+1 of a
    2*FRAME_HOP-point STFT), by multiplying its short-time spectrum."""
    n_fft = 2 * FRAME_HOP
    bands = magnitudes.shape[1]
    assert bands == n_fft // 2 + 1, f"noise bands must be {n_fft // 2 + 1}"
    batch = magnitudes.shape[0]
    noise = torch.rand(batch, n_samples, generator=generator, device=magnitudes.device) * 2 - 1
    window = torch.hann_window(n_fft, device=magnitudes.device)
    spec = torch.stft(noise, n_fft, FRAME_HOP, window=window, return_complex=True, center=True)
    frames = spec.shape[-1]
    mags = magnitudes
    if mags.shape[-1] != frames:
        mags = F.interpolate(mags, size=frames, mode="linear", align_corners=False)
    out = torch.istft(spec * mags, n_fft, FRAME_HOP, window=window, center=True, length=n_samples)
    return out
