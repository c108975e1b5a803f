"""Audio -> notes with basic-pitch's bundled ONNX model (no TensorFlow), and tempo/beats from the audio.

The windowing reproduces `basic_pitch.inference.run_inference` (2 s windows overlapping by 30 frames), but
windows are generated lazily and run in small batches, so memory stays bounded on long songs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.constants import DEFAULT_TEMPO_BPM
from hybrid.errors import HybridError
from hybrid.notes import Note, NoteSequence

# basic-pitch's constants (basic_pitch/constants.py), restated so importing this module stays light.
BP_SAMPLE_RATE_HZ = 22050  # the model's input rate
BP_FFT_HOP = 256  # samples per output frame -> 86 frames per second
BP_FRAMES_PER_S = BP_SAMPLE_RATE_HZ // BP_FFT_HOP
BP_WINDOW_SAMPLES = BP_SAMPLE_RATE_HZ * 2 - BP_FFT_HOP  # 43,844 samples per model call
BP_OVERLAP_FRAMES = 30  # frames shared by neighbouring windows; half is trimmed from each side
BP_CONTOUR_BINS_PER_SEMITONE = 3
WINDOWS_PER_BATCH = 4  # 4 windows = 7 s of audio per ONNX call: 10 % faster than 1, little more memory

# The tempo tracker's frame hop at BP_SAMPLE_RATE_HZ, and the chunk its onset envelope is computed in
# (a whole 10-minute spectrogram would take ~450 MB; a 30 s chunk takes ~25 MB).
TEMPO_HOP = 512
TEMPO_CHUNK_FRAMES = 1292  # 30 s at 22,050 Hz / 512


@dataclass(frozen=True, kw_only=True)
class TranscribeOptions:
    """basic-pitch's note-decoding thresholds, pinned to its defaults; checked when made (a threshold outside
    (0, 1) keeps basic-pitch's note search from ending)."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_length_ms: float = 127.70
    min_frequency_hz: float | None = None
    max_frequency_hz: float | None = None
    melodia_trick: bool = True

    def __post_init__(self) -> None:
        for name in ("onset_threshold", "frame_threshold"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.0 < value < 1.0):
                raise HybridError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if not (np.isfinite(self.min_note_length_ms) and 0.0 < self.min_note_length_ms <= 10_000.0):
            raise HybridError(f"--min-note-ms must be between 0 and 10000, got {self.min_note_length_ms}")


@dataclass
class Transcription:
    notes: NoteSequence  # notes.tempo_bpm is the tempo estimated from the audio
    beats_s: npt.NDArray[np.float64]
    duration_s: float

    @property
    def tempo_bpm(self) -> float:
        return self.notes.tempo_bpm


def _import_basic_pitch_quietly() -> None:
    """basic_pitch/__init__ logs a warning for each backend it lacks (TF, TFLite, CoreML); silence them."""
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resampy's pkg_resources deprecation notice
            import basic_pitch  # noqa: F401
            from basic_pitch import note_creation  # noqa: F401
    finally:
        root.setLevel(level)


def basic_pitch_model_path() -> Path:
    _import_basic_pitch_quietly()
    import basic_pitch

    return Path(basic_pitch.__file__).parent / "saved_models" / "icassp_2022" / "nmp.onnx"


class Transcriber:
    """Holds one ONNX Runtime session of basic-pitch's model; reuse it across calls."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        path = Path(model_path) if model_path else basic_pitch_model_path()
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # Output order as in basic_pitch.inference.Model.predict for ONNX.
        self.output_names = [
            "StatefulPartitionedCall:1",
            "StatefulPartitionedCall:2",
            "StatefulPartitionedCall:0",
        ]

    def model_output(self, audio_22k: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        """Frame activations {'note', 'onset', 'contour'} for mono audio at 22,050 Hz."""
        overlap_len = BP_OVERLAP_FRAMES * BP_FFT_HOP
        hop = BP_WINDOW_SAMPLES - overlap_len
        n_orig = audio_22k.shape[0]
        n_frames = int(np.floor(n_orig * (BP_FRAMES_PER_S / BP_SAMPLE_RATE_HZ)))
        n_olap = BP_OVERLAP_FRAMES // 2
        # windows are cut from the audio as if it began with overlap_len / 2 zeros, and each batch's frames are
        # written straight into the output arrays: no padded copy of the song, no list of pieces to join
        outs: dict[str, npt.NDArray[np.float32]] = {}
        done = 0
        starts = range(-(overlap_len // 2), n_orig, hop)
        for b0 in range(0, len(starts), WINDOWS_PER_BATCH):
            batch = np.stack([_window(audio_22k, s) for s in starts[b0 : b0 + WINDOWS_PER_BATCH]])[:, :, None]
            results = self.session.run(self.output_names, {self.input_name: batch})
            for key, val in zip(("note", "onset", "contour"), results, strict=True):
                frames = val[:, n_olap:-n_olap, :].reshape(-1, val.shape[2])
                if key not in outs:
                    outs[key] = np.zeros((n_frames, val.shape[2]), np.float32)
                take = min(len(frames), n_frames - done)
                outs[key][done : done + take] = frames[:take]
            done += len(frames)
            if done >= n_frames:
                break
        return outs


def _window(audio: npt.NDArray[np.float32], start: int) -> npt.NDArray[np.float32]:
    """BP_WINDOW_SAMPLES of audio from `start` (may be negative), zeros outside it."""
    w = np.zeros(BP_WINDOW_SAMPLES, np.float32)
    a, b = max(start, 0), min(start + BP_WINDOW_SAMPLES, audio.shape[0])
    if b > a:
        w[a - start : b - start] = audio[a:b]
    return w


def estimate_tempo(
    audio: npt.NDArray[np.float32], sample_rate_hz: int
) -> tuple[float, npt.NDArray[np.float64]]:
    """(tempo in BPM, beat times in seconds): librosa's onset-strength tempo estimate and beat tracker, as ported
    to numpy in hybrid.beats (the same values, without librosa's numba kernels)."""
    from hybrid.beats import onset_strength, tempo_from_tempogram, tempogram, track_beats

    chunk = TEMPO_CHUNK_FRAMES * TEMPO_HOP
    envs = []
    for start in range(0, len(audio), chunk):
        env = onset_strength(audio[start : start + chunk], sample_rate_hz, TEMPO_HOP)
        envs.append(env[:TEMPO_CHUNK_FRAMES] if start + chunk < len(audio) else env)
    onset_env = np.concatenate(envs)
    # librosa.feature.tempo on the whole envelope builds a (384 x frames) autocorrelation tempogram whose FFT
    # takes ~320 MB for 10 minutes; average the tempogram chunk by chunk instead (same estimator).
    win = int(8.0 * sample_rate_hz) // TEMPO_HOP  # librosa's ac_size=8 s, as its time_to_frames rounds it
    tg_sum = np.zeros((win, 1))
    n_frames = 0
    for start in range(0, len(onset_env), 4 * TEMPO_CHUNK_FRAMES):
        tg = tempogram(onset_env[start : start + 4 * TEMPO_CHUNK_FRAMES], win)
        tg_sum += tg.sum(axis=1, keepdims=True)
        n_frames += tg.shape[1]
    tempo_bpm = tempo_from_tempogram(tg_sum / max(n_frames, 1), sample_rate_hz, TEMPO_HOP)
    if not np.isfinite(tempo_bpm) or tempo_bpm <= 0:
        tempo_bpm = DEFAULT_TEMPO_BPM
    beats = track_beats(onset_env, sample_rate_hz / TEMPO_HOP, tempo_bpm)
    beats_s = (beats * TEMPO_HOP / sample_rate_hz).astype(np.float64)
    return tempo_bpm, beats_s


NOTE_CHUNK_FRAMES = 4096  # notes are made from the activations in chunks of ~48 s ...
NOTE_MARGIN_FRAMES = 1024  # ... each seen with ~12 s on either side
N_DIFF = 2  # basic-pitch's get_infered_onsets: frame differences over 1 and 2 frames


def _frame_diff(frames: npt.NDArray[np.float32], s0: int, s1: int) -> npt.NDArray[np.float64]:
    """basic-pitch's get_infered_onsets' frame_diff for frames s0:s1 (before its rescaling): the smaller rise
    over 1 and 2 frames, not below 0, with zeros before the song and its first N_DIFF frames zeroed; float64
    as basic-pitch computes it."""
    lo = max(0, s0 - N_DIFF)
    appended = np.concatenate([np.zeros((N_DIFF - (s0 - lo), frames.shape[1])), frames[lo:s1]])
    diffs = [appended[N_DIFF:] - appended[N_DIFF - k : len(appended) - k] for k in range(1, N_DIFF + 1)]
    diff = np.min(diffs, axis=0)
    diff[diff < 0] = 0
    diff[: max(0, N_DIFF - s0)] = 0
    return diff


def note_events(
    output: dict[str, npt.NDArray[np.float32]], options: TranscribeOptions, min_len_frames: int
) -> list[tuple[float, float, int, float, list[int] | None]]:
    """basic-pitch's notes (onset s, offset s, MIDI pitch, amplitude, pitch bends) from its activations, the
    notes its model_output_to_notes makes, chunk by chunk so that memory does not grow with the song (and no
    MIDI object is built only to be dropped). basic-pitch rescales its inferred onsets by two maxima over the
    whole song: they are found first; then each chunk's notes are made with NOTE_MARGIN_FRAMES of context on
    either side, and kept when their onset lies in the chunk. A note's making looks forward from its onset
    (and the melodia step back and forth along one activation), so the chunks give the whole song's notes
    unless one lasts longer than the margin (tests/test_transcription.py compares them)."""
    from basic_pitch.note_creation import (
        constrain_frequency,
        get_pitch_bends,
        model_frames_to_time,
        output_to_notes_polyphonic,
    )

    frames, onsets = output["note"], output["onset"]
    if options.min_frequency_hz is not None or options.max_frequency_hz is not None:
        onsets, frames = constrain_frequency(
            onsets.copy(), frames.copy(), options.max_frequency_hz, options.min_frequency_hz
        )
    n = len(frames)
    times = model_frames_to_time(n)
    onset_max = np.max(onsets)
    diff_max = max(
        (
            float(_frame_diff(frames, s, min(n, s + NOTE_CHUNK_FRAMES)).max())
            for s in range(0, n, NOTE_CHUNK_FRAMES)
        ),
        default=0.0,
    )
    events = []
    for core0 in range(0, n, NOTE_CHUNK_FRAMES):
        core1 = min(n, core0 + NOTE_CHUNK_FRAMES)
        s0, s1 = max(0, core0 - NOTE_MARGIN_FRAMES), min(n, core1 + NOTE_MARGIN_FRAMES)
        diff = _frame_diff(frames, s0, s1)
        diff = onset_max * diff / diff_max if diff_max > 0 else diff
        inferred: npt.NDArray[np.float64] = np.max(np.stack([onsets[s0:s1], diff]), axis=0)
        found = output_to_notes_polyphonic(
            frames[s0:s1],
            inferred,
            onset_thresh=options.onset_threshold,
            frame_thresh=options.frame_threshold,
            min_note_len=min_len_frames,
            infer_onsets=False,  # inferred above, with the whole song's maxima
            max_freq=None,
            min_freq=None,
            melodia_trick=options.melodia_trick,
        )
        kept = [e for e in found if core0 <= e[0] + s0 < core1]
        for start, end, pitch, amp, bends in get_pitch_bends(output["contour"][s0:s1], kept):
            events.append((float(times[start + s0]), float(times[end + s0]), pitch, amp, bends))
    return events


def transcribe_audio(
    audio: npt.NDArray[np.float32],
    sample_rate_hz: int,
    options: TranscribeOptions = TranscribeOptions(),
    transcriber: Transcriber | None = None,
    with_tempo: bool = True,
) -> Transcription:
    """Notes (with pitch bends) and tempo of mono audio at any sample rate."""
    from hybrid.audio import resample

    _import_basic_pitch_quietly()
    y = resample(np.asarray(audio, dtype=np.float32), sample_rate_hz, BP_SAMPLE_RATE_HZ)
    model = transcriber or Transcriber()
    output = model.model_output(y)
    min_len_frames = int(np.round(options.min_note_length_ms / 1000 * (BP_SAMPLE_RATE_HZ / BP_FFT_HOP)))
    events = note_events(output, options, min_len_frames)
    notes = [
        Note(
            float(on),
            float(off),
            float(pitch),
            int(np.clip(np.round(127 * amp), 1, 127)),
            tuple(float(b) / BP_CONTOUR_BINS_PER_SEMITONE for b in bends) if bends else (),
        )
        for on, off, pitch, amp, bends in events
    ]
    tempo_bpm, beats_s = (
        estimate_tempo(y, BP_SAMPLE_RATE_HZ) if with_tempo else (DEFAULT_TEMPO_BPM, np.zeros(0))
    )
    return Transcription(NoteSequence(notes, tempo_bpm).sorted(), beats_s, y.shape[0] / BP_SAMPLE_RATE_HZ)


def transcribe(
    path: str | os.PathLike[str],
    options: TranscribeOptions = TranscribeOptions(),
    transcriber: Transcriber | None = None,
    audio: tuple[npt.NDArray[np.float32], int] | None = None,
) -> Transcription:
    """Transcribe an audio file (any common format, mono or stereo, any rate); `audio`: its samples, when the
    caller has read them already."""
    from hybrid.audio import load_audio

    y, sr = audio if audio is not None else load_audio(path, sample_rate_hz=BP_SAMPLE_RATE_HZ)
    result = transcribe_audio(y, sr, options, transcriber)
    if not result.notes.notes:
        raise HybridError(f"{path}: no notes found (is it music with a pitch?)")
    return result
