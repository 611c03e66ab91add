"""What the sweep's end-to-end tests share: a tiny training override and a headless browser."""

import shutil
import tempfile

import pytest

# Two steps on small batches: enough to write every file a run writes.
SMALL = (
    "config.runner.total_steps=2,,config.downstream_expert.datarc.train_batch_size=4,,"
    "config.downstream_expert.datarc.eval_batch_size=12"
)


def chromium():
    """Headless Chromium through selenium, and its profile folder; skips, saying why, without them."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("chromium and chromedriver are not installed (make system-deps)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run")
    for flag in (*flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options), profile
