"""Where every command's files go: checked before any slow work, written under temporary names, and moved into
place together (all of a command's outputs or none), never over an input and, without force, over nothing.

- `check_output_path` refuses, in one line naming the file: an output that is an input (same resolved path, a
  hard link or a symlink to it), two outputs of one command that are the same file, a directory, a device or
  pipe, an existing file without force, a missing or unwritable folder, a name longer than the file system takes.
- `Outputs` gathers a command's outputs; `with outs.writing() as tmp:` yields `tmp(path)`, the temporary name to
  write each output to. When the block ends without error every output is moved into place: a hard link, which
  never replaces a file, so one that appeared meanwhile is refused; with force the old file is moved aside first
  and put back if anything fails. On any error (or Ctrl-C) nothing new is left in place.
- Temporary files are named `.hybrid-partial-PID-XXXX...` beside their output; a run killed with SIGKILL leaves
  one, and the next run that writes into the same folder removes those of processes that no longer exist.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hybrid.errors import HybridError

PathLike = str | os.PathLike[str]
TEMP_PREFIX = ".hybrid-partial-"
DEFERRED = (signal.SIGINT, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


_swept: set[str] = set()  # folders this process has already cleared of killed runs' temporary files


def sweep_once(folder: PathLike) -> None:
    """remove_stale_temps, once per folder and process: a builder writing thousands of files into one folder
    would otherwise list it again for every file."""
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        remove_stale_temps(folder)


def remove_stale_temps(folder: PathLike) -> int:
    """Remove the temporary files (and folders) that killed runs left in `folder`; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        pid_text = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
    return removed


def temp_path(output: PathLike, tag: str = "") -> Path:
    """A fresh temporary name beside `output`, with its extension (short, whatever the output's length)."""
    out = Path(output)
    suffix = out.suffix if len(out.suffix) <= 16 else ""
    return out.parent / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{tag}{suffix}"


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_output_path(
    output: PathLike,
    inputs: Sequence[PathLike | None] = (),
    force: bool = False,
    others: Sequence[PathLike | None] = (),
    folder: bool = False,
) -> Path:
    """Refuse (HybridError, one line) an output that would lose or corrupt anything; return it as a Path.

    `others` are the command's other outputs; `folder=True` for an output that is a folder of results."""
    out = Path(output)
    for inp in inputs:
        if inp is not None and _same_file(out, Path(inp)):
            raise HybridError(f"{out}: is an input file; refusing to overwrite it")
    for other in others:
        if other is not None and _same_file(out, Path(other)):
            raise HybridError(f"{out}: named twice among this command's outputs")
    parent = out.parent
    if not parent.exists():
        raise HybridError(f"{parent}: output folder does not exist")
    if not parent.is_dir():
        raise HybridError(f"{parent}: is not a folder, so {out.name} cannot be written in it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HybridError(f"{parent}: output folder is not writable")
    if len(os.fsencode(out.name)) > _name_max(parent):
        raise HybridError(f"{out.name[:40]}...: file name too long ({len(os.fsencode(out.name))} bytes)")
    if folder:
        if out.exists() and not out.is_dir():
            raise HybridError(f"{out}: exists and is not a folder (name the folder results go to)")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise HybridError(f"{out}: folder exists and is not empty (use --force to replace it)")
        return out
    if out.is_dir():
        raise HybridError(f"{out}: is a directory")
    if out.exists() and not out.is_file():
        raise HybridError(f"{out}: is not a regular file (a device or a pipe); refusing to replace it")
    if (out.exists() or out.is_symlink()) and not force:
        raise HybridError(f"{out}: already exists (use --force to replace it)")
    return out


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"{path}: no space left on the device; nothing was written"
    return f"{path}: cannot write ({exc.strerror or exc})"


class Outputs:
    """The outputs of one command, checked together and moved into place together (see the module's doc)."""

    def __init__(self, inputs: Sequence[PathLike | None] = (), force: bool = False) -> None:
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.force = force
        self.paths: list[Path] = []
        self.folders: set[Path] = set()

    def add(self, output: PathLike | None, folder: bool = False) -> Path | None:
        """Check one more output (None: not asked for) against the inputs and the outputs added before."""
        if output is None:
            return None
        out = check_output_path(output, self.inputs, self.force, self.paths, folder)
        sweep_once(out.parent)  # what killed runs left there goes now, not only when this run gets to write
        self.paths.append(out)
        if folder:
            self.folders.add(out)
        return out

    def recheck(self) -> None:
        """Check again just before writing (a slow run gives other programs time to create files)."""
        for i, p in enumerate(self.paths):
            check_output_path(p, self.inputs, self.force, self.paths[:i], p in self.folders)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Callable[[PathLike], Path]]:
        """Yield tmp(path): where to write each output; on success all are moved into place, else none."""
        self.recheck()
        for folder in {p.parent for p in self.paths}:
            sweep_once(folder)
        temps: dict[Path, Path] = {}

        def tmp(path: PathLike) -> Path:
            out = Path(path)
            if out not in self.paths:
                raise ValueError(f"{out} was not added to these outputs")
            if out not in temps:
                temps[out] = temp_path(out)
                if out in self.folders:
                    temps[out].mkdir()
            return temps[out]

        try:
            try:
                yield tmp
            except (HybridError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a write failed: name the output, not the temporary file
                raise HybridError(self._write_error(exc, temps)) from None
            missing = [p for p in self.paths if p not in temps]
            if missing:
                raise ValueError(f"no content was written for {missing[0]}")
            with _signals_deferred():
                self._commit(temps)
        finally:
            with _signals_deferred():  # Ctrl-C while cleaning up would leave temporary files
                for t in temps.values():
                    with contextlib.suppress(OSError):
                        shutil.rmtree(t) if t.is_dir() and not t.is_symlink() else t.unlink()

    def _write_error(self, exc: Exception, temps: dict[Path, Path]) -> str:
        by_temp = {str(t): out for out, t in temps.items()}
        filename = getattr(exc, "filename", None)
        named = Path(by_temp.get(str(filename), filename) or ", ".join(map(str, self.paths)))
        if isinstance(exc, OSError):
            return _describe(exc, named)
        full = []
        with contextlib.suppress(OSError):  # libsndfile says only "System error": look at the disks
            full = [p for p in self.paths if os.statvfs(p.parent).f_bavail == 0]
        if full:
            on_full = Path(", ".join(map(str, full)))
            return _describe(OSError(errno.ENOSPC, "No space left on device"), on_full)
        return f"{named}: cannot write ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"

    def _commit(self, temps: dict[Path, Path]) -> None:
        umask = os.umask(0)
        os.umask(umask)
        placed: list[tuple[Path, Path | None]] = []  # (output, a second name of what it replaced)
        try:
            for out, tmp in temps.items():
                if out not in self.folders:
                    os.chmod(tmp, 0o666 & ~umask)  # temporary files are made 0600; give the usual permissions
                placed.append((out, self._place(tmp, out)))
        except BaseException:
            for out, backup in reversed(placed):
                with contextlib.suppress(OSError):
                    if backup is not None:
                        os.replace(backup, out)
                    elif out in self.folders:
                        shutil.rmtree(out)
                    else:
                        out.unlink()
            raise
        finally:
            for _, backup in placed:
                if backup is not None and (backup.exists() or backup.is_symlink()):
                    with contextlib.suppress(OSError):
                        shutil.rmtree(
                            backup
                        ) if backup.is_dir() and not backup.is_symlink() else backup.unlink()

    def _place(self, tmp: Path, out: Path) -> Path | None:
        """Move tmp to out; return a second name of what it replaced (None: nothing was there). Without force
        nothing is ever replaced (a hard link refuses an existing name); with force a file is replaced in one
        rename, so a kill at any moment leaves the old file or the new one."""
        appeared = HybridError(f"{out}: appeared while this run was writing it; not replaced")
        exists = out.exists() or out.is_symlink()
        if out in self.folders:
            if exists and any(out.iterdir()):
                if not self.force:
                    raise appeared
                backup = temp_path(out, "-old")
                os.rename(out, backup)
                os.rename(tmp, out)
                return backup
            if exists:
                out.rmdir()
            os.rename(tmp, out)
            return None
        if exists:
            if not self.force:
                raise appeared
            old: Path | None = temp_path(out, "-old")
            try:
                os.link(out, old)  # type: ignore[arg-type]
            except OSError:
                old = None  # no hard links here: the old file cannot be put back if a later output fails
            os.replace(tmp, out)
            return old
        try:
            os.link(tmp, out)
        except FileExistsError:
            raise appeared from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if out.exists():  # a file system without hard links: check, then rename
                raise appeared from None
            os.rename(tmp, out)
        return None


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while outputs are moved into place or cleaned up; deliver them afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in DEFERRED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if held:
            signal.raise_signal(held[0])


@contextlib.contextmanager
def atomic_path(output: PathLike, replace: bool = True) -> Iterator[Path]:
    """One output: yield its temporary name; move it into place on success only (replace=False: never over a
    file that exists by then). For several outputs of one command, use Outputs."""
    out = Path(output)
    outs = Outputs(force=replace)
    outs.paths.append(out)
    with outs.writing() as tmp:
        yield tmp(out)
