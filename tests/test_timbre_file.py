"""A fitted timbre as a file: `hybrid timbre fit`, `--timbre B.timbre`, and the cache of fitted timbres."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hybrid.cli import app
from hybrid.pipeline import FIT_VERSION

from .conftest import EXAMPLES

runner = CliRunner()
SR = 16000


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_a_timbre_file_gives_the_same_transfer_as_the_song(tmp_path):
    fitted = tmp_path / "guitar.timbre"
    r = run("timbre", "fit", EXAMPLES / "guitar.wav", "-o", fitted, "--seed", "2")
    assert r.exit_code == 0, r.output
    assert "in its note library" in r.output
    common = ("--rhythm", EXAMPLES / "trumpet.ogg", "--seed", "2", "--no-cache")
    r1 = run("transfer", *common, "--timbre", EXAMPLES / "guitar.wav", "-o", tmp_path / "song.wav")
    r2 = run("transfer", *common, "--timbre", fitted, "-o", tmp_path / "file.wav")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    a, _ = sf.read(tmp_path / "song.wav", dtype="float32")
    b, _ = sf.read(tmp_path / "file.wav", dtype="float32")
    np.testing.assert_array_equal(a, b)


def test_the_cache_serves_a_second_transfer_with_the_same_b(tmp_path, timbre_cache):
    import hybrid

    model = hybrid.load_model(device="cpu")
    b = EXAMPLES / "guitar.wav"
    first = model.timbre_of(b)
    entries = list(timbre_cache.glob("*.timbre"))
    assert len(entries) == 1
    again = model.timbre_of(b)  # read back: the same arrays
    np.testing.assert_array_equal(first.embedding, again.embedding)
    np.testing.assert_array_equal(first.offset, again.offset)
    assert len(again.library.notes) == len(first.library.notes)
    np.testing.assert_array_equal(first.library.notes[0].harmonic_db, again.library.notes[0].harmonic_db)
    # other settings are another entry; a damaged entry is fitted again
    model.timbre_of(b, seed=1)
    assert len(list(timbre_cache.glob("*.timbre"))) == 2
    model.timbre_of(b, seed=1, drums="drop")  # fitted less its drums: another entry too
    assert len(list(timbre_cache.glob("*.timbre"))) == 3
    entries[0].write_bytes(b"garbage")
    np.testing.assert_array_equal(model.timbre_of(b).embedding, first.embedding)


def test_a_timbre_song_in_the_cache_is_not_decoded_again(tmp_path, timbre_cache, model, monkeypatch):
    # The second transfer with the same B reads its fitted timbre from the cache without decoding B (a long
    # song takes seconds to decode): only A is read, and the output is the same.
    from pathlib import Path

    import hybrid.audio
    from hybrid.pipeline import checkpoint_weights_sha256, transfer

    # the cache is looked up before the model is loaded, with the weights' sha256 read from its file
    assert checkpoint_weights_sha256() == model.renderer.weights_sha256
    a, b = EXAMPLES / "trumpet.ogg", EXAMPLES / "guitar.wav"
    first = transfer(a, b, tmp_path / "first.wav", model=model)
    real = hybrid.audio.load_audio
    read: list[str] = []

    def spy(path, *args, **kwargs):
        read.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(hybrid.audio, "load_audio", spy)
    second = transfer(a, b, tmp_path / "second.wav", model=model)
    assert read == ["trumpet.ogg"]
    np.testing.assert_array_equal(first.audio, second.audio)
    # without the cache, or with a damaged entry, B is decoded and fitted as before
    read.clear()
    for entry in timbre_cache.glob("*.timbre"):
        entry.write_bytes(b"garbage")
    third = transfer(a, b, tmp_path / "third.wav", model=model)
    assert read == ["trumpet.ogg", "guitar.wav"]
    np.testing.assert_array_equal(first.audio, third.audio)


@pytest.mark.slow
def test_a_foreign_or_damaged_timbre_file_is_refused_in_one_line(tmp_path, tiny_checkpoint):
    fitted = tmp_path / "g.timbre"
    assert run("timbre", "fit", EXAMPLES / "guitar.wav", "-o", fitted).exit_code == 0
    out = tmp_path / "o.wav"
    # fitted with the shipped model, used with another checkpoint
    r = run(
        "transfer",
        "--rhythm",
        EXAMPLES / "trumpet.ogg",
        "--timbre",
        fitted,
        "-o",
        out,
        "--checkpoint",
        tiny_checkpoint,
    )
    assert r.exit_code == 1 and "fitted with another checkpoint" in r.output and not out.exists()
    damaged = tmp_path / "d.timbre"
    damaged.write_bytes(b"not safetensors")
    r = run("transfer", "--rhythm", EXAMPLES / "trumpet.ogg", "--timbre", damaged, "-o", out)
    assert (
        r.exit_code == 1
        and "not a readable timbre file" in r.output
        and len(r.output.strip().splitlines()) == 1
    )
    r = run("timbre", "fit", EXAMPLES / "guitar.wav", "-o", tmp_path / "g.wav")
    assert r.exit_code == 1 and ".timbre" in r.output


@pytest.mark.slow
def test_the_timbre_file_records_what_it_was_fitted_from(tmp_path):
    from safetensors import safe_open

    from hybrid.audio import file_sha256
    from hybrid.neural.checkpoint import default_checkpoint_dir

    fitted = tmp_path / "g.timbre"
    assert run("timbre", "fit", EXAMPLES / "guitar.wav", "-o", fitted, "--seed", "4").exit_code == 0
    with safe_open(str(fitted), framework="np") as f:
        meta = json.loads(f.metadata()["timbre"])
    cfg = json.loads((default_checkpoint_dir() / "config.json").read_text())
    assert meta["weights_sha256"] == cfg["weights_sha256"]
    assert meta["song_sha256"] == file_sha256(EXAMPLES / "guitar.wav")
    assert meta["settings"] == {"calibrate": True, "seed": 4, "library": True, "fit_version": FIT_VERSION}
    assert meta["library"]["sample_rate_hz"] == 44100 and len(meta["library"]["notes"]) >= 1
    less = tmp_path / "g-less-drums.timbre"
    r = run("timbre", "fit", EXAMPLES / "guitar.wav", "-o", less, "--no-calibrate", "--timbre-drums", "drop")
    assert r.exit_code == 0
    with safe_open(str(less), framework="np") as f:
        settings = json.loads(f.metadata()["timbre"])["settings"]
    assert settings == {
        "calibrate": False,
        "seed": 0,
        "library": True,
        "fit_version": FIT_VERSION,
        "drums": "drop",
    }


@pytest.mark.slow
def test_a_deferred_fit_completes_to_the_full_fit_also_from_its_file(tmp_path, model):
    # A transfer fits B with what only the decoder uses (offset, corrections, room) deferred until the note
    # check finds that the decoder plays; completed, in memory or read back from its (cache) file, the timbre
    # is the full fit, bit for bit.
    from dataclasses import fields, replace

    from hybrid.audio import load_audio
    from hybrid.calibration.correction import Correction
    from hybrid.calibration.fit import complete_timbre
    from hybrid.calibration.timbre_file import load_timbre, save_timbre

    def same(c1, c2):
        for f in fields(Correction):
            np.testing.assert_array_equal(getattr(c1, f.name), getattr(c2, f.name))

    b = load_audio(EXAMPLES / "trumpet.ogg", mono=False)
    full = model.fit_timbre(*b)
    deferred = model.fit_timbre(*b, defer_decoder=True)
    assert full.offset is not None and full.pending is None
    assert deferred.offset is None and deferred.pending is not None and deferred.library is not None
    same(deferred.correction, full.no_offset_correction)  # the note check's floor needs it at once
    assert deferred.acoustics.library_room == full.acoustics.library_room
    weights = model.renderer.weights_sha256
    path = save_timbre(deferred, tmp_path / "d.timbre", weights, "0" * 64, {"seed": 0})
    completions = []
    for t in (deferred, load_timbre(path, weights)):
        done = complete_timbre(model.renderer, t, model.transcriber)
        assert done.pending is None
        np.testing.assert_array_equal(done.offset, full.offset)
        for name in ("correction", "half_correction", "no_offset_correction"):
            same(getattr(done, name), getattr(full, name))
        assert done.acoustics == full.acoustics
        completions.append(done)
    # a variant of the deferred timbre (as the note check makes) is completed from the first completion
    variant = complete_timbre(model.renderer, replace(deferred, use_room=False), model.transcriber)
    assert variant.offset is completions[0].offset and variant.use_room is False
    assert complete_timbre(model.renderer, full) is full  # nothing deferred: as it is


def test_a_cached_deferred_timbre_is_stored_whole_once_its_decoder_part_is_fitted(timbre_cache, model):
    from hybrid.calibration.fit import complete_timbre
    from hybrid.calibration.timbre_file import load_timbre

    b = EXAMPLES / "trumpet.ogg"
    weights = model.renderer.weights_sha256
    first = model.timbre_of(b)
    (entry,) = timbre_cache.glob("*.timbre")
    assert first.pending is not None and load_timbre(entry, weights).pending is not None  # cached deferred
    again = model.timbre_of(b)  # read back from the cache, still deferred
    done = complete_timbre(model.renderer, again, model.transcriber)  # as the note check does
    stored = load_timbre(entry, weights)
    assert stored.pending is None and stored.offset is not None
    np.testing.assert_array_equal(stored.offset, done.offset)
    assert model.timbre_of(b).pending is None  # the next transfer reads it whole
