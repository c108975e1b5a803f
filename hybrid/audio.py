"""Load, check and save audio: the one place that reads and writes sound files.

Every loader returns float32 samples in [-1, 1]; mono arrays have shape (n,), multichannel (n, channels).
Outputs are written to a temporary file beside the target and renamed, so an interrupted run never leaves a
half-written file, and an existing file is only replaced when the caller says so.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.errors import HybridError, native_stderr_captured
from hybrid.outputs import atomic_path

# Longest input accepted by default: a long concert recording, far beyond any song (override per call).
MAX_DURATION_S = 30 * 60.0
# Shortest input accepted: below this there is no note to hear (basic-pitch keeps notes of 128 ms or more).
MIN_DURATION_S = 0.1
# Peak amplitude below which a file counts as silent (-80 dBFS: below 16-bit dither).
SILENCE_PEAK = 1e-4
CHECK_BLOCK = 1 << 20  # samples a long file is checked (and down-mixed) in at a time

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".m4a", ".opus")

FloatArray = npt.NDArray[np.float32]


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise HybridError(f"{path}: file not found")
    if path.is_dir():
        raise HybridError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise HybridError(f"{path}: file is empty")


def _read(path: Path, max_duration_s: float, mono: bool = False) -> tuple[FloatArray, int]:
    """Decode with libsndfile (wav, flac, ogg, mp3, aiff); fall back to librosa/audioread (ffmpeg)."""
    import soundfile as sf

    try:
        with native_stderr_captured():  # mpg123 prints notes about a file it cannot sync to
            info = sf.info(str(path))
    except Exception:  # libsndfile cannot open it: try the ffmpeg-backed reader
        info = None
    if info is not None:
        if info.frames == 0:
            raise HybridError(f"{path}: contains no audio samples")
        if info.duration > max_duration_s:
            raise HybridError(
                f"{path}: {info.duration / 60:.1f} min long, over the {max_duration_s / 60:.0f} min limit"
            )
        try:
            if mono and info.channels > 1:
                # Down-mix block by block: memory stays at the mono size, not channels x float32.
                out = np.empty((info.frames, 1), np.float32)
                n = 0
                for b in sf.blocks(str(path), blocksize=CHECK_BLOCK, dtype="float32", always_2d=True):
                    out[n : n + len(b), 0] = b.mean(axis=1, dtype=np.float32)
                    n += len(b)
                return out[:n], int(info.samplerate)
            with native_stderr_captured():
                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise HybridError(f"{path}: cannot decode audio ({exc})") from None
        return data, int(sr)
    try:
        import warnings

        import librosa

        with warnings.catch_warnings(), native_stderr_captured():
            warnings.simplefilter("ignore")
            duration = librosa.get_duration(path=str(path))
            if duration > max_duration_s:
                raise HybridError(
                    f"{path}: {duration / 60:.1f} min long, over the {max_duration_s / 60:.0f} min limit"
                )
            y, sr = librosa.load(str(path), sr=None, mono=False)
    except HybridError:
        raise
    except Exception:
        raise HybridError(f"{path}: not a readable audio file (corrupt or unsupported format)") from None
    y = np.asarray(y, dtype=np.float32)
    data = y[:, None] if y.ndim == 1 else y.T
    return data, int(sr)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate_hz: int | None = None,
    mono: bool = True,
    max_duration_s: float = MAX_DURATION_S,
    allow_silent: bool = False,
) -> tuple[FloatArray, int]:
    """Read an audio file, check it, and return (samples, sample_rate_hz).

    mono=True averages channels to shape (n,); otherwise the shape is (n, channels). When sample_rate_hz is
    given the audio is resampled to it. Raises HybridError (one line, naming the file) when the file is
    missing, empty, undecodable, too long, silent or holds NaN/Inf.
    """
    p = Path(path)
    _check_input_file(p)
    data, sr = _read(p, max_duration_s, mono)
    if data.shape[0] == 0:
        raise HybridError(f"{p}: contains no audio samples")
    if data.shape[0] < MIN_DURATION_S * sr:
        raise HybridError(
            f"{p}: too short ({data.shape[0]} samples, {data.shape[0] / sr:.3f} s; at least {MIN_DURATION_S} s)"
        )
    finite, peak = True, 0.0
    for i in range(0, data.shape[0], CHECK_BLOCK):  # block by block: no copy of a long song
        block = data[i : i + CHECK_BLOCK]
        finite = finite and bool(np.all(np.isfinite(block)))
        peak = max(peak, float(np.max(np.abs(block)))) if finite else peak
    if not finite:
        raise HybridError(f"{p}: contains NaN or infinite samples")
    if not allow_silent and peak < SILENCE_PEAK:
        raise HybridError(f"{p}: is silent (peak below -80 dBFS)")
    if mono:
        y: FloatArray = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    else:
        y = data
    if sample_rate_hz is not None and sample_rate_hz != sr:
        y = resample(y, sr, sample_rate_hz)
        sr = sample_rate_hz
    return y, sr


def mono(y: FloatArray) -> FloatArray:
    """(n,) audio as it is; (n, channels) averaged to (n,)."""
    return y if y.ndim == 1 else y.mean(axis=1).astype(np.float32)


def resample(y: FloatArray, from_hz: int, to_hz: int) -> FloatArray:
    """Band-limited resampling along the time axis with soxr's high-quality mode: what librosa.resample's
    default ("soxr_hq") computes, without importing librosa.core.audio (its numba kernels take ~4 s to
    compile in every new process)."""
    import soxr

    if from_hz == to_hz:
        return y
    n_out = int(np.ceil(y.shape[0] * to_hz / from_hz))
    out = np.asarray(soxr.resample(np.ascontiguousarray(y), from_hz, to_hz, quality="HQ"), dtype=np.float32)
    if out.shape[0] < n_out:
        pad = [(0, n_out - out.shape[0])] + [(0, 0)] * (out.ndim - 1)
        out = np.pad(out, pad)
    return np.ascontiguousarray(out[:n_out])


def resample_span(
    y: FloatArray, from_hz: int, to_hz: int, start_s: float, end_s: float, margin_s: float = 1.0
) -> FloatArray:
    """resample(y, from_hz, to_hz)[start_s : end_s] (in whole samples at to_hz), made from that span of y
    alone with `margin_s` around it: the excerpt starts on an input sample that falls on an output sample, so
    the resampler's filter meets the same samples as in the whole (within float rounding; tested)."""
    from math import gcd

    q = from_hz // gcd(from_hz, to_hz)  # input samples that span a whole number of output samples
    a0 = max(0, int(np.floor((start_s - margin_s) * from_hz / q)) * q)
    a1 = min(y.shape[0], int(np.ceil((end_s + margin_s) * from_hz)))
    offset = a0 * to_hz // from_hz
    part = resample(y[a0:a1], from_hz, to_hz)
    o0, o1 = int(round(start_s * to_hz)), int(round(end_s * to_hz))
    # a copy: at the same rate `part` is a view of y, and a view would keep the whole song alive
    return part[o0 - offset : o1 - offset].copy()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (what checkpoints and fitted timbres record)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def peak_normalize(y: FloatArray, peak_dbfs: float = -1.0) -> FloatArray:
    """Scale so that the peak sits at peak_dbfs (no clipping); silence is returned unchanged."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak < 1e-9:
        return y
    return (y * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def loudness_normalize(
    y: FloatArray, target_rms_dbfs: float = -20.0, peak_dbfs: float = -1.0, inplace: bool = False
) -> FloatArray:
    """Bring the RMS to target_rms_dbfs, then lower the gain if needed so the peak stays under peak_dbfs; with
    `inplace` (float32 y that the caller no longer needs as it was), in y itself: no copy of a long song."""
    gain = loudness_gain(y, target_rms_dbfs, peak_dbfs)
    if gain == 1.0 and (y.dtype == np.float32 or y.size == 0):
        return y
    if inplace and y.dtype == np.float32:
        return np.multiply(y, np.float32(gain), out=y)
    return np.multiply(y, np.float32(gain), dtype=np.float32)


def energy(y: FloatArray) -> float:
    """The sum of all samples squared, in float64 blocks: no float64 copy of a long song (a 10-minute song at
    44.1 kHz is 212 MB as float64)."""
    flat = y.reshape(-1)
    block = 1 << 20
    return sum(
        float(np.dot(b, b))
        for b in (flat[i : i + block].astype(np.float64) for i in range(0, flat.size, block))
    )


def rms(y: FloatArray) -> float:
    """The RMS of all samples (summed as `energy` sums them)."""
    return math.sqrt(energy(y) / y.size) if y.size else 0.0


def loudness_gain(y: FloatArray, target_rms_dbfs: float = -20.0, peak_dbfs: float = -1.0) -> float:
    """The gain loudness_normalize applies (1 for silence)."""
    if y.size == 0:
        return 1.0
    level = rms(y)
    if level < 1e-9:
        return 1.0
    gain = 10 ** (target_rms_dbfs / 20) / level
    block = 1 << 20
    flat = y.reshape(-1)
    peak = max(float(np.max(np.abs(flat[i : i + block]))) for i in range(0, flat.size, block)) * gain
    limit = 10 ** (peak_dbfs / 20)
    if peak > limit:
        gain *= limit / peak
    return gain


AUDIO_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
AUDIO_FORMATS[".mp3"] = ("MP3", "MPEG_LAYER_III")


def audio_format(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(soundfile format, subtype) that an output's extension asks for; a clear error for any other."""
    ext = Path(path).suffix.lower()
    if ext not in AUDIO_FORMATS:
        raise HybridError(f"{path}: unsupported output format '{ext}' (use .wav, .flac, .ogg or .mp3)")
    return AUDIO_FORMATS[ext]


def write_audio(tmp: Path, output: str | os.PathLike[str], y: FloatArray, sample_rate_hz: int) -> None:
    """Write audio to `tmp` in the format `output`'s extension asks for (wav: 16-bit PCM), clipped to [-1, 1]
    block by block (no clipped copy of a long song)."""
    import soundfile as sf

    fmt, subtype = audio_format(output)
    channels = 1 if y.ndim == 1 else y.shape[1]
    with sf.SoundFile(str(tmp), "w", sample_rate_hz, channels, subtype, format=fmt) as f:
        for start in range(0, max(y.shape[0], 1), 1 << 20):
            f.write(np.clip(np.asarray(y[start : start + (1 << 20)], dtype=np.float32), -1.0, 1.0))


def save_audio(
    path: str | os.PathLike[str], y: FloatArray, sample_rate_hz: int, replace: bool = True
) -> Path:
    """Write audio atomically (see atomic_path); the format follows the extension. Returns the path."""
    out = Path(path)
    audio_format(out)
    with atomic_path(out, replace) as tmp:
        write_audio(tmp, out, y, sample_rate_hz)
    return out
