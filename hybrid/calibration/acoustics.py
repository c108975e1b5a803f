"""B's acoustics: what makes a recording sound like itself beyond the instrument.

Estimated blindly from the timbre song (`estimate_acoustics`):

- **decay time** (RT60) in four bands, from the free decays of the song's band energies: where a band keeps
  falling by 10 dB or more, the slope of the later half of the fall (a note that stops falls in a cliff, then
  no faster than the room lets it; Ratnam et al. 2003, Löllmann et al. 2010), the median over the falls.
  Bands holding one or two partials read short (their tails beat): measured 0.3-0.5 s for a 1.2 s room below
  2 kHz, within 25% above it (tests/test_acoustics.py);
- **noise floor**: the level (dB under the song's audible level) and the spectrum of its quietest frames;
- **stereo width**: the side channel's level against the mid's (0 for a mono song).

How much of the room and the floor to add is then fitted, not guessed (`fit_room`): B's own transcribed notes
are rendered as hybrid would play them (from the note library, and by the decoder), and the reverberant level
(none, or -24 to -6 dB) and the floor (off or on) that bring that rendering's MFCC statistics nearest to B's
are kept. The note library's notes already carry part of B's room (their releases), so it usually needs less
than the decoder's dry rendering, and a dry B gets none.

`apply_acoustics` puts a dry rendering in that room: a convolution (scipy) with an impulse response of noise
decaying at each band's RT60, the floor's noise under it, and for a stereo B two independent reverberant
channels mixed to B's width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt

# band edges (Hz) of the decay times; the last band runs to the Nyquist frequency
REVERB_BANDS_HZ = (0.0, 500.0, 2000.0, 8000.0)
RT60_RANGE_S = (0.05, 3.0)
DEFAULT_RT60_S = 0.3  # for a band where no decay was found
FRAME_S = 0.005  # envelope hop
MIN_DECAY_DB = 10.0  # a decay counts when the band falls this far without rising
MIN_DECAY_S = 0.03
NOISE_BANDS = 24
ENVELOPE_BLOCK_FRAMES = 4_000  # frames of B's spectrogram made at once (20 s)
FLOOR_PERCENTILE = 5.0  # the noise floor: the quietest 5% of frames
MIN_FLOOR_S = 0.1  # a floor needs this much of the song at it
MAX_FLOOR_DB = -20.0  # quietest frames louder than this (under the audible level) are music, not a floor
WET_LEVELS_DB = (-24.0, -18.0, -12.0, -6.0)  # the reverberant levels fit_room tries (besides none)


@dataclass(frozen=True)
class Room:
    """What `apply_acoustics` adds: the reverberant tail at wet_db against the direct sound (None: no reverb),
    and the noise floor or not."""

    wet_db: float | None = None
    floor: bool = False

    @property
    def dry(self) -> bool:
        return self.wet_db is None and not self.floor

    def describe(self) -> str:
        parts = [f"reverb at {self.wet_db:g} dB" if self.wet_db is not None else "no reverb"]
        parts.append("B's noise floor" if self.floor else "no noise floor")
        return ", ".join(parts)


@dataclass(frozen=True)
class Acoustics:
    """Estimates of B's acoustics (see the module's docstring), and the rooms fitted for each player."""

    rt60_s: tuple[float, ...]  # per REVERB_BANDS_HZ band; 0 where no decay was found
    floor_db: float  # the noise floor under the audible level; -inf: none found
    floor_spectrum_db: tuple[float, ...]  # NOISE_BANDS log-spaced bands, dB relative to their mean
    width: float  # side / mid RMS; 0 for mono
    channels: int
    library_room: Room = Room()  # fitted for the note library
    decoder_room: Room = Room()  # fitted for the decoder

    @property
    def has_floor(self) -> bool:
        return bool(np.isfinite(self.floor_db))

    def rt60_or_default(self) -> tuple[float, ...]:
        return tuple(t if t > 0 else DEFAULT_RT60_S for t in self.rt60_s)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self, library: bool | None = None) -> dict[str, str]:
        """The estimates as a report lists them, and the room applied (`library`: which player played; None:
        both rooms)."""
        bands = [f"{int(lo)}-{int(hi)}" for lo, hi in pairwise(REVERB_BANDS_HZ)]
        bands.append(f"{int(REVERB_BANDS_HZ[-1])}+")
        rt = ", ".join(
            f"{b} Hz {t:.2f} s" if t > 0 else f"{b} Hz -" for b, t in zip(bands, self.rt60_s, strict=True)
        )
        out = {
            "decay time (RT60) per band": rt if max(self.rt60_s) > 0 else "no free decay found",
            "noise floor": f"{self.floor_db:.1f} dB under the audible level"
            if self.has_floor
            else "none found",
            "stereo width (side / mid)": f"{self.width:.2f}" if self.channels > 1 else "mono",
        }
        if library is None or library:
            out["room added to the note library"] = self.library_room.describe()
        if library is None or not library:
            out["room added to the decoder"] = self.decoder_room.describe()
        return out


def _frame_sizes(sample_rate_hz: int) -> tuple[int, int]:
    """(hop, FFT length) of the envelopes: FRAME_S hops, ~23 ms windows."""
    return max(1, int(round(FRAME_S * sample_rate_hz))), 1 << int(np.ceil(np.log2(0.023 * sample_rate_hz)))


def _band_envelopes(
    y: npt.NDArray[np.float32], sr: int, edges: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    """What estimate_acoustics reads of the power spectrogram (FRAME_S hop, ~23 ms windows), made
    ENVELOPE_BLOCK_FRAMES frames at a time so that memory does not grow with the song: per frame, the total
    power, the power in each of the REVERB_BANDS_HZ, and the mean power per bin in each band between `edges`
    (NaN where a band holds no bin); with the hop. The frames are the whole song's, block or not."""
    from scipy.signal import stft

    hop, n_fft = _frame_sizes(sr)
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    reverb = [(f >= lo) & (f < hi) for lo, hi in pairwise((*REVERB_BANDS_HZ, sr / 2))]
    noise = [(f >= lo) & (f < hi) for lo, hi in pairwise(edges)]
    n_frames = max(0, (len(y) - n_fft) // hop + 1)
    total = np.zeros(n_frames)
    in_reverb = np.zeros((n_frames, len(reverb)))
    in_noise = np.full((n_frames, len(noise)), np.nan)
    for i in range(0, n_frames, ENVELOPE_BLOCK_FRAMES):
        m = min(ENVELOPE_BLOCK_FRAMES, n_frames - i)
        seg = y[i * hop : (i + m - 1) * hop + n_fft]
        _, _, z = stft(seg, fs=sr, nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=False)
        power = (np.abs(z) ** 2).T
        total[i : i + m] = power.sum(axis=1)
        for k, sel in enumerate(reverb):
            in_reverb[i : i + m, k] = power[:, sel].sum(axis=1)
        for k, sel in enumerate(noise):
            if np.any(sel):
                in_noise[i : i + m, k] = power[:, sel].mean(axis=1)
    return total, in_reverb, in_noise, hop


def _decays(db: npt.NDArray[np.float64], hop_s: float, floor: float) -> list[tuple[float, float, float]]:
    """(slope in dB/s, drop in dB, start level in dB) of each stretch where `db` keeps falling (its slope over
    MIN_DECAY_S stays steeper than a decay of RT60_RANGE_S's longest) by at least MIN_DECAY_DB, above
    floor + 5 dB."""
    w = max(2, int(round(MIN_DECAY_S / hop_s)))
    if len(db) <= w:
        return []
    local = (db[w:] - db[:-w]) / (w * hop_s)  # dB/s from frame i to i + w
    falling = np.concatenate([local < -60.0 / RT60_RANGE_S[1], np.zeros(w, bool)]) & (db > floor + 5.0)
    out = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], falling.astype(np.int8), [0]])))
    for i, j in zip(edges[::2], edges[1::2], strict=True):
        j = min(j + w, len(db))  # the last falling window ends w frames later
        seg = db[i:j]
        seg = seg[: int(np.argmin(seg)) + 1]
        drop = float(seg[0] - seg[-1])
        if drop >= MIN_DECAY_DB and len(seg) >= 6:
            # the slope of the later half: a note's direct sound stops in a cliff, the room's tail follows
            late = seg[len(seg) // 2 :]
            t = np.arange(len(late)) * hop_s
            out.append((float(np.polyfit(t, late, 1)[0]), drop, float(seg[0])))
    return out


def estimate_acoustics(
    audio: npt.NDArray[np.float32], sample_rate_hz: int, mono: npt.NDArray[np.float32] | None = None
) -> Acoustics:
    """B's acoustics from its audio: (n,) mono or (n, channels) (with `mono`, the channels' mean when the
    caller has it). Memory does not grow with the song beyond a few values per 5 ms frame."""
    y = np.asarray(audio, np.float32)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    channels = 1 if y.ndim == 1 else y.shape[1]
    width = 0.0
    if channels > 1:
        mid2 = side2 = 0.0
        for i in range(0, len(y), BLOCK):
            b = y[i : i + BLOCK, :2].astype(np.float64)
            mid2 += float(np.sum(((b[:, 0] + b[:, 1]) / 2) ** 2))
            side2 += float(np.sum(((b[:, 0] - b[:, 1]) / 2) ** 2))
        width = float(np.sqrt(side2 / len(y)) / max(np.sqrt(mid2 / len(y)), 1e-12))
        y = mono if mono is not None else y.mean(axis=1)
    edges = np.geomspace(50.0, sample_rate_hz / 2, NOISE_BANDS + 1)
    power, in_reverb, in_noise, hop = _band_envelopes(y, sample_rate_hz, edges)
    hop_s = hop / sample_rate_hz
    total = 10 * np.log10(power + 1e-20)
    audible = float(np.percentile(total, 90))
    # noise floor: the quietest frames, when there are enough of them
    n_floor = max(int(len(total) * FLOOR_PERCENTILE / 100), 1)
    quiet = np.argsort(total)[:n_floor]
    floor_db = float(np.median(total[quiet]) - audible)
    bands = np.nan_to_num(in_noise[quiet].mean(axis=0), nan=0.0)
    bands_db = 10 * np.log10(bands + 1e-20)
    floor_spectrum = tuple(float(x) for x in bands_db - bands_db.mean())
    if n_floor * hop_s < MIN_FLOOR_S or floor_db > MAX_FLOOR_DB or power.sum() == 0:
        floor_db = float("-inf")  # too short a song, or its quietest frames are the music
    # decay times per band: the median slope of the falls that reach MIN_DECAY_DB (the later half of each)
    rt60 = []
    for k, lo in enumerate(REVERB_BANDS_HZ):
        if lo >= sample_rate_hz / 2:
            rt60.append(0.0)
            continue
        db = 10 * np.log10(in_reverb[:, k] + 1e-20)
        db = np.convolve(db, np.ones(3) / 3, mode="same")  # 15 ms smoothing
        floor = float(np.percentile(db, FLOOR_PERCENTILE))
        found = [d for d in _decays(db, hop_s, floor) if d[2] > db.max() - 40.0]
        if not found:
            rt60.append(0.0)
            continue
        slopes = np.array([d[0] for d in found])
        slope = float(np.median(slopes))
        rt60.append(float(np.clip(-60.0 / min(slope, -1e-3), *RT60_RANGE_S)))
    return Acoustics(tuple(rt60), floor_db, floor_spectrum, width, channels)


def impulse_response(ac: Acoustics, sample_rate_hz: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Unit-energy reverberant tail: noise decaying at each band's RT60 (DEFAULT_RT60_S where none was found)."""
    rt = ac.rt60_or_default()
    n = int(min(1.2 * max(rt), RT60_RANGE_S[1]) * sample_rate_hz)
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    ir = np.zeros(n)
    for k, (lo, hi) in enumerate(pairwise((*REVERB_BANDS_HZ, sample_rate_hz))):
        band = np.fft.irfft(np.where((f >= lo) & (f < hi), spec, 0), n)
        ir += band * np.exp(-6.908 * t / rt[k])
    fade = min(int(0.002 * sample_rate_hz), n)
    ir[:fade] *= np.linspace(0.0, 1.0, fade)  # no click at the start of the tail
    return (ir / np.sqrt(np.sum(ir**2) + 1e-20)).astype(np.float32)


BLOCK = 1 << 20  # samples per block: a long song's room and floor are added block by block


def _floor_fir(ac: Acoustics, sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """An FIR filter with the floor's spectrum (scipy firwin2)."""
    from scipy.signal import firwin2

    edges = np.geomspace(50.0, sample_rate_hz / 2, NOISE_BANDS + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    freq = np.concatenate([[0.0], centres, [sample_rate_hz / 2]])
    gain_db = np.concatenate([[ac.floor_spectrum_db[0]], ac.floor_spectrum_db, [ac.floor_spectrum_db[-1]]])
    return np.asarray(firwin2(1025, freq, 10 ** (gain_db / 20), fs=sample_rate_hz))


def _add_floor(
    out: npt.NDArray[np.float32], ac: Acoustics, sample_rate_hz: int, rms: float, seed: int
) -> None:
    """Add noise with the floor's spectrum at `rms` into out (n,), block by block: white noise filtered with
    the previous block's last samples carried over, so it is one stream, as if filtered whole."""
    from scipy.signal import oaconvolve

    fir = _floor_fir(ac, sample_rate_hz)
    scale = rms / float(np.sqrt(np.sum(fir**2)))  # filtered unit white noise has RMS sqrt(sum(fir^2))
    rng = np.random.default_rng(seed)
    history = rng.standard_normal(len(fir) - 1)
    for start in range(0, len(out), BLOCK):
        stream = np.concatenate([history, rng.standard_normal(min(BLOCK, len(out) - start))])
        seg = oaconvolve(stream, fir, mode="valid")
        out[start : start + len(seg)] += (scale * seg).astype(np.float32)
        history = stream[len(stream) - len(history) :]


def _add_reverb(
    out: npt.NDArray[np.float32], y: npt.NDArray[np.float32], ir: npt.NDArray[np.float32], gain: float
) -> None:
    """Add gain x (y convolved with ir) into out (n,), block by block (overlap-add: each block's tail runs on
    into the next blocks), cut at len(out)."""
    from scipy.signal import oaconvolve

    for start in range(0, len(y), BLOCK):
        seg = oaconvolve(y[start : start + BLOCK], ir)
        end = min(len(out), start + len(seg))
        out[start:end] += (gain * seg[: end - start]).astype(np.float32)


def apply_acoustics(
    y: npt.NDArray[np.float32],
    sample_rate_hz: int,
    ac: Acoustics,
    room: Room,
    seed: int = 0,
    inplace: bool = False,
) -> npt.NDArray[np.float32]:
    """The dry rendering (n,) in `room` (one of ac's): (n,) for a mono B, (n, 2) for a stereo one. Memory: the
    output and a few blocks, whatever the song's length; with `inplace`, a mono B's room is added into y
    itself (no copy of a long song)."""
    from hybrid.audio import rms

    y = np.asarray(y, np.float32)
    chans = 2 if ac.channels > 1 else 1
    if room.dry and chans == 1:
        return y
    out = [y if inplace and chans == 1 and room.wet_db is None else y.copy() for _ in range(chans)]
    if room.wet_db is not None:
        for c in range(chans):
            _add_reverb(
                out[c], y, impulse_response(ac, sample_rate_hz, seed + 1 + c), 10 ** (room.wet_db / 20)
            )
    if chans == 2:
        mid = (out[0] + out[1]) / 2
        side = (out[0] - out[1]) / 2
        rms_mid, rms_side = rms(mid), rms(side)
        side *= np.float32(ac.width * rms_mid / rms_side if rms_side > 0 else 0.0)
        out = [mid + side, mid - side]
        del mid, side
    if room.floor and ac.has_floor:
        audible = _audible_db(out[0] if chans == 1 else (out[0] + out[1]) / 2, sample_rate_hz)
        for c in range(chans):
            _add_floor(out[c], ac, sample_rate_hz, 10 ** ((audible + ac.floor_db) / 20), seed + 11 + c)
    return out[0] if chans == 1 else np.stack(out, axis=1)


def _frame_powers(y: npt.NDArray[np.float32], sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """Each frame's power (summed over the bins of _band_envelopes' STFT), made block by block."""
    total = _band_envelopes(y, sample_rate_hz, np.zeros(0))[0]
    return total if len(total) else np.zeros(1)


def _audible_db(y: npt.NDArray[np.float32], sample_rate_hz: int) -> float:
    """The audible level as estimate_acoustics measures it (90th percentile of the frames' power), as the RMS
    (dB) of a steady noise whose frames have that power."""
    db = 10 * np.log10(_frame_powers(y, sample_rate_hz) + 1e-20)
    return float(np.percentile(db, 90)) - _unit_noise_db(sample_rate_hz)


@lru_cache(maxsize=4)
def _unit_noise_db(sample_rate_hz: int) -> float:
    """The median frame power (dB) of white noise of unit RMS."""
    noise = np.random.default_rng(0).standard_normal(sample_rate_hz).astype(np.float32)
    return float(np.median(10 * np.log10(_frame_powers(noise, sample_rate_hz))))


def fit_room(
    render_own: Callable[[], npt.NDArray[np.float32]],
    b: npt.NDArray[np.float32],
    sample_rate_hz: int,
    ac: Acoustics,
    seed: int = 0,
) -> Room:
    """The room (reverberant level among none and WET_LEVELS_DB, floor off or on) that brings the rendering of
    B's own notes (`render_own()`, mono at sample_rate_hz, as long as b) nearest to B (mono, same rate) in the
    timbre score's MFCC statistics; no room when nothing beats the dry rendering."""
    from hybrid.audio import loudness_normalize
    from hybrid.metrics import mfcc_stats

    mono = replace(ac, channels=1)  # the fit compares mono signals
    target = mfcc_stats(b, sample_rate_hz)
    own = render_own()
    best, best_d = Room(), float(np.linalg.norm(mfcc_stats(loudness_normalize(own), sample_rate_hz) - target))
    for wet in (None, *WET_LEVELS_DB):
        for floor in (False, True) if ac.has_floor else (False,):
            room = Room(wet, floor)
            if room.dry:
                continue
            y = loudness_normalize(apply_acoustics(own, sample_rate_hz, mono, room, seed))
            d = float(np.linalg.norm(mfcc_stats(y, sample_rate_hz) - target))
            if d < best_d:
                best, best_d = room, d
    return best
