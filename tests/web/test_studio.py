"""The admin studio (issue 16) in a real browser (Debian's Chromium): edit, see the
problems and the diff, try a message on draft and live, measure, publish, roll back;
what customers then get; who may reach it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from bot.models import ConsoleRole
from tests.web.harness import PASSWORD, WebDesk, http_session, sign_in, web_settings

QUESTION = "qual o horário de atendimento?"
NEW_ANSWER = "Agora atendemos todos os dias, das 7h às 22h."
ROOT = Path(__file__).resolve().parents[2]


async def admin(browser: Browser, desk: WebDesk, login: str = "root") -> Page:
    page = await browser.new_page(locale="en-US")
    await sign_in(page, desk.url, login)
    return page


async def edit_answer(page: Page, desk: WebDesk, entry: str, text: str) -> None:
    await page.goto(f"{desk.url}/studio/kb/entry/{entry}")
    await page.locator("#answer-pt-BR").fill(text)
    await page.locator("#save-entry").click()
    await expect(page.locator("#flash")).to_have_text("Saved to your draft.")


async def test_admin_edits_a_kb_answer_sees_the_diff_and_publishes(
    desk: WebDesk, browser: Browser
) -> None:
    page = await admin(browser, desk)
    await page.get_by_role("link", name="Studio").click()
    await expect(page.locator("#live-version")).to_contain_text("version 1")
    await page.goto(f"{desk.url}/studio/kb?q=horário")
    await expect(page.locator("#entries tr[data-entry='opening_hours']")).to_be_visible()
    await expect(page.locator("#entries tr[data-entry='password_reset']")).to_have_count(0)
    await page.locator("#entries a", has_text="opening_hours").click()
    await page.locator("#answer-pt-BR").fill(NEW_ANSWER)
    await page.locator("#save-entry").click()
    await expect(page.locator("#flash")).to_have_text("Saved to your draft.")
    # Not live yet: the customer still gets the old answer.
    await desk.phone.write("+5511900000010", QUESTION)
    assert "segunda a sexta" in desk.phone.texts("+5511900000010")[0]

    await page.get_by_role("link", name="Diff").click()
    await expect(page.locator("#changes")).to_have_text("kb entry 'opening_hours' changed")
    added = page.locator("section[data-file='kb/contact.toml'] pre.diff span.add")
    await expect(added).to_contain_text(NEW_ANSWER)
    await expect(page.locator("section[data-file='kb/contact.toml'] span.del")).to_contain_text(
        "segunda a sexta"
    )
    await page.get_by_role("link", name="Draft", exact=True).click()
    await expect(page.locator("#valid")).to_be_visible()
    await page.locator("#publish-message").fill("Opening hours: every day")
    await page.locator("#publish-button").click()
    await expect(page.locator("#flash")).to_have_text("Version 2 is live.")
    await expect(page.locator("#live-version")).to_contain_text("Opening hours: every day")

    await desk.phone.write("+5511900000011", QUESTION)
    assert desk.phone.texts("+5511900000011")[0] == NEW_ANSWER
    version = await desk.store.content_version(2)
    assert version is not None and version.author == "root"
    assert version.changes == ("kb entry 'opening_hours' changed",)


async def test_a_rule_with_an_unknown_tier_is_shown_inline_and_nothing_is_published(
    desk: WebDesk, browser: Browser
) -> None:
    page = await admin(browser, desk)
    await page.goto(f"{desk.url}/studio/routing")
    await page.locator("#rule-1-tier").fill("N9")
    await page.locator("#rule-1-save").click()
    await expect(page.locator("#flash")).to_have_text("Saved to your draft.")
    problems = page.locator("#rule-1-problems")
    await expect(problems).to_contain_text("rule[1] 'security-incident'.tier")
    await expect(problems).to_contain_text("unknown tier 'N9'")
    await page.goto(f"{desk.url}/studio")
    await expect(page.locator("#problems")).to_contain_text("routing.toml")
    await expect(page.locator("#publish-button")).to_be_disabled()
    # The server refuses too, whatever the page allowed.
    session, token = await http_session(desk.url, "root")
    async with (
        session,
        session.post(
            f"{desk.url}/studio/publish", data={"csrf": token, "message": "tier N9"}
        ) as response,
    ):
        assert response.status == 200
        assert "Não publicado: o rascunho tem problemas." in await response.text()
    assert await desk.store.live_content_version() == 1
    await desk.phone.write("+5511900000020", "fui hackeado, vazamento de dados")
    ticket = await desk.escala.edge.current_ticket("phone", "+5511900000020")
    assert ticket is not None and ticket.tier == "N3"


async def test_rollback_restores_the_earlier_answer(desk: WebDesk, browser: Browser) -> None:
    page = await admin(browser, desk)
    await edit_answer(page, desk, "opening_hours", NEW_ANSWER)
    await page.goto(f"{desk.url}/studio")
    await page.locator("#publish-message").fill("every day")
    await page.locator("#publish-button").click()
    await expect(page.locator("#flash")).to_have_text("Version 2 is live.")
    await desk.phone.write("+5511900000030", QUESTION)
    assert desk.phone.texts("+5511900000030")[0] == NEW_ANSWER

    await page.get_by_role("link", name="History").click()
    await page.locator("#versions tr[data-version='1'] button.rollback").click()
    await expect(page.locator("#flash")).to_have_text("Version 1 restored as version 3.")
    await expect(page.locator("#versions tr[data-version='3']")).to_contain_text(
        "rollback to version 1"
    )
    await expect(page.locator("#audit")).to_contain_text("content.rolled_back")
    await expect(page.locator("#audit")).to_contain_text("content.published")
    await desk.phone.write("+5511900000031", QUESTION)
    assert "segunda a sexta" in desk.phone.texts("+5511900000031")[0]


async def test_agents_and_supervisors_cannot_reach_the_studio(
    desk: WebDesk, browser: Browser
) -> None:
    for login in ("ana", "sam"):
        session, token = await http_session(desk.url, login)
        async with session:
            for path in ("/studio", "/studio/kb", "/studio/try?text=oi", "/studio/history"):
                async with session.get(f"{desk.url}{path}") as response:
                    assert response.status == 403, path
            for path in (
                "/studio/publish",
                "/studio/rollback/1",
                "/studio/kb/save",
                "/studio/eval",
            ):
                async with session.post(
                    f"{desk.url}{path}", data={"csrf": token, "message": "x", "file": "kb/a.toml"}
                ) as response:
                    assert response.status == 403, path
    # An admin's POST without the CSRF token is refused as well.
    session, _ = await http_session(desk.url, "root")
    async with (
        session,
        session.post(f"{desk.url}/studio/publish", data={"message": "x"}) as response,
    ):
        assert response.status == 403
    assert await desk.store.live_content_version() == 1
    page = await browser.new_page(locale="en-US")
    await sign_in(page, desk.url, "ana")
    await expect(page.get_by_role("link", name="Studio")).to_have_count(0)
    await page.goto(f"{desk.url}/studio")
    await expect(page.locator("h1")).to_have_text("Not allowed")


async def test_try_it_shows_draft_and_live_side_by_side(desk: WebDesk, browser: Browser) -> None:
    page = await admin(browser, desk)
    message = "vocês entregam aos domingos?"
    await page.goto(f"{desk.url}/studio/try")
    await page.locator("#try-text").fill(message)
    await page.locator("#try-button").click()
    live = page.locator("#try-live")
    draft = page.locator("#try-draft")
    await expect(live.locator(".step")).to_have_text(re.compile("tier 0"))
    before = await live.locator(".kb").inner_text()
    assert before == await draft.locator(".kb").inner_text()  # no edit yet
    # A new entry in the draft that answers exactly that.
    await page.goto(f"{desk.url}/studio/kb/new")
    await page.locator("#entry-id").fill("sunday_delivery")
    await page.locator("#entry-category").fill("delivery")
    await page.locator("#entry-questions").fill(f"{message}\ndo you deliver on sundays?")
    await page.locator("#answer-pt-BR").fill("Sim, entregamos aos domingos nas capitais.")
    await page.locator("#answer-en").fill("Yes, we deliver on Sundays in state capitals.")
    await page.locator("#save-entry").click()
    await expect(page.locator("#flash")).to_have_text("Saved to your draft.")
    await page.goto(f"{desk.url}/studio/try")
    await page.locator("#try-text").fill(message)
    await page.locator("#try-button").click()
    await expect(draft.locator(".kb")).to_contain_text("answer: sunday_delivery")
    await expect(draft.locator(".answer")).to_have_text(
        "Sim, entregamos aos domingos nas capitais."
    )
    await expect(live.locator(".kb")).to_have_text(before)
    await expect(live.locator(".kb")).not_to_contain_text("sunday_delivery")
    await expect(live.locator(".runner-up")).to_be_visible()
    await expect(draft.locator(".rule")).to_be_visible()


async def test_the_eval_shows_figures_before_and_after(browser: Browser, tmp_path: Path) -> None:
    turns = tmp_path / "turns.jsonl"
    turns.write_text(
        "\n".join(
            json.dumps(case, ensure_ascii=False)
            for case in (
                {"text": QUESTION, "expect": "answer", "entry": "opening_hours", "locale": "pt-BR"},
                {"text": "obrigado!", "expect": "smalltalk", "locale": "pt-BR"},
                {"text": "fui hackeado", "expect": "handoff", "tier": "N3", "locale": "pt-BR"},
            )
        )
        + "\n"
    )
    web = {"kb_cases": str(ROOT / "tests/data/kb_cases.jsonl"), "turn_cases": str(turns)}
    desk = WebDesk(web_settings(web))
    await desk.start()
    try:
        page = await admin(browser, desk)
        await page.goto(f"{desk.url}/studio/kb/entry/opening_hours")
        await page.locator("#delete-entry").click()
        await expect(page.locator("#flash")).to_have_text("Saved to your draft.")
        await page.goto(f"{desk.url}/studio/try")
        await page.locator("#eval-button").click()
        coverage = page.locator("#eval tr[data-figure='kb-coverage'] td")
        await expect(coverage).to_have_count(2)
        live_cov, draft_cov = [float(t.rstrip("%")) for t in await coverage.all_inner_texts()]
        assert draft_cov < live_cov  # the cases about opening hours are lost
        correct = page.locator("#eval tr[data-figure='turns-correct'] td")
        assert await correct.all_inner_texts() == ["100.0%", "66.7%"]
    finally:
        await desk.close()


async def test_two_admins_publishing_from_one_base_one_is_told_to_rebase(
    desk: WebDesk, browser: Browser
) -> None:
    await desk.escala.edge.users.add("rosa", PASSWORD, ConsoleRole.ADMIN)
    root = await admin(browser, desk)
    rosa = await admin(browser, desk, "rosa")
    await edit_answer(root, desk, "opening_hours", NEW_ANSWER)
    await rosa.goto(f"{desk.url}/studio/routing")
    await rosa.locator("#rule-1-reason").fill("Security incident: call the on-call engineer")
    await rosa.locator("#rule-1-save").click()
    await expect(rosa.locator("#flash")).to_have_text("Saved to your draft.")
    for page in (root, rosa):
        await page.goto(f"{desk.url}/studio")
        await page.locator("#publish-message").fill("mine")
    await root.locator("#publish-button").click()
    await expect(root.locator("#flash")).to_have_text("Version 2 is live.")
    await rosa.locator("#publish-button").click()
    await expect(rosa.locator("#flash")).to_contain_text("version 2 was published meanwhile")
    assert await desk.store.live_content_version() == 2
    await expect(rosa.locator("#stale")).to_be_visible()
    await rosa.locator("#rebase-button").click()
    await expect(rosa.locator("#flash")).to_have_text("Your draft now starts from version 2.")
    await expect(rosa.locator("#changes")).to_have_text("routing rule 'security-incident' changed")
    await rosa.locator("#publish-message").fill("on-call")
    await rosa.locator("#publish-button").click()
    await expect(rosa.locator("#flash")).to_have_text("Version 3 is live.")
    live = await desk.store.content_version(3)
    assert live is not None and NEW_ANSWER in live.files["kb/contact.toml"]
    assert "call the on-call engineer" in live.files["routing.toml"]


async def test_the_toml_editor_shows_a_syntax_error_in_place(
    desk: WebDesk, browser: Browser
) -> None:
    page = await admin(browser, desk)
    await page.goto(f"{desk.url}/studio/flows")
    await page.get_by_role("link", name="flows/greeting.toml").click()
    await page.locator("#toml-text").fill("[[flow]\nid = 'greeting'\n")
    await page.locator("#save-file").click()
    await expect(page.locator("#problems")).to_contain_text("flows/greeting.toml")
    await expect(page.locator("#problems")).to_contain_text("TOML syntax")
    await page.goto(f"{desk.url}/studio")
    await expect(page.locator("#publish-button")).to_be_disabled()
    await page.locator("#discard-button").click()
    await expect(page.locator("#valid")).to_be_visible()
