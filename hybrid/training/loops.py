"""Training: the timbre encoder (instrument classifier), then the decoder (multi-resolution STFT loss).

Or, with `init_from`, fine-tuning of a trained checkpoint's decoder (and, with `encoder_finetune_lr`, its
encoder with it), optionally on "new instruments" made by random equalisation (`eq_augment_db`): the same
random smooth EQ is applied to an item's target and to the clip its timbre embedding is computed from, so the
decoder must read the spectral envelope from the embedding rather than remember each training instrument.

Single process, or data-parallel under `torchrun --nproc_per_node=K` (DDP; gloo on CPU, nccl on CUDA).
The training state (model + optimiser, safetensors and JSON only) is saved atomically every
`checkpoint_every` steps; `resume` continues a killed run from the last one.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybrid.constants import SAMPLE_RATE_HZ
from hybrid.errors import HybridError
from hybrid.training.config import TrainConfig
from hybrid.training.data import (
    CLIP_S,
    InstrumentData,
    apply_eq,
    augment,
    decoder_item,
    random_eq,
    timbre_clip,
)
from hybrid.training.distributed import Dist, init_distributed
from hybrid.training.state import (
    STATE_JSON,
    STATE_TENSORS,
    ParameterHolder,
    load_training_state,
    read_training_progress,
    save_training_state,
)

if TYPE_CHECKING:
    import torch

    from hybrid.neural.models import TimbreEncoder, WaveNetDecoder

LOG_EVERY = 50  # steps between progress lines


@dataclass
class Run:
    """One training run's shared state: where it writes, its progress, and the log-and-save helper both stages
    use."""

    out: Path
    cfg: TrainConfig
    dist: Dist
    log: Callable[[str], None]
    provenance: dict[str, Any]
    train_data: InstrumentData
    valid_data: InstrumentData | None
    rng: np.random.Generator
    history: dict[str, Any] = field(default_factory=dict)
    elapsed_before_s: float = 0.0
    started: float = field(default_factory=time.time)
    _last: tuple[float, int] = (0.0, 0)

    def wall(self) -> float:
        return self.elapsed_before_s + time.time() - self.started

    def start_rate(self, step: int) -> None:
        self._last = (time.time(), step)

    def progress(self, stage: str, step: int, total: int, loss: float, extra: str = "") -> None:
        """Every LOG_EVERY steps on the main process: the loss and the speed since the last line."""
        if step % LOG_EVERY or not self.dist.main:
            return
        t, s = self._last
        rate = (step - s) / (time.time() - t)
        self._last = (time.time(), step)
        self.log(f"{stage} step {step}/{total}  loss {loss:.3f}  {rate:.2f} steps/s{extra}")

    def save(
        self, stage: str, step: int, models: dict[str, Any], opt: Any, checkpoint_steps: int | None = None
    ) -> None:
        """The training state (main process only); with `checkpoint_steps`, also the checkpoint with that many
        decoder steps in its provenance."""
        if not self.dist.main:
            return
        save_training_state(
            self.out, stage, step, models, opt, {"history": self.history, "wall_s": self.wall()}
        )
        if checkpoint_steps is not None:
            from hybrid.neural.checkpoint import save_checkpoint

            prov = {
                **self.provenance,
                "encoder_steps": self.cfg.encoder_steps,
                "decoder_steps": checkpoint_steps,
                "wall_s": round(self.wall(), 1),
                "validation": self.history,
            }
            save_checkpoint(self.out, models["encoder"], models["decoder"], prov)

    def due(self, step: int, every: int, total: int) -> bool:
        return step % every == 0 or step == total


def check_output_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse to write over the shipped model, a training run (without resume) or a checkpoint (without force)."""
    from hybrid.neural.checkpoint import CONFIG_NAME, WEIGHTS_NAME, default_checkpoint_dir

    if out.exists() and not out.is_dir():
        raise HybridError(f"{out}: exists and is not a folder")
    if out.resolve() == default_checkpoint_dir().resolve():
        raise HybridError(f"{out}: is the shipped model; train into another folder")
    if resume:
        if not (out / STATE_TENSORS).exists():
            raise HybridError(f"{out}: nothing to resume (no {STATE_TENSORS}; train without --resume)")
        return
    if any((out / n).exists() for n in (STATE_JSON, STATE_TENSORS)):
        raise HybridError(
            f"{out}: holds a training run already (use --resume to continue it, or another --out)"
        )
    if not force and any((out / n).exists() for n in (CONFIG_NAME, WEIGHTS_NAME)):
        raise HybridError(f"{out}: holds a checkpoint already (use --force to replace it, or another --out)")


def train(
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: TrainConfig = TrainConfig(),
    device: str = "cpu",
    resume: bool = False,
    log: Callable[[str], None] = print,
    force: bool = False,
) -> Path:
    """Train encoder then decoder on an NSynth-format folder; write the checkpoint directory `out`."""

    root, out_dir = Path(data_root), Path(out)
    check_output_dir(out_dir, resume, force)
    created = not out_dir.exists()
    try:
        return _train(root, out_dir, cfg, device, resume, log)
    except BaseException:
        # a run that fails before saving anything leaves no empty folder behind (a run that saved a state
        # keeps it: --resume continues from there)
        if created and out_dir.is_dir():
            from hybrid.outputs import remove_stale_temps

            remove_stale_temps(out_dir)
            if not any(out_dir.iterdir()):
                out_dir.rmdir()
        raise


def _train(
    root: Path, out_dir: Path, cfg: TrainConfig, device: str, resume: bool, log: Callable[[str], None]
) -> Path:
    import torch

    from hybrid.neural.models import DecoderConfig, EncoderConfig, TimbreEncoder, WaveNetDecoder

    dist = init_distributed(device)
    torch.manual_seed(cfg.seed + dist.rank)
    rng = np.random.default_rng(cfg.seed + 1000 * dist.rank)
    train_data = InstrumentData(root, "train", rng, cfg.sample_rate_hz)
    valid_data = (
        InstrumentData(root, "valid", np.random.default_rng(cfg.seed + 7), cfg.sample_rate_hz)
        if (root / "nsynth-valid" / "examples.json").exists()
        else None
    )
    if valid_data is not None and not valid_data.instruments:
        valid_data = None
    dec_dict = dict(cfg.decoder)
    if "dilations" in dec_dict:
        dec_dict["dilations"] = tuple(dec_dict["dilations"])
    encoder = TimbreEncoder(EncoderConfig(**cfg.encoder)).to(dist.device)
    dec_dict["noise_bands"] = train_data.hop + 1
    decoder = WaveNetDecoder(DecoderConfig(**dec_dict)).to(dist.device)
    class_weight = torch.nn.Parameter(
        torch.randn(len(train_data.instruments), encoder.cfg.embedding_dim, device=dist.device) * 0.1
    )
    stage, step = "encoder", 0
    run = Run(out_dir, cfg, dist, log, {}, train_data, valid_data, rng)
    if cfg.init_from:
        from hybrid.neural.checkpoint import load_checkpoint
        from hybrid.neural.models import widened

        ck = load_checkpoint(cfg.init_from, dist.device)
        if ck.decoder.hop > train_data.hop:
            raise HybridError(
                f"{cfg.init_from}: its decoder renders at {ck.decoder.sample_rate_hz} Hz; "
                f"it cannot be fine-tuned at {cfg.sample_rate_hz} Hz"
            )
        encoder, decoder = ck.encoder, widened(ck.decoder, train_data.hop)
        stage = "decoder"
        log(f"starting from {cfg.init_from} ({ck.provenance.get('decoder_steps')} decoder steps)")
    if dist.world > 1 and cfg.encoder_finetune_lr > 0:
        raise HybridError("encoder_finetune_lr needs a single process for now (run without torchrun)")
    if resume:
        doc = read_training_progress(out_dir)
        stage, step, run.history = doc["stage"], doc["step"], doc.get("history", {})
        run.elapsed_before_s = doc.get("wall_s", 0.0)
        log(f"resuming the {stage} stage at step {step}")
    out_dir.mkdir(parents=True, exist_ok=True)
    run.provenance = {
        "data": str(root),
        "soundfonts": train_data.data_soundfonts,
        "train_instruments": len(train_data.instruments),
        "seed": cfg.seed,
        "commit": _commit(),
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, {torch.cuda.get_device_name(0) if dist.device.startswith('cuda') else 'cpu'}, {dist.world} process(es)",
        "train_config": asdict(cfg),
        **({"init_from": cfg.init_from} if cfg.init_from else {}),
    }
    if stage == "encoder":
        train_encoder(run, encoder, decoder, class_weight, step if resume else 0, resume)
        step = 0
    train_decoder(run, encoder, decoder, step, resume)
    train_data.close()
    if valid_data is not None:
        valid_data.close()
    if dist.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return out_dir


def train_encoder(
    run: Run,
    encoder: TimbreEncoder,
    decoder: WaveNetDecoder,
    class_weight: torch.nn.Parameter,
    step: int,
    resume: bool,
) -> None:
    """Stage 1: the timbre encoder, an instrument classifier (cosine softmax with margin)."""
    import torch

    cfg, dist, rng = run.cfg, run.dist, run.rng
    train_data, valid_data = run.train_data, run.valid_data
    enc_model: Any = encoder
    if dist.world > 1:
        enc_model = torch.nn.parallel.DistributedDataParallel(encoder)
    opt = torch.optim.AdamW([*encoder.parameters(), class_weight], lr=cfg.encoder_lr, weight_decay=1e-4)
    models = {"encoder": encoder, "decoder": decoder, "classes": ParameterHolder(class_weight)}
    if resume and step > 0:
        load_training_state(run.out, models, opt)
    n = int(cfg.encoder_crop_s * SAMPLE_RATE_HZ)
    n_inst = len(train_data.instruments)
    run.start_rate(step)
    while step < cfg.encoder_steps:
        lr = cfg.encoder_lr * 0.5 * (1 + np.cos(np.pi * step / cfg.encoder_steps))
        for g in opt.param_groups:
            g["lr"] = lr
        labels = rng.integers(n_inst, size=cfg.encoder_batch)
        x = np.stack(
            [augment(timbre_clip(train_data, train_data.instruments[i], n, rng), rng) for i in labels]
        )
        emb = enc_model(torch.tensor(x, device=dist.device))
        loss = am_softmax_loss(emb, class_weight, torch.tensor(labels, device=dist.device))
        opt.zero_grad()
        loss.backward()
        if dist.world > 1 and class_weight.grad is not None:
            torch.distributed.all_reduce(class_weight.grad)
            class_weight.grad.div_(dist.world)
        opt.step()
        step += 1
        run.progress("encoder", step, cfg.encoder_steps, loss.item())
        if run.due(step, cfg.checkpoint_every, cfg.encoder_steps):
            done = step == cfg.encoder_steps
            run.save("decoder" if done else "encoder", 0 if done else step, models, opt)
    if dist.main and valid_data is not None:
        encoder.eval()
        acc = encoder_accuracy(encoder, valid_data, np.random.default_rng(cfg.seed + 11))
        run.history["encoder_valid_accuracy"] = acc
        run.log(
            f"encoder: held-out instrument identification (nearest centroid, {len(valid_data.instruments)} instruments): {acc:.3f}"
        )
        run.save("decoder", 0, models, opt)
    if dist.world > 1:
        torch.distributed.barrier()  # DDP kept the ranks' encoders identical


def train_decoder(run: Run, encoder: TimbreEncoder, decoder: WaveNetDecoder, step: int, resume: bool) -> None:
    """Stage 2: the decoder, with the encoder frozen (or fine-tuned with it)."""
    import torch

    from hybrid.neural.models import loss_ffts, multi_resolution_stft_loss

    cfg, dist, rng = run.cfg, run.dist, run.rng
    train_data, valid_data = run.train_data, run.valid_data
    encoder.eval()
    finetune = cfg.encoder_finetune_lr > 0
    for p in encoder.parameters():
        p.requires_grad_(finetune)
    groups = [{"params": list(decoder.parameters()), "base_lr": cfg.lr}]
    if finetune:
        groups.append({"params": list(encoder.parameters()), "base_lr": cfg.encoder_finetune_lr})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=1e-5)
    models = {"encoder": encoder, "decoder": decoder}
    if resume:
        doc = read_training_progress(run.out)
        if doc["stage"] == "decoder" and doc["step"] > 0:
            load_training_state(run.out, models, opt)
            step = doc["step"]
            run.history = doc.get("history", run.history)
    dec_model: Any = decoder
    if dist.world > 1:
        # The last layer's residual output feeds nothing (only its skip does): tell DDP.
        dec_model = torch.nn.parallel.DistributedDataParallel(decoder, find_unused_parameters=True)
    if step > 0:  # a resumed run draws new data rather than replaying the sequence it started with
        rng = np.random.default_rng([cfg.seed, dist.rank, step])
        train_data.rng = rng
    table = (
        None if cfg.embeddings_online else instrument_embeddings(encoder, train_data, cfg, rng, dist.device)
    )
    clip_n = int(CLIP_S * SAMPLE_RATE_HZ)
    valid_items = None
    if valid_data is not None:  # (target, conditioning, a clip of the same instrument to embed)
        crng = np.random.default_rng(cfg.seed + 3)
        vrng = np.random.default_rng(cfg.seed + 5)
        valid_items = []
        for k in range(min(32, 4 * len(valid_data.instruments))):
            inst = valid_data.instruments[k % len(valid_data.instruments)]
            a, c = decoder_item(valid_data, inst, cfg, vrng)
            valid_items.append((a, c, timbre_clip(valid_data, inst, clip_n, crng)))
    n, hop = int(cfg.crop_s * train_data.sample_rate_hz), train_data.hop
    ffts = loss_ffts(hop)
    n_inst = len(train_data.instruments)
    run.start_rate(step)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + dist.rank)
    while step < cfg.steps:
        lr = cfg.lr * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr * g["base_lr"] / cfg.lr
        insts = rng.integers(n_inst, size=cfg.batch)
        items = [decoder_item(train_data, train_data.instruments[i], cfg, rng) for i in insts]
        if table is not None:
            emb = torch.stack([table[i][int(rng.integers(len(table[i])))] for i in insts]).to(dist.device)
        else:
            clips = [timbre_clip(train_data, train_data.instruments[i], clip_n, rng) for i in insts]
            if cfg.eq_augment_db > 0:
                eqs = [random_eq(rng, cfg.eq_augment_db) for _ in insts]
                items = [(apply_eq(a, e), c) for (a, c), e in zip(items, eqs, strict=True)]
                clips = [apply_eq(x, e) for x, e in zip(clips, eqs, strict=True)]
            with torch.set_grad_enabled(finetune):
                emb = encoder(torch.tensor(np.stack(clips), device=dist.device))
        audio = torch.tensor(np.stack([a for a, _ in items]), device=dist.device)
        cond = torch.tensor(np.stack([c for _, c in items]), device=dist.device)
        pred = dec_model(cond, emb, n, gen if dist.device == "cpu" else None, hop=hop)
        loss = multi_resolution_stft_loss(pred, audio, ffts, cfg.high_band_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 3.0)
        if finetune:
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), 3.0)
        opt.step()
        step += 1
        run.progress("decoder", step, cfg.steps, loss.item(), f"  lr {lr:.2e}")
        if dist.main and valid_items and run.due(step, cfg.validate_every, cfg.steps):
            vloss = validate(encoder, decoder, valid_items, n, dist.device, hop, cfg.high_band_weight)
            run.history.setdefault("decoder_valid_loss", []).append([step, vloss])
            run.log(f"decoder step {step}: validation loss on held-out instruments {vloss:.3f}")
        if run.due(step, cfg.checkpoint_every, cfg.steps):
            run.save("decoder", step, models, opt, checkpoint_steps=step)


# --------------------------------------------------------------------------------------------- helpers


def am_softmax_loss(emb: Any, weight: Any, labels: Any, scale: float = 16.0, margin: float = 0.2) -> Any:
    import torch.nn.functional as F

    logits = emb @ F.normalize(weight, dim=1).T
    logits = logits - margin * F.one_hot(labels, logits.shape[1])
    return F.cross_entropy(scale * logits, labels)


def encoder_accuracy(
    encoder: Any, data: InstrumentData, rng: np.random.Generator, n_enrol: int = 3, n_test: int = 4
) -> float:
    """Nearest-centroid identification of the split's instruments: enrol on notes, test on other clips."""
    import torch

    n = int(CLIP_S * SAMPLE_RATE_HZ)
    cents, tests, labels = [], [], []
    with torch.no_grad():
        for i, inst in enumerate(data.instruments):
            enrol = np.stack([timbre_clip(data, inst, n, rng) for _ in range(n_enrol)])
            cents.append(encoder(torch.tensor(enrol)).mean(0))
            tests.append(
                encoder(torch.tensor(np.stack([timbre_clip(data, inst, n, rng) for _ in range(n_test)])))
            )
            labels += [i] * n_test
        c = torch.nn.functional.normalize(torch.stack(cents), dim=1)
        pred = (torch.cat(tests) @ c.T).argmax(1).numpy()
    return float(np.mean(pred == np.array(labels)))


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except Exception:
        return "unknown"


def instrument_embeddings(
    encoder: Any, data: InstrumentData, cfg: TrainConfig, rng: np.random.Generator, device: str
) -> list[Any]:
    """K embeddings per instrument, each from a different clip (note, melody or chords) of it."""
    import torch

    n = int(CLIP_S * SAMPLE_RATE_HZ)
    out = []
    with torch.no_grad():
        for inst in data.instruments:
            clips = np.stack([timbre_clip(data, inst, n, rng) for _ in range(cfg.embeddings_per_instrument)])
            out.append(encoder(torch.tensor(clips, device=device)))
    return out


def validate(
    encoder: Any, decoder: Any, items: list[Any], n: int, device: str, hop: int, high_weight: float = 1.0
) -> float:
    """Mean loss on held-out items: (target, conditioning, clip of the same instrument to embed), rendered at
    the rate of `hop`."""
    import torch

    from hybrid.neural.models import loss_ffts, multi_resolution_stft_loss

    decoder.eval()
    losses = []
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i in range(0, len(items), 8):
            chunk = items[i : i + 8]
            audio = torch.tensor(np.stack([a for a, _, _ in chunk]), device=device)
            cond = torch.tensor(np.stack([c for _, c, _ in chunk]), device=device)
            emb = encoder(torch.tensor(np.stack([x for _, _, x in chunk]), device=device))
            losses.append(
                float(
                    multi_resolution_stft_loss(
                        decoder(cond, emb, n, gen if device == "cpu" else None, hop=hop),
                        audio,
                        loss_ffts(hop),
                        high_weight,
                    )
                )
            )
    decoder.train()
    return float(np.mean(losses))
