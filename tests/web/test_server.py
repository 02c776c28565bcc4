"""A real `timbrescope serve` on 127.0.0.1: uploads over a socket, refusals, a clean shutdown; and the page
in headless Chromium: the demo example's instrument lanes, seeking by click, the library, a phone-width
screen, and the README's screenshot. What the shipped model hears in the example is the library's answer
(``Recognizer().identify``); the server and the page must show exactly that (how good it is, the benchmarks say)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from browser import headless_chromium

SCREENSHOT = Path(__file__).parents[2] / "docs" / "figures" / "serve-page.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory, example):
    """``timbrescope serve`` with a library, on a free loopback port; its temp folder is checked empty at the end."""
    root = tmp_path_factory.mktemp("serve")
    library, temp = root / "library", root / "tmp"
    (library / "takes").mkdir(parents=True)
    temp.mkdir()
    shutil.copy(example, library / "takes" / "trio.wav")
    process = subprocess.Popen(
        [sys.executable, "-m", "timbrescope", "serve", "--port", "0", "--library", str(library),
         "--max-upload-mb", "2", "--workers", "2"],
        env={**os.environ, "TMPDIR": str(temp)}, stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()  # "timbrescope: serving on http://127.0.0.1:PORT (…)"
    assert first.startswith("timbrescope: serving on http://127.0.0.1:"), first + process.stderr.read()
    url = first.split()[3]
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v1/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        raise AssertionError(process.stderr.read())
    yield url, example
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0 and process.stderr.read() == ""
    assert [p for p in temp.iterdir() if p.name.startswith("timbrescope")] == []  # the uploads went with it


@pytest.fixture(scope="module")
def heard(example) -> list[str]:
    """The labels the shipped model detects in the example, loudest first, as the library gives them."""
    from timbrescope.inference import Recognizer

    labels = [item["label"] for item in Recognizer().identify(example).detected()]
    assert labels, "the shipped model hears nothing in the demo example"
    return labels


def test_a_real_server_identifies_uploads_and_refuses_what_it_must(server, heard):
    url, example = server
    with open(example, "rb") as f:
        response = httpx.post(f"{url}/api/v1/identify", files={"file": ("trio.wav", f)}, timeout=60)
    assert response.status_code == 200
    detected = {i["label"] for i in response.json()["instruments"] if i["detected"]}
    assert detected == set(heard)
    assert httpx.post(f"{url}/api/v1/identify", files={"file": ("x.wav", b"<html></html>")}).status_code == 415
    big = httpx.post(f"{url}/api/v1/identify", files={"file": ("big.wav", b"\0" * (3 << 20))})
    assert big.status_code == 413 and big.json()["error"].startswith("the upload is larger")
    with httpx.Client() as client:
        for raw in ["..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2Fetc%2Fpasswd", "takes%2F..%2F..%2F"]:
            request = client.build_request("GET", f"{url}/api/v1/library/audio")
            request.url = httpx.URL(f"{url}/api/v1/library/audio?path={raw}")
            assert client.send(request).status_code == 403, raw
    assert httpx.get(f"{url}/api/v1/library/audio", params={"path": "takes/trio.wav"}).content == example.read_bytes()
    taken = subprocess.run([sys.executable, "-m", "timbrescope", "serve", "--port", url.rsplit(":", 1)[1]],
                           capture_output=True, text=True, timeout=60)
    assert taken.returncode == 2 and taken.stderr == (
        f"timbrescope: error: cannot listen on 127.0.0.1:{url.rsplit(':', 1)[1]}: Address already in use\n")


def _wait(driver, script: str, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    shown = driver.execute_script("return document.getElementById('error').textContent")
    raise AssertionError(f"timed out waiting for: {script}; the page says: {shown}")


LANES = "return Array.from(document.querySelectorAll('#lanes .lane')).map(l => l.dataset.label)"


@pytest.mark.browser
def test_the_page_shows_the_example_lanes_seeks_and_analyses_the_library(server, heard, tmp_path):
    url, example = server
    with headless_chromium(1100, 1500) as driver:
        driver.get(url)
        _wait(driver, "return document.getElementById('model').textContent.includes('instruments')")
        driver.find_element("id", "picker").send_keys(str(example))
        _wait(driver, "return !document.getElementById('result').hidden")
        lanes = driver.execute_script(LANES)
        assert set(heard) <= set(lanes)
        top = driver.execute_script("return Array.from(document.querySelectorAll("
                                    f"'#lanes .lane[data-label={heard[0]}] .segment')).map(s => s.title)")
        assert top and all(title.startswith(f"{heard[0]}: ") for title in top)
        assert driver.execute_script("return document.getElementById('title').textContent") == example.name
        bars = driver.execute_script("return Array.from(document.querySelectorAll('#instruments li'))"
                                     ".map(li => li.dataset.label)")
        assert set(bars) <= set(lanes)
        sources = driver.execute_script("return Array.from(document.querySelectorAll('#sources li'))"
                                        ".map(li => li.dataset.label)")
        assert "acoustic" in sources and set(sources) <= {"acoustic", "electronic", "synthetic"}
        _wait(driver, "return document.getElementById('player').readyState >= 1")
        track = driver.find_element("css selector", "#timeline .lane.wave .track")
        driver.execute_script("""const r = arguments[0].getBoundingClientRect();
            document.getElementById('timeline').dispatchEvent(new MouseEvent('click',
              {clientX: r.left + r.width * 0.75, clientY: r.top + 5, bubbles: true}));""", track)
        assert driver.execute_script("return document.getElementById('player').currentTime") == pytest.approx(9.0, abs=0.2)
        head = driver.execute_script("""const h = document.getElementById('playhead').getBoundingClientRect();
            const r = arguments[0].getBoundingClientRect(); return (h.left - r.left) / r.width;""", track)
        assert head == pytest.approx(0.75, abs=0.02)
        ink = driver.execute_script("""const c = document.getElementById('wave');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (c.width * c.height);""")
        assert 0.05 < ink < 0.95  # the waveform is drawn
        assert driver.execute_script("return document.getElementById('csv').href").endswith("/result.csv")
        driver.save_screenshot(str(tmp_path / "page.png"))
        if os.environ.get("TIMBRESCOPE_SCREENSHOT"):
            shutil.copy(tmp_path / "page.png", SCREENSHOT)
        driver.find_element("id", "query").send_keys("trio")
        driver.find_element("css selector", "#search button").click()
        _wait(driver, "return document.getElementById('entries').textContent.includes('takes/trio.wav')")
        driver.execute_script("document.getElementById('title').textContent = ''")
        driver.find_element("css selector", "#entries a").click()
        _wait(driver, "return document.getElementById('title').textContent === 'takes/trio.wav'")
        assert set(driver.execute_script(LANES)) == set(lanes)
        assert driver.execute_script("return document.getElementById('player').src").endswith("path=takes%2Ftrio.wav")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []


@pytest.mark.browser
def test_the_page_fits_a_phone_and_shows_refusals_in_one_line(server, tmp_path):
    url, _ = server
    (tmp_path / "notes.wav").write_text("not audio at all\n")
    with headless_chromium(390, 844) as driver:
        driver.get(url)
        _wait(driver, "return document.getElementById('model').textContent.includes('instruments')")
        driver.find_element("id", "picker").send_keys(str(tmp_path / "notes.wav"))
        message = _wait(driver, "const e = document.getElementById('error'); return !e.hidden && e.textContent")
        assert message == "notes.wav: not a recording we can decode (a text file, not audio)"
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
