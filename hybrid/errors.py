"""The one exception type users see: its message is printed as a single line by the CLI; and the guard that
keeps C libraries' own messages from adding lines around it."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class HybridError(Exception):
    """A problem with the user's input or environment, explained in one line (no traceback)."""


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """Keep what C libraries (mpg123, FluidSynth, GLib) print on file descriptor 2 off the terminal: the
    caller gets the lines in the yielded list afterwards, to use in its own one-line message. With
    HYBRID_DEBUG=1 they go through as usual."""
    lines: list[str] = []
    if os.environ.get("HYBRID_DEBUG"):
        yield lines
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (an embedding host): nothing to keep off
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(line for line in sink.read().decode(errors="replace").splitlines() if line.strip())
