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
- **note library** (`note_library.py`): the timbre song's clean notes (no other note sounding with them),
  analysed frame by frame from their onsets: the partials' envelope over frequency, the noise between them
  and the pitch movement. A note is then played from B's recorded note nearest in pitch, at its own pitch and
  at the output rate, full band. Where B has no clean note (a mix, chords), the decoder plays.
- **strength**: how much of the offset and correction a rendering applies: the share of its notes' duration
  within an octave of the pitch range they were measured on.
- **note check** (`note_check.py`): at render time, the largest share of the offset (all, half or none) with
  which the notes to be rendered still transcribe as themselves, and whether the note library keeps them as
  well as the decoder does. Keeping A's notes comes first.
- **fitted timbre** (`FittedTimbre`): the embedding, the offset, the corrections and the note library: what a
  rendering takes.
"""

from hybrid.calibration.fit import fit_timbre
from hybrid.calibration.fitted import CalibrationSummary, FittedTimbre, render_fitted, render_timbre
from hybrid.calibration.note_check import note_check
from hybrid.calibration.note_library import NoteLibrary

__all__ = [
    "CalibrationSummary",
    "FittedTimbre",
    "NoteLibrary",
    "fit_timbre",
    "note_check",
    "render_fitted",
    "render_timbre",
]
