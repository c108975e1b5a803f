#!/usr/bin/env bash
# The demo on the shipped model and the example songs in examples/: two transfers (with a report), a
# tempo-stretched transfer, a band's transfer with its drums kept (and stems), and an audio stretch scored
# against its notes. Writes into $1 (default out/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out}
mkdir -p "$OUT"
H=.venv/bin/hybrid
echo "== the trumpet phrase played with the electric guitar's timbre (report: $OUT/trumpet_as_guitar.html)"
$H transfer --rhythm examples/trumpet.ogg --timbre examples/guitar.wav -o "$OUT/trumpet_as_guitar.wav" \
  --midi-out "$OUT/trumpet.mid" --report "$OUT/trumpet_as_guitar.html" --seed 0 --force
echo "== the guitar figure played with the trumpet's timbre, 20 % slower"
$H transfer --rhythm examples/guitar.wav --timbre examples/trumpet.ogg -o "$OUT/guitar_as_trumpet_slow.wav" \
  --rate 0.8 --seed 0 --force
echo "== the Vibe Ace combo played with the trumpet's sound, its drums kept (stems in $OUT/vibe_stems/)"
$H transfer --rhythm examples/vibe_ace.ogg --timbre examples/trumpet.ogg -o "$OUT/vibe_ace_as_trumpet.wav" \
  --drums keep --stems "$OUT/vibe_stems" --seed 0 --force
echo "== Rubber Band stretch of the trumpet to 0.8x, scored against its stretched notes"
$H stretch examples/trumpet.ogg -o "$OUT/trumpet_x0.8.wav" --rate 0.8 --force
$H stretch "$OUT/trumpet.mid" -o "$OUT/trumpet_x0.8.mid" --rate 0.8 --force
$H score --reference "$OUT/trumpet_x0.8.mid" --estimate "$OUT/trumpet_x0.8.wav"
echo "outputs are in $OUT/"
