"""The HTML report opens in a real browser (headless Chromium): table and images render, no errors.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package (dev extra);
it drives the system browser, nothing is downloaded.
"""

import json
import shutil

import pytest

from genzoo.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "digits", "--models", "vae,edm", "--steps", "20", "--n", "200"]
    assert main([*args, "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        loaded = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
        cells = page.evaluate(
            "[...document.querySelectorAll('tbody tr')].map(r => r.cells[1].innerText)"
        )
        visible = page.evaluate("document.querySelector('table').getBoundingClientRect().height")
        browser.close()
    assert errors == []
    assert len(loaded) == len(rows) + 1 and all(loaded)  # one plot and one grid per model
    assert cells == [r["model"] for r in rows]
    assert visible > 50
