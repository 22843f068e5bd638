"""The running service and one headless Chromium (Debian's package, driven by Playwright) for the page tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from ..api.conftest import PASSWORD
from ..api.conftest import service  # noqa: F401 - the running service, shared with the API tests

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest_asyncio.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        await b.close()


async def signed_in(browser: Browser, service, username: str, phone: bool = False) -> Page:
    context = await browser.new_context(viewport={"width": 390, "height": 844} if phone else {"width": 1200, "height": 900},
                                        base_url=service.base_url)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return page
