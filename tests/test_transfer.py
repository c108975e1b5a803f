"""The shipped model and `hybrid transfer`: quality floors on a small fixed set, and the command end to end.

The floors are the values measured with checkpoints/default when it was trained (see its README), less a
small margin; timbre sources are the real NSynth notes in tests/data (recorded instruments, never in training).
"""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hybrid.checkpoint import default_checkpoint_dir
from hybrid.cli import app
from hybrid.data.phrases import random_phrase
from hybrid.metrics import note_scores
from hybrid.notes import Note, NoteSequence, read_midi
from hybrid.timbre import mfcc_stats
from hybrid.transcription import transcribe_audio

from .conftest import DATA, EXAMPLES

runner = CliRunner()
SR = 16000
NSYNTH = {p.stem.split("_")[0]: p for p in sorted((DATA / "nsynth").glob("*.wav"))}


def nsynth_embedding(renderer, family):
    y, _ = sf.read(NSYNTH[family], dtype="float32")
    return renderer.embed(y)


def nsynth_timbre(renderer, transcriber, family):
    """The timbre as `hybrid transfer` takes it: the embedding and the calibration by resynthesis."""
    y, _ = sf.read(NSYNTH[family], dtype="float32")
    return renderer.timbre(y, transcriber=transcriber)


def test_shipped_model_is_small_and_documented():
    d = default_checkpoint_dir()
    size_mb = sum(p.stat().st_size for p in d.iterdir()) / 1e6
    assert size_mb < 20
    cfg = json.loads((d / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["decoder_steps"] >= 1000 and prov["soundfonts"] and prov["commit"]
    assert "decoder_valid_loss" in prov["validation"]
    assert (d / "README.md").exists()


FIXED_PHRASES = [
    random_phrase(np.random.default_rng(s), "melody", 4.0, (50, 74), min_ioi_s=0.25) for s in (1, 2)
]
FIXED_CHORDS = [
    random_phrase(np.random.default_rng(s), "chords", 4.0, (50, 74), max_voices=3, min_ioi_s=0.25)
    for s in (3,)
]


@pytest.mark.parametrize("family", ["guitar", "string", "reed"])
def test_notes_survive_rendering(renderer, transcriber, family):
    emb = nsynth_timbre(renderer, transcriber, family)
    mono = [
        note_scores(
            p, transcribe_audio(renderer.render(p, emb), SR, transcriber=transcriber, with_tempo=False).notes
        ).onset_f1
        for p in FIXED_PHRASES
    ]
    poly = [
        note_scores(
            p, transcribe_audio(renderer.render(p, emb), SR, transcriber=transcriber, with_tempo=False).notes
        ).onset_f1
        for p in FIXED_CHORDS
    ]
    assert np.mean(mono) >= MONO_FLOOR[family], mono
    assert np.mean(poly) >= POLY_FLOOR[family], poly


def test_pitch_of_rendered_notes(renderer):
    emb = nsynth_embedding(renderer, "keyboard")
    errors = []
    for p in (45, 52, 60, 67, 74):
        y = renderer.render(NoteSequence([Note(0.05, 1.05, float(p), 100)]), emb)
        target = librosa.midi_to_hz(p)
        f0, voiced, _ = librosa.pyin(y[int(0.1 * SR) : SR], fmin=target / 1.5, fmax=target * 1.5, sr=SR)
        errors.append(abs(1200 * np.log2(np.nanmedian(f0[voiced]) / target)))
    assert np.median(errors) <= 20


def test_embedding_hears_the_instrument_not_the_notes(renderer):
    # Two real NSynth instruments, each heard on a note and on a phrase assembled from it shifted an octave.
    def shifted(y, semitones):
        return librosa.effects.pitch_shift(y, sr=SR, n_steps=semitones)

    embs = {}
    for fam in ("guitar", "flute"):
        y, _ = sf.read(NSYNTH[fam], dtype="float32")
        embs[fam] = (renderer.embed(y), renderer.embed(shifted(y, -5)))
    same = [float(a @ b) for a, b in embs.values()]
    cross = float(embs["guitar"][0] @ embs["flute"][0])
    assert min(same) > cross


def test_output_timbre_follows_the_embedding(renderer):
    # The same phrase rendered with each of the 9 real NSynth instruments' embeddings; each output is compared
    # (MFCC statistics) with the 9 source notes. Measured: the output's own instrument is the nearest for
    # 3 of 9 and among the 3 nearest for 6 of 9 (chance: 1 and 3 of 9). The floor is 5 of 9 in the top 3.
    fams = sorted(NSYNTH)
    srcs = {f: sf.read(NSYNTH[f], dtype="float32")[0] for f in fams}
    src = {f: mfcc_stats(y) for f, y in srcs.items()}
    outs = {f: mfcc_stats(renderer.render(FIXED_PHRASES[0], renderer.embed(srcs[f]))) for f in fams}
    ranks = []
    for f in fams:
        d = {g: np.linalg.norm(outs[f] - src[g]) for g in fams}
        ranks.append(sum(d[g] < d[f] for g in fams))
    assert sum(r < 3 for r in ranks) >= 5, ranks


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def trumpet_as_guitar(out, *extra):
    """`hybrid transfer` of the example trumpet phrase with the example guitar's timbre."""
    return run(
        "transfer",
        "--rhythm",
        EXAMPLES / "trumpet.ogg",
        "--timbre",
        EXAMPLES / "guitar.wav",
        "-o",
        out,
        *extra,
    )


def test_transfer_end_to_end(tmp_path):
    out, mid = tmp_path / "out.wav", tmp_path / "notes.mid"
    r = trumpet_as_guitar(out, "--midi-out", mid, "--seed", "3")
    assert r.exit_code == 0, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith(f"{out}:") and "note F1 vs A" in line
    f1 = float(line.rsplit(" ", 1)[1])
    assert f1 >= TRANSFER_F1_FLOOR
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and y.ndim == 1
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-4  # no clipping: peaks under -1 dBFS
    assert len(y) / SR == pytest.approx(sf.info(EXAMPLES / "trumpet.ogg").duration, abs=1.6)
    seq = read_midi(mid)
    from hybrid.transcription import transcribe

    a = transcribe(EXAMPLES / "trumpet.ogg")
    assert seq.tempo_bpm == pytest.approx(a.tempo_bpm, rel=1e-4) and len(seq) == len(a.notes)
    # Same seed, same bytes; another seed, other noise.
    for name, seed in (("again.wav", "3"), ("other.wav", "4")):
        r = trumpet_as_guitar(tmp_path / name, "--seed", seed)
        assert r.exit_code == 0, r.output
    assert (tmp_path / "again.wav").read_bytes() == out.read_bytes()
    other = tmp_path / "other.wav"
    assert other.read_bytes() != out.read_bytes()


def test_transfer_stretch_and_transpose(tmp_path):
    out = tmp_path / "o.wav"
    r = run(
        "transfer",
        "--rhythm",
        EXAMPLES / "guitar.wav",
        "--timbre",
        EXAMPLES / "trumpet.ogg",
        "-o",
        out,
        "--rate",
        "0.5",
        "--transpose",
        "12",
        "--midi-out",
        tmp_path / "n.mid",
    )
    assert r.exit_code == 0, r.output
    from hybrid.transcription import transcribe

    a = transcribe(EXAMPLES / "guitar.wav").notes
    seq = read_midi(tmp_path / "n.mid")
    assert seq.tempo_bpm == pytest.approx(a.tempo_bpm * 0.5, rel=1e-4)
    assert [n.pitch_midi for n in seq.notes] == [n.pitch_midi + 12 for n in a.notes]
    assert seq.notes[-1].onset_s == pytest.approx(a.notes[-1].onset_s * 2, abs=0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0.8", "--bpm", "100"], "at most one of"),
        (["--transpose", "90"], "moves every note out of the MIDI range"),
        (["--checkpoint", str(EXAMPLES)], "not a hybrid checkpoint"),
    ],
)
def test_transfer_bad_options(tmp_path, args, message):
    r = trumpet_as_guitar(tmp_path / "o.wav", *args)
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.wav").exists()


def test_transfer_silent_timbre(tmp_path):
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(SR, np.float32), SR)
    r = run("transfer", "--rhythm", EXAMPLES / "trumpet.ogg", "--timbre", silent, "-o", tmp_path / "o.wav")
    assert r.exit_code == 1 and f"{silent}: is silent" in r.output


def test_render_midi_and_python_api(tmp_path):
    import hybrid

    out = tmp_path / "r.wav"
    r = run("render", EXAMPLES / "guitar_notes.mid", "--timbre", EXAMPLES / "trumpet.ogg", "-o", out)
    assert r.exit_code == 0, r.output
    assert sf.info(out).duration == pytest.approx(
        read_midi(EXAMPLES / "guitar_notes.mid").end_s + 1.0, abs=0.05
    )
    res = hybrid.transfer(
        EXAMPLES / "guitar.wav",
        EXAMPLES / "trumpet.ogg",
        tmp_path / "api.wav",
        hybrid.TransferOptions(seed=1),
    )
    assert res.output.exists() and 0.0 <= res.onset_f1 <= 1.0 and res.rate == 1.0


# Measured with the shipped checkpoint (9,000 decoder steps) and the calibration by resynthesis (refinement
# and correction) on 2026-11-26, then lowered by about 0.05 so that float differences between CPUs do not fail
# the suite. Measured: mono guitar 0.95, string 1.00, reed 1.00; poly (one 3-voice chord phrase, 14 notes)
# guitar 0.519, string 0.963, reed 0.963 (0.929 without the calibration). Transfer: 0.960 on 2026-11-27 with
# the refinement checked on the trumpet phrase's own notes (0.923 before a halved offset had its own correction,
# 0.800 with the earlier probe guard, 0.880 with --no-calibrate); the floor allows one note more or less. The check transcribes the same 12 notes, so this score is partly chosen by it: the floor
# guards the check as much as the renderer.
MONO_FLOOR = {"guitar": 0.90, "string": 0.95, "reed": 0.95}
POLY_FLOOR = {"guitar": 0.47, "string": 0.91, "reed": 0.91}
TRANSFER_F1_FLOOR = 0.87
