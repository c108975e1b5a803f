"""Faults, in real processes (slow suite): kills at random moments, a full disk, a 30-minute input.

Kill loops: each command is started again and again and sent SIGINT or SIGKILL (alternating) after a seeded
random delay within its usual run time. After every kill nothing half-written is visible: the output is absent
or whole (equal to an uninterrupted run's); after SIGINT no temporary file is left either; after SIGKILL the
next run removes what was left. Training killed at random resumes and ends at the configured step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .conftest import DATA, EXAMPLES, TINY_TRAIN_CONFIG

pytestmark = pytest.mark.slow

KILLS = 20
A = DATA / "egset12_guitar_01.wav"
B = EXAMPLES / "trumpet.ogg"
MID = EXAMPLES / "guitar_notes.mid"


def hybrid_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "hybrid.cli", *map(str, args)]


def run_to_end(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r


def kill_after(args: list[str], cwd: Path, env: dict[str, str], delay_s: float, sig: int) -> tuple[int, int]:
    """(exit status, process id) of a run sent `sig` after delay_s."""
    p = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay_s)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    # SIGINT: "interrupted", one line, exit 130 (or the status of a process ended by SIGINT, -2, when the signal
    # lands where Python ends the process itself: while it shuts down after everything was written, or while a
    # library is being imported; its last line is then whatever it had printed, e.g. training's last step).
    # Never an error line or a traceback.
    if p.returncode not in (0, -signal.SIGKILL):
        assert p.returncode in (130, -signal.SIGINT), (p.returncode, err)
        lines = err.strip().splitlines()
        if p.returncode == 130:
            assert lines[-1:] == ["interrupted"], err
        assert "Traceback" not in err and not any(line.startswith("error:") for line in lines), err
    return p.returncode, p.pid


def temps(folder: Path, pid: int | None = None) -> list[str]:
    """The temporary files under folder (only those of the process `pid`, when given)."""
    prefix = ".hybrid-partial-" + ("" if pid is None else f"{pid}-")
    return sorted(p.name for p in folder.rglob(prefix + "*"))


def kill_loop(tmp_path: Path, args: list[str], outputs: list[Path], typical_s: float, seed: int) -> None:
    env = {**os.environ, "HYBRID_CACHE_DIR": str(tmp_path / "cache")}
    run_to_end([*args, "--force"], tmp_path, env)
    reference = {p: p.read_bytes() for p in outputs}
    rng = np.random.default_rng(seed)
    finished = 0
    for i in range(KILLS):
        for p in outputs:
            p.unlink(missing_ok=True)
        sig = signal.SIGINT if i % 2 == 0 else signal.SIGKILL
        code, pid = kill_after(args, tmp_path, env, float(rng.uniform(1.0, typical_s)), sig)
        finished += code == 0
        present = [p for p in outputs if p.exists()]
        assert present in ([], outputs), f"kill {i}: some outputs only: {present}"
        for p in present:
            assert p.read_bytes() == reference[p], f"kill {i}: {p.name} differs from an uninterrupted run's"
        if sig == signal.SIGINT:
            # Ctrl-C leaves nothing of its own (what an earlier SIGKILL left goes with the next run that starts
            # its work: one interrupted while Python starts cannot; the last run below checks that)
            assert temps(tmp_path, pid) == [], f"kill {i} (SIGINT) left {temps(tmp_path, pid)}"
    assert finished < KILLS // 2, "the delays were too long to test anything"
    run_to_end([*args, "--force"], tmp_path, env)  # a rerun succeeds and clears what SIGKILL left
    assert temps(tmp_path) == []
    assert all(p.read_bytes() == reference[p] for p in outputs)


def test_transfer_killed_at_random_moments(tmp_path):
    out, mid = tmp_path / "o.wav", tmp_path / "o.mid"
    args = hybrid_cmd("transfer", "--rhythm", A, "--timbre", B, "-o", out, "--midi-out", mid)
    # 3.5 s: the run after the first reads B's fit from the cache (about 3.5 s on two cores)
    kill_loop(tmp_path, args, [out, mid], typical_s=3.5, seed=1)


def test_render_killed_at_random_moments(tmp_path):
    out = tmp_path / "r.wav"
    kill_loop(tmp_path, hybrid_cmd("render", MID, "--timbre", B, "-o", out), [out], typical_s=5.5, seed=2)


def test_dataset_build_killed_at_random_moments(tmp_path):
    # The builder keeps the notes it rendered (a rerun reuses them); its index files appear whole or not at all.
    env = dict(os.environ)
    args = hybrid_cmd(
        "dataset", "build", "--soundfont", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "--out", tmp_path / "ds",
        "--programs", "0,40", "--pitches", "48-72", "--velocities", "100",
    )  # fmt: skip
    rng = np.random.default_rng(3)
    for i in range(KILLS):
        sig = signal.SIGINT if i % 2 == 0 else signal.SIGKILL
        _, pid = kill_after(args, tmp_path, env, float(rng.uniform(1.0, 4.0)), sig)
        for index in (tmp_path / "ds").rglob("examples.json"):
            json.loads(index.read_text())  # whole
        for wav in (tmp_path / "ds").rglob("*.wav"):
            assert sf.info(str(wav)).frames == 4 * 44100, (
                wav
            )  # every note file whole (the builder's 44.1 kHz)
        if sig == signal.SIGINT:
            assert temps(tmp_path, pid) == []  # its own (see kill_loop)
    run_to_end(args, tmp_path, env)
    assert temps(tmp_path) == []
    total = sum(len(json.loads(p.read_text())) for p in (tmp_path / "ds").rglob("examples.json"))
    assert total == 2 * 25


def test_training_killed_at_random_moments_resumes_to_the_end(tmp_path, tiny_dataset):
    cfg = {**TINY_TRAIN_CONFIG, "steps": 40, "encoder_steps": 10, "checkpoint_every": 2}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "ck"
    base = hybrid_cmd("train", "--data", tiny_dataset, "--out", out, "--config", tmp_path / "cfg.json")
    env = dict(os.environ)
    rng = np.random.default_rng(4)
    last = (False, -1)  # (in the decoder stage, step) of the last saved state
    for i in range(KILLS):
        resume = (out / "training_state.safetensors").exists()
        if resume:
            state = json.loads((out / "training_state.json").read_text())
            now = (state["stage"] == "decoder", state["step"])
            assert now >= last, f"kill {i}: training went back from {last} to {now}"
            last = now
        sig = signal.SIGINT if i % 2 == 0 else signal.SIGKILL
        code, pid = kill_after(
            [*base, *(["--resume"] if resume else [])], tmp_path, env, float(rng.uniform(1.0, 8.0)), sig
        )
        if code == 0:
            break
        if sig == signal.SIGINT:
            assert temps(tmp_path, pid) == []  # its own (see kill_loop)
    if not (out / "config.json").exists():
        resume = (out / "training_state.safetensors").exists()
        run_to_end([*base, *(["--resume"] if resume else [])], tmp_path, env)
    config = json.loads((out / "config.json").read_text())
    assert config["provenance"]["decoder_steps"] == 40
    assert temps(tmp_path) == []


def _root_with_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path("/tmp/hybrid-mount-probe")
    probe.mkdir(exist_ok=True)
    ok = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        ).returncode
        == 0
    )
    if ok:
        subprocess.run(["umount", str(probe)], check=True)
    return ok


@pytest.fixture
def small_disk(tmp_path):
    if not _root_with_mount():
        pytest.skip("needs root and tmpfs mounts (a disk that fills up)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_loses_nothing_and_writes_nothing(tmp_path, small_disk):
    env = {**os.environ, "HYBRID_CACHE_DIR": str(tmp_path / "cache")}
    # the audio does not fit (4 s at 44.1 kHz is 350 kB); the MIDI beside it on another disk would
    mid = tmp_path / "o.mid"
    r = subprocess.run(
        hybrid_cmd("transfer", "--rhythm", A, "--timbre", B, "-o", small_disk / "o.wav", "--midi-out", mid),
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "o.wav: no space left on the device; nothing was written" in r.stderr
    assert list(small_disk.iterdir()) == [] and not mid.exists()
    # a file that was there before survives a --force run that runs out of space
    keep = small_disk / "keep.wav"
    keep.write_bytes(b"x" * 1000)
    r = subprocess.run(
        hybrid_cmd("render", MID, "--timbre", B, "-o", keep, "--force"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "no space left" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert keep.read_bytes() == b"x" * 1000 and [p.name for p in small_disk.iterdir()] == ["keep.wav"]


def test_a_30_minute_cd_quality_input_is_refused_at_once(tmp_path):
    # 31 minutes of stereo 44.1 kHz (328 MB): refused from the header, before decoding, in one line.
    p = tmp_path / "long.wav"
    with sf.SoundFile(p, "w", 44100, 2, "PCM_16") as f:
        block = np.full((44100 * 60, 2), 0.1, np.float32)
        for _ in range(31):
            f.write(block)
    r = subprocess.run(hybrid_cmd("transcribe", p, "-o", tmp_path / "o.mid"), capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f"error: {p}: 31.0 min long, over the 30 min limit"
    assert not (tmp_path / "o.mid").exists()
