"""Issue 17: the report as a person sees it, in headless Chromium (Debian's ``chromium``, which
``.ci/run`` installs with ``fonts-noto-cjk`` when missing): charts load, Chinese is drawn with a
CJK font, nothing scrolls sideways at 1280 px, and the page prints on A4 without cut tables."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from ali1688spider.__main__ import main

from .browser import CHROMIUM, Browser, file_url, fonts_for
from .crawling import crawl_settings, fresh_ids, run_crawl

pytestmark = pytest.mark.e2e
A4_PX = 794  # 210 mm at 96 px per inch
CJK_FONTS = ("CJK", "WenQuanYi", "Droid Sans Fallback", "AR PL")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CHROMIUM is None:
        pytest.skip("no Chromium (Debian's chromium package) on this machine: the report was not checked in a "
                    "browser; .ci/run installs it")
    return tmp_path_factory.mktemp("browser") / "report.html"


@pytest_twisted.ensureDeferred
async def test_the_report_in_chromium(report: Path, emulator_factory: Any, database: Any) -> None:
    """A report of two crawls with prices drifting between them, opened in Chromium."""
    emulator = emulator_factory()
    uri, name, _ = database
    ids = ",".join(fresh_ids(60))
    settings = crawl_settings(emulator.url, uri, name)
    await run_crawl(settings, ids=ids)
    emulator.post("/_sandbox/epoch", {"epoch": 1})
    await run_crawl(settings, ids=ids)
    assert main(["report", "--mongo-uri", uri, "--database", name, "--out", str(report)]) == 0

    with Browser(1280, 900) as browser:
        browser.open(file_url(report))
        images = browser.evaluate("[...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        assert len(images) >= 2 and all(ok for _, ok in images), images  # no broken chart
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        chinese = browser.evaluate(
            "(() => { const e = [...document.querySelectorAll('td')].find(c => /[\\u4e00-\\u9fff]/.test(c.textContent)"
            " && c.children.length === 0); if (e) e.setAttribute('data-cjk', ''); return e && e.textContent; })()")
        assert chinese, "no Chinese subject in the report"
        fonts = fonts_for(browser, "[data-cjk]")
        if not any(mark in font for font in fonts for mark in CJK_FONTS):
            pytest.fail(f"{chinese!r} drawn with {fonts}: no CJK font (install fonts-noto-cjk), so tofu boxes")

        browser.call("Emulation.setEmulatedMedia", session=True, media="print")
        browser.call("Emulation.setDeviceMetricsOverride", session=True, width=A4_PX, height=1123,
                     deviceScaleFactor=1, mobile=False)
        widest = browser.evaluate(
            "Math.max(document.documentElement.scrollWidth, "
            "...[...document.querySelectorAll('table, figure')].map(t => t.getBoundingClientRect().right))")
        assert widest <= A4_PX, f"a table or chart is cut on A4: {widest} px of {A4_PX}"
        pdf = base64.b64decode(browser.call("Page.printToPDF", session=True, paperWidth=8.27, paperHeight=11.69,
                                            preferCSSPageSize=True)["data"])
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
