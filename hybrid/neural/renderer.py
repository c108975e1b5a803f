"""A loaded checkpoint ready to use: embed a timbre song, render notes with an embedding.

This is the neural layer's whole surface. It knows nothing of transcription, metrics or the per-song
calibration (hybrid.calibration), which builds on `embed` and `mixes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hybrid.constants import FRAME_HOP, SAMPLE_RATE_HZ
from hybrid.errors import HybridError
from hybrid.neural.conditioning import RELEASE_TAIL_S, sequence_conditioning
from hybrid.notes import NoteSequence

if TYPE_CHECKING:
    from hybrid.neural.models import TimbreEncoder, WaveNetDecoder

EMBED_WINDOW_S = 20.0  # a long timbre song is embedded in 20 s windows, averaged by their energy
MIN_EMBED_SAMPLES = 4096  # shorter audio is zero-padded to this before embedding
VOICES_PER_BATCH = 8
# Voices rendered at once are capped so that voices x frames stays within 8 voices of 60 s: a batch's memory
# (the network's activations and the synth's per-sample arrays) no longer grows with the song times 8.
BATCH_FRAMES = VOICES_PER_BATCH * 60 * SAMPLE_RATE_HZ // FRAME_HOP

Offset = npt.NDArray[np.float32]  # (1 + n_harmonics + noise_bands,) added to the decoder's raw outputs


def pick_device(device: str) -> str:
    """ "auto" -> cuda when available, else cpu; an explicit device is checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HybridError("--device cuda: no CUDA GPU is available here")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise HybridError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


def voices_per_batch(frames: int, hop: int = FRAME_HOP) -> int:
    """How many voices the decoder renders at once for a piece of `frames` frames (fewer for long pieces, and
    at a higher rate than 16 kHz, whose per-sample arrays are longer)."""
    return max(1, min(VOICES_PER_BATCH, BATCH_FRAMES * FRAME_HOP // hop // max(frames, 1)))


@dataclass
class Renderer:
    """A loaded checkpoint: its encoder and decoder on one device, and where they came from."""

    encoder: TimbreEncoder
    decoder: WaveNetDecoder
    device: str
    provenance: dict[str, Any]
    weights_sha256: str = ""  # of the checkpoint's weights: what a fitted timbre file is tied to

    @classmethod
    def load(cls, checkpoint: str | os.PathLike[str] | None = None, device: str = "auto") -> Renderer:
        """The checkpoint directory `checkpoint` (None: the shipped model) on `device` (auto, cpu, cuda)."""
        from hybrid.neural.checkpoint import load_checkpoint

        dev = pick_device(device)
        ck = load_checkpoint(checkpoint, dev)
        return cls(ck.encoder, ck.decoder, dev, ck.provenance, ck.weights_sha256)

    def embed(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Timbre embedding (unit vector) of mono SAMPLE_RATE_HZ audio of any length."""
        import torch

        win = int(EMBED_WINDOW_S * SAMPLE_RATE_HZ)
        starts = list(range(0, max(1, len(audio) - win // 4), win)) or [0]
        embs, weights = [], []
        with torch.no_grad():
            for s in starts:
                seg = audio[s : s + win]
                if len(seg) < MIN_EMBED_SAMPLES:
                    seg = np.pad(seg, (0, MIN_EMBED_SAMPLES - len(seg)))
                x = torch.tensor(seg[None], dtype=torch.float32, device=self.device)
                embs.append(self.encoder(x)[0].cpu().numpy())
                weights.append(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-12)
        e = np.average(np.stack(embs), axis=0, weights=np.array(weights))
        return (e / (np.linalg.norm(e) + 1e-12)).astype(np.float32)

    def mixes(
        self,
        notes: NoteSequence,
        embedding: npt.NDArray[np.float32],
        offsets: list[Offset | None],
        seed: int = 0,
        tail_s: float = RELEASE_TAIL_S,
        full_band: bool = False,
    ) -> list[npt.NDArray[np.float32]]:
        """The decoder's mix of the notes' voices once per output offset (None: no offset), at 16 kHz (what the
        calibration analyses) or, with `full_band`, at the decoder's own rate (`sample_rate_hz`). The network
        runs once per batch of voices; each offset re-applies only the output layer and the synth, with its own
        noise generator seeded alike, so each mix is what rendering with that offset alone gives."""
        import torch

        hop = self.decoder.hop if full_band else FRAME_HOP
        cond = sequence_conditioning(notes, tail_s=tail_s)
        n_samples = cond.shape[-1] * hop
        outs = [np.zeros(n_samples, np.float32) for _ in offsets]
        if cond.shape[0] == 0:
            return outs
        gens = [torch.Generator(device="cpu").manual_seed(seed) for _ in offsets]
        emb = torch.tensor(embedding[None], device=self.device)
        offs = [None if o is None else torch.tensor(o, device=self.device) for o in offsets]
        with torch.no_grad():
            per_batch = voices_per_batch(cond.shape[-1], hop)
            for i in range(0, cond.shape[0], per_batch):
                c = torch.tensor(cond[i : i + per_batch], device=self.device)
                h = self.decoder.features_for(c, emb)
                # the last offset's controls are written over the network's output: a long piece's
                # features and controls are not held at once
                ctls = [self.decoder.controls_from_features(h, c, off) for off in offs[:-1]]
                ctls.append(self.decoder.controls_over_features(h, c, offs[-1]))
                del h
                for out, gen in zip(outs, gens, strict=True):
                    self.decoder.synthesize_into(
                        out, ctls.pop(0), c, gen if self.device == "cpu" else None, hop
                    )
        return outs

    def render(
        self,
        notes: NoteSequence,
        embedding: npt.NDArray[np.float32],
        offset: Offset | None = None,
        seed: int = 0,
        tail_s: float = RELEASE_TAIL_S,
        full_band: bool = False,
    ) -> npt.NDArray[np.float32]:
        """Mono audio of the notes at SAMPLE_RATE_HZ (or, with `full_band`, at `sample_rate_hz`): each voice
        rendered by the decoder (in batches), summed. Lasts until the last note's offset plus `tail_s`."""
        (out,) = self.mixes(notes, embedding, [offset], seed, tail_s, full_band)
        return out

    @property
    def sample_rate_hz(self) -> int:
        """The decoder's own rate: 16 kHz (its band to 8 kHz), or a full-band decoder's (48 kHz)."""
        return self.decoder.sample_rate_hz

    @property
    def full_band(self) -> bool:
        """Whether the decoder renders above 8 kHz itself (else hybrid.calibration.bandwidth extends it)."""
        return self.decoder.hop > FRAME_HOP
