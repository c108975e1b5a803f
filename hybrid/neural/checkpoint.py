"""The versioned checkpoint directory: config.json (format version, architectures, the audio and conditioning
formats the weights were trained on, provenance) and model.safetensors (weights only). Loading is strict,
checks the recorded formats against this code's, and never unpickles. docs/checkpoint-format.md describes
the format and its changes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.audio import file_sha256
from hybrid.errors import HybridError

if TYPE_CHECKING:
    from hybrid.neural.models import TimbreEncoder, WaveNetDecoder

FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PENDING = ".next"  # a checkpoint being saved is written as NAME.next first, then renamed


@dataclass
class Checkpoint:
    encoder: TimbreEncoder
    decoder: WaveNetDecoder
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    weights_sha256: str = ""


def formats(decoder_hop: int | None = None) -> dict[str, Any]:
    """What format 2 records beside the architectures, as this code defines it: the decoder's audio rate and
    hop (16 kHz and 64 samples, or a full-band decoder's, `decoder_hop` at the same 250 frames/s), the
    conditioning and the encoder's mel analysis. A checkpoint whose record differs would render wrongly."""
    from hybrid.constants import FRAME_HOP
    from hybrid.neural import conditioning
    from hybrid.neural.models import MEL_FMAX_HZ, MEL_FMIN_HZ
    from hybrid.neural.synth import rate_of

    hop = FRAME_HOP if decoder_hop is None else decoder_hop
    return {
        "audio": {"sample_rate_hz": rate_of(hop), "frame_hop": hop},
        "conditioning": conditioning.spec(),
        "mel": {"fmin_hz": MEL_FMIN_HZ, "fmax_hz": MEL_FMAX_HZ, "scale": "slaney", "norm": "slaney"},
    }


def _check_formats(cfg: dict[str, Any], cfg_path: Path) -> None:
    """Refuse a checkpoint trained on another audio rate, conditioning or mel analysis than this code's. Format 1
    recorded none of them: it was written by code with the values format 2 records first."""
    if cfg.get("format_version") == 1:
        return
    bands = cfg.get("decoder", {}).get("noise_bands") if isinstance(cfg.get("decoder"), dict) else None
    ours = formats(bands - 1 if isinstance(bands, int) and bands > 1 else None)
    for key, want in ours.items():
        got = cfg.get(key)
        if got != want:
            diff = (
                "missing"
                if not isinstance(got, dict)
                else ", ".join(f"{k}: {got.get(k)!r} here {v!r}" for k, v in want.items() if got.get(k) != v)
            )
            raise HybridError(f"{cfg_path}: trained for another {key} format than this hybrid's ({diff})")


def default_checkpoint_dir() -> Path:
    """The shipped model: inside the installed package (wheels), or checkpoints/default in a source checkout."""
    package = Path(__file__).resolve().parent.parent  # hybrid/
    packaged = package / "_default_checkpoint"
    if (packaged / CONFIG_NAME).exists():
        return packaged
    return package.parent / "checkpoints" / "default"


def save_checkpoint(
    directory: str | os.PathLike[str],
    encoder: TimbreEncoder,
    decoder: WaveNetDecoder,
    provenance: dict[str, Any],
) -> Path:
    """Write weights and config.json (which records the weights' sha256), so that a kill at any moment leaves a
    loadable checkpoint: both are first written whole beside their final names (PENDING suffix), then renamed,
    weights first. A kill between the two renames leaves config.json.next describing the new weights, and
    load_checkpoint reads that."""
    from safetensors.torch import save_file

    from hybrid.outputs import atomic_path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    tensors.update({f"decoder.{k}": v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()})
    weights, config_path = d / (WEIGHTS_NAME + PENDING), d / (CONFIG_NAME + PENDING)
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    config = {
        "format_version": FORMAT_VERSION,
        "encoder": {"architecture": type(encoder).__name__, **asdict(encoder.cfg)},
        "decoder": {"architecture": type(decoder).__name__, **asdict(decoder.cfg)},
        **formats(decoder.hop),
        "weights_sha256": file_sha256(weights),
        "provenance": provenance,
    }
    with atomic_path(config_path) as tmp:
        tmp.write_text(json.dumps(config, indent=2))
    os.replace(weights, d / WEIGHTS_NAME)
    os.replace(config_path, d / CONFIG_NAME)
    return d


def _pending_config(cfg_path: Path, digest: str) -> dict[str, Any] | None:
    """config.json.next when it describes these weights: save_checkpoint was killed between its two renames."""
    pending = cfg_path.with_name(cfg_path.name + PENDING)
    try:
        cfg = json.loads(pending.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return cfg if isinstance(cfg, dict) and cfg.get("weights_sha256") == digest else None


def load_checkpoint(directory: str | os.PathLike[str] | None = None, device: str = "cpu") -> Checkpoint:
    """Rebuild both models from config.json and load their weights strictly."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from hybrid.neural.models import DecoderConfig, EncoderConfig, TimbreEncoder, WaveNetDecoder

    d = Path(directory) if directory else default_checkpoint_dir()
    cfg_path, w_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    if not w_path.exists() or not (cfg_path.exists() or cfg_path.with_name(CONFIG_NAME + PENDING).exists()):
        raise HybridError(f"{d}: not a hybrid checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    digest = file_sha256(w_path)
    cfg = None
    if cfg_path.exists():
        try:
            cfg = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise HybridError(f"{cfg_path}: malformed JSON ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("weights_sha256") != digest:
        cfg = _pending_config(cfg_path, digest) or cfg
    if not isinstance(cfg, dict):
        raise HybridError(f"{d}: not a hybrid checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    version = cfg.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise HybridError(
            f"{cfg_path}: checkpoint format version {version!r} is not supported by this hybrid "
            f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    if cfg.get("weights_sha256") != digest:
        raise HybridError(
            f"{w_path}: does not match {CONFIG_NAME} (sha256 differs): mixed or damaged checkpoint"
        )
    _check_formats(cfg, cfg_path)
    try:
        enc_dict, dec_dict = dict(cfg["encoder"]), dict(cfg["decoder"])
        for d_, cls in ((enc_dict, TimbreEncoder), (dec_dict, WaveNetDecoder)):
            arch = d_.pop("architecture", cls.__name__)  # format 1 named none: it had only these
            if arch != cls.__name__:
                raise HybridError(
                    f"{cfg_path}: unknown architecture {arch!r} (this hybrid has {cls.__name__})"
                )
        dec_dict["dilations"] = tuple(dec_dict["dilations"])
        enc_cfg, dec_cfg = EncoderConfig(**enc_dict), DecoderConfig(**dec_dict)
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
    return Checkpoint(encoder, decoder, cfg.get("provenance", {}), d, digest)
