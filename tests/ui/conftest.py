"""Browser tests of the lab's Horizon and os-onboard's Onboarding panels (issue 16).

Playwright drives Debian's Chromium (``/usr/bin/chromium``, installed by the
lab: lab/lib/horizon.sh), never a browser of its own. Every page a test visits
is saved as a PNG in build/screenshots/ (emptied at the start of a session),
and any error the browser's console logs, or an uncaught script error, fails
the test that caused it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.lab import REPO, lab_env

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="make test-ui installs playwright")

SHOTS = REPO / "build" / "screenshots"
CHROMIUM = os.environ.get("OS_ONBOARD_UI_CHROMIUM", "/usr/bin/chromium")
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 420, "height": 800}


@pytest.fixture(scope="session")
def lab() -> dict[str, str]:
    env = lab_env()
    if not env.get("LAB_HORIZON_URL"):
        pytest.fail("the lab has no Horizon (lab/lab env: no LAB_HORIZON_URL); run make lab-up")
    return env


@pytest.fixture(scope="session")
def shots() -> Path:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (lab/lab up installs Debian's chromium)")
    with playwright_api.sync_playwright() as pw:
        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


class Ui:
    """One logged-in browser window: pages visited are screenshotted and their
    console errors collected."""

    count = 0

    def __init__(self, browser: Any, lab: dict[str, str], shots: Path, viewport: dict[str, int],
                 tag: str) -> None:
        self.lab, self.shots, self.tag = lab, shots, tag
        self.base = lab["LAB_HORIZON_URL"].rstrip("/")
        self.context = browser.new_context(viewport=viewport)
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({self.page.url})")

    def shot(self, name: str) -> Path:
        Ui.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
        path = self.shots / f"{Ui.count:02d}-{self.tag}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def go(self, path: str, name: str) -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        self.shot(name)
        return self.page

    def submit(self, selector: str) -> None:
        """Click what submits a form (or follows a link) and wait for the page it loads."""
        with self.page.expect_navigation():
            self.page.click(selector)
        self.page.wait_for_load_state("networkidle")

    def confirm_danger(self, button: Any) -> None:
        """A destructive button: Horizon asks for confirmation in a modal first."""
        button.click()
        confirm = self.page.locator("#modal_wrapper .modal-footer .btn-danger")
        confirm.wait_for()
        self.shot("confirm")
        with self.page.expect_navigation():
            confirm.click()
        self.page.wait_for_load_state("networkidle")

    def login(self) -> None:
        """With the keyboard, as a person would: type, Tab, type, Enter."""
        page = self.page
        page.goto(self.base + "/auth/login/")
        self.shot("login")
        page.locator("#id_username").fill(self.lab["LAB_HORIZON_USER"])
        page.keyboard.press("Tab")
        page.keyboard.type(self.lab["LAB_HORIZON_PASSWORD"])
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/(project|admin|identity)/.*"))
        page.wait_for_load_state("networkidle")
        self.shot("after-login")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def ui(browser: Any, lab: dict[str, str], shots: Path) -> Iterator[Ui]:
    u = Ui(browser, lab, shots, WIDE, "wide")
    u.login()
    yield u
    u.close()
    assert not u.errors, "browser console errors:\n" + "\n".join(u.errors)


@pytest.fixture
def narrow_ui(browser: Any, lab: dict[str, str], shots: Path) -> Iterator[Ui]:
    u = Ui(browser, lab, shots, NARROW, "narrow")
    u.login()
    yield u
    u.close()
    assert not u.errors, "browser console errors:\n" + "\n".join(u.errors)
