"""Calibration: fitting the rendering to one timbre song, and keeping A's notes while doing so.

Glossary (the same words in the code, the CLI's help, the report and the docs):

- **timbre song**: song B, the recording whose sound is wanted.
- **embedding**: the encoder's unit vector for the timbre song; it picks the decoder's instrument.
- **calibration**: everything fitted on the timbre song beyond the embedding (on by default; `--no-calibrate`
  turns it off). The timbre song is transcribed, and its own notes are rendered and compared with it. Two
  steps, in this order:
  1. the **offset** (`offset.py`): one value per raw output of the decoder (level, 60 harmonic weights,
     65 noise bands), fitted by gradient descent so the rendering of the song's notes sounds like the song;
  2. the **correction** (`correction.py`): an equaliser on the cepstrum of the mel spectrum (mean shift and
     spread scale per coefficient), measured between the song and its offset rendering.
- **strength**: how much of the offset and correction a rendering applies: the share of its notes' duration
  within an octave of the pitch range they were measured on.
- **note check** (`note_check.py`): at render time, the largest share of the offset (all, half or none) with
  which the notes to be rendered still transcribe as themselves. Keeping A's notes comes first.
- **fitted timbre** (`FittedTimbre`): the embedding and all of the above, what a rendering takes.
"""

from hybrid.calibration.fit import fit_timbre
from hybrid.calibration.fitted import CalibrationSummary, FittedTimbre, render_fitted
from hybrid.calibration.note_check import note_check

__all__ = ["CalibrationSummary", "FittedTimbre", "fit_timbre", "note_check", "render_fitted"]
