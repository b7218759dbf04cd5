"""The chat page in a real headless Chromium (Debian's package, driven by Playwright): type, watch the
reply stream in, stop one, regenerate, clear; and it fits a phone's width.

Set AUTHORBOT_SCREENSHOTS=DIR to keep the screenshots (the README's picture comes from here)."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import API_KEY, ENDLESS

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [  # as root, offline: no sandbox, no background calls to the network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("the page test needs Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("AUTHORBOT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def endless(route) -> None:
    """Ban the end of turn in the page's requests, so a reply runs as long as the page's max new tokens."""
    body = json.loads(route.request.post_data) | {"logit_bias": ENDLESS}
    route.continue_(post_data=json.dumps(body))


# Records the length of the last reply at every change of the page, however fast the replies come.
WATCH = """window.seen = [];
new MutationObserver(() => {
  const reply = [...document.querySelectorAll('.msg.assistant')].at(-1);
  if (reply) window.seen.push(reply.textContent.length);
}).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});"""


# Clicks Stop the moment the streaming reply passes 10 characters, noting whether Stop was enabled then.
STOP_MID_STREAM = """new MutationObserver((_, watcher) => {
  const reply = document.querySelector('.msg.assistant.streaming');
  if (reply && reply.textContent.length > 10) {
    watcher.disconnect();
    const stop = document.getElementById('stop');
    window.stopWasEnabled = !stop.disabled;
    stop.click();
  }
}).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});"""


def bot_texts(page) -> list[str]:
    return page.locator(".msg.assistant").all_inner_texts()


def test_the_page_streams_a_reply_stops_one_and_clears(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(server.url)
    page.wait_for_function("document.getElementById('model').textContent.includes('austen')")
    page.route("**/v1/chat/completions", endless)
    page.evaluate(WATCH)
    page.click("summary")  # the sampling settings, where the page asks for the server's API key
    page.fill("#api_key", API_KEY)
    page.fill("#max_tokens", "40")
    page.fill("#input", "Good morning, Miss Bennet. Shall we walk to Meryton?")
    page.keyboard.press("Enter")

    # The reply grows on the page while it is sampled, then stands alone, and the buttons come back.
    page.wait_for_selector(".msg.assistant:not(.streaming)", timeout=60_000)
    lengths = set(page.evaluate("window.seen"))
    assert len(lengths - {0}) >= 5, lengths  # seen part-way many times, not only whole
    first = bot_texts(page)[-1]
    assert first.strip() and page.locator(".msg.user").all_inner_texts()[0].startswith("Good morning")
    assert page.is_enabled("#send") and page.is_disabled("#stop") and page.is_enabled("#regenerate")

    # Regenerate replaces the last reply; Stop ends one mid-stream. The page clicks Stop itself as soon as
    # the reply passes 10 characters: a click from here can come after a quick machine's whole reply.
    cancelled = server.health()["cancelled"]
    page.fill("#max_tokens", "200")
    page.evaluate(STOP_MID_STREAM)
    page.click("#regenerate")
    page.wait_for_selector(".msg.assistant .why")
    assert page.evaluate("window.stopWasEnabled") is True
    page.screenshot(path=str(shots(tmp_path) / "chat-page.png"))
    assert page.locator(".msg.assistant").count() == 1 and "(stopped)" in bot_texts(page)[0]
    deadline = time.monotonic() + 30
    while server.health()["cancelled"] == cancelled:  # the server stopped sampling for the page
        assert time.monotonic() < deadline
        time.sleep(0.1)

    page.click("#clear")
    assert page.locator(".msg").count() == 0 and page.is_visible("#empty")
    page.close()


def test_the_page_fits_a_phone(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 760}, is_mobile=True)
    page.goto(server.url)
    page.wait_for_function("document.getElementById('model').textContent.includes('austen')")
    page.click("summary")
    page.fill("#api_key", API_KEY)
    page.fill("#input", "What do you think of our new neighbours?")
    page.click("#send")
    page.wait_for_selector(".msg.assistant:not(.streaming)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#send").bounding_box()["x"] + page.locator("#send").bounding_box()["width"] <= 390
    page.screenshot(path=str(shots(tmp_path) / "chat-page-phone.png"))
    page.close()
