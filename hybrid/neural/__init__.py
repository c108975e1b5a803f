"""The neural half: timbre encoder, conditional WaveNet decoder with a harmonic-plus-noise synthesizer."""
