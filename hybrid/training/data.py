"""Training data: notes grouped by instrument, phrases, timbre clips, augmentation and decoder items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hybrid.constants import FRAME_RATE_HZ, NSYNTH_HOLD_S, SAMPLE_RATE_HZ
from hybrid.data.nsynth import Example, NSynthReader
from hybrid.data.phrases import assemble_phrase, random_phrase
from hybrid.errors import HybridError
from hybrid.neural.conditioning import voice_conditioning
from hybrid.notes import Note, NoteSequence

if TYPE_CHECKING:
    from hybrid.training.config import TrainConfig

CLIP_S = 1.5  # the length of a clip an encoder embeds in training and validation


class InstrumentData:
    """Notes grouped by instrument, audio read from disk on demand, and phrases of each instrument."""

    def __init__(
        self, root: Path, split: str, rng: np.random.Generator, sample_rate_hz: int = SAMPLE_RATE_HZ
    ) -> None:
        from hybrid.data.soundfont import default_soundfonts

        # the decoder's targets are read and rendered at this rate (TrainConfig checks it: a whole number of
        # samples, `hop`, per control frame); what an encoder sees is taken to its 16 kHz
        self.sample_rate_hz = sample_rate_hz
        self.hop = int(round(sample_rate_hz / FRAME_RATE_HZ))

        reader = NSynthReader(root, (split,))
        if len(reader) == 0:
            raise HybridError(f"{root}: the {split} split has no notes")
        self.by_instrument: dict[str, list[Example]] = {}
        for ex in reader:
            self.by_instrument.setdefault(ex.instrument_str, []).append(ex)
        self.instruments = sorted(self.by_instrument)
        self.data_soundfonts = sorted({str(e.record["soundfont"]) for e in reader if "soundfont" in e.record})
        self.rng = rng
        # SoundFonts named by the records (built sets): found via build_info.json or the usual places.
        self.soundfonts: dict[str, str] = {p.name: str(p) for p in default_soundfonts()}
        info = root / "build_info.json"
        if info.exists():
            for p in json.loads(info.read_text())["config"]["soundfonts"]:
                if Path(p).exists():
                    self.soundfonts[Path(p).name] = p
        self._renderers: dict[str, Any] = {}

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()

    def note(self, inst: str) -> tuple[npt.NDArray[np.float32], Example]:
        ex = self.by_instrument[inst][int(self.rng.integers(len(self.by_instrument[inst])))]
        return ex.load(self.sample_rate_hz), ex

    def phrase(self, inst: str, kind: str, duration_s: float) -> tuple[npt.NDArray[np.float32], NoteSequence]:
        """A random phrase of this instrument: rendered with its SoundFont preset when known, else assembled."""
        exs = self.by_instrument[inst]
        pitches = [e.pitch for e in exs]
        lo, hi = min(pitches), max(pitches)
        mid = (lo + hi) // 2
        rng_lo, rng_hi = max(lo, mid - 14), min(hi, mid + 14)
        seq = random_phrase(self.rng, kind, duration_s, (rng_lo, max(rng_lo, rng_hi)))
        rec = exs[0].record
        sf_name = rec.get("soundfont")
        if isinstance(sf_name, str) and sf_name in self.soundfonts:
            from hybrid.data.soundfont import SoundFontRenderer

            if sf_name not in self._renderers:
                self._renderers[sf_name] = SoundFontRenderer(
                    self.soundfonts[sf_name], self.sample_rate_hz, gain=1.0
                )
            y = self._renderers[sf_name].sequence(seq, int(rec.get("bank", 0)), int(rec["program"]))  # type: ignore[call-overload]
        else:
            picks = [exs[int(i)] for i in self.rng.integers(len(exs), size=min(len(exs), 12))]
            y = assemble_phrase(
                seq, picks, [e.load(self.sample_rate_hz) for e in picks], sample_rate_hz=self.sample_rate_hz
            )
        return y, seq


def crop(y: npt.NDArray[np.float32], start: int, n: int) -> npt.NDArray[np.float32]:
    """y[start:start+n], zero-padded on either side."""
    out = np.zeros(n, np.float32)
    a, b = max(0, start), min(len(y), start + n)
    if b > a:
        out[a - start : b - start] = y[a:b]
    return out


def augment(y: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Gain, light reverb and background noise: what a timbre embedding must not care about."""
    from scipy.signal import fftconvolve

    if rng.random() < 0.3:
        rt = rng.uniform(0.2, 0.8)
        t = np.arange(int(rt * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
        ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt)
        wet = fftconvolve(y, ir / np.sqrt(np.sum(ir**2)))[: len(y)]
        y = y + rng.uniform(0.1, 0.3) * wet
    if rng.random() < 0.3:
        rms = np.sqrt(np.mean(y**2)) + 1e-9
        y = y + rng.standard_normal(len(y)) * rms * 10 ** (-rng.uniform(20, 40) / 20)
    return (y * 10 ** (rng.uniform(-20, 0) / 20)).astype(np.float32)


EQ_BASES = 4


def random_eq(rng: np.random.Generator, depth_db: float) -> npt.NDArray[np.float64]:
    """Coefficients of a random smooth EQ: cosines over the mel scale, together within about +-depth_db."""
    return rng.uniform(-1.0, 1.0, EQ_BASES) * depth_db / 2.0


def apply_eq(y: npt.NDArray[np.float32], coeffs: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Filter 16 kHz audio by the EQ (zero phase, in the frequency domain)."""
    spec = np.fft.rfft(y.astype(np.float64))
    f = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE_HZ)
    m = np.log1p(f / 700.0) / np.log1p(8000.0 / 700.0)
    gain_db = sum(c * np.cos(np.pi * (k + 1) * m) for k, c in enumerate(coeffs))
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(y)).astype(np.float32)


def timbre_clip(data: InstrumentData, inst: str, n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A clip of `n` samples at 16 kHz that an encoder sees: a note, a melody or chords of the instrument."""
    m = n * data.sample_rate_hz // SAMPLE_RATE_HZ  # at the data's rate
    r = rng.random()
    if r < 0.5:
        y, _ = data.note(inst)
        start = int(rng.uniform(0, max(1, len(y) - m * 0.8)))
    else:
        y, _ = data.phrase(inst, "melody" if r < 0.75 else "chords", n / SAMPLE_RATE_HZ + 0.5)
        start = int(rng.uniform(0, max(1, len(y) - m)))
    clip = crop(y, start, m)
    if data.sample_rate_hz == SAMPLE_RATE_HZ:
        return clip
    from hybrid.audio import resample

    return crop(resample(clip, data.sample_rate_hz, SAMPLE_RATE_HZ), 0, n)


def decoder_item(
    data: InstrumentData, inst: str, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(audio crop at the data's rate, conditioning) for one decoder training item."""
    n = int(cfg.crop_s * data.sample_rate_hz)
    frames = n // data.hop
    if rng.random() < cfg.phrase_fraction:
        y, seq = data.phrase(inst, "melody", cfg.crop_s + 1.5)
        start_s = float(rng.uniform(0, max(0.0, len(y) / data.sample_rate_hz - cfg.crop_s)))
        notes = list(seq.notes)
    else:
        y, ex = data.note(inst)
        r = rng.random()
        start_s = (
            rng.uniform(-0.1, 0.05) if r < 0.4 else rng.uniform(2.4, 2.9) if r < 0.8 else rng.uniform(0, 3.0)
        )
        notes = [Note(0.0, NSYNTH_HOLD_S, float(ex.pitch), ex.velocity)]
    start_frame = int(round(start_s * FRAME_RATE_HZ))
    shifted = [
        Note(
            m.onset_s - start_frame / FRAME_RATE_HZ,
            m.offset_s - start_frame / FRAME_RATE_HZ,
            m.pitch_midi,
            m.velocity,
        )
        for m in notes
    ]
    # Conditioning is computed on a longer window, so notes that began before the crop keep their history.
    pad = int(4 * FRAME_RATE_HZ)
    cond = voice_conditioning(
        [
            Note(m.onset_s + pad / FRAME_RATE_HZ, m.offset_s + pad / FRAME_RATE_HZ, m.pitch_midi, m.velocity)
            for m in shifted
        ],
        pad + frames,
    )[:, pad:]
    audio = crop(y, start_frame * data.hop, n)
    return audio, cond
