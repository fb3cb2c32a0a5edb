"""report.html of a small sweep, opened in a real headless Chromium as a person would: every image decoded, no
console error, no request outside the file, every architecture and problem named, no page wider than the window,
every contents link lands, light and dark both set; full-page screenshots saved under the test's tmp dir.

Needs a Chromium (`tests/install-browser.sh`, the first step of the README's test command, installs Debian's) and
the `playwright` package (dev extra), which drives that binary and downloads no browser of its own. Without them
the test fails and says how to install them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_report import CONFIG, ENVIRONMENT, sweep_frames

INSTALL_CHROMIUM = "sh tests/install-browser.sh"
# where macOS keeps the browsers that script accepts (Homebrew's cask, Google Chrome)
MACOS_BROWSERS = ("/Applications/Chromium.app/Contents/MacOS/Chromium",
                  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
# quiet and local: no component updates, sync, first-run or background traffic (the network is closed here)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# slow: it starts a browser (the fast tier, `pytest -m "not slow"`, leaves it out)
pytestmark = pytest.mark.slow

ARCHS = ("rnn_tanh", "gru", "lstm", "mingru")
PROBLEMS = {"adding": [10, 50], "sequential_xor": [10], "copy_memory": [10]}


def chromium() -> str:
    path = (os.environ.get("RNNBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
            or next((app for app in MACOS_BROWSERS if os.access(app, os.X_OK)), None))
    if not path:
        pytest.fail(f"Chromium is not installed; install it with: {INSTALL_CHROMIUM} "
                    "(or set RNNBENCH_CHROMIUM to a Chromium binary)")
    return path


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    from rnnbench import report

    out = tmp_path_factory.mktemp("report")
    metrics, curves = sweep_frames(archs=ARCHS, lengths=PROBLEMS, lrs=(1e-3, 3e-3))
    built = report.build(metrics, curves, CONFIG, ENVIRONMENT)
    (out / "report.html").write_text(built.html(), encoding="utf-8")
    (out / "report.md").write_text(built.markdown(), encoding="utf-8")
    return out / "report.html"


def test_report_page_in_headless_chromium(page_file, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: .venv/bin/pip install -e '.[dev]' (it drives the system "
                    "Chromium; no browser download)")
    binary = chromium()
    console, page_errors, outside, failed = [], [], [], []
    url = page_file.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(request_route):
                if request_route.request.url.startswith(("file:", "data:")):
                    request_route.continue_()
                else:
                    outside.append(request_route.request.url)
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url[:80]}: {r.failure}"))
            page.goto(url, wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")

            images = page.evaluate("Array.from(document.images).map(i => ({w: i.naturalWidth, h: i.naturalHeight,"
                                   " alt: i.alt.slice(0, 60)}))")
            assert len(images) >= 6
            assert all(i["w"] > 0 and i["h"] > 0 for i in images), [i for i in images if not i["w"]]
            text = page.inner_text("body")
            for name in (*ARCHS, *PROBLEMS):
                assert name in text, name
            for needle in ("Answer", "Findings", "Failed and diverged jobs", "worker died | exit code 137"):
                assert needle in text, needle
            missing = page.evaluate("Array.from(document.querySelectorAll('nav a')).map(a => a.hash.slice(1))"
                                    ".filter(id => !document.getElementById(id))")
            assert missing == []
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # tables fit
            light = page.evaluate("getComputedStyle(document.body).backgroundColor")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

            page.emulate_media(color_scheme="dark")
            dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert light != dark, "no dark style"
            page.screenshot(path=str(tmp_path / "report-dark.png"), full_page=True)

            page.set_viewport_size({"width": 420, "height": 900})
            page.emulate_media(color_scheme="light")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than a phone"
            page.screenshot(path=str(tmp_path / "report-narrow.png"), full_page=False)
        finally:
            browser.close()
    assert outside == [], f"requests outside the file: {outside}"
    assert console == [] and page_errors == [], console + page_errors
    assert failed == []
    for name in ("report.png", "report-dark.png", "report-narrow.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")
