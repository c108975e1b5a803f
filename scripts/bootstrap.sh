#!/usr/bin/env bash
# Set up everything hybrid needs on a fresh Debian/Ubuntu machine with Python 3.11+:
# uv (from PyPI when missing), the system programs (Rubber Band, FluidSynth, a GM SoundFont), then the
# locked Python environment in .venv. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found; install Python 3.11 or newer" >&2; exit 1
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: hybrid needs Python 3.11 or newer ($("$PY" --version))" >&2; exit 1; }

# System packages: program or file that shows each is present -> Debian package.
missing=()
command -v rubberband >/dev/null 2>&1 || missing+=(rubberband-cli)
ldconfig -p 2>/dev/null | grep -q libfluidsynth || missing+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing+=(fluid-soundfont-gm)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the report test opens the page headless
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)  # the web page's browser tests (Selenium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: hybrid needs these system packages; run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif "$PY" -m uv --version >/dev/null 2>&1; then
  UV=("$PY" -m uv)
else
  echo "installing uv from PyPI"
  "$PY" -m pip install --quiet --user uv 2>/dev/null || "$PY" -m pip install --quiet uv
  UV=("$PY" -m uv)
fi
"${UV[@]}" sync --locked --quiet --compile-bytecode  # .pyc at install: new processes start seconds faster
