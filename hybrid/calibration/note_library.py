"""The note library: the timbre song's own clean notes, analysed, to play other notes with B's sound.

A recorded note carries what sets an instrument apart: the spectral envelope of its harmonics, how that
envelope and the level move from the attack through the decay (and the room's tail after the release), the
vibrato, and the noise between the harmonics. The library keeps these for each clean note of B (a transcribed
note that no other note overlaps), frame by frame from its onset:

- the harmonic envelope: the level in dB of each harmonic, read as a curve over log frequency, so that a note
  played at another pitch keeps B's formants (its harmonics are read off the curve at their own frequencies);
- the noise: the level of what lies between the harmonics, in NOISE_BANDS bands up to Nyquist;
- the pitch movement: each frame's f0 against the note's own pitch, in cents.

A clean note ends where its sound rises again: an attack that the transcription missed.

Where B has no clean note a fifth near a pitch (a piano, chords, a band whose clean notes are all in the
bass), its notes that others sound with are analysed too, each partial that lies on another note's read off
the note's other partials instead.

To play a note, the library takes B's note nearest in pitch, follows its frames from the onset (a longer
note stays on the frame three quarters in, its pitch movement looping; a shorter one is cut), then B's
release frames after the key is up; the harmonics are summed at the note's own f0 (times B's pitch
movement) and the noise is shaped band by band. Full band: the analysis and the synthesis run at the output
rate, up to Nyquist.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt

from hybrid.constants import midi_to_hz
from hybrid.notes import Note, NoteSequence

HOP_S = 0.005  # frame hop of the analysis and of the synthesis controls
MIN_NOTE_S = 0.12  # shorter notes are not clean enough to learn an envelope from
OVERLAP_MARGIN_S = 0.03  # a note is clean when no other note sounds within this of it
RELEASE_S = 0.5  # how much of B after a note's offset is kept as its release (less when the next note starts)
MAX_HARMONICS = 256
NOISE_BANDS = 48
FLOOR_DB = -100.0
OTHERS_RING_S = 0.1  # another note is taken to sound this long past its transcribed offset
# B's notes that other notes sound with (a chord, a held note under them) are analysed with the others' partials
# masked, where no clean note is POLY_GAP semitones near in pitch: a polyphonic B (a piano, chords) gets a
# library, one whose clean notes lie far from some pitches gets notes there. A fifth: bench_real timbre 0.580 ->
# 0.585 and note F1 0.745 -> 0.747, the public pairs 0.585 -> 0.591 and 0.733 -> 0.738; an octave: 0.581 and
# 0.747, the public pairs unchanged (docs/design.md)
POLY_GAP = 7.0
SEARCH_CENTS = 40.0  # each frame's f0 is searched within this of the note's (bent) pitch
MAX_NOTES = 64  # at most this many notes are kept, the longest first
CUT_S = 0.02  # fade when a note's sound ends: cut by the next note of its voice, or at the end of its release
ONSET_RAMP_S = 0.002  # fade-in of a note's partials
KEEP_DB = 50.0  # partials more than this below a note's loudest are not synthesised
# A note played an octave or more from B's recorded one keeps its fundamental within FUNDAMENTAL_DB of its
# loudest partial: read at the new harmonics, B's envelope can leave it so weak that the note is heard an
# octave off (bench_real: note F1 0.742 -> 0.744, timbre 0.578 -> 0.580; docs/design.md)
FUNDAMENTAL_SHIFT = 12.0
FUNDAMENTAL_DB = 6.0
SUM_FRAMES = 1024  # frames of notes whose partials are summed at once (memory: 7 x SUM_FRAMES frames)
SYNTH_THREADS = 2  # notes whose controls are made at once
SINGLE_PARTIALS = 64  # notes of more partials are summed in double precision
AHEAD = 8  # notes whose controls are made ahead of the one being added (memory: AHEAD notes' samples)
NOISE_BLOCK = 2000  # frames of noise shaped at once (10 s)
# a note's partials by everything they depend on: made by one rendering, taken back by the next
Partials = dict[tuple[object, ...], npt.NDArray[np.float32] | None]
# what a note's partials are summed from: its phase (radians, per sample) and the partials' amplitudes per frame
Controls = tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]
_Made = Controls | npt.NDArray[np.float32] | None  # a note's controls, or its partials taken back


@dataclass(frozen=True)
class RecordedNote:
    """One clean note of the timbre song, analysed at HOP_S. Frames from the onset; the first `held` frames are
    the key down, the rest the release."""

    pitch_midi: float
    velocity: int
    held: int
    harmonic_hz: npt.NDArray[np.float32]  # (frames, harmonics) the frequencies the levels were read at
    harmonic_db: npt.NDArray[np.float32]  # (frames, harmonics)
    noise_db: npt.NDArray[np.float32]  # (frames, NOISE_BANDS)
    cents: npt.NDArray[np.float32]  # (frames,) f0 against the note's pitch

    @property
    def frames(self) -> int:
        return int(self.harmonic_db.shape[0])

    @cached_property
    def level_db(self) -> npt.NDArray[np.float64]:
        """(frames,) the power of all partials, in dB: computed once, read for every note played from this one."""
        return 10.0 * np.log10(np.sum(10.0 ** (self.harmonic_db.astype(np.float64) / 10.0), axis=1) + 1e-20)


def noise_band_edges_hz(sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """NOISE_BANDS + 1 edges, log-spaced from 40 Hz to Nyquist."""
    return np.geomspace(40.0, sample_rate_hz / 2.0, NOISE_BANDS + 1)


SHORT_WINDOW = 1024  # samples of the window that follows each frame's level
PERIODS = 12  # analysis window length in periods of f0: harmonics 12 bins apart, the main lobes 8 bins wide
LOBE_BINS = 4.5  # a bin this far from every harmonic holds only noise (Blackman-Harris: sidelobes at -92 dB)


def _window_size(f0_hz: float, sample_rate_hz: int) -> int:
    """An FFT of PERIODS periods of f0 (a power of two, 1024 to 16384)."""
    need = PERIODS * sample_rate_hz / max(f0_hz, 20.0)
    return int(min(16384, max(1024, 2 ** int(np.ceil(np.log2(need))))))


# Intervals (semitones) of harmonics 2-16 above a fundamental: a quieter note there is the note's own partial
# transcribed as a note of its own, not another note.
HARMONIC_INTERVALS = frozenset(int(round(12 * np.log2(k))) for k in range(2, 17))


def _clean_notes(notes: NoteSequence) -> list[Note]:
    """The notes long enough to learn from that no other note disturbs, each cut where another note disturbs it
    (a note disturbs unless it is quieter and either sits at one of the note's harmonics or overlaps less than
    a quarter of it). A note that a disturbing note sounds with at its onset (within OVERLAP_MARGIN_S: a chord,
    a held note under it, the note before it ending as it begins) is not clean; one that a disturbing note only
    begins inside is clean until then, when that still leaves MIN_NOTE_S (a legato phrase, a note transcribed
    in two parts, a transcription that ends a note late in a room)."""
    ns = sorted(notes.notes, key=lambda n: n.onset_s)
    clean = []
    for i, n in enumerate(ns):
        if n.duration_s < MIN_NOTE_S:
            continue
        lo, hi = n.onset_s - OVERLAP_MARGIN_S, n.offset_s + OVERLAP_MARGIN_S
        end = n.offset_s
        for j, m in enumerate(ns):
            if j == i or not (m.onset_s < hi and m.offset_s > lo):
                continue
            overlap = min(hi, m.offset_s) - max(lo, m.onset_s)
            partial = round(m.pitch_midi - n.pitch_midi) in HARMONIC_INTERVALS
            if m.velocity < n.velocity and (partial or overlap < 0.25 * n.duration_s):
                continue
            if m.onset_s <= n.onset_s + OVERLAP_MARGIN_S:
                end = -np.inf  # it sounds at this one's onset
                break
            end = min(end, m.onset_s - OVERLAP_MARGIN_S)  # it begins inside this one
        if end - n.onset_s >= MIN_NOTE_S:
            clean.append(n if end >= n.offset_s else replace(n, offset_s=end))
    return clean


def _analyse_note(
    audio: npt.NDArray[np.float32],
    sample_rate_hz: int,
    note: Note,
    end_s: float,
    others: tuple[Note, ...] = (),
) -> RecordedNote | None:
    """Frames of one note from its onset to `end_s` (its offset plus what of the release is free). `others`:
    B's notes that sound with it; its partials within a main lobe of theirs are read off its other partials
    instead, and the bins near theirs are not its noise. None when most of its first partials are theirs."""
    f0 = float(midi_to_hz(note.pitch_midi))
    n_fft = _window_size(f0, sample_rate_hz)
    hop = int(round(HOP_S * sample_rate_hz))
    from scipy.signal.windows import blackmanharris

    window = blackmanharris(n_fft)
    gain = 2.0 / window.sum()
    start = int(note.onset_s * sample_rate_hz)
    stop = min(len(audio), int(end_s * sample_rate_hz))
    centres = np.arange(start, stop, hop)
    if len(centres) < 4:
        return None
    padded = np.pad(audio.astype(np.float64), (n_fft // 2, n_fft // 2))
    frames = np.stack([padded[c : c + n_fft] * window for c in centres])
    mag = np.abs(np.fft.rfft(frames, axis=1)) * gain  # (frames, bins): a sinusoid of amplitude A peaks at A
    bin_hz = sample_rate_hz / n_fft
    k_max = int(min(MAX_HARMONICS, (sample_rate_hz / 2.0 - bin_hz * 2) // f0))
    if k_max < 1:
        return None
    ks = np.arange(1, k_max + 1, dtype=np.float64)
    # f0 per frame: the candidate within +-SEARCH_CENTS whose first eight harmonics hold the most energy
    cents_grid = np.linspace(-SEARCH_CENTS, SEARCH_CENTS, 17)
    log_mag = np.log(mag + 1e-9)
    k8 = ks[: min(8, k_max)]
    scores = np.stack(
        [
            np.take_along_axis(
                log_mag,
                np.broadcast_to(
                    np.clip(np.round(k8 * f0 * 2 ** (c / 1200.0) / bin_hz), 0, mag.shape[1] - 1).astype(int),
                    (len(centres), len(k8)),
                ),
                axis=1,
            ).sum(1)
            for c in cents_grid
        ],
        axis=1,
    )
    cents = cents_grid[np.argmax(scores, axis=1)]
    f0_t = f0 * 2 ** (cents / 1200.0)  # (frames,) as measured, to read the partials at
    # What is kept is the movement (vibrato, the attack's glide), not B's tuning: the track less its median,
    # median-filtered against the grid search's jitter, then smoothed over 25 ms.
    from scipy.ndimage import median_filter, uniform_filter1d

    movement = median_filter(cents - np.median(cents), size=5, mode="nearest")
    movement = uniform_filter1d(movement, size=5, mode="nearest")
    # the bins within a main lobe of the partials of the notes sounding with this one, frame by frame, and this
    # note's partials that lie there
    freqs = f0_t[:, None] * ks[None, :]
    theirs = np.zeros(mag.shape, bool)
    masked = np.zeros(freqs.shape, bool)
    times = centres / sample_rate_hz
    lobe = int(np.ceil(LOBE_BINS))
    for o in others:
        on = np.flatnonzero((times >= o.onset_s - OVERLAP_MARGIN_S) & (times < o.offset_s + OTHERS_RING_S))
        f0_o = float(midi_to_hz(o.pitch_midi))
        partials = np.round(np.arange(1, sample_rate_hz / 2.0 // f0_o + 1) * f0_o / bin_hz).astype(int)
        for d in range(-lobe, lobe + 1):
            theirs[np.ix_(on, np.clip(partials + d, 0, mag.shape[1] - 1))] = True
        j = np.maximum(1.0, np.round(freqs[on] / f0_o))
        masked[on] |= np.abs(freqs[on] - j * f0_o) < LOBE_BINS * bin_hz
    if masked[:, : min(8, k_max)].mean() > 0.5:
        return None  # most of its first partials are another note's
    # each partial: the largest magnitude within 30% of f0 of k * f0 (a stiff string's partials lie sharp of it),
    # not counting the bins of the other notes' partials
    reach = max(1, int(0.3 * f0 / bin_hz))
    centre = np.round(freqs / bin_hz).astype(int)
    cand = np.clip(centre[:, :, None] + np.arange(-reach, reach + 1)[None, None, :], 0, mag.shape[1] - 1)
    free_mag = np.where(theirs, 0.0, mag)
    cand_mag = np.take_along_axis(free_mag[:, None, :], cand.reshape(len(centres), 1, -1), axis=2).reshape(
        cand.shape
    )
    best = np.argmax(cand_mag, axis=2)
    peak_bin = np.take_along_axis(cand, best[:, :, None], axis=2)[:, :, 0]
    peak = np.take_along_axis(cand_mag, best[:, :, None], axis=2)[:, :, 0]
    # the peak between bins: a parabola through the log magnitudes of the bin and its neighbours
    lm = np.log(mag + 1e-12)
    left = np.take_along_axis(lm, np.clip(peak_bin - 1, 0, mag.shape[1] - 1), axis=1)
    mid = np.take_along_axis(lm, peak_bin, axis=1)
    right = np.take_along_axis(lm, np.clip(peak_bin + 1, 0, mag.shape[1] - 1), axis=1)
    curve = left - 2.0 * mid + right
    shift = np.where(curve < -1e-9, 0.5 * (left - right) / np.where(curve < -1e-9, curve, -1.0), 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    peak = np.exp(mid - 0.25 * (left - right) * shift)
    freqs = (peak_bin + shift) * bin_hz
    # noise: the power of the bins farther than a main lobe from every partial, per band
    near = np.zeros(mag.shape, bool)
    rows = np.arange(len(centres))[:, None]
    for d in range(-lobe, lobe + 1):
        near[rows, np.clip(peak_bin + d, 0, mag.shape[1] - 1)] = True
    near |= theirs
    between = ~near
    bins_hz = np.arange(mag.shape[1]) * bin_hz
    edges = noise_band_edges_hz(sample_rate_hz)
    band = np.clip(np.searchsorted(edges, bins_hz) - 1, 0, NOISE_BANDS - 1)  # non-decreasing with the bin
    firsts = np.searchsorted(band, np.arange(NOISE_BANDS))
    present = firsts < len(band)
    sums = np.zeros((len(centres), NOISE_BANDS))
    counts = np.zeros((len(centres), NOISE_BANDS))
    starts = firsts[present]
    sums[:, present] = np.add.reduceat(mag**2 * between, starts, axis=1)
    counts[:, present] = np.add.reduceat(between.astype(np.float64), starts, axis=1)
    empty_band = np.r_[starts[1:], len(band)] <= starts  # reduceat gives a lone bin for an empty band
    sums[:, np.flatnonzero(present)[empty_band]] = 0.0
    counts[:, np.flatnonzero(present)[empty_band]] = 0.0
    # mean magnitude-squared per bin of the band; bands with no bin between partials borrow their neighbours'
    per_bin = np.full_like(sums, np.nan)
    np.divide(sums, counts, out=per_bin, where=counts > 0)
    for t in range(per_bin.shape[0]):
        row = per_bin[t]
        ok = np.isfinite(row)
        per_bin[t] = np.interp(np.arange(NOISE_BANDS), np.flatnonzero(ok), row[ok]) if ok.any() else 0.0
    noise_here = np.take_along_axis(per_bin, band[np.clip(peak_bin, 0, len(band) - 1)], axis=1)
    harmonic_db = 10.0 * np.log10(np.maximum(peak**2 - 2.0 * noise_here, 0.0) + 1e-20)
    for t in np.flatnonzero(masked.any(axis=1) & ~masked.all(axis=1)):
        ok = ~masked[t]
        harmonic_db[t, ~ok] = np.interp(np.log(ks[~ok]), np.log(ks[ok]), harmonic_db[t, ok])
    # the noise as the variance of white noise with that density (independent of the window's length)
    noise_db = 10.0 * np.log10(per_bin * window.sum() ** 2 / (4.0 * (window**2).sum()) + 1e-20)
    # A window of twelve periods blurs a low note's attack over a third of a second: the level of each frame
    # follows a short window's instead (the long one still gives the spectrum's shape).
    short = np.hanning(SHORT_WINDOW)
    short_frames = np.stack([padded[c + n_fft // 2 - SHORT_WINDOW // 2 :][:SHORT_WINDOW] for c in centres])
    power_short = ((short_frames * short) ** 2).sum(1) / (short**2).sum()
    power_long = ((frames) ** 2).sum(1) / (window**2).sum()
    level_db = np.clip(10.0 * np.log10((power_short + 1e-12) / (power_long + 1e-12)), -40.0, 20.0)
    harmonic_db = harmonic_db + level_db[:, None]
    noise_db = noise_db + level_db[:, None]
    held = int(np.clip(round((note.offset_s - note.onset_s) / HOP_S), 1, len(centres)))
    return RecordedNote(
        float(note.pitch_midi),
        int(note.velocity),
        held,
        freqs.astype(np.float32),
        np.maximum(harmonic_db, FLOOR_DB).astype(np.float32),
        np.maximum(noise_db, FLOOR_DB).astype(np.float32),
        movement.astype(np.float32),
    )


# A clean note whose sound rises again inside it (by REATTACK_DB, held over REATTACK_S or the level's window,
# SETTLE_S or more after its own attack) holds an attack that its transcription missed (a strum at the end of
# a file, a syllable in a release): it ends there. bench_real: note F1 0.747 -> 0.752, timbre 0.585 -> 0.586
# (docs/design.md)
REATTACK_DB = 5.0
REATTACK_S = 0.03
SETTLE_S = 0.06
LEVEL_PERIODS = 4  # the level is measured over at least this many periods (a low note's level ripples less)


def _reattack_s(
    audio: npt.NDArray[np.float32], sample_rate_hz: int, note: Note, end_s: float
) -> float | None:
    """Where the sound of `note` rises again before `end_s` (an attack its transcription missed), or None:
    the first frame (HOP_S apart) whose level, lowest over the next REATTACK_S (or the window), is
    REATTACK_DB above its lowest over as long before (a rise that holds, not a ripple), SETTLE_S or more
    after the note's level first came within 6 dB of its loudest, and not below 30 dB under it; the time
    where the rise begins."""
    hop = int(round(HOP_S * sample_rate_hz))
    size = max(SHORT_WINDOW, int(LEVEL_PERIODS * sample_rate_hz / float(midi_to_hz(note.pitch_midi))))
    back = max(int(round(REATTACK_S / HOP_S)), size // hop)
    a = int(note.onset_s * sample_rate_hz)
    b = min(len(audio), int(end_s * sample_rate_hz))
    if b - a < size + hop * (2 * back + 1):
        return None
    from scipy.signal import fftconvolve

    # each frame's windowed power, the sum of (x w)^2 over the window: x^2 filtered by w^2 (no frames held)
    w2 = np.hanning(size) ** 2
    power = fftconvolve(audio[a:b].astype(np.float64) ** 2, w2[::-1], mode="valid")[::hop]
    db = 10.0 * np.log10(np.maximum(power, 0.0) / w2.sum() + 1e-12)
    times = note.onset_s + (np.arange(len(db)) * hop + size / 2) / sample_rate_hz
    # at frame i + back: the lowest level over the `back` frames before it against the lowest over as many
    # from it (a rise that holds: not a ripple of the level)
    spans = np.lib.stride_tricks.sliding_window_view(db, 2 * back)
    before, after = spans[:, :back].min(axis=1), spans[:, back:].min(axis=1)
    t = times[back : back + len(spans)]
    attacked = times[int(np.argmax(db >= db.max() - 6.0))]  # the note's own attack has risen by then
    hit = np.flatnonzero(
        (after - before >= REATTACK_DB) & (t >= attacked + SETTLE_S) & (after > db.max() - 30.0)
    )
    if len(hit) == 0:
        return None
    i = int(hit[0])
    return float(times[i + int(np.argmin(spans[i, :back]))])


def _release_end(note: Note, onsets: npt.NDArray[np.float64]) -> float:
    """Where a note's analysis ends: RELEASE_S after its offset, or where the next note begins (`onsets`: all of
    B's, sorted; a partial transcribed inside the note does not count)."""
    later = onsets[onsets >= note.offset_s - OVERLAP_MARGIN_S]
    return min(note.offset_s + RELEASE_S, float(later[0]) if len(later) else np.inf)


def _with_others(
    audio: npt.NDArray[np.float32],
    sample_rate_hz: int,
    notes: NoteSequence,
    have: list[float],
    onsets: npt.NDArray[np.float64],
) -> list[RecordedNote]:
    """B's notes that other notes sound with, analysed with the others' partials masked, where no note of the
    library (`have`, the clean ones' pitches) is within POLY_GAP semitones; the longest first, each one kept
    joining `have`. The release ends where the next note begins, as a clean note's does."""
    have = list(have)
    found: list[RecordedNote] = []
    for n in sorted(notes.notes, key=lambda n: n.duration_s, reverse=True):
        if len(have) >= MAX_NOTES:
            break
        if n.duration_s < MIN_NOTE_S or (have and min(abs(n.pitch_midi - p) for p in have) < POLY_GAP):
            continue
        end = _release_end(n, onsets)
        others = tuple(
            m
            for m in notes.notes
            if m is not n and m.onset_s < end and m.offset_s + OTHERS_RING_S > n.onset_s
        )
        r = _analyse_note(audio, sample_rate_hz, n, end, others)
        if r is not None:
            found.append(r)
            have.append(n.pitch_midi)
    return found


@dataclass(frozen=True)
class NoteLibrary:
    """B's clean notes, analysed; plays other notes with them (see the module's docstring)."""

    notes: tuple[RecordedNote, ...]
    sample_rate_hz: int

    @classmethod
    def analyse(
        cls, audio: npt.NDArray[np.float32], sample_rate_hz: int, notes: NoteSequence
    ) -> NoteLibrary | None:
        """The library of mono `audio` whose transcription is `notes`; None when it holds no note to play from."""
        clean = _clean_notes(notes)
        clean = sorted(clean, key=lambda n: n.duration_s, reverse=True)[:MAX_NOTES]
        onsets = np.array(sorted(n.onset_s for n in notes.notes))
        recorded = []
        for n in clean:
            end = _release_end(n, onsets)
            again = _reattack_s(audio, sample_rate_hz, n, end)
            if again is not None:  # a missed attack: the note, or its release, ends there
                if again - OVERLAP_MARGIN_S - n.onset_s < MIN_NOTE_S:
                    continue
                n = replace(n, offset_s=min(n.offset_s, again - OVERLAP_MARGIN_S))
                end = again
            r = _analyse_note(audio, sample_rate_hz, n, end)
            if r is not None:
                recorded.append(r)
        recorded += _with_others(audio, sample_rate_hz, notes, [r.pitch_midi for r in recorded], onsets)
        if not recorded:
            return None
        return cls(tuple(recorded), sample_rate_hz)

    def nearest(self, pitch_midi: float) -> RecordedNote:
        return min(self.notes, key=lambda r: (abs(r.pitch_midi - pitch_midi), -r.held))

    def render(
        self,
        notes: NoteSequence,
        sample_rate_hz: int,
        tail_s: float = 1.0,
        seed: int = 0,
        made: Partials | None = None,
        keep: bool = False,
    ) -> npt.NDArray[np.float32]:
        """Mono audio of the notes with B's recorded sound, at `sample_rate_hz`, lasting until the last offset
        plus `tail_s`; `seed` seeds the noise. A note whose partials are in `made` (made for the same recorded
        note, pitch, level, frames and length, by an earlier render) takes them from there; with `keep`, this
        render's are added to it. The note check's window is rendered so, and the song after it takes the
        window's notes back: the same samples, a quarter less work (docs/design.md)."""
        n_out = int(np.ceil((notes.end_s + tail_s) * sample_rate_hz))
        hop = int(round(HOP_S * sample_rate_hz))
        n_frames = n_out // hop + 2
        out = np.zeros(n_out, np.float32)  # float32: the output's size is what grows with the song
        noise_power = np.zeros((n_frames, NOISE_BANDS))
        from hybrid.neural.conditioning import allocate_voices

        # a note's release ends (in CUT_S) where the next note of its voice begins, as in legato playing
        ends: dict[int, float] = {}
        for voice in allocate_voices(notes):
            for cur, nxt in zip(voice, voice[1:], strict=False):
                ends[id(cur)] = nxt.onset_s
        from concurrent.futures import Future, ThreadPoolExecutor

        # Each note's controls (its phase and partials' amplitudes) are made on two threads (numpy lets go of
        # the GIL in them); the partials of SUM_FRAMES frames of notes are then summed at once, and added in the
        # notes' order, so the sum is the same on every run. At most AHEAD notes are in flight.
        pending: deque[tuple[int, tuple[object, ...], Future[_Made]]] = deque()
        ready: list[tuple[tuple[object, ...], int, _Made]] = []  # (key, start, what was made)

        def add(batch: list[tuple[tuple[object, ...], int, _Made]]) -> None:
            controls = [c for _, _, c in batch if isinstance(c, tuple)]
            summed = iter(_sum_partials(controls, hop, sample_rate_hz))
            for key, start, c in batch:
                y = next(summed) if isinstance(c, tuple) else c
                if keep and made is not None:
                    made[key] = y
                if y is not None:
                    out[start : start + len(y)] += y

        def add_ready(limit: int) -> None:
            while len(pending) > limit:
                start, key, fut = pending.popleft()
                ready.append((key, start, fut.result()))
            frames = sum(len(c[0]) // hop for _, _, c in ready if isinstance(c, tuple))
            if ready and (frames >= SUM_FRAMES or limit == 0):
                add(ready)
                ready.clear()

        with ThreadPoolExecutor(SYNTH_THREADS) as pool:
            for n in notes.notes:
                ref = self.nearest(n.pitch_midi)
                plan = _frame_map(ref, n, tail_s)
                # the note fades out at its voice's next onset, or at the end of its plan
                frames = len(plan.spectrum)
                if id(n) in ends:
                    frames = min(frames, int(np.ceil((ends[id(n)] - n.onset_s) / HOP_S)))
                plan = plan.cut(frames, force=True)
                start = int(round(n.onset_s * sample_rate_hz))
                gain_db = 20.0 * np.log10(max(n.velocity, 1) / max(ref.velocity, 1))
                # everything the partials depend on (not the onset: each note's phase starts at 0)
                key = (
                    id(ref),
                    n.pitch_midi,
                    gain_db,
                    sample_rate_hz,
                    min(len(plan.spectrum) * hop, n_out - start),
                    plan.spectrum.tobytes(),
                    plan.movement.tobytes(),
                    plan.level_db.tobytes(),
                )
                if made is not None and key in made:
                    fut: Future[_Made] = Future()
                    fut.set_result(made[key])
                else:
                    fut = pool.submit(
                        self._controls, n_out - start, hop, ref, n, plan, gain_db, sample_rate_hz
                    )
                pending.append((start, key, fut))
                add_ready(AHEAD)
                # B's noise beside B's partials: a note p semitones higher has 2^(p/12) times fewer partials
                # in each band, so its noise is lowered alike to keep B's balance of noise and partials
                density_db = float(
                    np.clip(-10.0 * (n.pitch_midi - ref.pitch_midi) / 12.0 * np.log10(2.0), -30.0, 10.0)
                )
                i0 = int(round(n.onset_s / HOP_S))
                m = min(len(plan.spectrum), n_frames - i0)
                if m > 0:
                    db = ref.noise_db[plan.spectrum[:m]] + (plan.level_db[:m] + gain_db + density_db)[:, None]
                    noise_power[i0 : i0 + m] += 10.0 ** (db / 10.0)
            add_ready(0)
        _add_shaped_noise(out, noise_power, hop, sample_rate_hz, self.sample_rate_hz, seed)
        return out

    @staticmethod
    def _controls(
        room: int,
        hop: int,
        ref: RecordedNote,
        note: Note,
        plan: FramePlan,
        gain_db: float,
        sample_rate_hz: int,
    ) -> Controls | None:
        """What one note's partials are summed from (at most `room` samples from its onset; _sum_partials), or
        None when none sound."""
        f0 = float(midi_to_hz(note.pitch_midi))
        k_max = int(min(MAX_HARMONICS, (sample_rate_hz / 2.0) // f0))
        if k_max < 1:
            return None
        ks = np.arange(1, k_max + 1)
        # B's envelope read at this note's harmonics: per frame, interpolated over log frequency
        frames = plan.spectrum
        f0_t = f0 * 2.0 ** (ref.cents[plan.movement].astype(np.float64) / 1200.0)
        want = np.log(f0_t[:, None] * ks[None, :])
        have = np.log(np.maximum(ref.harmonic_hz[frames].astype(np.float64), 1.0))
        levels = _interp_rows(want, have, ref.harmonic_db[frames].astype(np.float64), FLOOR_DB)
        if abs(note.pitch_midi - ref.pitch_midi) >= FUNDAMENTAL_SHIFT:
            levels[:, 0] = np.maximum(levels[:, 0], levels.max(axis=1) - FUNDAMENTAL_DB)
        levels += gain_db + plan.level_db[:, None]
        keep = levels.max(axis=0) > levels.max() - KEEP_DB  # partials ever within KEEP_DB of the loudest
        if not keep.any():
            return None
        top = int(ks[keep].max())
        amp = np.zeros(
            (len(frames) + 1, top), np.float32
        )  # one more frame for the interpolation past the last
        amp[:-1] = np.where(keep[:top], 10.0 ** (levels[:, :top] / 20.0), 0.0)  # partials not kept: silent
        amp[-1] = amp[-2]
        n = min(len(frames) * hop, room)
        if n <= 0:
            return None
        f0_s = np.interp(np.arange(n), np.arange(len(frames)) * hop, f0_t)
        return 2.0 * np.pi * np.cumsum(f0_s) / sample_rate_hz, amp


def _sum_partials(notes: list[Controls], hop: int, sample_rate_hz: int) -> list[npt.NDArray[np.float32]]:
    """For each note (phase, amp), sum over k of a_k(t) sin(k phase(t)), k = 1 .. amp.shape[1], where a_k goes
    linearly from amp[j, k-1] at sample j * hop to amp[j + 1, k-1] at (j + 1) * hop (amp has a row past the
    last frame); the first ONSET_RAMP_S fades in. All the notes at once, SUM_FRAMES frames at a time."""
    outs = [np.zeros(len(phase), np.float32) for phase, _ in notes]
    # (note, first frame, end frame) pieces of at most SUM_FRAMES, packed into runs of at most SUM_FRAMES
    runs: list[list[tuple[int, int, int]]] = [[]]
    size = 0
    for i, (phase, _) in enumerate(notes):
        frames = -(-len(phase) // hop)
        for j0 in range(0, frames, SUM_FRAMES):
            j1 = min(frames, j0 + SUM_FRAMES)
            if size + j1 - j0 > SUM_FRAMES:
                runs.append([])
                size = 0
            runs[-1].append((i, j0, j1))
            size += j1 - j0
    for run in runs:
        # Clenshaw's error grows with the square of the partials: single precision up to SINGLE_PARTIALS
        # (within 1.3e-5 of the sum of 64 partials of random levels), double above (5e-8; single: 1.9e-4 at 256)
        single = [notes[i][1].shape[1] <= SINGLE_PARTIALS for i, _, _ in run]
        for want, dtype in ((True, np.float32), (False, np.float64)):
            pieces = [p for p, s in zip(run, single, strict=True) if s == want]
            if pieces:
                _sum_run(notes, pieces, hop, dtype, outs)
    for y in outs:
        ramp = min(len(y), int(ONSET_RAMP_S * sample_rate_hz))  # the first sample is not a step either
        y[:ramp] *= np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
    return outs


def _sum_run(
    notes: list[Controls],
    pieces: list[tuple[int, int, int]],
    hop: int,
    dtype: type[np.floating],  # type: ignore[type-arg]
    outs: list[npt.NDArray[np.float32]],
) -> None:
    """_sum_partials of these pieces of notes, laid side by side, written into `outs`."""
    import torch

    # the most partials first, so that the pieces still summing at partial k are always the first ones
    pieces = sorted(pieces, key=lambda p: -notes[p[0]][1].shape[1])
    n_frames = sum(j1 - j0 for _, j0, j1 in pieces)
    partials = notes[pieces[0][0]][1].shape[1]
    phase = np.zeros((n_frames, hop))  # past a note's end: phase 0, so every sin(k phase) is 0
    # per frame two rows of coefficients: the amplitudes at the frame, and their change to the next frame's
    coef = np.zeros((2, n_frames, partials), dtype)
    upto = np.zeros(partials, np.int64)  # partial k is summed in the first upto[k] frames
    row = 0
    for i, j0, j1 in pieces:
        ph, amp = notes[i]
        piece = ph[j0 * hop : j1 * hop]
        phase.reshape(-1)[row * hop : row * hop + len(piece)] = piece
        k = amp.shape[1]
        coef[0, row : row + j1 - j0, :k] = amp[j0:j1]
        coef[1, row : row + j1 - j0, :k] = amp[j0 + 1 : j1 + 1] - amp[j0:j1]
        row += j1 - j0
        upto[:k] = row
    # Clenshaw's recurrence: sum_k a_k sin(k phase) is b_1 sin(phase), where b_k = a_k + 2 cos(phase) b_(k+1)
    # - b_(k+2), so no sin(k phase) is made; it runs for both rows of coef, joined with the ramp in the frame.
    # On one thread 1.9x faster than sin(k phase) for every k and a matrix product per frame (docs/design.md).
    c2 = torch.from_numpy((2.0 * np.cos(phase)).astype(dtype))
    coef_t = torch.from_numpy(coef)
    b1 = torch.zeros((2, n_frames, hop), dtype=c2.dtype)
    b2 = torch.zeros_like(b1)
    with torch.inference_mode():
        for k in range(partials - 1, -1, -1):
            m = int(upto[k])
            b2[:, :m].neg_().add_(coef_t[:, :m, k, None]).addcmul_(c2[:m], b1[:, :m])
            b1, b2 = b2, b1
        b1.mul_(torch.from_numpy(np.sin(phase).astype(dtype)))
        y = (b1[0] + torch.arange(hop, dtype=c2.dtype) / hop * b1[1]).reshape(-1).numpy()
    row = 0
    for i, j0, j1 in pieces:
        a, b = j0 * hop, min(len(outs[i]), j1 * hop)
        outs[i][a:b] = y[row * hop : row * hop + b - a]
        row += j1 - j0


def _interp_rows(
    x: npt.NDArray[np.float64], xp: npt.NDArray[np.float64], fp: npt.NDArray[np.float64], right: float
) -> npt.NDArray[np.float64]:
    """np.interp row by row (each row of xp increasing), in one pass: the rows are laid end to end with a gap
    between them, so one sorted search serves all. Left of a row's range its first value, right of it `right`."""
    rows, m = xp.shape
    gap = (max(float(xp.max()), float(x.max())) - min(float(xp.min()), float(x.min())) + 1.0) * np.arange(
        rows
    )
    flat = (xp + gap[:, None]).ravel()
    pos = np.searchsorted(flat, (x + gap[:, None]).ravel()).reshape(x.shape) - (m * np.arange(rows))[:, None]
    lo = np.clip(pos - 1, 0, m - 1)
    hi = np.clip(pos, 0, m - 1)
    x0, x1 = np.take_along_axis(xp, lo, 1), np.take_along_axis(xp, hi, 1)
    y0, y1 = np.take_along_axis(fp, lo, 1), np.take_along_axis(fp, hi, 1)
    w = np.where(x1 > x0, (x - x0) / np.where(x1 > x0, x1 - x0, 1.0), 0.0)
    y = y0 + np.clip(w, 0.0, 1.0) * (y1 - y0)
    return np.where(pos >= m, right, y)


@dataclass(frozen=True)
class FramePlan:
    """Which of B's frames plays each frame of a note: `spectrum` for the partials and noise, `movement` for
    the pitch movement, and `level_db` added to the levels (a held note longer than B's continues B's trend)."""

    spectrum: npt.NDArray[np.int64]
    movement: npt.NDArray[np.int64]
    level_db: npt.NDArray[np.float64]

    def cut(self, frames: int, force: bool = False) -> FramePlan:
        """Ended after `frames` (at least one), fading out over the last CUT_S (also when nothing is cut, with
        `force`: a sound stopped mid-waveform clicks)."""
        n = max(1, min(frames, len(self.spectrum)))
        if n == len(self.spectrum) and not force:
            return self
        fade = np.zeros(n)
        k = min(n, max(1, int(CUT_S / HOP_S)))
        fade[n - k :] = np.linspace(0.0, -60.0, k)
        return FramePlan(self.spectrum[:n], self.movement[:n], self.level_db[:n] + fade)


def _frame_map(ref: RecordedNote, note: Note, tail_s: float) -> FramePlan:
    """B's held frames from the onset, then B's release frames. A note held longer than B's plays B's frames
    up to three quarters into its held ones, then stays on that frame's spectrum and continues B's level trend
    over the second half of them (a decay goes on decaying, a sustained note stays; never rising), its pitch
    movement looping from there back and forth over the second half; a shorter one is cut. (Playing all of
    B's held frames and then going back to the steady one jumps: the last frames before B's next note
    differ, and the jump was heard, and transcribed, as a new attack.)"""
    held_n = max(1, int(round(note.duration_s / HOP_S)))
    release = np.arange(ref.held, ref.frames)
    if len(release) == 0:  # B's note had no free release: fade its last frame out over 50 ms
        release = np.full(int(0.05 / HOP_S), ref.held - 1)
    release = release[: max(1, int(tail_s / HOP_S))]
    if held_n <= ref.held:
        spectrum = np.concatenate([np.arange(held_n), release])
        return FramePlan(spectrum, spectrum, np.zeros(len(spectrum)))
    lo = ref.held // 2
    steady = min(ref.held - 1, (3 * ref.held) // 4)
    span = max(1, steady - lo)
    extra = np.arange(1, held_n - steady)
    phase = extra % (2 * span)
    loop = np.clip(np.where(phase < span, steady - phase, lo + (phase - span)), 0, ref.held - 1)
    slope = _level_slope_db(ref, lo)
    ext_level = slope * extra
    head = np.arange(steady + 1)
    spectrum = np.concatenate([head, np.full(len(extra), steady), release])
    movement = np.concatenate([head, loop, release])
    # B's frames up to the steady one, then the steady frame with B's level trend; the release from where
    # the trend has brought the level to, against B's own level at its release
    after = float(ref.level_db[steady] + ext_level[-1] - ref.level_db[ref.held - 1])
    level = np.concatenate([np.zeros(steady + 1), ext_level, np.full(len(release), after)])
    return FramePlan(spectrum.astype(np.int64), movement.astype(np.int64), level)


def _level_slope_db(ref: RecordedNote, start: int) -> float:
    """dB per frame of B's level over its held frames from `start` (a least-squares line), at most 0."""
    t = np.arange(start, ref.held)
    if len(t) < 3:
        return 0.0
    return float(min(0.0, np.polyfit(t, ref.level_db[start : ref.held], 1)[0]))


def _add_shaped_noise(
    out: npt.NDArray[np.float32],
    power: npt.NDArray[np.float64],
    hop: int,
    sample_rate_hz: int,
    analysis_rate_hz: int,
    seed: int,
) -> None:
    """Add to `out` white noise shaped frame by frame to the per-band power (the variance of white noise of
    that density), in blocks of NOISE_BLOCK frames joined by equal-power crossfades, so memory does not grow
    with the song: each block is added once the next has faded in over its tail."""
    n_out = len(out)
    if not power.any():
        return
    from scipy.signal import istft, stft

    n_fft = 4 * hop
    rng = np.random.default_rng(seed)
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    band = np.clip(np.searchsorted(noise_band_edges_hz(analysis_rate_hz), bins_hz) - 1, 0, NOISE_BANDS - 1)
    fade = 4 * hop
    ramp = np.sin(0.5 * np.pi * np.arange(fade) / fade)  # sin^2 + cos^2 = 1: the noise's power stays level
    tail = np.zeros(0)  # the previous block's samples that the next fades in over, not added yet
    last = min(power.shape[0], n_out // hop + 1)
    for f0 in range(0, last, NOISE_BLOCK):
        a = f0 * hop
        b = min(n_out, (f0 + NOISE_BLOCK) * hop + fade)
        if a >= b:
            break
        _, _, spec = stft(rng.standard_normal(b - a), fs=sample_rate_hz, nperseg=n_fft, noverlap=n_fft - hop)
        block = power[f0 : f0 + spec.shape[1]]
        m = block.shape[0]
        spec[:, :m] *= np.sqrt(block[:, band].T)  # unit white noise -> the analysed density, band by band
        spec[:, m:] = 0.0
        _, y = istft(spec, fs=sample_rate_hz, nperseg=n_fft, noverlap=n_fft - hop)
        y = np.asarray(y[: b - a])
        y = np.pad(y, (0, b - a - len(y)))
        if f0 > 0:
            k = min(len(y), len(tail))
            y[:k] = y[:k] * ramp[:k] + tail[:k] * ramp[::-1][:k]
        following = (f0 + NOISE_BLOCK) * hop
        keep = b - following if f0 + NOISE_BLOCK < last and following < n_out else 0
        out[a : b - keep] += y[: len(y) - keep]
        tail = y[len(y) - keep :]
    if len(tail):
        out[n_out - len(tail) :] += tail
