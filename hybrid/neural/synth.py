"""Differentiable harmonic-plus-filtered-noise synthesizer (as in DDSP), driven at frame rate.

Harmonics above Nyquist are silenced, and the sinusoids are computed in time chunks so memory stays at
(voices x chunk x harmonics) however long the piece is.

The controls are at 250 frames/s whatever the audio rate: each function takes the `hop` of the rate it
synthesises at (64 samples: 16 kHz, the rate the calibration analyses; 192: 48 kHz, a full-band decoder's).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hybrid.constants import FRAME_HOP, FRAME_RATE_HZ, SAMPLE_RATE_HZ

CHUNK_SAMPLES = SAMPLE_RATE_HZ  # 1 s of sinusoids at a time (at 16 kHz; rate_of(hop) samples at any rate)


def rate_of(hop: int) -> int:
    """The audio rate at which `hop` samples make one control frame."""
    return int(round(hop * FRAME_RATE_HZ))


def upsample(x: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(B, C, frames) -> (B, C, n_samples), linear interpolation between frame centres."""
    return F.interpolate(x, size=n_samples, mode="linear", align_corners=False)


def _frames_to_samples(x: torch.Tensor, start: int, stop: int, hop: int = FRAME_HOP) -> torch.Tensor:
    """Samples start..stop of the linear upsampling of frame-rate x (B, C, frames): the same values as
    F.interpolate(x, frames * hop, mode="linear", align_corners=False), one chunk at a time (only the frames
    around the chunk, plus one on each side, are interpolated)."""
    lo, hi = max(0, start // hop - 1), min(x.shape[-1], -(-stop // hop) + 1)
    seg = F.interpolate(x[..., lo:hi], size=(hi - lo) * hop, mode="linear", align_corners=False)
    return seg[..., start - lo * hop : stop - lo * hop]


INAUDIBLE = 1e-5  # -100 dBFS: harmonics whose amplitude never exceeds this in a chunk are not rendered


def harmonic_synth(
    f0_hz: torch.Tensor,
    amplitudes: torch.Tensor,
    n_samples: int,
    initial_phase: torch.Tensor | None = None,
    hop: int = FRAME_HOP,
) -> torch.Tensor:
    """f0 (B, frames) Hz, harmonic amplitudes (B, H, frames) -> audio (B, n_samples) at the rate of `hop`."""
    start_phase = (
        initial_phase if initial_phase is not None else torch.zeros(f0_hz.shape[0], dtype=torch.float64)
    )
    return harmonic_span(f0_hz, amplitudes, 0, n_samples, start_phase.to(f0_hz.device), hop=hop)[0]


def harmonics_below_nyquist(
    f0_hz: torch.Tensor, amplitudes: torch.Tensor, in_place: bool = False, limit_hz: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(harmonic numbers, which harmonics lie below `limit_hz` (B, H, frames), the amplitudes with the others
    silenced): per frame, before upsampling. The limit is Nyquist of the rate synthesised at (None: 16 kHz's)
    or, lower, the band the decoder was trained on. With `in_place`, `amplitudes` itself is silenced there."""
    n_harm = amplitudes.shape[1]
    k = torch.arange(1, n_harm + 1, device=f0_hz.device, dtype=f0_hz.dtype)
    below = f0_hz[:, None, :] * k[None, :, None] < (SAMPLE_RATE_HZ / 2 if limit_hz is None else limit_hz)
    if in_place:
        return k, below, amplitudes.mul_(below)
    return k, below, amplitudes * below.to(amplitudes.dtype)


def harmonic_span(
    f0_hz: torch.Tensor,
    amplitudes: torch.Tensor,
    start: int,
    stop: int,
    phase0: torch.Tensor,
    prepared: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    hop: int = FRAME_HOP,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples start..stop (start a multiple of 1 s: rate_of(hop)) of harmonic_synth's audio, the running phase
    (B,) at `start` given: (audio (B, stop - start), the running phase at `stop`, unwrapped, in double
    precision). A long piece is synthesised span by span (WaveNetDecoder.synthesize_into), so memory does not
    grow with it; `prepared`: harmonics_below_nyquist's, made once for all its spans."""
    rate = rate_of(hop)
    k, below, amplitudes = prepared or harmonics_below_nyquist(f0_hz, amplitudes, limit_hz=rate / 2)
    f0 = _frames_to_samples(f0_hz[:, None, :], start, stop, hop)[:, 0]
    # The running phase in double precision, wrapped before it is multiplied by each harmonic's number: in
    # single precision its steps near 300 s of a 440 Hz voice are 0.06 rad, 2 rad at the 32nd harmonic.
    running = torch.cumsum(f0.double().mul_(2 * math.pi / rate), dim=-1)
    running += phase0.double()[:, None]
    phase_end = running[:, -1].clone() if stop > start else phase0.double()
    phase = running.remainder_(2 * math.pi).to(f0.dtype)
    del f0, running
    rendering = not torch.is_grad_enabled()
    out = torch.zeros(phase.shape, device=phase.device, dtype=phase.dtype)
    chunk = rate  # 1 s of sinusoids at a time
    for s in range(start, stop, chunk):
        e = min(stop, s + chunk)
        lo, hi = max(0, s // hop - 1), min(amplitudes.shape[-1], e // hop + 2)
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
        a = _frames_to_samples(amplitudes[:, :top], s, e, hop)
        ph = phase[:, None, s - start : e - start] * k[None, :top, None]
        out[:, s - start : e - start] = (torch.sin(ph) * a).sum(dim=1)
    return out, phase_end


def noise_synth(
    magnitudes: torch.Tensor, n_samples: int, generator: torch.Generator | None = None, hop: int = FRAME_HOP
) -> torch.Tensor:
    """Filtered noise: white noise shaped per frame by (B, bands, frames) magnitudes (bands = n_fft/2+1 of a
    2*hop-point STFT: 125 Hz apart at any rate), by multiplying its short-time spectrum."""
    bands = magnitudes.shape[1]
    assert bands == hop + 1, f"noise bands must be {hop + 1}"
    batch = magnitudes.shape[0]
    noise = torch.rand(batch, n_samples, generator=generator, device=magnitudes.device).mul_(2).sub_(1)
    return noise_span(noise_frames(magnitudes, n_samples, hop), noise, 0, n_samples, hop)


NOISE_MARGIN = 4  # hops of noise either side of a span (two are needed)


def noise_frames(magnitudes: torch.Tensor, n_samples: int, hop: int = FRAME_HOP) -> torch.Tensor:
    """The magnitudes at the frames of noise_synth's short-time spectrum (one more than the controls')."""
    frames = n_samples // hop + 1
    if magnitudes.shape[-1] == frames:
        return magnitudes
    return F.interpolate(magnitudes, size=frames, mode="linear", align_corners=False)


def noise_span(
    mags: torch.Tensor, noise: torch.Tensor, start: int, stop: int, hop: int = FRAME_HOP
) -> torch.Tensor:
    """Samples start..stop (multiples of hop) of noise_synth's audio, from its white `noise`
    (B, n_samples) drawn whole (the same numbers) and noise_frames' magnitudes: the span's short-time
    spectrum is taken with NOISE_MARGIN hops of the noise either side, so that its frames are the whole's
    (their centres fall on the same hops) wherever they reach into the span."""
    n_fft = 2 * hop
    a = max(0, start - NOISE_MARGIN * hop)
    b = min(noise.shape[-1], stop + NOISE_MARGIN * hop)
    window = torch.hann_window(n_fft, device=mags.device)
    spec = torch.stft(noise[:, a:b], n_fft, hop, window=window, return_complex=True, center=True)
    j0 = a // hop
    m = mags[..., j0 : j0 + spec.shape[-1]]
    y = torch.istft(
        spec * m if torch.is_grad_enabled() else spec.mul_(m),
        n_fft,
        hop,
        window=window,
        center=True,
        length=b - a,
    )
    return y[:, start - a : stop - a]
