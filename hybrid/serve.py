"""`hybrid serve`: a local web page around the same pipeline, for people who do not use a terminal.

A small Starlette app with one static page (hybrid/web/): no CDN, fonts or analytics, so it works offline and
no request leaves the machine. The model loads once. Transfers run one at a time in a worker thread, in the
order they came (`JobQueue`); each job is `hybrid.pipeline.transfer` with the options the page sent, so the
page writes what the CLI writes with the same options and seed.

Uploads are the request's raw bytes streamed into the server's own temporary folder under a name the server
makes (`u<hex><extension>`); the browser's file name is kept only for display and its extension checked
against a list. Every upload is checked as the CLI checks an input (`load_audio`), so a bad file is refused
at once with the same one-line message, shown beside it. Finished jobs are kept until the server stops or
their size passes a limit; then the oldest go.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.audio import AUDIO_EXTENSIONS, load_audio
from hybrid.errors import HybridError
from hybrid.parts import DRUMS_MODES
from hybrid.pipeline import Model, TransferOptions, transfer

WEB = Path(__file__).parent / "web"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # per file; stated on the page
MAX_QUEUED = 10  # jobs waiting; more are refused until one finishes
MAX_KEPT_BYTES = 1 << 30  # finished jobs and uploads kept, in all
MAX_KEPT_JOBS = 50
FILES = {  # what a job's page may fetch: name -> (file in the job's folder, media type)
    "output.wav": ("output.wav", "audio/wav"),
    "notes.mid": ("notes.mid", "audio/midi"),
    "report.html": ("report.html", "text/html; charset=utf-8"),
}
STATUSES = ("queued", "running", "done", "failed", "cancelled")


class FieldError(HybridError):
    """A bad request, with the part of the page it belongs beside: "a", "b" or "options"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Cancelled(BaseException):
    """Raised in the worker at the next stage of a job the user cancelled (a BaseException: no handler of
    ordinary errors in the pipeline catches it)."""


@dataclass
class Job:
    id: str
    folder: Path
    a: Path
    b: Path
    a_name: str
    b_name: str
    options: TransferOptions
    bass: Path | None = None  # the bass line's timbre song (optional)
    bass_name: str = ""
    status: str = "queued"
    stage: str = "waiting for its turn"
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


class JobQueue:
    """Jobs run one at a time, in order, by one worker thread; finished ones are kept within limits."""

    def __init__(
        self,
        run: Callable[[Job], None],
        max_queued: int = MAX_QUEUED,
        max_kept_jobs: int = MAX_KEPT_JOBS,
        max_kept_bytes: int = MAX_KEPT_BYTES,
    ) -> None:
        self.run = run
        self.max_queued, self.max_kept_jobs, self.max_kept_bytes = max_queued, max_kept_jobs, max_kept_bytes
        self.jobs: dict[str, Job] = {}
        self.waiting: list[str] = []
        self.lock = threading.Condition()
        self.stopping = False
        self.worker = threading.Thread(target=self._work, name="hybrid-jobs", daemon=True)
        self.worker.start()

    def submit(self, job: Job) -> int:
        """Queue a job; returns its place (1: next). Refused (HybridError) when the queue is full."""
        with self.lock:
            if len(self.waiting) >= self.max_queued:
                raise HybridError(f"{self.max_queued} transfers are waiting already; try again in a minute")
            self.jobs[job.id] = job
            self.waiting.append(job.id)
            self.lock.notify_all()
            return len(self.waiting)

    def position(self, job: Job) -> int:
        """0 while running or finished; 1, 2, ... while waiting."""
        with self.lock:
            return self.waiting.index(job.id) + 1 if job.id in self.waiting else 0

    def cancel(self, job_id: str) -> Job | None:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            job.cancel.set()
            if job.id in self.waiting:
                self.waiting.remove(job.id)
                self._finish(job, "cancelled")
            return job

    def wait(self, job_id: str, timeout_s: float) -> Job:
        """Block until a job has finished (for tests and scripts)."""
        end = time.monotonic() + timeout_s
        with self.lock:
            while self.jobs[job_id].status in ("queued", "running"):
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(job_id)
                self.lock.wait(left)
            return self.jobs[job_id]

    def close(self) -> None:
        with self.lock:
            self.stopping = True
            for job_id in self.waiting:
                self.jobs[job_id].cancel.set()
            self.lock.notify_all()
        self.worker.join(timeout=60)

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.waiting and not self.stopping:
                    self.lock.wait()
                if self.stopping:
                    return
                job = self.jobs[self.waiting.pop(0)]
                job.status = "running"
            status = "done"
            try:
                self.run(job)
            except Cancelled:
                status = "cancelled"
            except HybridError as exc:
                job.error, status = str(exc), "failed"
            except Exception as exc:  # a bug: still one line for the page
                job.error, status = f"unexpected {type(exc).__name__}: {str(exc)[:200]}", "failed"
            with self.lock:
                self._finish(job, status)

    def _finish(self, job: Job, status: str) -> None:
        job.status, job.finished = status, time.time()
        job.stage = {"done": "finished", "failed": "failed", "cancelled": "cancelled"}[status]
        if status != "done":
            shutil.rmtree(job.folder, ignore_errors=True)
        self._prune()
        self.lock.notify_all()

    def _prune(self) -> None:
        finished = sorted(
            (j for j in self.jobs.values() if j.finished is not None), key=lambda j: j.finished or 0
        )
        total = sum(j.size() for j in finished if j.folder.exists())
        while finished and (len(finished) > self.max_kept_jobs or total > self.max_kept_bytes):
            old = finished.pop(0)
            total -= old.size() if old.folder.exists() else 0
            shutil.rmtree(old.folder, ignore_errors=True)
            del self.jobs[old.id]


@dataclass(frozen=True)
class Upload:
    id: str
    path: Path
    name: str  # the browser's file name, for display only
    duration_s: float


class Server:
    """The state behind the page: the model, the server's temporary folder, uploads and the job queue."""

    def __init__(
        self, model: Model, root: Path | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES
    ) -> None:
        self.model = model
        self.root = Path(tempfile.mkdtemp(prefix="hybrid-serve-", dir=root))
        (self.root / "uploads").mkdir()
        (self.root / "jobs").mkdir()
        self.max_upload_bytes = max_upload_bytes
        self.uploads: dict[str, Upload] = {}
        self.queue = JobQueue(self.run_job)

    def close(self) -> None:
        self.queue.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def examples(self) -> list[str]:
        if not EXAMPLES.is_dir():
            return []
        return sorted(p.name for p in EXAMPLES.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)

    def new_upload_path(self, browser_name: str) -> tuple[str, Path]:
        ext = Path(browser_name).suffix.lower()
        if ext not in AUDIO_EXTENSIONS:
            raise HybridError(
                f"{display(browser_name)}: not an audio file name (use {', '.join(AUDIO_EXTENSIONS)})"
            )
        upload_id = "u" + secrets.token_hex(8)
        return upload_id, self.root / "uploads" / f"{upload_id}{ext}"

    def add_upload(self, upload_id: str, path: Path, browser_name: str) -> Upload:
        """Check the uploaded file as the CLI checks an input; a bad one is removed and refused."""
        try:
            y, sr = load_audio(path, allow_silent=False)
        except HybridError as exc:
            path.unlink(missing_ok=True)
            raise HybridError(str(exc).replace(str(path), display(browser_name))) from None
        up = Upload(upload_id, path, display(browser_name), len(y) / sr)
        self.uploads[upload_id] = up
        return up

    def source(self, ref: object, what: str) -> tuple[Path, str]:
        """An upload id or 'example:NAME' -> (path, name shown)."""
        if not isinstance(ref, str) or not ref:
            raise HybridError(f"choose song {what} (a file or an example)")
        if ref.startswith("example:"):
            name = ref.split(":", 1)[1]
            if name not in self.examples():
                raise HybridError(f"{display(name)}: no such example")
            return EXAMPLES / name, name
        up = self.uploads.get(ref)
        if up is None or not up.path.exists():
            raise HybridError(
                f"song {what}: that upload is gone (the server restarted or removed it); upload it again"
            )
        return up.path, up.name

    def submit(self, request: dict[str, Any]) -> tuple[Job, int]:
        """Check a transfer request (every option, both songs) and queue it."""
        try:
            a, a_name = self.source(request.get("a"), "A")
        except HybridError as exc:
            raise FieldError("a", str(exc)) from None
        try:
            b, b_name = self.source(request.get("b"), "B")
        except HybridError as exc:
            raise FieldError("b", str(exc)) from None
        bass: Path | None = None
        bass_name = ""
        if request.get("bass"):
            try:
                bass, bass_name = self.source(request.get("bass"), "for the bass")
            except HybridError as exc:
                raise FieldError("bass", str(exc)) from None
        try:
            options = options_from(request.get("options") or {})
            if options.split_at is not None and bass is None:
                raise HybridError(
                    "split at: needs a song for the bass (the part under it is played in its sound)"
                )
        except HybridError as exc:
            raise FieldError("options", str(exc)) from None
        job_id = "j" + secrets.token_hex(8)
        folder = self.root / "jobs" / job_id
        folder.mkdir()
        # the songs are linked into the job's folder under the names the user gave them (made safe), so the
        # report names them as the user knows them
        a, b = (_linked(src, folder / slot, name) for src, slot, name in ((a, "a", a_name), (b, "b", b_name)))
        if bass is not None:
            bass = _linked(bass, folder / "bass", bass_name)
        job = Job(job_id, folder, a, b, a_name, b_name, options, bass, bass_name)
        try:
            return job, self.queue.submit(job)
        except HybridError:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def run_job(self, job: Job) -> None:
        def progress(stage: str) -> None:
            if job.cancel.is_set():
                raise Cancelled
            job.stage = stage

        progress("starting")
        result = transfer(
            job.a,
            job.b,
            job.folder / "output.wav",
            job.options,
            midi_out=job.folder / "notes.mid",
            progress=progress,
            model=self.model,
            report=job.folder / "report.html",
            report_settings={
                "made by": "hybrid serve",
                "song A": job.a_name,
                "song B": job.b_name,
                **({"bass in the sound of": job.bass_name} if job.bass is not None else {}),
            },
            bass_timbre=job.bass,
        )
        job.metrics = {
            "notes": len(result.notes),
            "tempo_bpm": round(result.notes.tempo_bpm, 1),
            "rate": round(result.rate, 4),
            "note_f1": None if result.onset_f1 is None else round(result.onset_f1, 3),
            "played_from": result.timbre.player("B"),
            "drums": result.drums,
            "bass": job.bass_name if result.parts else None,
            "duration_s": round(len(result.audio) / result.sample_rate_hz, 2),
        }

    def status(self, job: Job) -> dict[str, Any]:
        done = job.status == "done"
        return {
            "id": job.id,
            "status": job.status,
            "stage": job.stage,
            "position": self.queue.position(job),
            "error": job.error,
            "a": job.a_name,
            "b": job.b_name,
            "bass": job.bass_name or None,
            "metrics": job.metrics,
            "files": {name: f"/api/jobs/{job.id}/files/{name}" for name in FILES} if done else {},
        }


def _linked(src: Path, folder: Path, name: str) -> Path:
    folder.mkdir()
    safe = re.sub(r"[^\w.\- ]", "_", Path(name).stem).strip(". ") or "song"
    dst = folder / f"{safe[:60]}{src.suffix.lower()}"
    try:
        os.link(src, dst)
    except OSError:  # another file system (the shipped examples)
        shutil.copyfile(src, dst)
    return dst


def display(name: str) -> str:
    """A browser's file name made safe to show: no path, no control characters, at most 80 characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if c.isprintable())
    return base[:80] or "file"


def options_from(d: dict[str, Any]) -> TransferOptions:
    """The page's options -> TransferOptions; every value is checked (one-line HybridError naming it)."""
    allowed = {
        "rate",
        "bpm",
        "bpm_from_timbre",
        "transpose",
        "seed",
        "calibrate",
        "library",
        "sample_rate_hz",
        "acoustics",
        "drums",
        "timbre_drums",
        "split_at",
    }
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise HybridError(f"unknown option {unknown[0]!r}")

    def number(key: str, kind: type) -> Any:
        v = d.get(key)
        if v is None or v == "":
            return None
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise HybridError(f"--{key.replace('_', '-')}: not a number: {str(v)[:20]!r}") from None
        if kind is int:
            if x != int(x):
                raise HybridError(f"--{key.replace('_', '-')} must be a whole number, got {v}")
            return int(x)
        return x

    drums = d.get("drums")
    kwargs: dict[str, Any] = {
        "rate": number("rate", float),
        "bpm": number("bpm", float),
        "bpm_from_timbre": bool(d.get("bpm_from_timbre", False)),
        "calibrate": bool(d.get("calibrate", True)),
        "library": bool(d.get("library", True)),
        "acoustics": bool(d.get("acoustics", True)),
        "drums": "drop" if drums in (False, "drop") else drums if drums in DRUMS_MODES else "keep",
        "timbre_drums": "drop" if d.get("timbre_drums") in (True, "drop") else "keep",
    }
    if d.get("split_at") not in (None, ""):
        from hybrid.parts import parse_note

        kwargs["split_at"] = parse_note(str(d["split_at"]).strip())
    for key in ("transpose", "seed", "sample_rate_hz"):
        v = number(key, int)
        if v is not None:
            kwargs[key] = v
    return TransferOptions(**kwargs)


def create_app(server: Server) -> Any:
    """The Starlette app: the page, its static files, uploads, jobs and their files."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    csp = (
        "default-src 'self'; img-src 'self' data:; media-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'"
    )

    def error(message: str, status: int = 400, field: str | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "field": field}, status_code=status)

    async def page(request: Request) -> Response:
        return FileResponse(WEB / "index.html", headers={"Content-Security-Policy": csp})

    async def limits(request: Request) -> Response:
        return JSONResponse(
            {
                "max_upload_mb": server.max_upload_bytes // (1024 * 1024),
                "max_minutes": 30,
                "examples": server.examples(),
            }
        )

    async def example(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in server.examples():
            return error("no such example", 404)
        return FileResponse(EXAMPLES / name)

    async def upload(request: Request) -> Response:
        browser_name = request.query_params.get("name", "")
        slot = request.query_params.get("slot")
        try:
            declared = int(request.headers.get("content-length", "0"))
        except ValueError:
            declared = 0
        limit = server.max_upload_bytes
        too_large = f"{display(browser_name)}: too large ({{}} MB; the limit is {limit // (1024 * 1024)} MB)"
        if declared > limit:
            return error(too_large.format(declared // (1024 * 1024)), 413, slot)
        try:
            upload_id, path = server.new_upload_path(browser_name)
        except HybridError as exc:
            return error(str(exc), 400, slot)
        size = 0
        try:
            with open(path, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HybridError(too_large.format(size // (1024 * 1024)))
                    f.write(chunk)
            up = server.add_upload(upload_id, path, browser_name)
        except HybridError as exc:
            path.unlink(missing_ok=True)
            return error(str(exc), 413 if "too large" in str(exc) else 400, slot)
        return JSONResponse(
            {"id": up.id, "name": up.name, "duration_s": round(up.duration_s, 2), "slot": slot}
        )

    async def upload_file(request: Request) -> Response:
        up = server.uploads.get(request.path_params["upload_id"])
        if up is None or not up.path.exists():
            return error("no such upload", 404)
        return FileResponse(up.path)

    async def submit(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error("the request is not JSON")
        if not isinstance(body, dict):
            return error("the request is not a JSON object")
        try:
            job, position = server.submit(body)
        except HybridError as exc:
            msg = str(exc)
            return error(msg, 429 if "waiting already" in msg else 400, getattr(exc, "field", None))
        return JSONResponse({**server.status(job), "position": position}, status_code=202)

    def job_of(request: Request) -> Job | None:
        return server.queue.jobs.get(request.path_params["job_id"])

    async def status(request: Request) -> Response:
        job = job_of(request)
        return (
            error("no such job (finished jobs are removed when the server stops)", 404)
            if job is None
            else JSONResponse(server.status(job))
        )

    async def cancel(request: Request) -> Response:
        job = server.queue.cancel(request.path_params["job_id"])
        return error("no such job", 404) if job is None else JSONResponse(server.status(job))

    async def job_file(request: Request) -> Response:
        job = job_of(request)
        name = request.path_params["name"]
        if job is None or job.status != "done" or name not in FILES:
            return error("no such file", 404)
        filename, media = FILES[name]
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(job.a_name).stem)[:40]
        download = (
            f"{stem}-as-{re.sub(r'[^A-Za-z0-9._-]', '_', Path(job.b_name).stem)[:40]}{Path(filename).suffix}"
        )
        disposition = "attachment" if request.query_params.get("download") else "inline"
        return FileResponse(
            job.folder / filename,
            media_type=media,
            headers={"Content-Disposition": f'{disposition}; filename="{download}"'},
        )

    routes = [
        Route("/", page),
        Route("/api/limits", limits),
        Route("/api/examples/{name}", example),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads/{upload_id}", upload_file),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs/{job_id}", status),
        Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job_id}/files/{name}", job_file),
        Mount("/static", StaticFiles(directory=WEB), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        server.close()

    return Starlette(routes=routes, lifespan=lifespan)


def serve(host: str, port: int, model: Model, ready: Callable[[str], None] = print) -> None:
    """Run the app with uvicorn until Ctrl-C."""
    import uvicorn

    server = Server(model)
    app = create_app(server)
    ready(f"http://{host}:{port}/")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        server.close()


def is_local(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


__all__ = ["Job", "JobQueue", "Server", "create_app", "options_from", "serve", "is_local"]
