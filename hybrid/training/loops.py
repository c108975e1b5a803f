"""Training: the timbre encoder (instrument classifier), then the decoder (multi-resolution STFT loss).

Or, with `init_from`, fine-tuning of a trained checkpoint's decoder (and, with `encoder_finetune_lr`, its
encoder with it), optionally on "new instruments" made by random equalisation (`eq_augment_db`): the same
random smooth EQ is applied to an item's target and to the clip its timbre embedding is computed from, so the
decoder must read the spectral envelope from the embedding rather than remember each training instrument.

Single process, or data-parallel under `torchrun --nproc_per_node=K` (DDP; gloo on CPU, nccl on CUDA).
Checkpoints (model + optimiser state, safetensors and JSON only) are saved atomically every
`checkpoint_every` steps; `--resume` continues a killed run from the last one.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hybrid.data.nsynth import SAMPLE_RATE_HZ, Example, NSynthReader
from hybrid.data.phrases import assemble_phrase, random_phrase
from hybrid.errors import HybridError
from hybrid.neural.conditioning import FRAME_HOP, FRAME_RATE_HZ, voice_conditioning
from hybrid.notes import Note, NoteSequence

STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"


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

    @property
    def embeddings_online(self) -> bool:
        return self.online_embeddings or self.encoder_finetune_lr > 0 or self.eq_augment_db > 0


# ----------------------------------------------------------------------------------------------- data


class InstrumentData:
    """Notes grouped by instrument, audio read from disk on demand, and phrases of each instrument."""

    def __init__(self, root: Path, split: str, rng: np.random.Generator) -> None:
        from hybrid.data.soundfont import default_soundfonts

        reader = NSynthReader(root, (split,))
        if len(reader) == 0:
            raise HybridError(f"{root}: the {split} split has no notes")
        self.by_instrument: dict[str, list[Example]] = {}
        for ex in reader:
            self.by_instrument.setdefault(ex.instrument_str, []).append(ex)
        self.instruments = sorted(self.by_instrument)
        self.data_soundfonts = sorted({str(e.record["soundfont"]) for e in reader if "soundfont" in e.record})
        self.rng = rng
        # SoundFonts named by the records (built sets): found via build_info.json or the usual places.
        self.soundfonts: dict[str, str] = {p.name: str(p) for p in default_soundfonts()}
        info = root / "build_info.json"
        if info.exists():
            for p in json.loads(info.read_text())["config"]["soundfonts"]:
                if Path(p).exists():
                    self.soundfonts[Path(p).name] = p
        self._renderers: dict[str, Any] = {}

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()

    def note(self, inst: str) -> tuple[npt.NDArray[np.float32], Example]:
        ex = self.by_instrument[inst][int(self.rng.integers(len(self.by_instrument[inst])))]
        return ex.load(), ex

    def phrase(self, inst: str, kind: str, duration_s: float) -> tuple[npt.NDArray[np.float32], NoteSequence]:
        """A random phrase of this instrument: rendered with its SoundFont preset when known, else assembled."""
        exs = self.by_instrument[inst]
        pitches = [e.pitch for e in exs]
        lo, hi = min(pitches), max(pitches)
        mid = (lo + hi) // 2
        rng_lo, rng_hi = max(lo, mid - 14), min(hi, mid + 14)
        seq = random_phrase(self.rng, kind, duration_s, (rng_lo, max(rng_lo, rng_hi)))
        rec = exs[0].record
        sf_name = rec.get("soundfont")
        if isinstance(sf_name, str) and sf_name in self.soundfonts:
            from hybrid.data.soundfont import SoundFontRenderer

            if sf_name not in self._renderers:
                self._renderers[sf_name] = SoundFontRenderer(
                    self.soundfonts[sf_name], SAMPLE_RATE_HZ, gain=1.0
                )
            y = self._renderers[sf_name].sequence(seq, int(rec.get("bank", 0)), int(rec["program"]))  # type: ignore[call-overload]
        else:
            picks = [exs[int(i)] for i in self.rng.integers(len(exs), size=min(len(exs), 12))]
            y = assemble_phrase(seq, picks, [e.load() for e in picks])
        return y, seq


def crop(y: npt.NDArray[np.float32], start: int, n: int) -> npt.NDArray[np.float32]:
    """y[start:start+n], zero-padded on either side."""
    out = np.zeros(n, np.float32)
    a, b = max(0, start), min(len(y), start + n)
    if b > a:
        out[a - start : b - start] = y[a:b]
    return out


def augment(y: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Gain, light reverb and background noise: what a timbre embedding must not care about."""
    from scipy.signal import fftconvolve

    if rng.random() < 0.3:
        rt = rng.uniform(0.2, 0.8)
        t = np.arange(int(rt * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
        ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt)
        wet = fftconvolve(y, ir / np.sqrt(np.sum(ir**2)))[: len(y)]
        y = y + rng.uniform(0.1, 0.3) * wet
    if rng.random() < 0.3:
        rms = np.sqrt(np.mean(y**2)) + 1e-9
        y = y + rng.standard_normal(len(y)) * rms * 10 ** (-rng.uniform(20, 40) / 20)
    return (y * 10 ** (rng.uniform(-20, 0) / 20)).astype(np.float32)


EQ_BASES = 4


def random_eq(rng: np.random.Generator, depth_db: float) -> npt.NDArray[np.float64]:
    """Coefficients of a random smooth EQ: cosines over the mel scale, together within about +-depth_db."""
    return rng.uniform(-1.0, 1.0, EQ_BASES) * depth_db / 2.0


def apply_eq(y: npt.NDArray[np.float32], coeffs: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Filter 16 kHz audio by the EQ (zero phase, in the frequency domain)."""
    spec = np.fft.rfft(y.astype(np.float64))
    f = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE_HZ)
    m = np.log1p(f / 700.0) / np.log1p(8000.0 / 700.0)
    gain_db = sum(c * np.cos(np.pi * (k + 1) * m) for k, c in enumerate(coeffs))
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(y)).astype(np.float32)


def timbre_clip(data: InstrumentData, inst: str, n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A clip of `n` samples that an encoder sees: a note, a melody or chords of the instrument."""
    r = rng.random()
    if r < 0.5:
        y, _ = data.note(inst)
        start = int(rng.uniform(0, max(1, len(y) - n * 0.8)))
    else:
        y, _ = data.phrase(inst, "melody" if r < 0.75 else "chords", n / SAMPLE_RATE_HZ + 0.5)
        start = int(rng.uniform(0, max(1, len(y) - n)))
    return crop(y, start, n)


# -------------------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the torchrun group when WORLD_SIZE is set (gloo on CPU, nccl on CUDA)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, device)
    rank = int(os.environ["RANK"])
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return Dist(rank, world, device)


# ------------------------------------------------------------------------------------- state on disk


def save_training_state(
    out: Path, stage: str, step: int, models: dict[str, Any], optim: Any, extra: dict[str, Any]
) -> None:
    """Optimiser and progress beside the checkpoint, as safetensors + JSON (never pickles)."""
    from safetensors.torch import save_file

    from hybrid.audio import atomic_path

    tensors: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for name, m in models.items():
        for k, v in m.state_dict().items():
            tensors[f"model.{name}.{k}"] = v.detach().cpu().contiguous()
    st = optim.state_dict()
    for pid, s in st["state"].items():
        for k, v in s.items():
            if hasattr(v, "shape"):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous().reshape(v.shape)
            else:
                scalars[f"{pid}.{k}"] = v
    doc = {
        "stage": stage,
        "step": step,
        "optim_scalars": scalars,
        "param_groups": st["param_groups"],
        **extra,
    }
    # One file holds the tensors and, in its metadata, the progress that goes with them: a kill at any moment
    # leaves the old state or the new one, never the tensors of one step with the progress of another.
    # training_state.json is a copy of the progress for people to read.
    with atomic_path(out / STATE_TENSORS) as tmp:
        save_file(tensors, str(tmp), metadata={"state": json.dumps(doc)})
    with atomic_path(out / STATE_JSON) as tmp:
        tmp.write_text(json.dumps(doc))


def read_training_progress(out: Path) -> dict[str, Any]:
    """Stage, step, history and optimiser settings of the saved training state (from the state file itself)."""
    from safetensors import safe_open

    path = out / STATE_TENSORS
    if not path.exists():
        raise HybridError(f"{out}: nothing to resume (no {STATE_TENSORS})")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    # A state saved before the progress moved into the state file has it in the JSON only.
    text = meta["state"] if "state" in meta else (out / STATE_JSON).read_text()
    return dict(json.loads(text))


def load_training_state(out: Path, models: dict[str, Any], optim: Any | None) -> dict[str, Any]:
    from safetensors.torch import load_file

    doc = read_training_progress(out)
    tensors = load_file(str(out / STATE_TENSORS))
    for name, m in models.items():
        prefix = f"model.{name}."
        m.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True
        )
    if optim is not None:
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        for k, v in doc["optim_scalars"].items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        optim.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    return doc


# ------------------------------------------------------------------------------------------- stages


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

    n = int(1.5 * SAMPLE_RATE_HZ)
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


def decoder_item(
    data: InstrumentData, inst: str, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(audio crop, conditioning) for one decoder training item."""
    n = int(cfg.crop_s * SAMPLE_RATE_HZ)
    frames = n // FRAME_HOP
    if rng.random() < cfg.phrase_fraction:
        y, seq = data.phrase(inst, "melody", cfg.crop_s + 1.5)
        start_s = float(rng.uniform(0, max(0.0, len(y) / SAMPLE_RATE_HZ - cfg.crop_s)))
        notes = list(seq.notes)
    else:
        y, ex = data.note(inst)
        r = rng.random()
        start_s = (
            rng.uniform(-0.1, 0.05) if r < 0.4 else rng.uniform(2.4, 2.9) if r < 0.8 else rng.uniform(0, 3.0)
        )
        notes = [Note(0.0, 3.0, float(ex.pitch), ex.velocity)]
    start_frame = int(round(start_s * FRAME_RATE_HZ))
    shifted = [
        Note(
            m.onset_s - start_frame / FRAME_RATE_HZ,
            m.offset_s - start_frame / FRAME_RATE_HZ,
            m.pitch_midi,
            m.velocity,
        )
        for m in notes
    ]
    # Conditioning is computed on a longer window, so notes that began before the crop keep their history.
    pad = int(4 * FRAME_RATE_HZ)
    cond = voice_conditioning(
        [
            Note(m.onset_s + pad / FRAME_RATE_HZ, m.offset_s + pad / FRAME_RATE_HZ, m.pitch_midi, m.velocity)
            for m in shifted
        ],
        pad + frames,
    )[:, pad:]
    audio = crop(y, start_frame * FRAME_HOP, n)
    return audio, cond


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


def train(
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: TrainConfig = TrainConfig(),
    device: str = "cpu",
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Train encoder then decoder on an NSynth-format folder; write the checkpoint directory `out`."""
    import torch

    from hybrid.checkpoint import save_checkpoint
    from hybrid.neural.models import (
        DecoderConfig,
        EncoderConfig,
        TimbreEncoder,
        WaveNetDecoder,
        multi_resolution_stft_loss,
    )

    root, out_dir = Path(data_root), Path(out)
    dist = init_distributed(device)
    torch.manual_seed(cfg.seed + dist.rank)
    rng = np.random.default_rng(cfg.seed + 1000 * dist.rank)
    train_data = InstrumentData(root, "train", rng)
    valid_data = (
        InstrumentData(root, "valid", np.random.default_rng(cfg.seed + 7))
        if (root / "nsynth-valid" / "examples.json").exists()
        else None
    )
    if valid_data is not None and not valid_data.instruments:
        valid_data = None
    dec_dict = dict(cfg.decoder)
    if "dilations" in dec_dict:
        dec_dict["dilations"] = tuple(dec_dict["dilations"])
    encoder = TimbreEncoder(EncoderConfig(**cfg.encoder)).to(dist.device)
    decoder = WaveNetDecoder(DecoderConfig(**dec_dict)).to(dist.device)
    n_inst = len(train_data.instruments)
    class_weight = torch.nn.Parameter(
        torch.randn(n_inst, encoder.cfg.embedding_dim, device=dist.device) * 0.1
    )
    started = time.time()
    stage, step, history = "encoder", 0, {}
    elapsed_before = 0.0
    if cfg.init_from:
        from hybrid.checkpoint import load_checkpoint

        ck = load_checkpoint(cfg.init_from, dist.device)
        encoder, decoder = ck.encoder, ck.decoder  # type: ignore[assignment]
        stage = "decoder"
        log(f"starting from {cfg.init_from} ({ck.provenance.get('decoder_steps')} decoder steps)")
    if dist.world > 1 and cfg.encoder_finetune_lr > 0:
        raise HybridError("encoder_finetune_lr needs a single process for now (run without torchrun)")
    if resume:
        doc = read_training_progress(out_dir)
        stage, step, history = doc["stage"], doc["step"], doc.get("history", {})
        elapsed_before = doc.get("wall_s", 0.0)
        log(f"resuming the {stage} stage at step {step}")
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance_base = {
        "data": str(root),
        "soundfonts": train_data.data_soundfonts,
        "train_instruments": n_inst,
        "seed": cfg.seed,
        "commit": _commit(),
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, {torch.cuda.get_device_name(0) if dist.device.startswith('cuda') else 'cpu'}, {dist.world} process(es)",
        "train_config": asdict(cfg),
        **({"init_from": cfg.init_from} if cfg.init_from else {}),
    }

    def wall() -> float:
        return elapsed_before + time.time() - started

    # ---- stage 1: the timbre encoder, an instrument classifier (cosine softmax with margin)
    if stage == "encoder":
        enc_model: Any = encoder
        if dist.world > 1:
            enc_model = torch.nn.parallel.DistributedDataParallel(encoder)
        opt = torch.optim.AdamW([*encoder.parameters(), class_weight], lr=cfg.encoder_lr, weight_decay=1e-4)
        if resume and step > 0:
            load_training_state(
                out_dir, {"encoder": encoder, "decoder": decoder, "classes": _Holder(class_weight)}, opt
            )
        n = int(cfg.encoder_crop_s * SAMPLE_RATE_HZ)
        t_last, s_last = time.time(), step
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
            if step % 50 == 0 and dist.main:
                rate = (step - s_last) / (time.time() - t_last)
                t_last, s_last = time.time(), step
                log(f"encoder step {step}/{cfg.encoder_steps}  loss {loss.item():.3f}  {rate:.2f} steps/s")
            if dist.main and (step % cfg.checkpoint_every == 0 or step == cfg.encoder_steps):
                stage_next = "decoder" if step == cfg.encoder_steps else "encoder"
                save_training_state(
                    out_dir,
                    stage_next,
                    0 if stage_next == "decoder" else step,
                    {"encoder": encoder, "decoder": decoder, "classes": _Holder(class_weight)},
                    opt,
                    {"history": history, "wall_s": wall()},
                )
        if dist.main and valid_data is not None:
            encoder.eval()
            acc = encoder_accuracy(encoder, valid_data, np.random.default_rng(cfg.seed + 11))
            history["encoder_valid_accuracy"] = acc
            log(
                f"encoder: held-out instrument identification (nearest centroid, {len(valid_data.instruments)} instruments): {acc:.3f}"
            )
            save_training_state(
                out_dir,
                "decoder",
                0,
                {"encoder": encoder, "decoder": decoder, "classes": _Holder(class_weight)},
                opt,
                {"history": history, "wall_s": wall()},
            )
        stage, step = "decoder", 0
        if dist.world > 1:
            torch.distributed.barrier()  # DDP kept the ranks' encoders identical

    # ---- stage 2: the decoder, with the encoder frozen (or fine-tuned with it)
    encoder.eval()
    finetune = cfg.encoder_finetune_lr > 0
    for p in encoder.parameters():
        p.requires_grad_(finetune)
    groups = [{"params": list(decoder.parameters()), "base_lr": cfg.lr}]
    if finetune:
        groups.append({"params": list(encoder.parameters()), "base_lr": cfg.encoder_finetune_lr})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=1e-5)
    if resume:
        doc = read_training_progress(out_dir)
        if doc["stage"] == "decoder" and doc["step"] > 0:
            load_training_state(out_dir, {"encoder": encoder, "decoder": decoder}, opt)
            step = doc["step"]
            history = doc.get("history", history)
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
    valid_items = None
    clip_n = int(1.5 * SAMPLE_RATE_HZ)
    if valid_data is not None:  # (target, conditioning, a clip of the same instrument to embed)
        crng = np.random.default_rng(cfg.seed + 3)
        vrng = np.random.default_rng(cfg.seed + 5)
        valid_items = []
        for k in range(min(32, 4 * len(valid_data.instruments))):
            inst = valid_data.instruments[k % len(valid_data.instruments)]
            a, c = decoder_item(valid_data, inst, cfg, vrng)
            valid_items.append((a, c, timbre_clip(valid_data, inst, clip_n, crng)))
    n = int(cfg.crop_s * SAMPLE_RATE_HZ)
    t_last, s_last = time.time(), step
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
        pred = _decode(dec_model, cond, emb, n, gen, dist.device)
        loss = multi_resolution_stft_loss(pred, audio)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 3.0)
        if finetune:
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), 3.0)
        opt.step()
        step += 1
        if step % 50 == 0 and dist.main:
            rate = (step - s_last) / (time.time() - t_last)
            t_last, s_last = time.time(), step
            log(f"decoder step {step}/{cfg.steps}  loss {loss.item():.3f}  {rate:.2f} steps/s  lr {lr:.2e}")
        if dist.main and valid_items and (step % cfg.validate_every == 0 or step == cfg.steps):
            vloss = validate(encoder, decoder, valid_items, n, dist.device)
            history.setdefault("decoder_valid_loss", []).append([step, vloss])
            log(f"decoder step {step}: validation loss on held-out instruments {vloss:.3f}")
        if dist.main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
            save_training_state(
                out_dir,
                "decoder",
                step,
                {"encoder": encoder, "decoder": decoder},
                opt,
                {"history": history, "wall_s": wall()},
            )
            prov = {
                **provenance_base,
                "encoder_steps": cfg.encoder_steps,
                "decoder_steps": step,
                "wall_s": round(wall(), 1),
                "validation": history,
            }
            save_checkpoint(out_dir, encoder, decoder, prov)
    train_data.close()
    if valid_data is not None:
        valid_data.close()
    if dist.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return out_dir


class _Holder:
    """Lets a bare parameter (the classifier's class weights) be saved like a module."""

    def __init__(self, p: Any) -> None:
        self.p = p

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.p.data}

    def load_state_dict(self, d: dict[str, Any], strict: bool = True) -> None:
        self.p.data.copy_(d["weight"])


def _decode(model: Any, cond: Any, emb: Any, n: int, gen: Any, device: str) -> Any:
    return model(cond, emb, n, gen if device == "cpu" else None)


def instrument_embeddings(
    encoder: Any, data: InstrumentData, cfg: TrainConfig, rng: np.random.Generator, device: str
) -> list[Any]:
    """K embeddings per instrument, each from a different clip (note, melody or chords) of it."""
    import torch

    n = int(1.5 * SAMPLE_RATE_HZ)
    out = []
    with torch.no_grad():
        for inst in data.instruments:
            clips = np.stack([timbre_clip(data, inst, n, rng) for _ in range(cfg.embeddings_per_instrument)])
            out.append(encoder(torch.tensor(clips, device=device)))
    return out


def validate(encoder: Any, decoder: Any, items: list[Any], n: int, device: str) -> float:
    """Mean loss on held-out items: (target, conditioning, clip of the same instrument to embed)."""
    import torch

    from hybrid.neural.models import multi_resolution_stft_loss

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
                    multi_resolution_stft_loss(decoder(cond, emb, n, gen if device == "cpu" else None), audio)
                )
            )
    decoder.train()
    return float(np.mean(losses))


def load_train_config(path: str | os.PathLike[str] | None, overrides: dict[str, Any]) -> TrainConfig:
    d: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HybridError(f"{p}: cannot read training config ({exc})") from None
    d.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**d)
    except TypeError as exc:
        raise HybridError(f"training config: {exc}") from None
