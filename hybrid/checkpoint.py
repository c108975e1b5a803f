"""The versioned checkpoint directory: config.json (format version, architectures, provenance) and
model.safetensors (weights only). Loading is strict and never unpickles."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hybrid.errors import HybridError

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class Checkpoint:
    encoder: Any  # TimbreEncoder
    decoder: Any  # WaveNetDecoder
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def default_checkpoint_dir() -> Path:
    """The shipped model: inside the installed package (wheels), or checkpoints/default in a source checkout."""
    packaged = Path(__file__).resolve().parent / "_default_checkpoint"
    if (packaged / CONFIG_NAME).exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "checkpoints" / "default"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(
    directory: str | os.PathLike[str], encoder: Any, decoder: Any, provenance: dict[str, Any]
) -> Path:
    """Write weights, then config.json (which records the weights' sha256); each file atomically."""
    from safetensors.torch import save_file

    from hybrid.audio import atomic_path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    tensors.update({f"decoder.{k}": v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()})
    with atomic_path(d / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp))
    config = {
        "format_version": FORMAT_VERSION,
        "encoder": asdict(encoder.cfg),
        "decoder": asdict(decoder.cfg),
        "weights_sha256": _sha256(d / WEIGHTS_NAME),
        "provenance": provenance,
    }
    with atomic_path(d / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(config, indent=2))
    return d


def load_checkpoint(directory: str | os.PathLike[str] | None = None, device: str = "cpu") -> Checkpoint:
    """Rebuild both models from config.json and load their weights strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from hybrid.neural.models import DecoderConfig, EncoderConfig, TimbreEncoder, WaveNetDecoder

    d = Path(directory) if directory else default_checkpoint_dir()
    cfg_path, w_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    if not cfg_path.exists() or not w_path.exists():
        raise HybridError(f"{d}: not a hybrid checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise HybridError(f"{cfg_path}: malformed JSON ({exc})") from None
    version = cfg.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise HybridError(
            f"{cfg_path}: checkpoint format version {version!r} is not supported by this hybrid "
            f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    if cfg.get("weights_sha256") != _sha256(w_path):
        raise HybridError(
            f"{w_path}: does not match {CONFIG_NAME} (sha256 differs): mixed or damaged checkpoint"
        )
    try:
        enc_cfg = EncoderConfig(**cfg["encoder"])
        dec_dict = dict(cfg["decoder"])
        dec_dict["dilations"] = tuple(dec_dict["dilations"])
        dec_cfg = DecoderConfig(**dec_dict)
    except (KeyError, TypeError) as exc:
        raise HybridError(f"{cfg_path}: bad model configuration ({exc})") from None
    try:
        tensors = load_file(str(w_path), device=device)
    except (SafetensorError, OSError) as exc:
        raise HybridError(f"{w_path}: cannot read weights ({exc})") from None
    encoder, decoder = TimbreEncoder(enc_cfg), WaveNetDecoder(dec_cfg)
    for prefix, model in (("encoder.", encoder), ("decoder.", decoder)):
        part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            model.load_state_dict(part, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise HybridError(
                f"{w_path}: weights do not fit the configured {prefix[:-1]} ({first})"
            ) from None
        model.to(device).eval()
    return Checkpoint(encoder, decoder, cfg.get("provenance", {}), d)
