"""Headless Chromium (Debian's, through its chromedriver) for the tests that look at a page."""

import contextlib
import os
import shutil
import tempfile

import pytest


@contextlib.contextmanager
def headless_chromium(width: int = 1200, height: int = 1000):
    """A Selenium driver of headless Chromium with a ``width`` x ``height`` window and its browser log kept, quit
    on leaving. The browser's temporary files (profile, sockets) go to a folder of their own, removed on leaving:
    in the machine's temporary folder each run would leave an ``org.chromium.Chromium.*`` folder behind (the
    folder's path stays short, as Chromium's socket paths must). Skips without Selenium."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    temp = tempfile.mkdtemp(prefix="chromium-")
    try:
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver"), env={**os.environ, "TMPDIR": temp}),
                                  options=options)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(temp, ignore_errors=True)
