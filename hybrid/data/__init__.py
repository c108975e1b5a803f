"""NSynth-format data: the real-NSynth reader and the SoundFont-rendered builder."""
