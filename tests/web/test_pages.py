"""The pages in a real headless Chromium: file, approve, confirm, audit; errors shown where they belong."""

from __future__ import annotations

import datetime as dt

from playwright.async_api import Page

from workflows.application import CHINA

from .conftest import ARTIFACTS, signed_in

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()


async def act_on(page: Page, app_url: str, button: str) -> None:
    await page.goto(app_url)
    async with page.expect_navigation():
        await page.click(f"section.action button[value={button}]")


async def test_whole_path_in_a_browser(browser, service):
    applicant = await signed_in(browser, service, "alice", phone=True)
    await applicant.goto("/apply")
    await applicant.select_option("#benefit", "wedding")
    info = await applicant.text_content("#benefit-info")
    assert "500.00" in info and "慰问品" in info and "主席" in info  # cap, form and route shown before submitting
    await applicant.fill("#event_date", RECENT)
    await applicant.fill("#requested_yuan", "600")
    await applicant.check("#ev-marriage_certificate")
    await applicant.screenshot(path=ARTIFACTS / "apply-phone.png", full_page=True)
    async with applicant.expect_navigation():
        await applicant.click("#submit")
    assert "/applications/" in applicant.url, await applicant.locator(".field-error, .error").all_text_contents()
    app_url = applicant.url
    assert await applicant.text_content("#status") == "审批中"
    explanation = await applicant.text_content("#explanation")
    assert "wedding.eligible" in explanation and "按上限 500.00 元核定" in explanation
    await applicant.screenshot(path=ARTIFACTS / "application-applicant.png", full_page=True)

    clerk = await signed_in(browser, service, "clerk")
    await clerk.goto("/inbox")
    assert "经办人初审" in await clerk.text_content("main")
    await clerk.screenshot(path=ARTIFACTS / "inbox-clerk.png", full_page=True)
    await act_on(clerk, app_url, "approve")

    chair = await signed_in(browser, service, "chair")
    await chair.goto(app_url)
    assert "主席审批" in await chair.text_content("section.action")
    await chair.screenshot(path=ARTIFACTS / "application-chair.png", full_page=True)
    await act_on(chair, app_url, "approve")
    await chair.reload()
    for _ in range(50):  # payment follows approval in the workflow
        if await clerk.goto(app_url) and "签领确认" in (await clerk.text_content("main")):
            break
        await clerk.wait_for_timeout(200)
    await act_on(clerk, app_url, "approve")

    auditor = await signed_in(browser, service, "auditor")
    app_id = app_url.rsplit("/", 1)[1]
    await auditor.goto(f"/audit?application_id={app_id}")
    story = await auditor.text_content("#timeline")
    assert "提交" in story and "wedding.eligible" in story and "chair 同意" in story and "发放 500.00 元" in story
    await auditor.screenshot(path=ARTIFACTS / "audit-timeline.png", full_page=True)
    await auditor.goto(f"/audit?application_id={app_id}&lang=en")
    assert "filed" in await auditor.text_content("#timeline")


async def test_validation_error_next_to_its_field(browser, service):
    page = await signed_in(browser, service, "clerk", phone=True)
    await page.goto("/apply")
    await page.select_option("#benefit", "hospitalization")
    await page.fill("#event_date", RECENT)
    await page.fill("#requested_yuan", "一千")
    async with page.expect_navigation():
        await page.click("#submit")
    error = page.locator("#requested_yuan-error")
    assert await error.is_visible()
    box, field = await error.bounding_box(), await page.locator("#requested_yuan").bounding_box()
    assert 0 <= box["y"] - (field["y"] + field["height"]) < 40  # right under the field it is about
    assert await page.input_value("#requested_yuan") == "一千"  # what was typed is kept
    await page.screenshot(path=ARTIFACTS / "apply-validation-error.png", full_page=True)


async def test_approver_refused_on_their_own_application(browser, service):
    chair = await signed_in(browser, service, "chair")
    await chair.goto("/apply")
    await chair.select_option("#benefit", "wedding")
    await chair.fill("#event_date", RECENT)
    await chair.fill("#requested_yuan", "500")
    await chair.check("#ev-marriage_certificate")
    async with chair.expect_navigation():
        await chair.click("#submit")
    assert "/applications/" in chair.url, await chair.locator(".field-error, .error").all_text_contents()
    app_url = chair.url
    clerk = await signed_in(browser, service, "clerk")
    await act_on(clerk, app_url, "approve")
    await chair.goto(app_url)
    async with chair.expect_navigation():
        await chair.click("section.action button[value=approve]")
    error = await chair.text_content("#action-error")
    assert "本人" in error
    await chair.screenshot(path=ARTIFACTS / "refused-own-application.png", full_page=True)


async def test_chair_signs_off_a_months_gifts_in_one_click(browser, service):
    from service import gifts

    # Birthdays of the test union fall from February to October: take this year's March gifts.
    year = dt.datetime.now(CHINA).year
    recorded = gifts.record_gifts(service.engine, dt.date(year, 3, 1), dt.date(year, 3, 31), org_id=service.world.org_id)
    assert recorded.created and all(inp.batch == f"{year}-03" for inp in recorded.created)
    for inp in recorded.created:
        await service.client.start_workflow("ApplicationWorkflow", inp, id=inp.application_id, task_queue=service.task_queue)
    chair = await signed_in(browser, service, "chair")
    for _ in range(100):
        await chair.goto("/inbox")
        if await chair.locator(f"#sign-off-{year}-03").count():
            break
        await chair.wait_for_timeout(100)
    assert f"{year}-03 · {len(recorded.created)}" in await chair.text_content("#batches")
    await chair.screenshot(path=ARTIFACTS / "inbox-chair-batch.png", full_page=True)
    async with chair.expect_navigation():
        await chair.click(f"#sign-off-{year}-03")
    result = await chair.text_content("#batch-result")
    assert f"已签发 {len(recorded.created)}" in result
    clerk = await signed_in(browser, service, "clerk")
    await clerk.goto("/inbox")
    assert "签领确认" in await clerk.text_content("main")  # paid, waiting for the signed receipts
