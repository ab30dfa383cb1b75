"""The demo page in a real headless Chromium, on non-default ports: load the sample, like
items, see the list move toward them, reset.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Where they
are missing the test is skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from services.common.settings import Settings
from tests.e2e.processes import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.backends("embedded")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        message = (
            "Chromium not installed (need `chromium` and `chromium-driver`: "
            "apt-get install -y chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the browser test")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",  # root in CI containers
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,1300",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for[T](probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def listed(driver: WebDriver) -> list[tuple[str, str, str]]:
    """(item id, source, title) of each recommendation on the page."""
    return [
        (
            str(li.get_attribute("data-item-id")),
            str(li.get_attribute("data-source")),
            li.find_element(By.CLASS_NAME, "title").text,
        )
        for li in driver.find_elements(By.CSS_SELECTOR, "#recs li")
    ]


def generation(driver: WebDriver) -> int:
    return int(driver.find_element(By.ID, "recs").get_attribute("data-generation") or 0)


def genres_of(driver: WebDriver) -> list[list[str]]:
    """The genres of each listed recommendation, as the page shows them."""
    return [
        [g for g in li.find_element(By.CLASS_NAME, "genres").text.split(", ") if g]
        for li in driver.find_elements(By.CSS_SELECTOR, "#recs li")
    ]


def load_sample(browser: WebDriver, deployment: Deployment) -> None:
    """Open the page as a newcomer would (no ?collector=) and load the sample."""
    browser.get(f"{deployment.api}/")
    assert browser.title == "recsys demo"
    # The page asked the api where the collector is: not port 5000, the instance's own.
    collector = browser.find_element(By.ID, "collector-url")
    wait_for(lambda: collector.get_attribute("value"), 10, "the collector address")
    assert collector.get_attribute("value") == deployment.collector
    assert deployment.collector_port != 5000
    browser.find_element(By.ID, "load-sample").click()
    status = browser.find_element(By.ID, "catalogue-status")
    wait_for(lambda: "items in the catalogue" in status.text, 30, f"sample loaded: {status.text}")
    assert "320 items" in status.text and "80 sample users" in status.text


def show_list(browser: WebDriver, user_id: str) -> None:
    user = browser.find_element(By.ID, "user-id")
    user.clear()
    user.send_keys(user_id)
    before = generation(browser)
    browser.find_element(By.ID, "refresh").click()
    wait_for(lambda: generation(browser) > before, 10, "a list")


def test_a_like_changes_the_list(
    browser: WebDriver, deployment: Deployment, tmp_path: Path
) -> None:
    load_sample(browser, deployment)
    wait_for(
        lambda: httpx.get(f"{deployment.api}/model").status_code == 200,
        60,
        "a model trained on the sample feedback\n" + deployment.logs(),
    )
    show_list(browser, "browser-user")
    before = listed(browser)
    assert len(before) == 8
    assert all(title.startswith("The ") for _, _, title in before), before  # titles shown
    assert {source for _, source, _ in before} <= {"popular", "exploration"}, before  # cold
    version = browser.find_element(By.ID, "model-version").text
    assert version == httpx.get(f"{deployment.api}/model").json()["version"]
    assert browser.find_element(By.ID, "ratings-hint").is_displayed()

    liked_id = before[0][0]
    shown_generation = generation(browser)
    browser.find_element(By.CSS_SELECTOR, "#recs li:first-child button.like").click()
    wait_for(lambda: generation(browser) > shown_generation, 10, "the list after the like")
    after = listed(browser)

    assert liked_id not in {item for item, _, _ in after}
    assert [item for item, _, _ in after] != [item for item, _, _ in before]
    # The like reached this instance's collector and made the user known: personal picks
    # (live co-likes, the model) now fill part of the list.
    assert "model" in {source for _, source, _ in after}, after
    assert before[0][2] in browser.find_element(By.ID, "ratings").text
    assert not browser.find_element(By.ID, "ratings-hint").is_displayed()

    # A return visit: the same user's ratings and a fresh list at once, no blank panels.
    browser.get(f"{deployment.api}/")
    wait_for(lambda: listed(browser), 10, "the list on a return visit")
    assert "welcome back, browser-user" in browser.find_element(By.ID, "recs-note").text
    assert before[0][2] in browser.find_element(By.ID, "ratings").text

    screenshot = tmp_path / "demo-page.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000


def test_the_collector_address_may_be_relative_to_the_page(
    browser: WebDriver, settings: Settings, tmp_path: Path
) -> None:
    """RECSYS_DEMO_COLLECTOR_ADDRESS is resolved against the page, as "/" is behind an Ingress
    (here a scheme-relative URL, the same resolution without a proxy)."""
    deployment = Deployment(settings, tmp_path)
    deployment.extra_env["RECSYS_DEMO_COLLECTOR_ADDRESS"] = (
        f"//127.0.0.1:{deployment.collector_port}/"
    )
    deployment.start_all()
    try:
        browser.get(f"{deployment.api}/")
        collector = browser.find_element(By.ID, "collector-url")
        wait_for(lambda: collector.get_attribute("value"), 10, "the collector address")
        assert collector.get_attribute("value") == deployment.collector
        items = {"item_ids": ["a", "b", "c"], "titles": ["The A", "The B", "The C"]}
        assert httpx.post(f"{deployment.api}/add_items", json=items).status_code == 200
        show_list(browser, "relative")
        shown = generation(browser)
        browser.find_element(By.CSS_SELECTOR, "#recs li:first-child button.like").click()
        wait_for(lambda: generation(browser) > shown, 10, "the list after the like")
        assert "feedback failed" not in browser.find_element(By.ID, "recs-status").text
        assert "liked" in browser.find_element(By.ID, "ratings").text  # the collector took it
    finally:
        deployment.stop_all()


# Genre shares in the sample: 40 of 320 films per first genre, and every third film of the
# previous genre has it second, so about 1 film in 6 carries any one genre.
GENRE_SHARE = (40 + 14) / 320


def test_three_likes_of_a_genre_lean_the_next_lists_toward_it(
    browser: WebDriver, deployment: Deployment
) -> None:
    load_sample(browser, deployment)
    show_list(browser, "genre-fan")
    first = genres_of(browser)
    # Films are liked for their first genre: a Comedy tagged Thriller second, liked as a
    # Thriller, rightly leans the lists toward Comedy (seen: 4 Thriller of 16, 12 Comedy).
    genre = Counter(item[0] for item in first if item).most_common(1)[0][0]
    likes = 0
    while likes < 3:
        shown = generation(browser)
        buttons = [
            li.find_element(By.CSS_SELECTOR, "button.like")
            for li, genres in zip(
                browser.find_elements(By.CSS_SELECTOR, "#recs li"), genres_of(browser), strict=True
            )
            if genres[:1] == [genre]
        ]
        (buttons[0] if buttons else browser.find_element(By.ID, "refresh")).click()
        likes += bool(buttons)
        wait_for(lambda: generation(browser) > shown, 10, "the list after a like")  # noqa: B023
    after_likes = genres_of(browser)
    shown = generation(browser)
    browser.find_element(By.ID, "refresh").click()
    wait_for(lambda: generation(browser) > shown, 10, "the list after that")
    lists = after_likes + genres_of(browser)
    of_genre = sum(genre in genres for genres in lists)
    # Measured over 64 users with this sample (with and without a model): 7 to 11 of the
    # 16, 4 to 7 of the first 8; the catalogue share would give about 2.7. At least twice
    # that share, with a margin below the lowest measured.
    assert len(lists) == 16
    assert of_genre >= 2 * GENRE_SHARE * len(lists), (genre, of_genre, lists)


def test_reset_wipes_the_instance_and_starts_a_new_user(
    browser: WebDriver, deployment: Deployment
) -> None:
    load_sample(browser, deployment)
    show_list(browser, "before-reset")
    shown = generation(browser)
    browser.find_element(By.CSS_SELECTOR, "#recs li:first-child button.like").click()
    wait_for(lambda: generation(browser) > shown, 10, "the list after the like")
    assert browser.find_element(By.ID, "ratings").text
    before_reset = generation(browser)
    browser.find_element(By.ID, "reset").click()
    status = browser.find_element(By.ID, "catalogue-status")
    wait_for(lambda: "320 items in the catalogue" in status.text, 30, "the sample reloaded")
    wait_for(lambda: generation(browser) > before_reset, 10, "a list for the new user")
    assert listed(browser)
    assert browser.find_element(By.ID, "user-id").get_attribute("value") != "before-reset"
    assert browser.find_element(By.ID, "ratings").text == ""
    assert browser.find_element(By.ID, "ratings-hint").is_displayed()
    # /cleanup wiped the user's history: a fresh list for them has nothing personal.
    sources = httpx.get(f"{deployment.api}/recs/before-reset?explain=true").json()["sources"]
    assert sources and "model" not in sources, sources
