"""The one place that knows the order of the stages.

    transfer_audio:  transcribe A -> transfer_transcription: transform (stretch, transpose) -> render_notes
                     -> score
    render_notes:    note check -> render with the fitted timbre -> loudness-normalise

Both work on arrays with a model that is already loaded (`load_model`), so a caller that renders many songs
loads once and calls them in a loop. `transfer` and `render_midi` are the file-level wrappers the CLI calls:
they read the songs, fit the timbre song (`Model.fit_timbre`), call the array functions and write the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hybrid.calibration import FittedTimbre
from hybrid.constants import MAX_OUTPUT_SAMPLE_RATE_HZ, OUTPUT_SAMPLE_RATE_HZ, SAMPLE_RATE_HZ
from hybrid.errors import HybridError
from hybrid.neural.renderer import Renderer
from hybrid.notes import NoteSequence
from hybrid.transcription import Transcriber, Transcription

PathLike = str | os.PathLike[str]
# bumped when what a fit holds changes (1: B's acoustics, 2: its high band, 3: the note library's notes cut where
# another begins inside them, 4: its notes that others sound with, 5: its notes cut where their sound rises
# again), so cached fitted timbres are fitted again
FIT_VERSION = 5
MAX_TRANSPOSE = 127  # semitones: beyond it no MIDI note stays in range
Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class TransferOptions:
    """Per-call options of a transfer (the model and device are chosen when it is loaded)."""

    rate: float | None = None  # tempo factor, >1 faster
    bpm: float | None = None  # target tempo (from A's estimated tempo)
    bpm_from_timbre: bool = False  # target tempo = the timbre song's estimated tempo (file level only)
    transpose: int = 0  # semitones
    seed: int = 0  # seed of the noise generator and of the calibration: same seed, same output
    calibrate: bool = True  # fit the offset and the correction on the timbre song (hybrid.calibration)
    library: bool = True  # play from the timbre song's own clean notes where it has them (needs calibrate)
    sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ  # of the output
    score: bool = True  # re-transcribe the output and score it against the rendered notes
    acoustics: bool = True  # put the rendering in the timbre song's fitted room (False: --dry)
    # "keep": when A has drums (hybrid.parts.drum_hits_per_s), its percussive part is kept under the notes and
    # A less it transcribed; "always": the same without asking; "drop": A as it is, notes only
    drums: str = "keep"
    drums_level_db: float = 0.0  # the kept drums against the notes, relative to A's own balance
    timbre_drums: str = "keep"  # "drop": the timbre songs are fitted less their percussive part (B is a mix)
    split_at: float | None = None  # MIDI pitch: with a bass timbre, the notes under it are the bass part

    def __post_init__(self) -> None:
        """Every option is checked when the options are made, before any slow work."""
        from hybrid.transform import check_bpm, check_rate

        if sum(x is not None for x in (self.rate, self.bpm)) + self.bpm_from_timbre > 1:
            raise HybridError("give at most one of --rate, --bpm and --bpm-from-timbre")
        if self.rate is not None:
            check_rate(self.rate)
        if self.bpm is not None:
            check_bpm(self.bpm)
        if not -MAX_TRANSPOSE <= self.transpose <= MAX_TRANSPOSE:
            raise HybridError(
                f"--transpose must be between -{MAX_TRANSPOSE} and {MAX_TRANSPOSE}, got {self.transpose}"
            )
        if not 0 <= self.seed < 2**32:
            raise HybridError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}")
        from hybrid.parts import check_drums_options

        check_drums_options(self.drums, self.drums_level_db, self.timbre_drums)
        if self.split_at is not None and not 0 <= self.split_at <= 127:
            raise HybridError(
                f"--split-at must be a MIDI note 0-127 (or a name such as C3), got {self.split_at}"
            )
        if not SAMPLE_RATE_HZ <= self.sample_rate_hz <= MAX_OUTPUT_SAMPLE_RATE_HZ:
            raise HybridError(
                f"--sample-rate must be {SAMPLE_RATE_HZ}-{MAX_OUTPUT_SAMPLE_RATE_HZ} Hz, got {self.sample_rate_hz}"
            )


@dataclass
class TransferResult:
    audio: npt.NDArray[np.float32]  # (n,) at sample_rate_hz, or (n, 2) for a stereo timbre song; normalised
    notes: NoteSequence  # the notes that were rendered (after stretch and transpose), tempo included
    source_tempo_bpm: float  # A's tempo estimated from its audio
    rate: float
    timbre: FittedTimbre  # as rendered: with the share of its offset the note check kept
    sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ
    onset_f1: float | None = None  # output re-transcribed vs the rendered notes
    output_tempo_bpm: float | None = None
    output_notes: NoteSequence | None = None  # the output re-transcribed (when scored)
    timings_s: dict[str, float] = field(default_factory=dict)
    output: Path | None = None  # where the file-level transfer wrote it
    # "kept", "not kept" (--drums drop) or "none found" (--drums keep, and A has none)
    drums: str = "not kept"
    drum_hits_per_s: float | None = None  # what --drums keep measured (hybrid.parts.drum_hits_per_s)
    parts: dict[str, NoteSequence] = field(default_factory=dict)  # the notes of each part, when split
    stems: dict[str, npt.NDArray[np.float32]] = field(
        default_factory=dict
    )  # each part and the drums, as mixed


@dataclass
class Model:
    """Everything a transfer runs: the renderer (encoder and decoder) and the transcriber, loaded once."""

    renderer: Renderer
    transcriber: Transcriber

    def fit_timbre(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate_hz: int,
        calibrate: bool = True,
        seed: int = 0,
        library: bool = True,
        drums: str = "keep",
        defer_decoder: bool = False,
    ) -> FittedTimbre:
        """The fitted timbre of a timbre song ((n,) or (n, channels) audio at any rate); with `library`, its
        clean notes are analysed at OUTPUT_SAMPLE_RATE_HZ for the note library too; calibrated, its acoustics are
        estimated and the room fitted (hybrid.calibration.acoustics). Beyond the song itself and its mono mix,
        memory does not grow with the song. With `drums` "drop" (a song that is a
        mix), all of it is fitted on the song less its percussive part (hybrid.parts.without_drums).
        What needs the song at its own rate is measured first (its acoustics, its band above 8 kHz, the note
        library's excerpt), so that its mono mix is let go before the calibration. With `defer_decoder`, what
        only the decoder uses is fitted when the note check finds that the decoder plays (see
        hybrid.calibration.fit_timbre): a transfer fits B in about a second less where B's notes play."""
        from hybrid.audio import resample
        from hybrid.calibration import fit_timbre
        from hybrid.calibration.acoustics import estimate_acoustics
        from hybrid.calibration.bandwidth import measure_high_band
        from hybrid.calibration.fit import library_excerpt

        channels = np.asarray(audio, np.float32)
        if drums == "drop":
            from hybrid.parts import without_drums

            channels = without_drums(channels, sample_rate_hz)
        y = channels.mean(axis=1) if channels.ndim == 2 else channels
        acoustics = estimate_acoustics(channels, sample_rate_hz, y) if calibrate else None
        del channels
        high_band = measure_high_band(y, sample_rate_hz)
        b = resample(y, sample_rate_hz, SAMPLE_RATE_HZ)
        # the note library is part of the calibration; its excerpt is taken to the output rate
        excerpt = library_excerpt(b, y, sample_rate_hz) if library and calibrate else None
        del y
        fitted = fit_timbre(
            self.renderer,
            b,
            calibrate,
            self.transcriber,
            seed,
            library_excerpt=excerpt,
            acoustics=acoustics,
            defer_decoder=defer_decoder,
        )
        return replace(fitted, high_band=high_band)

    def timbre_of(
        self,
        song: PathLike,
        calibrate: bool = True,
        seed: int = 0,
        library: bool = True,
        cache: bool = True,
        audio: tuple[npt.NDArray[np.float32], int] | None = None,
        drums: str = "keep",
        song_sha256: str | None = None,
    ) -> FittedTimbre:
        """The fitted timbre of a timbre song file (whose `audio` and sha256 the caller may have read already),
        or of a `.timbre` file made by `hybrid timbre fit`. A song fitted before with the same weights and
        settings is read from the cache (timbre_cache_dir()) without decoding it; a newly fitted one is stored
        there, unless `cache` is False. `drums`: as in fit_timbre (a `.timbre` file was fitted as it was made)."""
        from hybrid.audio import load_audio
        from hybrid.calibration.timbre_file import SUFFIX, load_timbre, save_timbre

        path = Path(song)
        weights = self.renderer.weights_sha256
        if path.suffix.lower() == SUFFIX:
            return load_timbre(path, weights)
        settings = fit_settings(calibrate, seed, library, drums)
        entry = cache_entry(path, weights, settings, song_sha256) if cache else None
        if entry is None:
            y, sr = audio or load_audio(path)
            return self.fit_timbre(y, sr, calibrate, seed, library, drums, defer_decoder=True)
        cached, song_sha = entry

        def store(t: FittedTimbre) -> None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                save_timbre(t, cached, weights, song_sha, settings)
            except OSError:
                pass  # a cache that cannot be written is no reason to fail the transfer

        fitted = None
        if cached.exists():
            try:
                fitted = load_timbre(cached, weights)
            except HybridError:
                pass  # a damaged or stale entry is fitted again and replaced
        if fitted is None:  # B is decoded only now: a cached timbre needs none of its samples
            y, sr = audio or load_audio(path)
            fitted = self.fit_timbre(y, sr, calibrate, seed, library, drums, defer_decoder=True)
            store(fitted)
        if fitted.pending is not None:  # once its decoder's part is fitted, it is cached whole
            fitted.pending.on_fitted = store
        return fitted


def fit_settings(calibrate: bool, seed: int, library: bool, drums: str = "keep") -> dict[str, object]:
    """What a fitted timbre was fitted with, as its file and the cache key record it. "fit_version": timbres
    cached before the fit last changed are fitted again; "drums" only when dropped, so that timbres cached
    before the option existed are still found."""
    settings: dict[str, object] = {
        "calibrate": calibrate,
        "seed": seed,
        "library": library,
        "fit_version": FIT_VERSION,
    }
    return settings if drums == "keep" else {**settings, "drums": drums}


def cache_entry(
    song: PathLike, weights_sha256: str, settings: dict[str, object], song_sha256: str | None = None
) -> tuple[Path, str] | None:
    """Where the fitted timbre of the song file `song` (whose sha256 is `song_sha256`, computed here when not
    given) is cached for these weights and settings, and the song's sha256; None when the cache is off."""
    from hybrid.audio import file_sha256
    from hybrid.calibration.timbre_file import SUFFIX

    folder = timbre_cache_dir()
    if folder is None:
        return None
    song_sha = song_sha256 or file_sha256(song)
    key = hashlib.sha256(
        json.dumps([song_sha, weights_sha256, settings], sort_keys=True).encode()
    ).hexdigest()
    return folder / f"{key[:32]}{SUFFIX}", song_sha


def timbre_cache_dir() -> Path | None:
    """Where fitted timbres are cached: $HYBRID_CACHE_DIR, else $XDG_CACHE_HOME/hybrid/timbres (default
    ~/.cache/hybrid/timbres); an empty HYBRID_CACHE_DIR switches the cache off. Safe to delete at any time."""
    env = os.environ.get("HYBRID_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hybrid" / "timbres"


def read_timbre_song(timbre: PathLike) -> tuple[npt.NDArray[np.float32], int] | None:
    """The timbre song's audio ((n,) mono or (n, channels)) and rate, read (and checked) before any slow work;
    None for a `.timbre` file, whose header is checked instead."""
    from hybrid.audio import load_audio
    from hybrid.calibration.timbre_file import SUFFIX, read_meta

    if Path(timbre).suffix.lower() == SUFFIX:
        read_meta(timbre)
        return None
    y, sr = load_audio(timbre, mono=False)
    return (y[:, 0] if y.shape[1] == 1 else y), sr


def checkpoint_weights_sha256(checkpoint: PathLike | None = None) -> str | None:
    """The sha256 of a checkpoint directory's weights (None: the shipped model), as loading it computes it,
    without loading it; None when there are none."""
    from hybrid.audio import file_sha256
    from hybrid.neural.checkpoint import WEIGHTS_NAME, default_checkpoint_dir

    weights = (Path(checkpoint) if checkpoint else default_checkpoint_dir()) / WEIGHTS_NAME
    return file_sha256(weights) if weights.is_file() else None


def read_unless_cached(
    timbre: PathLike, weights_sha256: str | None, settings: dict[str, object]
) -> tuple[tuple[npt.NDArray[np.float32], int] | None, str | None]:
    """read_timbre_song, except for a song whose fit with these weights (None: not looked up) and settings is
    in the cache: it was read and checked when it was fitted, so it is not decoded again (None). With the
    song's sha256 when it was computed for the lookup, for Model.timbre_of."""
    from hybrid.calibration.timbre_file import SUFFIX

    entry = None
    if weights_sha256 and Path(timbre).suffix.lower() != SUFFIX and Path(timbre).is_file():
        entry = cache_entry(timbre, weights_sha256, settings)
    if entry is not None and entry[0].is_file():
        return None, entry[1]
    return read_timbre_song(timbre), None if entry is None else entry[1]


def _lookup_weights(cache: bool, model: Model | None, checkpoint: PathLike | None) -> str | None:
    """The weights' sha256 a timbre song is looked up in the cache with before the model is loaded (None: no
    lookup)."""
    if not cache:
        return None
    return model.renderer.weights_sha256 if model is not None else checkpoint_weights_sha256(checkpoint)


def load_model(checkpoint: PathLike | None = None, device: str = "auto") -> Model:
    """The checkpoint directory `checkpoint` (None: the shipped model) on `device`, with a transcriber."""
    return Model(Renderer.load(checkpoint, device), Transcriber())


def choose_rate(source_bpm: float, options: TransferOptions) -> float:
    """The stretch rate that --rate or --bpm asks for (1 when neither; the options checked them when made)."""
    from hybrid.transform import rate_for_bpm

    if options.rate is not None:
        return float(options.rate)
    if options.bpm is not None:
        return rate_for_bpm(source_bpm, options.bpm)
    return 1.0


def render_notes(
    notes: NoteSequence,
    timbre: FittedTimbre,
    model: Model,
    seed: int = 0,
    sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ,
    acoustics: bool = True,
    normalize: bool = True,
) -> tuple[npt.NDArray[np.float32], FittedTimbre]:
    """Notes -> audio at `sample_rate_hz` as hybrid writes it ((n,), or (n, 2) for a stereo timbre song), and
    the timbre as rendered: the note check keeps as much of the calibration's offset, and of the note library,
    as the notes allow; then the notes are rendered, with `acoustics` put in the timbre song's fitted room, and
    normalised (unless `normalize` is False: a part of a mix)."""
    from hybrid.audio import loudness_normalize
    from hybrid.calibration import note_check, render_timbre
    from hybrid.calibration.note_library import Partials

    made: Partials = {}  # the partials of the check's window, taken back by the song's rendering
    checked = note_check(model.renderer, notes, timbre, model.transcriber, seed, acoustics, made)
    y = render_timbre(model.renderer, notes, checked, sample_rate_hz, seed, acoustics=acoustics, made=made)
    return (loudness_normalize(y, inplace=True) if normalize else y), checked


@dataclass
class RhythmSong:
    """Song A as the rest of a transfer takes it: its transcription, and its drums when they are kept."""

    transcription: Transcription
    drums: npt.NDArray[np.float32] | None = None  # A's percussive part (mono) at drums_rate_hz
    drums_rate_hz: int = 0
    drums_to_rest_db: float = 0.0  # the drums' level against the rest of A
    drums_state: str = "not kept"
    drum_hits_per_s: float | None = None
    drums_file: _Spilled | None = None  # A's drums waiting on disk in place of `drums` (transfer's own song)


def transcribe_rhythm(
    a: npt.NDArray[np.float32],
    sample_rate_hz: int,
    model: Model,
    options: TransferOptions,
    overwrite: bool = False,
) -> RhythmSong:
    """Transcribe A (mono, any rate); with --drums keep when A has drums (or --drums always), transcribe A
    less its percussive part and keep that part, at A's rate (give A at its own rate for full-band drums).
    `overwrite`: A's array may be written over (it becomes A less its drums; the caller lets it go)."""
    return _transcribe_rhythm([a], sample_rate_hz, model, options, overwrite)


def _transcribe_rhythm(
    held: list[npt.NDArray[np.float32]],
    sample_rate_hz: int,
    model: Model,
    options: TransferOptions,
    overwrite: bool,
    spill: bool = False,
) -> RhythmSong:
    """transcribe_rhythm of A, held in a list that is emptied; with `spill` (a caller that let go of A: the
    list held its only reference), A's samples are let go once resampled for the transcriber, and the drums
    wait on disk (song.drums_file), so that a long song's copies are not all in memory while it is
    transcribed."""
    from hybrid.audio import resample, rms
    from hybrid.parts import DRUM_HITS_PER_S, drum_hits_per_s, split_drums
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, transcribe_audio

    a = held.pop()
    hits = drum_hits_per_s(a, sample_rate_hz) if options.drums == "keep" else None
    if options.drums == "drop" or (hits is not None and hits < DRUM_HITS_PER_S):
        # nothing to keep: A as it is, exactly as with --drums drop (the transcriber resamples so)
        y = resample(a, sample_rate_hz, BP_SAMPLE_RATE_HZ)
        del a
        tr = transcribe_audio(y, BP_SAMPLE_RATE_HZ, transcriber=model.transcriber)
        return RhythmSong(tr, drums_state="not kept" if hits is None else "none found", drum_hits_per_s=hits)
    split = split_drums(a, sample_rate_hz, overwrite or spill)
    del a
    ratio_db = 20 * np.log10(max(rms(split.percussive), 1e-12) / max(rms(split.rest), 1e-12))
    rest = resample(split.rest, sample_rate_hz, BP_SAMPLE_RATE_HZ)
    drums: npt.NDArray[np.float32] | None = split.percussive
    drums_file = None
    if spill:
        drums, drums_file = None, _Spilled(split.percussive)
    del split
    tr = transcribe_audio(rest, BP_SAMPLE_RATE_HZ, transcriber=model.transcriber)
    return RhythmSong(tr, drums, sample_rate_hz, ratio_db, "kept", hits, drums_file)


def transfer_audio(
    a: npt.NDArray[np.float32],
    sample_rate_hz: int,
    timbre: FittedTimbre,
    model: Model,
    options: TransferOptions = TransferOptions(),
    progress: Progress | None = None,
    bass_timbre: FittedTimbre | None = None,
) -> TransferResult:
    """Play the notes and rhythm of song A (mono audio at any rate) with a fitted timbre (and the bass line
    with `bass_timbre`), with --drums keep over A's percussive part."""
    if options.bpm_from_timbre:
        raise HybridError("bpm_from_timbre needs the timbre song: give its tempo as bpm")
    laps = _Laps(progress)
    laps.start("transcribing the rhythm song")
    song = transcribe_rhythm(a, sample_rate_hz, model, options)
    laps.stop("transcribe")
    result = transfer_transcription(song, timbre, model, options, progress, bass_timbre)
    result.timings_s = {**laps.times, **result.timings_s}
    return result


def transfer_transcription(
    song: RhythmSong | Transcription,
    timbre: FittedTimbre,
    model: Model,
    options: TransferOptions = TransferOptions(),
    progress: Progress | None = None,
    bass_timbre: FittedTimbre | None = None,
    keep_stems: bool = True,
    release: bool = False,
) -> TransferResult:
    """The rest of transfer_audio once A is transcribed (a caller that holds a long song can let it go first):
    stretch and transpose the notes, render them (each part with its timbre), mix A's drums under them when
    kept, and score the notes. `keep_stems` False: result.stems is left empty (the mix is built in the notes'
    own array, one copy of a long song fewer). `release`: the song's drums are let go once mixed (song.drums
    becomes None; the caller has no more use for them)."""
    from hybrid.audio import energy, loudness_gain, mono, resample, rms
    from hybrid.metrics import note_scores
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, transcribe_audio
    from hybrid.transform import stretch_notes, transpose_notes

    if isinstance(song, Transcription):
        song = RhythmSong(song)
    tr = song.transcription
    if not tr.notes.notes:
        raise HybridError("song A: no notes found (is it music with a pitch?)")
    rate = choose_rate(tr.tempo_bpm, options)
    notes = transpose_notes(stretch_notes(tr.notes, rate), options.transpose)
    if not notes.notes:
        raise HybridError(f"--transpose {options.transpose} moves every note out of the MIDI range")
    laps = _Laps(progress)
    laps.start("rendering")
    sr = options.sample_rate_hz
    parts = {"notes": notes}
    spilled = song.drums_file
    if release and song.drums is not None:
        # the drums wait on disk while the notes render (a long song's drums are as large as its notes)
        spilled = _Spilled(song.drums)
        song.drums = None
    stems: dict[str, npt.NDArray[np.float32]] = {}
    if bass_timbre is not None:
        from hybrid.parts import bass_line

        bass, rest = bass_line(notes, options.split_at)
        parts = {name: p for name, p in (("bass", bass), ("rest", rest)) if p.notes}
    if len(parts) == 1 and song.drums is None and spilled is None:
        # one part, no drums: the rendering as it always was
        t = bass_timbre if "bass" in parts and bass_timbre is not None else timbre
        y, rendered = render_notes(next(iter(parts.values())), t, model, options.seed, sr, options.acoustics)
        scored, scored_sr = y, sr
    else:
        rendered = timbre
        for name, part in parts.items():
            t = bass_timbre if name == "bass" and bass_timbre is not None else timbre
            stems[name], checked = render_notes(
                part, t, model, options.seed, sr, options.acoustics, normalize=False
            )
            if name != "bass":
                rendered = checked
        # the drums: read back from disk in blocks (and resampled so) into the mix when they need no stretch
        # or stem of their own; else as a whole
        stream = spilled is not None and rate == 1.0 and not keep_stems
        drums, drums_n, drums_rms = None, 0, 0.0
        if stream:
            assert spilled is not None
            drums_n = int(np.ceil(spilled.shape[0] * sr / song.drums_rate_hz))
            drums_rms = spilled.rms
            if song.drums_rate_hz != sr:  # a first pass for the level
                total = sum(energy(b) for _, b in spilled.blocks(song.drums_rate_hz, sr))
                drums_rms = float(np.sqrt(total / max(drums_n, 1)))
        else:
            own = spilled.load() if spilled is not None else song.drums
            drums = None if own is None else _drums_stem(own, song.drums_rate_hz, rate, sr)  # own: read only
            del own
            drums_n, drums_rms = (0, 0.0) if drums is None else (len(drums), rms(drums))
        n = max(drums_n, *(len(v) for v in stems.values()))
        stereo = any(v.ndim == 2 for v in stems.values())
        stems = {k: _to_shape(v, n, stereo) for k, v in stems.items()}
        notes_mix = _sum_into(None, *stems.values()) if len(stems) > 1 else next(iter(stems.values()))
        if not keep_stems:
            stems = {}  # (the parts, when there are two, are let go: their sum is the notes' mix)
        if options.score:  # the notes are scored without the drums, at the transcriber's rate
            g = np.float32(loudness_gain(notes_mix))
            scored = resample(mono(notes_mix), sr, BP_SAMPLE_RATE_HZ)
            scored = scored * g if np.shares_memory(scored, notes_mix) else np.multiply(scored, g, out=scored)
            scored_sr = BP_SAMPLE_RATE_HZ
        # the mix: in the notes' own array unless it is a stem that is kept (a long song's copies add up)
        y = notes_mix.copy() if keep_stems and len(parts) == 1 else notes_mix
        if drums_n:
            # the drums at A's own balance against the notes (and --drums-level)
            level = rms(notes_mix) / max(drums_rms, 1e-12)
            level *= 10 ** ((song.drums_to_rest_db + options.drums_level_db) / 20)
            if stream and spilled is not None:
                for start, block in spilled.blocks(song.drums_rate_hz, sr):
                    _sum_into(y[start:], block, scale=level)
            elif drums is not None:
                _sum_into(y, drums, scale=level)
            if keep_stems and drums is not None:
                stems["drums"] = _to_shape(drums * np.float32(level), n, stereo)
        del drums, notes_mix  # a long song's drums are not needed any more (the notes' mix is y or a stem)
        gain = np.float32(loudness_gain(y))
        y *= gain
        for v in stems.values():
            v *= gain
    result = TransferResult(y, notes, tr.tempo_bpm, rate, rendered, sr)
    result.drums, result.stems, result.drum_hits_per_s = song.drums_state, stems, song.drum_hits_per_s
    result.parts = parts if len(parts) > 1 else {}
    if options.score:
        laps.start("scoring", "render")
        scored = resample(mono(scored), scored_sr, BP_SAMPLE_RATE_HZ)  # as the transcriber resamples it
        held = None
        if release and not np.shares_memory(scored, y):
            # the output waits on disk while it is scored (a long song's output and the transcriber's
            # workings would be in memory at once)
            held, result.audio = _Spilled(y), np.empty(0, np.float32)
            del y
        again = transcribe_audio(scored, BP_SAMPLE_RATE_HZ, transcriber=model.transcriber)
        del scored
        if held is not None:
            result.audio = held.load()
        result.onset_f1 = note_scores(notes, again.notes).onset_f1
        result.output_tempo_bpm = again.tempo_bpm
        result.output_notes = again.notes
        laps.stop("score")
    else:
        laps.stop("render")
    result.timings_s = laps.times
    return result


def _drums_stem(
    d: npt.NDArray[np.float32], drums_rate_hz: int, rate: float, sample_rate_hz: int
) -> npt.NDArray[np.float32]:
    """A's drums at the output rate, stretched with Rubber Band as the notes were (d itself when neither)."""
    from hybrid.audio import resample
    from hybrid.transform import stretch_audio

    if rate != 1.0:
        d = stretch_audio(d, drums_rate_hz, rate)
    return resample(np.asarray(d, np.float32), drums_rate_hz, sample_rate_hz)


class _Spilled:
    """An array kept in an anonymous temporary file until it is read back (once: whole, or in blocks)."""

    def __init__(self, x: npt.NDArray[np.float32]) -> None:
        import tempfile

        from hybrid.audio import rms

        self.shape, self.dtype, self.rms = x.shape, x.dtype, rms(x)
        self.file = tempfile.TemporaryFile()
        x.tofile(self.file)

    def load(self) -> npt.NDArray[np.float32]:
        self.file.seek(0)
        x = np.fromfile(self.file, self.dtype).reshape(self.shape)
        self.file.close()
        return x

    def blocks(self, from_hz: int, to_hz: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        """(first sample, the samples that follow) over the array (mono audio at from_hz), read from the file in
        blocks of MIX_BLOCK and resampled to to_hz as a stream: as resample(whole, from_hz, to_hz) gives it."""
        import soxr

        self.file.seek(0)
        n, n_out = self.shape[0], int(np.ceil(self.shape[0] * to_hz / from_hz))
        stream = soxr.ResampleStream(from_hz, to_hz, 1, dtype="float32", quality="HQ")
        done = 0
        for start in range(0, n, MIX_BLOCK):
            block = np.fromfile(self.file, self.dtype, min(MIX_BLOCK, n - start))
            if from_hz != to_hz:
                block = stream.resample_chunk(block, last=start + MIX_BLOCK >= n)[: n_out - done]
            yield done, block
            done += len(block)


MIX_BLOCK = 1 << 20  # samples mixed at once


def _to_shape(v: npt.NDArray[np.float32], n: int, stereo: bool) -> npt.NDArray[np.float32]:
    """A stem padded to n samples, and stereo when `stereo`: v itself when it is already so."""
    if len(v) < n:
        v = np.pad(v, [(0, n - len(v))] + [(0, 0)] * (v.ndim - 1))
    return np.repeat(v[:, None], 2, axis=1) if stereo and v.ndim == 1 else v


def _sum_into(
    y: npt.NDArray[np.float32] | None, *xs: npt.NDArray[np.float32], scale: float = 1.0
) -> npt.NDArray[np.float32]:
    """y += scale * x for each x (mono into stereo too, a shorter x from the start), in blocks of MIX_BLOCK
    samples, so that no temporary the size of a long song is made; y None: the sum of xs (of y's shape)."""
    if y is None:
        y, xs = xs[0].copy(), xs[1:]
        if scale != 1.0:
            y *= np.float32(scale)
    block = MIX_BLOCK
    for x in xs:
        for i in range(0, min(len(x), len(y)), block):
            piece = x[i : i + block]
            piece = piece[:, None] if y.ndim == 2 and piece.ndim == 1 else piece
            y[i : i + len(piece)] += np.float32(scale) * piece if scale != 1.0 else piece
    return y


def transfer(
    rhythm: PathLike,
    timbre: PathLike,
    output: PathLike,
    options: TransferOptions = TransferOptions(),
    midi_out: PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
    model: Model | None = None,
    checkpoint: PathLike | None = None,
    device: str = "auto",
    cache: bool = True,
    report: PathLike | None = None,
    report_settings: dict[str, str] | None = None,
    bass_timbre: PathLike | None = None,
    stems: PathLike | None = None,
) -> TransferResult:
    """Play `rhythm`'s notes and rhythm with `timbre`'s timbre (its bass line with `bass_timbre`'s), over A's
    drums when it has them; write `output` (wav, flac, ogg or mp3) and, with `midi_out`, the rendered notes at
    their real tempo (one track per part), with `report` the HTML report, with `stems` a folder of one file per
    part and the drums; all of them or none. Loads the model (`checkpoint` on `device`) unless one is given."""
    from dataclasses import replace

    from hybrid.audio import audio_format, load_audio, write_audio
    from hybrid.notes import midi_file, midi_file_parts
    from hybrid.outputs import Outputs
    from hybrid.transcription import BP_SAMPLE_RATE_HZ, estimate_tempo

    # every output is checked against the inputs and each other before any work
    outs = Outputs([rhythm, timbre, *([bass_timbre] if bass_timbre is not None else [])], force)
    out = outs.add(output)
    assert out is not None
    audio_format(out)  # an unsupported extension is refused before any work
    midi_path = outs.add(midi_out)
    if midi_path is not None and midi_path.suffix.lower() not in (".mid", ".midi"):
        raise HybridError(f"{midi_path}: --midi-out is written to a .mid or .midi file")
    stems_dir = outs.add(stems, folder=True)
    report_path = outs.add(report)
    if report_path is not None:
        if Path(timbre).suffix.lower() == ".timbre":
            raise HybridError(f"{timbre}: --report needs the timbre song's audio, not a fitted timbre")
        if not options.score:
            raise HybridError("a report needs the transfer scored (scoring was switched off: --no-score)")
    laps = _Laps(progress)
    laps.start("loading")
    # both songs are read (and any problem with them reported) before the model is loaded; A at the
    # transcriber's rate, or at its own when its drums may be kept (they are mixed in full band)
    a, sr_a = load_audio(rhythm, sample_rate_hz=BP_SAMPLE_RATE_HZ if options.drums == "drop" else None)
    # a timbre song fitted before is read from the cache, not decoded (--bpm-from-timbre needs its samples)
    settings = fit_settings(options.calibrate, options.seed, options.library, options.timbre_drums)
    weights = _lookup_weights(cache and not options.bpm_from_timbre, model, checkpoint)
    b_audio, b_sha = read_unless_cached(timbre, weights, settings)
    c_audio, c_sha = (
        (None, None) if bass_timbre is None else read_unless_cached(bass_timbre, weights, settings)
    )
    if b_audio is None and options.bpm_from_timbre:
        raise HybridError(f"{timbre}: --bpm-from-timbre needs the timbre song's audio, not a fitted timbre")
    if b_audio is not None and options.bpm_from_timbre:
        from hybrid.audio import mono, resample

        timbre_bpm = estimate_tempo(
            resample(mono(b_audio[0]), b_audio[1], BP_SAMPLE_RATE_HZ), BP_SAMPLE_RATE_HZ
        )[0]
        options = replace(options, bpm=timbre_bpm, bpm_from_timbre=False)
    model = model or load_model(checkpoint, device)
    laps.start("fitting the timbre song" if options.calibrate else "embedding the timbre song", "load")
    fitted = model.timbre_of(
        timbre, options.calibrate, options.seed, options.library, cache, b_audio, options.timbre_drums, b_sha
    )
    bass_fitted = None
    if bass_timbre is not None:
        bass_fitted = model.timbre_of(
            bass_timbre,
            options.calibrate,
            options.seed,
            options.library,
            cache,
            c_audio,
            options.timbre_drums,
            c_sha,
        )
    del b_audio, c_audio  # a long timbre song's samples are not needed any more
    laps.stop("fit")
    laps.start("transcribing the rhythm song")
    held = [a]
    del a  # the transcription takes A over: its samples are let go as soon as they are not needed
    song = _transcribe_rhythm(
        held, sr_a, model, options, overwrite=True, spill=True
    )  # a long song's samples are not needed any more
    laps.stop("transcribe")
    result = transfer_transcription(
        song, fitted, model, options, progress, bass_fitted, keep_stems=stems_dir is not None, release=True
    )
    del song
    result.output = out
    page = None
    if report_path is not None:
        laps.start("writing the report")
        page = transfer_report_html(rhythm, timbre, result, options, report_settings)
    laps.start("writing")
    # all outputs or none (see hybrid.outputs)
    with outs.writing() as tmp:
        write_audio(tmp(out), out, result.audio, result.sample_rate_hz)
        if midi_path is not None:
            midi = midi_file_parts(result.parts) if result.parts else midi_file(result.notes)
            midi.write(str(tmp(midi_path)))
        if stems_dir is not None:
            folder = tmp(stems_dir)
            for name, y in (result.stems or {"notes": result.audio}).items():
                write_audio(folder / f"{name}.wav", folder / f"{name}.wav", y, result.sample_rate_hz)
        if report_path is not None and page is not None:
            tmp(report_path).write_text(page)
    laps.stop("write")
    result.timings_s = {**laps.times, **result.timings_s}
    return result


def render_midi(
    notes: PathLike | NoteSequence,
    timbre: PathLike,
    output: PathLike | None = None,
    seed: int = 0,
    calibrate: bool = True,
    force: bool = False,
    model: Model | None = None,
    checkpoint: PathLike | None = None,
    device: str = "auto",
    library: bool = True,
    sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ,
    cache: bool = True,
    acoustics: bool = True,
) -> npt.NDArray[np.float32]:
    """Render a MIDI file (or notes) with the timbre of an audio file (or a `.timbre` file); write `output` when
    given.
    Returns the audio at `sample_rate_hz` ((n,), or (n, 2) for a stereo timbre song), loudness-normalised;
    `acoustics=False` leaves it dry (no room, no noise floor)."""
    from hybrid.audio import audio_format, write_audio
    from hybrid.notes import read_midi
    from hybrid.outputs import Outputs

    outs = Outputs([timbre] + ([notes] if not isinstance(notes, NoteSequence) else []), force)
    out = outs.add(output)
    if out is not None:
        audio_format(out)
    seq = notes if isinstance(notes, NoteSequence) else read_midi(notes)
    if not seq.notes:
        raise HybridError(f"{notes}: holds no notes to render")
    TransferOptions(sample_rate_hz=sample_rate_hz, seed=seed)  # their checks, before any slow work
    settings = fit_settings(calibrate, seed, library)
    b_audio, b_sha = read_unless_cached(timbre, _lookup_weights(cache, model, checkpoint), settings)
    model = model or load_model(checkpoint, device)
    fitted = model.timbre_of(timbre, calibrate, seed, library, cache, b_audio, song_sha256=b_sha)
    y, _ = render_notes(seq, fitted, model, seed, sample_rate_hz, acoustics)
    if out is not None:
        with outs.writing() as tmp:
            write_audio(tmp(out), out, y, sample_rate_hz)
    return y


def transfer_report(
    rhythm: PathLike,
    timbre: PathLike,
    result: TransferResult,
    path: PathLike,
    options: TransferOptions = TransferOptions(),
    settings: dict[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Write the HTML report of a finished, scored transfer (reuses its notes; loads A and B again)."""
    from hybrid.outputs import Outputs

    outs = Outputs([rhythm, timbre, result.output], force)
    out = outs.add(path)
    assert out is not None
    page = transfer_report_html(rhythm, timbre, result, options, settings)
    with outs.writing() as tmp:
        tmp(out).write_text(page)
    return out


def transfer_report_html(
    rhythm: PathLike,
    timbre: PathLike,
    result: TransferResult,
    options: TransferOptions = TransferOptions(),
    settings: dict[str, str] | None = None,
) -> str:
    """The HTML report of a finished, scored transfer (reuses its notes; loads A and B again)."""
    from hybrid.audio import load_audio
    from hybrid.report import ReportData, report_html

    if result.output_notes is None or result.output_tempo_bpm is None or result.output is None:
        raise HybridError("a report needs the transfer scored (scoring was switched off: --no-score)")
    from hybrid.audio import mono, resample

    a, _ = load_audio(rhythm, sample_rate_hz=SAMPLE_RATE_HZ)
    b_full = load_audio(timbre)
    b = resample(b_full[0], b_full[1], SAMPLE_RATE_HZ)
    data = ReportData(
        rhythm=Path(rhythm),
        timbre=Path(timbre),
        output=result.output,
        a_audio=a,
        b_audio=b,
        out_audio=resample(mono(result.audio), result.sample_rate_hz, SAMPLE_RATE_HZ),
        out_full_band=(mono(result.audio), result.sample_rate_hz),
        b_full_band=b_full,
        reference_notes=result.notes,
        output_notes=result.output_notes,
        a_tempo_bpm=result.source_tempo_bpm * result.rate,
        output_tempo_bpm=result.output_tempo_bpm,
        settings={**(settings or {}), **result_settings(result, options)},
        calibration=result.timbre.summary(result.notes),
        acoustics=None
        if result.timbre.acoustics is None
        else {
            **result.timbre.acoustics.summary(result.timbre.plays_library),
            "applied to this output": _room_setting(result.timbre, options.acoustics),
        },
    )
    return report_html(data)


def result_settings(result: TransferResult, options: TransferOptions) -> dict[str, str]:
    """The settings a report lists for a transfer."""
    return {
        "seed": str(options.seed),
        "stretch rate": f"{result.rate:.4g}",
        "transpose (semitones)": str(options.transpose),
        "calibration": "on" if options.calibrate else "off (--no-calibrate)",
        "played from": result.timbre.player(),
        "acoustics": _room_setting(result.timbre, options.acoustics),
        "drums": _drums_setting(result, options),
        **(
            {"parts": ", ".join(f"{k} ({len(v.notes)} notes)" for k, v in result.parts.items())}
            if result.parts
            else {}
        ),
        "output sample rate (Hz)": str(result.sample_rate_hz),
    }


def _drums_setting(result: TransferResult, options: TransferOptions) -> str:
    """How the report names what became of A's drums."""
    from hybrid.parts import DRUM_HITS_PER_S

    found = (
        ""
        if result.drum_hits_per_s is None
        else f"; {result.drum_hits_per_s:.2f} noisy percussive hits a second in A, drums from {DRUM_HITS_PER_S:g}"
    )
    if result.drums == "kept":
        return f"kept (level {options.drums_level_db:+g} dB{found})"
    if result.drums == "none found":
        return f"none found ({found[2:]}; --drums always keeps its percussive part anyway)"
    return f"{result.drums} (--drums drop)" if result.drums == "not kept" else result.drums


def _room_setting(timbre: FittedTimbre, acoustics: bool) -> str:
    """How the report and the CLI name the room a rendering got."""
    room = timbre.room()
    if not acoustics:
        return "dry (--dry)"
    if timbre.acoustics is not None and not timbre.use_room:
        return "dry (in the timbre song's room these notes transcribed worse)"
    if room is None:
        return "dry (not calibrated)"
    return (
        "dry (the fit found no room that brings it nearer the timbre song)" if room.dry else room.describe()
    )


class _Laps:
    """Wall time of each stage, and the progress callback told when each starts."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.times: dict[str, float] = {}
        self.clock = time.perf_counter()

    def start(self, message: str, finished: str | None = None) -> None:
        """A stage begins: the one `finished` ends (else the time since the last lap is not counted)."""
        if finished is not None:
            self.stop(finished)
        else:
            self.clock = time.perf_counter()
        if callable(self.progress):
            self.progress(message)

    def stop(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self.clock, 3)
        self.clock = now
