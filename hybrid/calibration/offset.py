"""The offset: calibrating the decoder's output layer on the timbre song itself, by analysis by synthesis.

The encoder's embedding places a timbre song among the instruments the decoder was trained on; an instrument
unlike all of them lands near the closest one. The offset fit then takes one value per raw output of the decoder
(overall level, the 60 harmonic weights by harmonic number, the 65 noise bands) so that the decoder, playing
the song's own transcribed notes, sounds like the song: gradient descent on a multi-resolution log-mel
distance, over random short crops of the song. The network is run once; each step only re-applies the output
nonlinearities and the synth, which keeps it to about a second on a CPU.

Because the harmonic weights are indexed by harmonic number, the offset moves with the pitch (a brighter or
hollower tone at every pitch), where hybrid.calibration.correction is an equaliser on absolute
frequency. The two are used together: the offset first, then the correction is measured on the offset
rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hybrid.constants import FRAME_HOP, SAMPLE_RATE_HZ, mel_filters

if TYPE_CHECKING:
    import torch

    from hybrid.neural.models import WaveNetDecoder

STEPS = 30
LEARNING_RATE = 0.05
CROP_S = 2.0  # each step fits a random 2 s crop
# No offset is fitted on a shorter song (with its notes' release tails). Fitting on one 4 s NSynth guitar note (its
# transcribed note and tail are about 1 s) lowered the notes-survive F1 of other phrases from 0.95 to 0.82.
MIN_S = 2.0
# (n_fft, mel bands) of the log-mel distance; hop n_fft / 4.
RESOLUTIONS = ((2048, 80), (1024, 64), (512, 40))
# Each offset is kept within +-LIMIT (LIMIT * tanh): e^2 is 17 dB on a harmonic against the others. Unbounded (and
# with 60 steps), a few notes of a real recording (transcribed imperfectly, with room and string noise between them)
# pulled the noise floor and single harmonics up by 15-20 dB, and the output stopped transcribing as its notes.
LIMIT = 2.0
FLOOR_DB = 60.0  # mel power more than this far below the crop's loudest counts as this (silence is silence)


@dataclass(frozen=True)
class OffsetFit:
    offset: npt.NDArray[np.float32]  # (1 + n_harmonics + noise_bands,) added to the decoder's raw output
    loss_before: float
    loss_after: float


@lru_cache(maxsize=1)
def _mel_filters() -> dict[int, torch.Tensor]:
    import torch

    return {n: torch.tensor(mel_filters(n, m), dtype=torch.float32) for n, m in RESOLUTIONS}


def log_mel_distance(
    pred: torch.Tensor, target: torch.Tensor, filters: dict[int, torch.Tensor]
) -> torch.Tensor:
    """Sum over RESOLUTIONS of the mean |difference| of log10 mel power, floored FLOOR_DB below the target's
    loudest bin (torch tensors, 1-D audio)."""
    import torch

    loss = pred.new_zeros(())
    for n, fb in filters.items():
        w = torch.hann_window(n, device=pred.device)
        p = fb @ torch.stft(pred, n, n // 4, window=w, return_complex=True).abs() ** 2
        t = fb @ torch.stft(target, n, n // 4, window=w, return_complex=True).abs() ** 2
        floor = t.max() * 10 ** (-FLOOR_DB / 10) + 1e-12
        loss = loss + (torch.log10(p + floor) - torch.log10(t + floor)).abs().mean()
    return loss


def _adam_step(params: list[torch.Tensor], moments: list[tuple[torch.Tensor, torch.Tensor]], t: int) -> None:
    """One Adam update (betas 0.9 / 0.999) at LEARNING_RATE, written out: torch.optim's first step imports
    torch._dynamo, 1.3 s of a transfer's wall time."""
    import torch

    with torch.no_grad():
        for p, (m, v) in zip(params, moments, strict=True):
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            m.mul_(0.9).add_(g, alpha=0.1)
            v.mul_(0.999).addcmul_(g, g, value=0.001)
            step = LEARNING_RATE * m / (1 - 0.9**t) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
            p.sub_(step)


def fit_offset(
    decoder: WaveNetDecoder,
    cond: npt.NDArray[np.float32],
    embedding: npt.NDArray[np.float32],
    target: npt.NDArray[np.float32],
    device: str = "cpu",
    steps: int = STEPS,
    seed: int = 0,
    batch_voices: int = 8,
) -> OffsetFit | None:
    """Fit the output offset that makes the decoder's rendering of `cond` (voices, N_COND, frames) sound like
    `target` (mono 16 kHz, aligned with cond). None when the target is too short or silent to fit on."""
    import torch

    n_frames = min(cond.shape[-1], len(target) // FRAME_HOP)
    if cond.shape[0] == 0 or n_frames < MIN_S * SAMPLE_RATE_HZ // FRAME_HOP or not np.any(target):
        return None
    crop_frames = min(n_frames, int(CROP_S * SAMPLE_RATE_HZ) // FRAME_HOP)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        c_all = torch.tensor(cond[:, :, :n_frames], device=device)
        emb = torch.tensor(embedding[None], device=device)
        h_all = torch.cat([decoder.features_for(c, emb) for c in c_all.split(batch_voices)])
    y_all = torch.tensor(np.asarray(target[: n_frames * FRAME_HOP], np.float32), device=device)
    # Crops start where the target is loud enough to teach something: the frames with the top half of energy.
    energy = (y_all.reshape(n_frames, FRAME_HOP) ** 2).mean(1).cpu().numpy()
    window_energy = np.convolve(energy, np.ones(crop_frames), "valid")
    starts = np.flatnonzero(window_energy >= np.median(window_energy))
    filters = {n: fb.to(device) for n, fb in _mel_filters().items()}

    raw = torch.zeros(h_all.shape[1], device=device, requires_grad=True)
    # The song's loudness is not timbre: a free gain (log10 power) takes it up.
    gain = torch.zeros((), device=device, requires_grad=True)
    params = [raw, gain]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    losses = []
    for step in range(steps):
        s = int(rng.choice(starts))
        c, h = c_all[..., s : s + crop_frames], h_all[..., s : s + crop_frames]
        n = crop_frames * FRAME_HOP
        gen = torch.Generator(device="cpu").manual_seed(int(rng.integers(2**31)))
        offset = LIMIT * torch.tanh(raw / LIMIT)
        ctl = decoder.controls_from_features(h, c, offset)
        y = decoder.synthesize(ctl, c, n, gen if device == "cpu" else None).sum(0)
        loss = log_mel_distance(y * 10 ** (gain / 2), y_all[s * FRAME_HOP : s * FRAME_HOP + n], filters)
        raw.grad = gain.grad = None
        loss.backward()
        _adam_step(params, moments, step + 1)
        losses.append(loss.item())
    k = max(1, steps // 10)
    return OffsetFit(
        (LIMIT * torch.tanh(raw / LIMIT)).detach().cpu().numpy().astype(np.float32),
        float(np.mean(losses[:k])),
        float(np.mean(losses[-k:])),
    )


def harmonic_levels_db(offset: npt.NDArray[np.float32], n_harmonics: int = 60) -> npt.NDArray[np.float64]:
    """(n_harmonics,) how an offset changes each harmonic's level, in dB, against the average harmonic (the
    harmonic weights are a softmax, so only their differences matter)."""
    h = np.asarray(offset[1 : 1 + n_harmonics], np.float64)
    return (h - h.mean()) * 20.0 / np.log(10.0)
