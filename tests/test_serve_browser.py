"""`hybrid serve` end to end (slow): a real server process, driven by headless Chromium through Selenium
(Debian's chromium and chromium-driver), and 20 transfers in a row for its memory."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .conftest import DATA, EXAMPLES

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "HYBRID_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    p = subprocess.Popen(
        [sys.executable, "-m", "hybrid.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/api/limits", timeout=1).read()
            break
        except OSError:
            if p.poll() is not None:
                raise RuntimeError(p.stderr.read()) from None
            time.sleep(0.5)
    yield url, p
    p.terminate()
    p.wait(30)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return bytes(r.read())


def post(url: str, data: bytes, content_type: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def browser(tmp_path):
    if not shutil.which("chromedriver") or not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/bootstrap.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1800", "--mute-audio"):
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=opts)
    yield driver
    driver.quit()


def requested_hosts(driver) -> set[str]:
    hosts = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            u = urlparse(msg["params"]["request"]["url"])
            if u.scheme not in ("data", "blob", "about", "chrome"):  # the rest go over a network
                hosts.add(u.hostname or u.scheme)
    return hosts


def wait_for(condition, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_transfer_from_the_page_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, _ = server
    browser.get(url + "/")
    browser.find_element(By.ID, "file-a").send_keys(str(EXAMPLES / "guitar.wav"))
    browser.find_element(By.ID, "file-b").send_keys(str(EXAMPLES / "trumpet.ogg"))
    browser.find_element(By.CSS_SELECTOR, "#options summary").click()  # the bass song is among the options
    browser.find_element(By.ID, "file-bass").send_keys(str(EXAMPLES / "guitar.wav"))
    for slot in ("a", "b", "bass"):
        msg = browser.find_element(By.ID, f"msg-{slot}")
        wait_for(lambda m=msg: "ok" in m.get_attribute("class") and " s" in m.text, 60, f"upload {slot}")
    start = browser.find_element(By.ID, "start")
    wait_for(start.is_enabled, 10, "the start button")
    start.click()
    status = browser.find_element(By.ID, "status")
    wait_for(lambda: status.text in ("Done.",) or status.text.startswith("Failed"), 300, "the transfer")
    assert status.text == "Done.", status.text
    assert "the bass line in the sound of guitar.wav" in browser.find_element(By.ID, "metrics").text
    duration = wait_for(
        lambda: browser.execute_script(
            "const a = document.getElementById('out-audio'); return a.readyState >= 1 ? a.duration : 0;"
        ),
        30,
        "the output's player",
    )
    assert duration >= 2.0  # the guitar example is 2.0 s long: the output plays at least as long
    links = {
        k: browser.find_element(By.ID, f"dl-{k}").get_attribute("href") for k in ("audio", "midi", "report")
    }
    assert get(links["audio"])[:4] == b"RIFF" and get(links["audio"])[8:12] == b"WAVE"
    assert get(links["midi"])[:4] == b"MThd"
    assert get(links["report"]).startswith(b"<!doctype html>")
    browser.switch_to.frame(browser.find_element(By.ID, "report"))
    for plot in ("pianoroll", "spectrograms", "timbre"):
        img = browser.find_element(By.ID, plot)
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 100, plot
    browser.switch_to.default_content()
    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("HYBRID_SCREENSHOT"):
        shutil.copy(shot, os.environ["HYBRID_SCREENSHOT"])
    hosts = requested_hosts(browser)
    assert hosts == {"127.0.0.1"}, hosts  # no request left the machine


def test_a_corrupt_upload_is_refused_beside_its_file(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, _ = server
    bad = tmp_path / "broken song.mp3"
    bad.write_bytes(b"ID3 this is not audio" * 40)
    browser.get(url + "/")
    browser.find_element(By.ID, "file-a").send_keys(str(bad))
    msg = browser.find_element(By.ID, "msg-a")
    wait_for(lambda: "error" in msg.get_attribute("class"), 30, "the error message")
    assert msg.text == "broken song.mp3: not a readable audio file (corrupt or unsupported format)"
    assert not browser.find_element(By.ID, "start").is_enabled()
    assert browser.find_element(By.ID, "msg-b").text == ""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_twenty_transfers_in_a_row_and_the_servers_memory(server):
    url, proc = server
    status, up = post(
        url + "/api/uploads?slot=a&name=guitar.wav",
        (DATA / "egset12_guitar_01.wav").read_bytes(),
        "application/octet-stream",
    )
    assert status == 200, up
    rss = []
    for i in range(20):
        body = {"a": up["id"], "b": "example:trumpet.ogg", "options": {"seed": i}}
        status, job = post(url + "/api/jobs", json.dumps(body).encode(), "application/json")
        assert status == 202, job
        done = wait_for(
            lambda j=job: (
                (s := json.loads(get(f"{url}/api/jobs/{j['id']}")))["status"] not in ("queued", "running")
                and s
            ),
            300,
            f"job {i}",
        )
        assert done["status"] == "done", done
        assert get(url + done["files"]["output.wav"])[:4] == b"RIFF"
        rss.append(rss_mb(proc.pid))
    print(f"server RSS after transfer 1: {rss[0]:.0f} MB, after 20: {rss[-1]:.0f} MB, peak {max(rss):.0f} MB")
    assert rss[-1] - rss[0] < 200, rss
