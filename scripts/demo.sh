#!/usr/bin/env bash
# The demo on the shipped example songs: transcribe, stretch, score.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out}
mkdir -p "$OUT"
H=.venv/bin/hybrid
$H transcribe examples/trumpet.ogg -o "$OUT/trumpet.mid" --force
$H stretch examples/trumpet.ogg -o "$OUT/trumpet_x0.8.wav" --rate 0.8 --force
$H stretch "$OUT/trumpet.mid" -o "$OUT/trumpet_x0.8.mid" --rate 0.8 --force
echo "score of the stretched audio against the stretched notes:"
$H score --reference "$OUT/trumpet_x0.8.mid" --estimate "$OUT/trumpet_x0.8.wav"
