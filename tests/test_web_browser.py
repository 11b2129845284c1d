"""The web view in a real browser: Debian's chromium driven by Playwright
(pointed at /usr/bin/chromium: nothing downloads a browser), over a real
uvicorn server and store. Renders the list, filters and searches it, opens a
hit and sees its evidence marked, marks it noise and finds the verdict in the
store; screenshots go to the test's tmp_path. Skipped without chromium or
Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webview import ENTRIES, Client, fill, serving, write_config

from monitor.store import Store

pytestmark = pytest.mark.slow  # starts a browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium (Debian's package) to drive")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[Client, str]]:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    fill(url)
    with serving(write_config(tmp_path, url)) as client:
        yield client, url


def test_a_desk_browses_searches_and_marks_noise(browser: Any, web: tuple[Client, str],
                                                 tmp_path: Path) -> None:
    client, url = web
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(client.base + "/")
    assert page.locator("li.hit").count() == len(ENTRIES)
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)

    page.select_option("select[name=rule]", "cpc-disruption")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**rule=cpc-disruption**")
    assert page.locator("li.hit").count() == 3

    page.fill("input[name=q]", "storm")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**q=storm**")
    assert page.locator("li.hit").count() == 1
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

    page.click("li.hit a.title")
    page.wait_for_url("**/hits/*")
    marks = page.locator("article mark").all_inner_texts()
    assert "Caspian" in marks and "Moorings" in marks
    hit_id = int(page.url.rsplit("/", 1)[1])

    page.click("button.noise")  # htmx posts it and swaps the section in place
    page.locator("#feedback .now .verdict.noise").wait_for()
    page.screenshot(path=str(tmp_path / "hit.png"), full_page=True)
    store = Store.open(url)
    try:
        assert store.get_hit(hit_id).feedback == "noise"  # type: ignore[union-attr]
        assert [v for v, _, _ in store.feedback_history(hit_id)] == ["noise"]
    finally:
        store.close()

    page.goto(client.base + "/rules/cpc-disruption")
    assert "0%" in page.locator(".precision").inner_text()
    page.fill("input[name=title]", "КТК приостановил отгрузку нефти")
    page.click("button:has-text('Test')")
    page.locator("#explain pre").wait_for()
    assert page.locator("#explain pre").inner_text().startswith("MATCH cpc-disruption")
    page.screenshot(path=str(tmp_path / "rule.png"), full_page=True)
    assert errors == []
    for name in ("list", "search", "hit", "rule"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000


def test_a_hostile_title_runs_nothing_in_the_browser(browser: Any,
                                                     web: tuple[Client, str]) -> None:
    client, _ = web
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(client.base + "/?q=alert")
    title = page.locator("li.hit a.title").inner_text()
    assert "<script>" in title  # shown as text
    page.click("li.hit a.title")
    page.wait_for_url("**/hits/*")
    assert page.locator("a.out").count() == 0  # a javascript: link is no link
    assert page.evaluate("document.querySelectorAll('article script, article img').length") == 0
    assert dialogs == []


def test_an_operator_previews_a_silence_then_adds_it(browser: Any,
                                                     web: tuple[Client, str],
                                                     tmp_path: Path) -> None:
    client, url = web
    page = browser.new_page()
    page.goto(client.base + "/silences")
    page.select_option("select[name=rule]", "cpc-disruption")  # htmx asks for the preview
    page.locator("#preview .preview").wait_for()
    assert "would have muted 3 hits of cpc-disruption" in page.locator("#preview").inner_text()
    page.fill("input[name=reason]", "storm week")
    page.click("button:has-text('Silence')")
    page.wait_for_url("**/silences")
    assert "storm week" in page.locator("table").inner_text()
    page.screenshot(path=str(tmp_path / "silences.png"), full_page=True)
    store = Store.open(url)
    try:
        assert [(s.rule_id, s.reason) for s in store.list_silences()] == [
            ("cpc-disruption", "storm week")]
    finally:
        store.close()
