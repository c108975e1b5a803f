"""A training run's settings: TrainConfig, read from JSON with command-line overrides."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.constants import FRAME_RATE_HZ, MAX_OUTPUT_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ
from hybrid.errors import HybridError


@dataclass(frozen=True)
class TrainConfig:
    encoder: dict[str, Any] = field(default_factory=dict)  # EncoderConfig overrides
    decoder: dict[str, Any] = field(default_factory=dict)  # DecoderConfig overrides
    encoder_steps: int = 1500
    encoder_batch: int = 32
    encoder_crop_s: float = 1.5
    encoder_lr: float = 2e-3
    steps: int = 10000  # decoder steps
    batch: int = 8
    crop_s: float = 1.0
    lr: float = 1e-3
    phrase_fraction: float = 0.4  # share of decoder items that are rendered phrases, not single notes
    embeddings_per_instrument: int = 6
    checkpoint_every: int = 250
    validate_every: int = 1000
    seed: int = 0
    init_from: str | None = None  # a checkpoint directory: start from its weights, skip the encoder stage
    encoder_finetune_lr: float = 0.0  # > 0: the encoder trains with the decoder (reconstruction loss)
    eq_augment_db: float = 0.0  # > 0: random EQ of up to about this many dB on target and timbre clip
    online_embeddings: bool = False  # each item's embedding from a fresh clip (implied by the two above)
    # The decoder's rate: SAMPLE_RATE_HZ (its band to 8 kHz), or up to 48 kHz for a full-band one (targets read
    # and rendered at this rate; FRAME_RATE_HZ control frames a second, so a whole number of samples per frame)
    sample_rate_hz: int = SAMPLE_RATE_HZ
    # above the 16 kHz rate: how much the loss's bins above 8 kHz count beside the mean of those below
    # (hybrid.neural.models.multi_resolution_stft_loss)
    high_band_weight: float = 1.0

    def __post_init__(self) -> None:
        counts = {"steps": self.steps, "batch": self.batch, "encoder_batch": self.encoder_batch}
        counts |= {"checkpoint_every": self.checkpoint_every, "validate_every": self.validate_every}
        counts |= {"embeddings_per_instrument": self.embeddings_per_instrument}
        for name, value in counts.items():
            if not (isinstance(value, int) and value >= 1):
                raise HybridError(
                    f"training config: {name} must be a whole number of at least 1, got {value!r}"
                )
        if not (isinstance(self.encoder_steps, int) and self.encoder_steps >= 0):
            raise HybridError(f"training config: encoder_steps must be 0 or more, got {self.encoder_steps!r}")
        rate = self.sample_rate_hz
        frame_rate = int(FRAME_RATE_HZ)
        if not (
            isinstance(rate, int)
            and SAMPLE_RATE_HZ <= rate <= MAX_OUTPUT_SAMPLE_RATE_HZ
            and rate % frame_rate == 0
        ):
            raise HybridError(
                f"training config: sample_rate_hz must be {SAMPLE_RATE_HZ}-{MAX_OUTPUT_SAMPLE_RATE_HZ} Hz in steps "
                f"of {frame_rate} (the control rate), got {rate!r}"
            )
        w = self.high_band_weight
        if not (isinstance(w, int | float) and np.isfinite(w) and w >= 0):
            raise HybridError(f"training config: high_band_weight must be 0 or more, got {w!r}")
        if "noise_bands" in self.decoder:
            raise HybridError(
                "training config: the decoder's noise bands follow sample_rate_hz; do not set them"
            )
        for name in ("lr", "encoder_lr", "crop_s", "encoder_crop_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise HybridError(f"training config: {name} must be a positive number, got {value!r}")

    @property
    def embeddings_online(self) -> bool:
        return self.online_embeddings or self.encoder_finetune_lr > 0 or self.eq_augment_db > 0


def load_train_config(path: str | os.PathLike[str] | None, overrides: dict[str, Any]) -> TrainConfig:
    d: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HybridError(f"{p}: cannot read training config ({exc})") from None
    d.update({k: v for k, v in overrides.items() if v is not None})
    if not isinstance(d, dict):
        raise HybridError(f"{path}: a training config is a JSON object of TrainConfig fields")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        where = f"{path}: " if path else ""
        raise HybridError(
            f"{where}unknown training setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    try:
        return TrainConfig(**d)
    except (TypeError, ValueError) as exc:
        raise HybridError(f"training config: {exc}") from None
