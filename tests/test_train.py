"""Training: a tiny run writes a loadable checkpoint; a killed run resumes; torchrun trains with DDP (gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hybrid.errors import HybridError
from hybrid.neural.checkpoint import load_checkpoint
from hybrid.training import (
    TrainConfig,
    load_train_config,
    load_training_state,
    read_training_progress,
    save_training_state,
    train,
)
from hybrid.training.data import apply_eq

from .conftest import TINY_TRAIN_CONFIG, Killed, kill_at_rename

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port no one listens on now (the OS picks it), for torchrun's rendezvous."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tiny_training_writes_a_checkpoint_with_provenance(tiny_dataset, tmp_path):
    cfg = TrainConfig(**TINY_TRAIN_CONFIG)
    out = train(tiny_dataset, tmp_path / "ck", cfg, log=lambda m: None)
    ck = load_checkpoint(out)
    prov = ck.provenance
    assert prov["decoder_steps"] == 6 and prov["encoder_steps"] == 4 and prov["seed"] == 0
    assert prov["train_instruments"] == 2 and prov["soundfonts"] == ["TimGM6mb.sf2"]
    assert [s for s, _ in prov["validation"]["decoder_valid_loss"]] == [3, 6]
    state = json.loads((out / "training_state.json").read_text())
    assert (state["stage"], state["step"]) == ("decoder", 6)


def test_finetune_from_a_checkpoint_with_eq_augmentation(tiny_checkpoint, tiny_dataset, tmp_path):
    import torch

    cfg = TrainConfig(
        **{**TINY_TRAIN_CONFIG, "steps": 4},
        init_from=str(tiny_checkpoint),
        encoder_finetune_lr=1e-2,
        eq_augment_db=12.0,
    )
    logs: list[str] = []
    out = train(tiny_dataset, tmp_path / "ft", cfg, log=logs.append)
    assert any("starting from" in m for m in logs) and not any("encoder step" in m for m in logs)
    before, after = load_checkpoint(tiny_checkpoint), load_checkpoint(out)
    assert after.provenance["init_from"] == str(tiny_checkpoint) and after.provenance["decoder_steps"] == 4
    for name in ("encoder", "decoder"):  # both networks moved away from the starting weights
        a, b = getattr(before, name).state_dict(), getattr(after, name).state_dict()
        assert any(not torch.equal(a[k], b[k]) for k in a), name
    frozen = train(
        tiny_dataset,
        tmp_path / "frozen",
        TrainConfig(**{**cfg.__dict__, "encoder_finetune_lr": 0.0}),
        log=logs.append,
    )
    e0, e1 = before.encoder.state_dict(), load_checkpoint(frozen).encoder.state_dict()
    assert all(torch.equal(e0[k], e1[k]) for k in e0)  # without encoder_finetune_lr the encoder stays


def test_eq_augmentation_filter():
    import numpy as np

    sr = 16000
    t = np.arange(sr) / sr
    coeffs = np.array([6.0, 0.0, 0.0, 0.0])  # +6 dB at 0 Hz falling along the mel scale to -6 dB at 8 kHz
    for hz, want_db in ((100.0, 5.92), (7900.0, -5.999)):
        y = np.sin(2 * np.pi * hz * t).astype(np.float32)
        gain = np.std(apply_eq(y, coeffs)) / np.std(y)
        assert 20 * np.log10(gain) == pytest.approx(want_db, abs=0.05)
    y = np.random.default_rng(0).standard_normal(sr).astype(np.float32)
    np.testing.assert_allclose(apply_eq(y, np.zeros(4)), y, atol=1e-5)


def test_unknown_config_key_is_an_error(tmp_path):
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps({"stepz": 3}))
    with pytest.raises(HybridError, match="stepz"):
        load_train_config(p, {})


def _cmd(data: Path, out: Path, cfg: Path, *extra: str) -> list[str]:
    return [
        str(BIN / "hybrid"),
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        str(cfg),
        *extra,
    ]


@pytest.mark.slow
def test_killed_run_resumes_and_loses_at_most_checkpoint_every(tiny_dataset, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps({**TINY_TRAIN_CONFIG, "steps": 400, "checkpoint_every": 5, "validate_every": 1000})
    )
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(tiny_dataset, out, cfg), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = out / "training_state.json"  # progress for people to read, a copy of the state file's own
    deadline = time.time() + 120
    seen = 0
    while time.time() < deadline:
        if state.exists():
            doc = json.loads(state.read_text())
            if doc["stage"] == "decoder" and doc["step"] >= 20:
                seen = doc["step"]
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    assert seen >= 20
    # The files on disk are whole: the checkpoint loads, and its step is within 5 of where the run was.
    killed_at = read_training_progress(out)["step"]
    assert killed_at >= seen
    load_checkpoint(out)
    # Without --resume the run refuses to clobber it; with --resume it continues from killed_at.
    r = subprocess.run(
        _cmd(tiny_dataset, out, cfg, "--steps", str(killed_at + 10)), capture_output=True, text=True
    )
    assert r.returncode == 1 and "--resume" in r.stderr
    r = subprocess.run(
        _cmd(tiny_dataset, out, cfg, "--steps", str(killed_at + 10), "--resume"),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert f"resuming the decoder stage at step {killed_at}" in r.stderr
    assert json.loads(state.read_text())["step"] == read_training_progress(out)["step"] == killed_at + 10
    assert load_checkpoint(out).provenance["decoder_steps"] == killed_at + 10


@pytest.mark.slow
def test_torchrun_two_cpu_processes_gloo(tiny_dataset, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY_TRAIN_CONFIG))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            str(BIN / "torchrun"),
            "--nproc_per_node=2",
            f"--master_port={free_port()}",
            "-m",
            "hybrid.cli",
            "train",
            "--data",
            str(tiny_dataset),
            "--out",
            str(out),
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    ck = load_checkpoint(out)
    assert ck.provenance["decoder_steps"] == 6 and "2 process(es)" in ck.provenance["hardware"]


def test_training_state_killed_between_its_two_files_resumes_consistently(tmp_path, monkeypatch):
    import torch

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)

    def step() -> None:
        opt.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        opt.step()

    step()
    save_training_state(tmp_path, "decoder", 5, {"m": model}, opt, {"history": {"a": [5]}})
    step()
    at_10 = {k: v.clone() for k, v in model.state_dict().items()}
    with monkeypatch.context() as m:
        kill_at_rename(m, "training_state.json")  # the tensors of step 10 are in place, the JSON copy is not
        with pytest.raises(Killed):
            save_training_state(tmp_path, "decoder", 10, {"m": model}, opt, {"history": {"a": [5, 10]}})
    assert json.loads((tmp_path / "training_state.json").read_text())["step"] == 5  # the stale copy
    progress = read_training_progress(tmp_path)
    assert (progress["step"], progress["history"]) == (10, {"a": [5, 10]})
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    load_training_state(tmp_path, {"m": fresh}, fresh_opt)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, at_10[k])
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": -5}, "steps must be a whole number of at least 1"),
        ({"lr": float("nan")}, "lr must be a positive"),
        ({"high_band_weight": -1.0}, "high_band_weight must be 0 or more"),
        ({"decoder": {"noise_bands": 99}}, "noise bands follow sample_rate_hz"),
    ],
)
def test_absurd_training_settings_are_refused(change, message):
    with pytest.raises(HybridError, match=message):
        TrainConfig(**change)


def test_training_never_writes_over_the_shipped_model_or_a_checkpoint_without_force(tmp_path):
    from hybrid.neural.checkpoint import default_checkpoint_dir
    from hybrid.training.loops import check_output_dir

    with pytest.raises(HybridError, match="is the shipped model"):
        check_output_dir(default_checkpoint_dir(), resume=False, force=True)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(HybridError, match="holds a checkpoint already"):
        check_output_dir(tmp_path, resume=False, force=False)
    check_output_dir(tmp_path, resume=False, force=True)  # --force: allowed
