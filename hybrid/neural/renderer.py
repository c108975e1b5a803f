"""Render notes with a timbre: the shipped (or given) checkpoint's encoder and decoder."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hybrid.errors import HybridError
from hybrid.neural.calibration import TimbreCorrection
from hybrid.neural.conditioning import FRAME_HOP, SAMPLE_RATE_HZ, sequence_conditioning
from hybrid.neural.refine import STEPS as REFINE_STEPS
from hybrid.neural.refine import refine_offset
from hybrid.notes import NoteSequence

if TYPE_CHECKING:
    from hybrid.neural.models import TimbreEncoder, WaveNetDecoder
    from hybrid.transcription import Transcriber

EMBED_WINDOW_S = 20.0  # a long timbre song is embedded in 20 s windows, averaged by their energy
CALIBRATION_S = 20.0  # the loudest 20 s of the timbre song are transcribed and resynthesised for calibration
MIN_CALIBRATION_S = 0.5  # a shorter timbre song holds too little to measure a correction on
# The correction is trusted for notes within an octave of the timbre song's pitch range, and applied in
# proportion to the share of the notes (by duration) that lie there.
CALIBRATION_RANGE_MARGIN = 12.0
VOICES_PER_BATCH = 8
# The refinement is kept only as far as the notes being rendered still transcribe as themselves: checked on the
# CHECK_S window that holds most of their onsets, within CHECK_TOLERANCE of the onset F1 without the refinement.
# Tolerance 0 (not one note lost to the refinement) against 0.02: 12 held-out 5 s phrases of up to 4 voices
# 0.903 against 0.896, the same timbre identification (development runs, 2026-11-27).
CHECK_S = 8.0
CHECK_TOLERANCE = 0.0


@dataclass(frozen=True)
class Timbre:
    """What a renderer takes from a timbre song: the encoder's embedding and, when calibrated, what was fitted
    by resynthesising the song's own notes: the decoder's output offset (hybrid.neural.refine) and then the
    correction (hybrid.neural.calibration)."""

    embedding: npt.NDArray[np.float32]
    correction: TimbreCorrection | None = None
    calibration_notes: int = 0  # how many notes of the timbre song the correction was measured on
    pitch_range: tuple[float, float] | None = None  # lowest and highest of those notes (MIDI)
    offset: npt.NDArray[np.float32] | None = None  # the decoder output offset fitted by hybrid.neural.refine
    # the corrections measured with half of the offset and without it, for Renderer.keep_notes to fall back to
    half_correction: TimbreCorrection | None = None
    unrefined_correction: TimbreCorrection | None = None

    def with_offset_share(self, share: float) -> Timbre:
        """This timbre with all, half or none of its refinement offset (share 1, 0.5 or 0), each with the
        correction that was measured with that much of it."""
        if self.offset is None or share == 1.0:
            return self
        if share == 0.0:
            return replace(self, offset=None, correction=self.unrefined_correction)
        if share == 0.5:
            return replace(
                self, offset=(self.offset * 0.5).astype(np.float32), correction=self.half_correction
            )
        raise ValueError(f"offset share must be 1, 0.5 or 0, got {share}")

    def correction_strength(self, notes: NoteSequence) -> float:
        """How much of the correction to apply to these notes: the share of their duration that lies within
        CALIBRATION_RANGE_MARGIN semitones of the pitch range the correction was measured on."""
        if (self.correction is None and self.offset is None) or self.pitch_range is None or not notes.notes:
            return 0.0
        lo, hi = (
            self.pitch_range[0] - CALIBRATION_RANGE_MARGIN,
            self.pitch_range[1] + CALIBRATION_RANGE_MARGIN,
        )
        dur = np.array([n.offset_s - n.onset_s for n in notes.notes])
        inside = np.array([lo <= n.pitch_midi <= hi for n in notes.notes])
        return float((dur * inside).sum() / max(dur.sum(), 1e-9))


def check_window(notes: NoteSequence, seconds: float = CHECK_S) -> NoteSequence:
    """The notes whose onsets fall in the `seconds`-long stretch that holds the most onsets, moved to start at
    0.1 s (all of them, unmoved, when they span less)."""
    onsets = np.array(sorted(n.onset_s for n in notes.notes))
    if len(onsets) == 0 or onsets[-1] - onsets[0] < seconds:
        # as they are: moved, the notes would fall differently on the frames and transcribe a little differently
        return notes
    counts = np.searchsorted(onsets, onsets + seconds) - np.arange(len(onsets))
    t0 = float(onsets[int(np.argmax(counts))])
    shift = 0.1 - t0
    return NoteSequence(
        [
            replace(n, onset_s=n.onset_s + shift, offset_s=n.offset_s + shift)
            for n in notes.notes
            if t0 <= n.onset_s < t0 + seconds
        ]
    )


def loudest_excerpt(audio: npt.NDArray[np.float32], seconds: float) -> npt.NDArray[np.float32]:
    """The `seconds`-long stretch of 16 kHz audio with the most energy (in steps of 1 s); all of it if shorter."""
    n = int(seconds * SAMPLE_RATE_HZ)
    if len(audio) <= n:
        return audio
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    starts = np.arange(0, len(audio) - n + 1, SAMPLE_RATE_HZ)
    best = int(starts[np.argmax(energy[starts + n] - energy[starts])])
    return audio[best : best + n]


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HybridError("--device cuda: no CUDA GPU is available here")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise HybridError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


@dataclass
class Renderer:
    """A loaded checkpoint, ready to embed timbres and render notes."""

    encoder: TimbreEncoder
    decoder: WaveNetDecoder
    device: str
    provenance: dict

    @classmethod
    def load(cls, checkpoint: str | os.PathLike[str] | None = None, device: str = "auto") -> Renderer:
        from hybrid.checkpoint import load_checkpoint

        dev = pick_device(device)
        ck = load_checkpoint(checkpoint, dev)
        return cls(ck.encoder, ck.decoder, dev, ck.provenance)

    def embed(self, audio_16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Timbre embedding (unit vector) of mono 16 kHz audio of any length."""
        import torch

        win = int(EMBED_WINDOW_S * SAMPLE_RATE_HZ)
        starts = list(range(0, max(1, len(audio_16k) - win // 4), win)) or [0]
        embs, weights = [], []
        with torch.no_grad():
            for s in starts:
                seg = audio_16k[s : s + win]
                if len(seg) < 4096:
                    seg = np.pad(seg, (0, 4096 - len(seg)))
                x = torch.tensor(seg[None], dtype=torch.float32, device=self.device)
                embs.append(self.encoder(x)[0].cpu().numpy())
                weights.append(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-12)
        e = np.average(np.stack(embs), axis=0, weights=np.array(weights))
        return (e / (np.linalg.norm(e) + 1e-12)).astype(np.float32)

    def timbre(
        self,
        audio_16k: npt.NDArray[np.float32],
        calibrate: bool = True,
        transcriber: Transcriber | None = None,
        seed: int = 0,
        refine_steps: int = REFINE_STEPS,
    ) -> Timbre:
        """Embed a timbre song and, with `calibrate`, fit it to the song: transcribe (the loudest
        CALIBRATION_S of) the song, refine the decoder's output offset on those notes (`refine_steps` steps of
        hybrid.neural.refine, 0 for none), render them, and measure the correction against the song (with the
        whole offset, with half of it and without it, for keep_notes to choose from)."""
        emb = self.embed(audio_16k)
        if not calibrate or len(audio_16k) < MIN_CALIBRATION_S * SAMPLE_RATE_HZ:
            return Timbre(emb)
        from hybrid.transcription import Transcriber, transcribe_audio

        transcriber = transcriber or Transcriber()
        excerpt = loudest_excerpt(audio_16k, CALIBRATION_S)
        notes = transcribe_audio(excerpt, SAMPLE_RATE_HZ, transcriber=transcriber, with_tempo=False).notes
        if not notes.notes:
            return Timbre(emb)
        pitches = (min(n.pitch_midi for n in notes.notes), max(n.pitch_midi for n in notes.notes))
        offset = None
        if refine_steps > 0:
            fit = refine_offset(
                self.decoder, sequence_conditioning(notes), emb, excerpt, self.device, refine_steps, seed
            )
            if fit is not None:
                offset = fit.offset

        if offset is None:
            (resynth,) = self._mixes(notes, emb, [None], seed)
            return Timbre(emb, TimbreCorrection.fit(excerpt, resynth[: len(excerpt)]), len(notes), pitches)
        # one run of the network for the three resyntheses: with the whole offset, half of it, none
        full, half, plain = (
            TimbreCorrection.fit(excerpt, y[: len(excerpt)])
            for y in self._mixes(notes, emb, [offset, (offset * 0.5).astype(np.float32), None], seed)
        )
        return Timbre(emb, full, len(notes), pitches, offset, half, plain)

    def keep_notes(
        self,
        notes: NoteSequence,
        timbre: Timbre,
        transcriber: Transcriber | None = None,
        seed: int = 0,
    ) -> Timbre:
        """The timbre with its refinement offset, half of it, or none: the most of it with which these notes
        still transcribe as themselves (their busiest CHECK_S, loudness-normalised as hybrid writes it, onset
        F1 within CHECK_TOLERANCE of the rendering without the offset). A faithful timbre can hide notes - a
        mallet's strong upper partials read as extra notes three octaves up - and keeping A's notes comes
        first."""
        if timbre.offset is None or not notes.notes or timbre.correction_strength(notes) <= 0.0:
            return timbre
        from hybrid.audio import loudness_normalize
        from hybrid.metrics import note_scores
        from hybrid.transcription import Transcriber, transcribe_audio

        transcriber = transcriber or Transcriber()
        window = check_window(notes)
        shares = (0.0, 1.0, 0.5)
        timbres = [timbre.with_offset_share(s) for s in shares]
        # the three renderings of the window (as render() makes them) from one run of the network
        strength = timbre.correction_strength(window)
        mixes = self._mixes(window, timbre.embedding, [_scaled_offset(t, strength) for t in timbres], seed)

        def f1(i: int) -> float:
            # transcribed as hybrid writes it: basic-pitch's note picking depends on the level
            y = loudness_normalize(_corrected(mixes[i], timbres[i], strength))
            est = transcribe_audio(y, SAMPLE_RATE_HZ, transcriber=transcriber, with_tempo=False).notes
            return note_scores(window, est).onset_f1

        floor = f1(0) - CHECK_TOLERANCE
        for i in (1, 2):
            if f1(i) >= floor:
                return timbres[i]
        return timbres[0]

    def _mixes(
        self,
        notes: NoteSequence,
        embedding: npt.NDArray[np.float32],
        offsets: list[npt.NDArray[np.float32] | None],
        seed: int = 0,
        tail_s: float = 1.0,
    ) -> list[npt.NDArray[np.float32]]:
        """The decoder's mix of the notes' voices (uncorrected) once per output offset. The network runs once per
        batch of voices; each offset re-applies only the output layer and the synth, with its own noise
        generator seeded alike, so each mix is what rendering with that offset alone gives."""
        import torch

        cond = sequence_conditioning(notes, tail_s=tail_s)
        n_samples = cond.shape[-1] * FRAME_HOP
        outs = [np.zeros(n_samples, np.float32) for _ in offsets]
        if cond.shape[0] == 0:
            return outs
        gens = [torch.Generator(device="cpu").manual_seed(seed) for _ in offsets]
        emb = torch.tensor(embedding[None], device=self.device)
        offs = [None if o is None else torch.tensor(o, device=self.device) for o in offsets]
        with torch.no_grad():
            for i in range(0, cond.shape[0], VOICES_PER_BATCH):
                c = torch.tensor(cond[i : i + VOICES_PER_BATCH], device=self.device)
                h = self.decoder.features(c, emb.expand(c.shape[0], -1))
                for out, off, gen in zip(outs, offs, gens, strict=True):
                    ctl = self.decoder.controls_from_features(h, c, off)
                    y = self.decoder.synthesize(ctl, c, n_samples, gen if self.device == "cpu" else None)
                    out += y.sum(0).cpu().numpy()
        return outs

    def render(
        self,
        notes: NoteSequence,
        timbre: Timbre | npt.NDArray[np.float32],
        seed: int = 0,
        tail_s: float = 1.0,
    ) -> npt.NDArray[np.float32]:
        """Mono 16 kHz audio of the notes: each voice rendered by the decoder (in batches), summed, then
        corrected when the timbre carries a calibration. The output offset and the correction are applied as
        far as Timbre.correction_strength trusts them for these notes. A bare embedding renders as it is."""
        if not isinstance(timbre, Timbre):
            timbre = Timbre(np.asarray(timbre, np.float32))
        strength = timbre.correction_strength(notes)
        (out,) = self._mixes(notes, timbre.embedding, [_scaled_offset(timbre, strength)], seed, tail_s)
        return _corrected(out, timbre, strength)


def _scaled_offset(timbre: Timbre, strength: float) -> npt.NDArray[np.float32] | None:
    """The output offset a rendering uses: the timbre's, times the strength its notes give it."""
    return timbre.offset * strength if timbre.offset is not None and strength > 0.0 else None


def _corrected(mix: npt.NDArray[np.float32], timbre: Timbre, strength: float) -> npt.NDArray[np.float32]:
    """The decoder's mix with the timbre's correction applied at that strength (none without one)."""
    if timbre.correction is None or strength <= 0.0:
        return mix
    return timbre.correction.scaled(strength).apply(mix)
