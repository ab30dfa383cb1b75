"""The demo page in a real headless Chromium: load the sample, like an item, see the list move.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Where they
are missing the test is skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

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


def test_a_like_changes_the_list(
    browser: WebDriver, deployment: Deployment, tmp_path: Path
) -> None:
    browser.get(f"{deployment.api}/?collector={deployment.collector}")
    assert browser.title == "recsys demo"

    browser.find_element(By.ID, "load-sample").click()
    status = browser.find_element(By.ID, "catalogue-status")
    wait_for(lambda: "items in the catalogue" in status.text, 20, f"sample loaded: {status.text}")
    assert "64 items" in status.text
    wait_for(
        lambda: httpx.get(f"{deployment.api}/model").status_code == 200,
        60,
        "a model trained on the sample feedback\n" + deployment.logs(),
    )

    user = browser.find_element(By.ID, "user-id")
    user.clear()
    user.send_keys("browser-user")
    before_generation = generation(browser)
    browser.find_element(By.ID, "refresh").click()
    wait_for(lambda: generation(browser) > before_generation, 10, "the first list")
    before = listed(browser)
    assert len(before) == 8
    assert all(title.startswith("The ") for _, _, title in before), before  # titles shown
    assert {source for _, source, _ in before} <= {"popular", "exploration"}, before  # cold
    version = browser.find_element(By.ID, "model-version").text
    assert version == httpx.get(f"{deployment.api}/model").json()["version"]

    liked_id = before[0][0]
    shown_generation = generation(browser)
    browser.find_element(By.CSS_SELECTOR, "#recs li:first-child button.like").click()
    wait_for(lambda: generation(browser) > shown_generation, 10, "the list after the like")
    after = listed(browser)

    assert liked_id not in {item for item, _, _ in after}
    assert [item for item, _, _ in after] != [item for item, _, _ in before]
    # The like made the user known: the trained model now fills part of the list.
    assert "model" in {source for _, source, _ in after}, after
    assert before[0][2] in browser.find_element(By.ID, "ratings").text

    screenshot = tmp_path / "demo-page.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
