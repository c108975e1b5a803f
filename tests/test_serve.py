"""`hybrid serve` without a browser: the job queue and its limits, the options, uploads, and a transfer from
the page's API that writes what the CLI writes."""

from __future__ import annotations

import io
import shutil
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hybrid.errors import HybridError
from hybrid.pipeline import TransferOptions
from hybrid.serve import Cancelled, Job, JobQueue, Server, create_app, display, options_from

from .conftest import DATA, EXAMPLES

A = DATA / "egset12_guitar_01.wav"


def fake_job(tmp_path: Path, name: str) -> Job:
    folder = tmp_path / name
    folder.mkdir()
    return Job(name, folder, A, A, "a.wav", "b.wav", TransferOptions())


def test_jobs_run_one_at_a_time_in_order_and_report_their_place(tmp_path):
    ran, gate = [], threading.Event()

    def run(job: Job) -> None:
        gate.wait(10)
        ran.append(job.id)
        (job.folder / "output.wav").write_bytes(b"x" * 10)

    q = JobQueue(run)
    jobs = [fake_job(tmp_path, f"j{i}") for i in range(3)]
    places = [q.submit(j) for j in jobs]
    time.sleep(0.2)  # the worker has taken the first job
    assert places == [1, 2, 3]
    assert [q.position(j) for j in jobs] == [0, 1, 2] and jobs[0].status == "running"
    gate.set()
    for j in jobs:
        q.wait(j.id, 10)
    assert ran == ["j0", "j1", "j2"] and all(j.status == "done" for j in jobs)
    q.close()


def test_a_job_is_cancelled_while_waiting_or_at_its_next_stage(tmp_path):
    started = threading.Event()

    def run(job: Job) -> None:
        started.set()
        for _ in range(200):  # stages: the pipeline calls progress, which raises once cancelled
            if job.cancel.is_set():
                raise Cancelled
            time.sleep(0.01)

    q = JobQueue(run)
    running, waiting = fake_job(tmp_path, "r"), fake_job(tmp_path, "w")
    q.submit(running)
    q.submit(waiting)
    started.wait(5)
    q.cancel(waiting.id)
    assert waiting.status == "cancelled" and not waiting.folder.exists()
    q.cancel(running.id)
    q.wait(running.id, 5)
    assert running.status == "cancelled" and not running.folder.exists()
    q.close()


def test_a_full_queue_refuses_clearly_and_failures_are_one_line(tmp_path):
    gate = threading.Event()

    def run(job: Job) -> None:
        gate.wait(10)
        if job.id == "j1":
            raise HybridError("song A: no notes found")

    q = JobQueue(run, max_queued=2)
    jobs = [fake_job(tmp_path, f"j{i}") for i in range(3)]
    q.submit(jobs[0])
    time.sleep(0.2)
    q.submit(jobs[1])
    q.submit(jobs[2])
    with pytest.raises(HybridError, match="2 transfers are waiting already"):
        q.submit(fake_job(tmp_path, "j3"))
    gate.set()
    assert q.wait("j1", 10).status == "failed" and q.jobs["j1"].error == "song A: no notes found"
    q.close()


def test_finished_jobs_are_kept_within_the_limits_oldest_first(tmp_path):
    def run(job: Job) -> None:
        (job.folder / "output.wav").write_bytes(b"x" * 1000)

    q = JobQueue(run, max_kept_jobs=3, max_kept_bytes=2500)
    for i in range(5):
        j = fake_job(tmp_path, f"j{i}")
        q.submit(j)
        q.wait(j.id, 10)
    # 1000 bytes each: the byte limit keeps two (2000 <= 2500), the count limit would keep three
    assert sorted(q.jobs) == ["j3", "j4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j3", "j4"]
    q.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": "fast"}, "--rate: not a number"),
        ({"rate": "0"}, "--rate"),
        ({"bpm": "5000"}, "--bpm must be between 1 and 1000"),
        ({"rate": "1.1", "bpm": "100"}, "at most one of --rate"),
        ({"transpose": "1.5"}, "--transpose must be a whole number"),
        ({"seed": "-1"}, "--seed must be between"),
        ({"sample_rate_hz": "8000"}, "--sample-rate"),
        ({"volume": 11}, "unknown option 'volume'"),
    ],
)
def test_the_pages_options_are_checked_as_the_clis(options, message):
    with pytest.raises(HybridError, match=message):
        options_from(options)


def test_the_pages_options_become_transfer_options():
    o = options_from(
        {"bpm": "96", "transpose": "-3", "seed": "7", "calibrate": False, "sample_rate_hz": "48000"}
    )
    assert o == TransferOptions(bpm=96.0, transpose=-3, seed=7, calibrate=False, sample_rate_hz=48000)
    o = options_from({"acoustics": False, "drums": "keep"})
    assert o == TransferOptions(acoustics=False, drums="keep")
    assert options_from({"drums": "drop"}).drums == "drop" and options_from({"drums": False}).drums == "drop"
    assert options_from({}).drums == "keep" and options_from({"drums": "always"}).drums == "always"
    assert options_from({"timbre_drums": "drop"}).timbre_drums == "drop"
    assert (
        options_from({"timbre_drums": True}).timbre_drums == "drop"
        and options_from({}).timbre_drums == "keep"
    )
    assert (
        options_from({"split_at": "C3"}).split_at == 48.0
        and options_from({"split_at": " 50 "}).split_at == 50.0
    )
    assert options_from({"split_at": ""}).split_at is None
    with pytest.raises(HybridError, match="--split-at: 'H9' is neither a note name"):
        options_from({"split_at": "H9"})


def test_a_browsers_file_name_never_becomes_a_path():
    assert display("../../etc/passwd.wav") == "passwd.wav"
    assert display("C:\\Users\\me\\song.wav") == "song.wav"
    assert display("bad\x00name\n.wav") == "badname.wav"


@pytest.fixture
def client(model, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    server = Server(model, root=tmp_path, max_upload_bytes=2 * 1024 * 1024)
    with TestClient(create_app(server)) as c:
        yield c, server
    assert not server.root.exists()  # the server's temporary folder goes when it stops


def test_uploads_are_checked_at_once_and_kept_in_the_servers_folder(client, tmp_path):
    c, server = client
    r = c.post("/api/uploads?slot=a&name=../../../evil.wav", content=A.read_bytes())
    assert r.status_code == 200 and r.json()["name"] == "evil.wav"
    stored = server.uploads[r.json()["id"]].path
    assert stored.parent == server.root / "uploads" and stored.name.startswith("u")
    assert not (tmp_path.parent / "evil.wav").exists()
    bad = c.post("/api/uploads?slot=b&name=song.ogg", content=b"OggS not really" * 10)
    assert bad.status_code == 400 and bad.json() == {
        "error": "song.ogg: not a readable audio file (corrupt or unsupported format)",
        "field": "b",
    }
    big = c.post("/api/uploads?slot=b&name=big.wav", content=b"\0" * (3 * 1024 * 1024))
    assert big.status_code == 413 and big.json()["error"] == "big.wav: too large (3 MB; the limit is 2 MB)"
    text = c.post("/api/uploads?slot=a&name=notes.txt", content=b"hello")
    assert text.status_code == 400 and "notes.txt: not an audio file name" in text.json()["error"]
    assert sorted(p.name for p in (server.root / "uploads").iterdir()) == [stored.name]


@pytest.mark.slow
def test_a_transfer_from_the_page_writes_what_the_cli_writes(client, tmp_path):
    from hybrid.cli import app

    c, server = client
    up = c.post("/api/uploads?slot=a&name=guitar.wav", content=A.read_bytes()).json()
    options = {"seed": "3", "transpose": "2"}
    r = c.post("/api/jobs", json={"a": up["id"], "b": "example:trumpet.ogg", "options": options})
    assert r.status_code == 202 and r.json()["position"] == 1
    job = server.queue.wait(r.json()["id"], 300)
    assert job.status == "done", job.error
    status = c.get(f"/api/jobs/{job.id}").json()
    assert status["metrics"]["notes"] > 0 and set(status["files"]) == {
        "output.wav",
        "notes.mid",
        "report.html",
    }
    page_audio = c.get(status["files"]["output.wav"]).content
    assert c.get(status["files"]["notes.mid"]).content[:4] == b"MThd"
    assert c.get(status["files"]["report.html"]).text.startswith("<!doctype html>")
    a_copy = tmp_path / "guitar.wav"
    shutil.copy(A, a_copy)
    cli = CliRunner().invoke(
        app,
        ["transfer", "--rhythm", str(a_copy), "--timbre", str(EXAMPLES / "trumpet.ogg"), "-o", str(tmp_path / "cli.wav"), "--seed", "3", "--transpose", "2"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.stderr
    assert (tmp_path / "cli.wav").read_bytes() == page_audio


def test_bad_requests_get_one_line_beside_their_field(client):
    c, _ = client
    r = c.post("/api/jobs", json={"a": "example:guitar.wav", "b": "u0000", "options": {}})
    assert r.status_code == 400 and r.json()["field"] == "b" and "upload it again" in r.json()["error"]
    r = c.post("/api/jobs", json={"a": "example:../../etc/passwd", "b": "example:trumpet.ogg"})
    assert r.status_code == 400 and r.json() == {"error": "passwd: no such example", "field": "a"}
    r = c.post(
        "/api/jobs", json={"a": "example:guitar.wav", "b": "example:trumpet.ogg", "options": {"seed": -1}}
    )
    assert r.status_code == 400 and r.json()["field"] == "options" and "--seed" in r.json()["error"]
    assert c.get("/api/jobs/jnope").status_code == 404
    assert c.get("/api/examples/..%2F..%2Fpyproject.toml").status_code == 404
    page = c.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # no outside address in the page


@pytest.mark.slow
def test_the_bass_line_in_a_third_songs_sound_from_the_page(client, model, tmp_path):
    # The page's optional bass song: the job plays the bass line (the notes under C4) in its sound, exactly as
    # the Python API does with bass_timbre, and says so.
    import soundfile as sf

    from hybrid.pipeline import transfer

    c, server = client
    r = c.post(
        "/api/jobs",
        json={
            "a": "example:guitar.wav",
            "b": "example:trumpet.ogg",
            "bass": "example:guitar.wav",
            "options": {"split_at": "C4"},
        },
    )
    assert r.status_code == 202, r.json()
    job = server.queue.wait(r.json()["id"], 300)
    assert job.status == "done", job.error
    status = c.get(f"/api/jobs/{job.id}").json()
    assert status["bass"] == "guitar.wav" and status["metrics"]["bass"] == "guitar.wav"
    page, sr = sf.read(io.BytesIO(c.get(status["files"]["output.wav"]).content), dtype="float32")
    api = transfer(
        EXAMPLES / "guitar.wav",
        EXAMPLES / "trumpet.ogg",
        tmp_path / "api.wav",
        TransferOptions(split_at=60.0),
        model=model,
        bass_timbre=EXAMPLES / "guitar.wav",
    )
    assert set(api.parts) == {"bass", "rest"}
    expected, sr_api = sf.read(tmp_path / "api.wav", dtype="float32")
    assert sr == sr_api and np.array_equal(page, expected)


def test_a_bad_bass_song_or_split_is_refused_beside_its_field(client):
    c, _ = client
    ab = {"a": "example:guitar.wav", "b": "example:trumpet.ogg"}
    r = c.post("/api/jobs", json={**ab, "bass": "u0000"})
    assert r.status_code == 400 and r.json()["field"] == "bass" and "upload it again" in r.json()["error"]
    r = c.post("/api/jobs", json={**ab, "options": {"split_at": "C3"}})
    assert r.status_code == 400 and r.json() == {
        "error": "split at: needs a song for the bass (the part under it is played in its sound)",
        "field": "options",
    }
