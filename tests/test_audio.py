"""Audio in and out: formats, channels and rates; bad input; atomic, non-destructive writes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from hybrid.audio import load_audio, loudness_normalize, resample, resample_span, save_audio
from hybrid.errors import HybridError
from hybrid.outputs import check_output_path


def tone(sr: int, seconds: float = 1.0, f0: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype"),
    [
        (".wav", "WAV", "PCM_16"),
        (".flac", "FLAC", "PCM_16"),
        (".ogg", "OGG", "VORBIS"),
        (".mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_loads_common_formats_and_resamples(tmp_path, ext, fmt, subtype, channels):
    y = tone(44100)
    data = y if channels == 1 else np.stack([y, y], axis=1)
    path = tmp_path / f"a{ext}"
    sf.write(path, data, 44100, format=fmt, subtype=subtype)
    out, sr = load_audio(path, sample_rate_hz=16000)
    assert sr == 16000 and out.ndim == 1
    assert abs(len(out) - 16000) < 0.02 * 16000  # mp3 adds encoder padding
    # The 440 Hz tone survives decoding and resampling: the spectrum peaks at 440 Hz.
    spec = np.abs(np.fft.rfft(out[:16000] * np.hanning(len(out[:16000]))))
    assert np.argmax(spec) * 16000 / len(out[:16000]) == pytest.approx(440, abs=2)


def test_keeps_channels_when_asked(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([tone(8000), 0.5 * tone(8000)], axis=1), 8000)
    y, sr = load_audio(path, mono=False)
    assert y.shape == (8000, 2) and sr == 8000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros(8000, np.float32), 8000), "is silent"),
        (lambda p: sf.write(p, np.zeros((0,), np.float32), 8000), "no audio samples"),
        (
            lambda p: sf.write(p, np.array([0.1, np.nan, 0.2] * 1000, np.float32), 8000, subtype="FLOAT"),
            "NaN",
        ),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(HybridError, match=message) as info:
        load_audio(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_too_long_is_refused_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(1000, seconds=5.0), 1000)
    with pytest.raises(HybridError, match="over the"):
        load_audio(path, max_duration_s=4.0)


def test_output_rules(tmp_path):
    inp = tmp_path / "in.wav"
    sf.write(inp, tone(8000), 8000)
    with pytest.raises(HybridError, match="is an input file"):
        check_output_path(inp, [inp], force=True)
    out = tmp_path / "out.wav"
    out.write_bytes(b"old")
    with pytest.raises(HybridError, match="--force"):
        check_output_path(out, [inp])
    assert check_output_path(out, [inp], force=True) == out
    with pytest.raises(HybridError, match="folder does not exist"):
        check_output_path(tmp_path / "nope" / "x.wav")


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous result")

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sf.SoundFile, "write", broken_write)
    with pytest.raises(HybridError, match="out.wav: cannot write"):
        save_audio(out, tone(8000), 8000)
    assert out.read_bytes() == b"previous result"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary left behind


def test_loudness_normalize_hits_rms_without_clipping():
    y = tone(8000) * 0.01
    out = loudness_normalize(y, target_rms_dbfs=-20.0, peak_dbfs=-1.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(-20.0, abs=0.01)
    spiky = np.zeros(8000, np.float32)
    spiky[100] = 1.0
    spiky[200:] = 0.001
    out = loudness_normalize(spiky, -20.0, -1.0)
    assert np.max(np.abs(out)) == pytest.approx(10 ** (-1 / 20), rel=1e-5)


def test_an_output_that_appears_during_a_run_is_not_replaced(tmp_path):
    # Existence is checked at the start; another run or program may create the file before the end. Without
    # force the finished output is then refused (hard link: never replaces), and the other file is kept.
    from hybrid.outputs import atomic_path

    out = tmp_path / "o.wav"
    with pytest.raises(HybridError, match="appeared while this run was writing it"):
        with atomic_path(out, replace=False) as tmp:
            tmp.write_bytes(b"mine")
            out.write_bytes(b"theirs")
    assert out.read_bytes() == b"theirs" and list(tmp_path.iterdir()) == [out]
    with atomic_path(out, replace=True) as tmp:  # --force: replaced
        tmp.write_bytes(b"mine")
    assert out.read_bytes() == b"mine"


def test_a_device_is_never_an_output(tmp_path):
    with pytest.raises(HybridError, match="not a regular file"):
        check_output_path("/dev/null", [], force=True)


@pytest.mark.parametrize("from_hz", [22_050, 48_000, 16_000, 32_000])
def test_a_span_resampled_alone_is_that_span_of_the_whole(from_hz):
    # what a long timbre song's note library is analysed from: its loudest span alone, at the output rate
    t = np.arange(int(9.3 * from_hz)) / from_hz
    rng = np.random.default_rng(0)
    y = (np.sin(2 * np.pi * 440 * t) * (1 + t) + 0.1 * rng.standard_normal(len(t))).astype(np.float32)
    whole = resample(y, from_hz, 44_100)
    for start_s, end_s in ((0.0, 4.0), (2.37, 6.37), (5.0, 9.3)):
        span = resample_span(y, from_hz, 44_100, start_s, end_s)
        ref = whole[int(round(start_s * 44_100)) : int(round(end_s * 44_100))]
        assert len(span) == len(ref)
        np.testing.assert_allclose(span, ref, atol=1e-5)


def test_a_span_at_the_songs_own_rate_is_a_copy_not_a_view_of_the_song():
    # at 44.1 kHz in and out nothing is resampled; the span must still not keep the whole song alive
    y = np.random.default_rng(1).standard_normal(10 * 44_100).astype(np.float32)
    span = resample_span(y, 44_100, 44_100, 2.0, 5.0)
    np.testing.assert_array_equal(span, y[2 * 44_100 : 5 * 44_100])
    assert span.base is None and not np.shares_memory(span, y)
