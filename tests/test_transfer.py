"""The shipped model and `hybrid transfer`: quality floors on a small fixed set, and the command end to end.

The floors are the values measured with checkpoints/default through the shipped path, less at least one note
(measured values beside them); timbre sources are the real NSynth notes in tests/data (recorded instruments,
never in training).
"""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hybrid.calibration import fit_timbre
from hybrid.cli import app
from hybrid.data.phrases import random_phrase
from hybrid.metrics import mfcc_stats, note_scores
from hybrid.neural.checkpoint import default_checkpoint_dir
from hybrid.notes import Note, NoteSequence, read_midi
from hybrid.pipeline import render_notes
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
    return fit_timbre(renderer, y, transcriber=transcriber)


def test_shipped_model_is_small_and_documented():
    d = default_checkpoint_dir()
    size_mb = sum(p.stat().st_size for p in d.iterdir()) / 1e6
    assert size_mb < 20
    cfg = json.loads((d / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["decoder_steps"] >= 1000 and prov["soundfonts"] and prov["commit"]
    assert "decoder_valid_loss" in prov["validation"]
    # The model card states what config.json records: the steps, the instruments, the last validation loss.
    card = (d / "README.md").read_text()
    last_loss = prov["validation"]["decoder_valid_loss"][-1][1]
    assert f"{prov['decoder_steps']:,} steps" in card and f"{prov['train_instruments']} instruments" in card
    assert f"{last_loss:.2f} ({prov['decoder_steps'] // 1000}k)" in card


FIXED_PHRASES = [
    random_phrase(np.random.default_rng(s), "melody", 4.0, (50, 74), min_ioi_s=0.25) for s in (1, 2)
]
FIXED_CHORDS = [
    random_phrase(np.random.default_rng(s), "chords", 4.0, (50, 74), max_voices=3, min_ioi_s=0.25)
    for s in (3,)
]


@pytest.mark.parametrize("family", ["guitar", "string", "reed"])
def test_notes_survive_rendering(model, family):
    """Through the shipped path (render_notes: note check, render, normalise), as `hybrid transfer` renders."""
    timbre = nsynth_timbre(model.renderer, model.transcriber, family)

    def f1(p):
        y, _ = render_notes(p, timbre, model, sample_rate_hz=SR)  # the decoder: no note library here
        return note_scores(
            p, transcribe_audio(y, SR, transcriber=model.transcriber, with_tempo=False).notes
        ).onset_f1

    mono = [f1(p) for p in FIXED_PHRASES]
    poly = [f1(p) for p in FIXED_CHORDS]
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


@pytest.mark.slow
def test_transfer_end_to_end(tmp_path):
    out, mid = tmp_path / "out.wav", tmp_path / "notes.mid"
    r = trumpet_as_guitar(out, "--midi-out", mid, "--seed", "3")
    assert r.exit_code == 0, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith(f"{out}:") and "note F1 vs A" in line
    f1 = float(line.rsplit(" ", 1)[1])
    assert f1 >= TRANSFER_F1_FLOOR
    y, sr = sf.read(out, dtype="float32")
    assert sr == 44100 and y.ndim == 1  # CD quality by default
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-4  # no clipping: peaks under -1 dBFS
    assert len(y) / sr == pytest.approx(sf.info(EXAMPLES / "trumpet.ogg").duration, abs=1.6)
    seq = read_midi(mid)
    from hybrid.transcription import transcribe

    a = transcribe(EXAMPLES / "trumpet.ogg")
    assert seq.tempo_bpm == pytest.approx(a.tempo_bpm, rel=1e-4) and len(seq) == len(a.notes)
    # Same seed, same bytes (unscored: the score only reads the output); another seed, other noise.
    lines = {}
    for name, seed, *extra in (("again.wav", "3", "--no-score"), ("other.wav", "4")):
        r = trumpet_as_guitar(tmp_path / name, "--seed", seed, *extra)
        assert r.exit_code == 0, r.output
        lines[name] = r.output.strip().splitlines()[-1]
    assert lines["again.wav"].endswith("note F1 vs A not scored (--no-score)")
    assert (tmp_path / "again.wav").read_bytes() == out.read_bytes()
    other = tmp_path / "other.wav"
    assert other.read_bytes() != out.read_bytes()


@pytest.mark.slow
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
        (["--seed", "-1"], "--seed must be between 0 and 2**32 - 1"),
        (["--seed", str(2**70)], "--seed must be between 0 and 2**32 - 1"),
        (["--rate", "nan"], "--rate (the stretch rate) must be between"),
        (["--bpm", "0"], "--bpm must be between 1 and 1000"),
        (["--transpose", "200"], "--transpose must be between -127 and 127"),
        (["--sample-rate", "8000"], "--sample-rate must be 16000-48000"),
    ],
)
def test_transfer_bad_options(tmp_path, args, message):
    r = trumpet_as_guitar(tmp_path / "o.wav", *args)
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.wav").exists()


def test_a_report_of_an_unscored_transfer_is_refused_before_any_work(tmp_path):
    r = trumpet_as_guitar(tmp_path / "o.wav", "--no-score", "--report", tmp_path / "r.html")
    assert r.exit_code == 1 and "a report needs the transfer scored" in r.output
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_format_is_refused_before_any_work(tmp_path):
    r = trumpet_as_guitar(tmp_path / "o.aiff")
    assert r.exit_code == 1 and "unsupported output format '.aiff'" in r.output
    assert list(tmp_path.iterdir()) == []


def test_transfer_silent_timbre(tmp_path):
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(SR, np.float32), SR)
    r = run("transfer", "--rhythm", EXAMPLES / "trumpet.ogg", "--timbre", silent, "-o", tmp_path / "o.wav")
    assert r.exit_code == 1 and f"{silent}: is silent" in r.output


GOLDEN = DATA / "golden"


def read_golden(name):
    y, sr = sf.read(GOLDEN / name, dtype="float32")
    assert sr == SR
    return y


def test_render_midi_writes_what_it_wrote_before_the_restructuring(tmp_path):
    # tests/data/golden was written by `hybrid render` before the code was reorganised around render_notes and
    # transfer_audio; the same seed must give the same samples (bit-identical on this project's CPU; the
    # tolerance, about 3 LSB of 16-bit, only allows for another CPU's float rounding). Dry: the goldens were
    # written before B's acoustics were added. Written again (the same commands) when the synthesizer's
    # running phase moved to double precision: 55 dB and 67 dB under the two goldens' RMS, the phase noise
    # of the high harmonics that single precision made.
    out = tmp_path / "r.wav"
    r = run(
        "render",
        EXAMPLES / "guitar_notes.mid",
        "--timbre",
        EXAMPLES / "trumpet.ogg",
        "-o",
        out,
        "--no-library",
        "--dry",
        "--sample-rate",
        "16000",
    )
    assert r.exit_code == 0, r.output
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and len(y) == pytest.approx(
        (read_midi(EXAMPLES / "guitar_notes.mid").end_s + 1.0) * SR, abs=64
    )
    np.testing.assert_allclose(y, read_golden("render_guitar_notes_trumpet_seed0.wav"), atol=1e-4)


@pytest.mark.slow
def test_transfer_on_arrays_is_the_transfer_of_files(model, tmp_path):
    # The same transfer through the file-level API and through transfer_audio with the model loaded once; both
    # give what `hybrid transfer --seed 3` wrote before the restructuring (the decoder at 16 kHz then, dry).
    import hybrid
    from hybrid.audio import load_audio

    golden = read_golden("transfer_trumpet_guitar_seed3.wav")
    res = hybrid.transfer(
        EXAMPLES / "trumpet.ogg",
        EXAMPLES / "guitar.wav",
        tmp_path / "f.wav",
        hybrid.TransferOptions(seed=3, library=False, sample_rate_hz=SR, acoustics=False),
        model=model,
    )
    np.testing.assert_allclose(sf.read(res.output, dtype="float32")[0], golden, atol=1e-4)
    a, sr_a = load_audio(EXAMPLES / "trumpet.ogg")
    b, sr_b = load_audio(EXAMPLES / "guitar.wav")
    timbre = model.fit_timbre(b, sr_b, seed=3, library=False)
    options = hybrid.TransferOptions(seed=3, score=False, library=False, sample_rate_hz=SR, acoustics=False)
    arrays = hybrid.transfer_audio(a, sr_a, timbre, model, options)
    np.testing.assert_allclose(arrays.audio, res.audio, atol=1e-4)
    assert arrays.onset_f1 is None and res.onset_f1 == pytest.approx(0.96, abs=0.001)
    assert [n.pitch_midi for n in arrays.notes.notes] == [n.pitch_midi for n in res.notes.notes]


# Floors: each measured value (shipped checkpoint, through render_notes as `hybrid transfer` renders, on this
# project's 2-core CPU) less at least one note. One note of a mono phrase (7 and 10 notes, averaged) moves the
# mean F1 by about 0.04; one note of the 14-note chord phrase moves it by about 0.037.
#   mono:  guitar 0.950, string 1.000, reed 1.000
#   poly:  guitar 0.519, string 0.963, reed 0.889
MONO_FLOOR = {"guitar": 0.90, "string": 0.95, "reed": 0.95}
POLY_FLOOR = {"guitar": 0.47, "string": 0.91, "reed": 0.85}
# The 12-note trumpet phrase as guitar (seed 3): measured 0.880 (11 of 12 notes matched, 13 transcribed: 22/25);
# one note less matched is 0.800. The decoder plays it: on the check window the guitar's note library keeps 0.58
# against the decoder's 0.88, more than the note check's 0.2 tolerance.
TRANSFER_F1_FLOOR = 0.79


def test_report_naming_another_output_is_refused_before_any_work(tmp_path):
    out = tmp_path / "o.wav"
    r = trumpet_as_guitar(out, "--report", out)
    assert r.exit_code == 1 and "o.wav: named twice among this command's outputs" in r.output
    assert not out.exists()


def test_transfer_outputs_are_all_written_or_none(model, tmp_path, monkeypatch):
    # The MIDI fails to write (a full disk, say) after the audio was rendered: neither output is left.
    import hybrid
    import hybrid.notes

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hybrid.notes, "midi_file", broken)
    out, mid = tmp_path / "o.wav", tmp_path / "o.mid"
    options = hybrid.TransferOptions(score=False, library=False, sample_rate_hz=SR)
    with pytest.raises(hybrid.HybridError, match="no space left on the device; nothing was written"):
        hybrid.transfer(
            EXAMPLES / "trumpet.ogg", EXAMPLES / "guitar.wav", out, options, midi_out=mid, model=model
        )
    assert sorted(tmp_path.iterdir()) == []


def test_the_note_library_writes_cd_quality_with_content_above_8_khz(model, tmp_path):
    # The guitar figure in the trumpet's sound: the trumpet phrase has clean notes and the check keeps them, so
    # the output is played from its note library at 44.1 kHz, full band. Share of power above 8 kHz: measured
    # 1.6e-7; the decoder's 16 kHz rendering resampled to 44.1 kHz has 1.6e-14.
    from scipy.signal import welch

    import hybrid

    out = tmp_path / "o.wav"
    r = hybrid.transfer(
        EXAMPLES / "guitar.wav", EXAMPLES / "trumpet.ogg", out, hybrid.TransferOptions(), model=model
    )
    assert r.timbre.library is not None and r.timbre.use_library
    y, sr = sf.read(out, dtype="float32")
    assert sr == 44100 and r.sample_rate_hz == 44100
    f, p = welch(y, fs=sr, nperseg=4096)
    assert p[f > 8000].sum() / p.sum() > 1e-8
