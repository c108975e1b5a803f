"""Render notes with a timbre: the shipped (or given) checkpoint's encoder and decoder."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hybrid.errors import HybridError
from hybrid.neural.conditioning import FRAME_HOP, SAMPLE_RATE_HZ, sequence_conditioning
from hybrid.notes import NoteSequence

EMBED_WINDOW_S = 20.0  # a long timbre song is embedded in 20 s windows, averaged by their energy
VOICES_PER_BATCH = 8


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HybridError("--device cuda: no CUDA GPU is available here")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise HybridError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


@dataclass
class Renderer:
    """A loaded checkpoint, ready to embed timbres and render notes."""

    encoder: object
    decoder: object
    device: str
    provenance: dict

    @classmethod
    def load(cls, checkpoint: str | os.PathLike[str] | None = None, device: str = "auto") -> Renderer:
        from hybrid.checkpoint import load_checkpoint

        dev = pick_device(device)
        ck = load_checkpoint(checkpoint, dev)
        return cls(ck.encoder, ck.decoder, dev, ck.provenance)

    def embed(self, audio_16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Timbre embedding (unit vector) of mono 16 kHz audio of any length."""
        import torch

        win = int(EMBED_WINDOW_S * SAMPLE_RATE_HZ)
        starts = list(range(0, max(1, len(audio_16k) - win // 4), win)) or [0]
        embs, weights = [], []
        with torch.no_grad():
            for s in starts:
                seg = audio_16k[s : s + win]
                if len(seg) < 4096:
                    seg = np.pad(seg, (0, 4096 - len(seg)))
                x = torch.tensor(seg[None], dtype=torch.float32, device=self.device)
                embs.append(self.encoder(x)[0].cpu().numpy())  # type: ignore[operator]
                weights.append(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-12)
        e = np.average(np.stack(embs), axis=0, weights=np.array(weights))
        return (e / (np.linalg.norm(e) + 1e-12)).astype(np.float32)

    def render(
        self, notes: NoteSequence, embedding: npt.NDArray[np.float32], seed: int = 0, tail_s: float = 1.0
    ) -> npt.NDArray[np.float32]:
        """Mono 16 kHz audio of the notes: each voice rendered by the decoder (in batches), then summed."""
        import torch

        cond = sequence_conditioning(notes, tail_s=tail_s)
        n_samples = cond.shape[-1] * FRAME_HOP
        out = np.zeros(n_samples, np.float32)
        if cond.shape[0] == 0:
            return out
        gen = torch.Generator(device="cpu").manual_seed(seed)
        emb = torch.tensor(embedding[None], device=self.device)
        with torch.no_grad():
            for i in range(0, cond.shape[0], VOICES_PER_BATCH):
                c = torch.tensor(cond[i : i + VOICES_PER_BATCH], device=self.device)
                y = self.decoder(
                    c, emb.expand(c.shape[0], -1), n_samples, gen if self.device == "cpu" else None
                )  # type: ignore[operator]
                out += y.sum(0).cpu().numpy()
        return out
