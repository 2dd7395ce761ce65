"""Agents and supervisors in a real browser (Debian's Chromium), on the desk that Slack
and ``escala chat`` use: what they see, live, and what the customer receives."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Browser, expect

from bot.models import TicketState
from tests.web.harness import PASSWORD, WebDesk, live, sign_in, until


async def test_bad_password_is_refused_and_guessing_is_rate_limited(
    desk: WebDesk, browser: Browser
) -> None:
    page = await browser.new_page(locale="en-US")
    await page.goto(f"{desk.url}/login")
    for _ in range(3):  # [web] login_attempts = 3 in these tests
        await page.get_by_label("Login").fill("ana")
        await page.get_by_label("Password").fill("wrong password")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#login-error")).to_have_text("Wrong login or password.")
    # Now even the right password waits for the window to pass.
    await page.get_by_label("Login").fill("ana")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_have_text(
        "Too many attempts. Try again in a few minutes."
    )
    assert not page.url.endswith("/inbox")
    # Another agent from another address is not locked out by ana's guesser's login...
    # but this address is: the limit counts per login and per client address.
    await page.get_by_label("Login").fill("bruno")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_contain_text("Too many attempts")


async def test_agent_works_a_ticket_live_and_the_customer_gets_the_reply(
    desk: WebDesk, browser: Browser
) -> None:
    ana = await browser.new_page(locale="en-US")
    await sign_in(ana, desk.url, "ana")
    await live(ana)
    # A customer asks for a human: the ticket shows up in ana's N1 queue, no reload.
    number = await desk.phone.open_ticket("+5511900000001", "meu pedido não chegou")
    row = ana.locator(f"tr[data-ticket='{number}']")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("Rita")
    # The SLA countdown counts to the desk's own deadline (the tier's calendar).
    waiting = await desk.escala.desk.ticket(number)
    assert waiting is not None
    due = desk.escala.desk.first_response_due(waiting)
    assert due is not None
    await expect(row.locator("time.sla")).to_have_attribute("data-deadline", due.isoformat())
    await expect(row.locator("time.sla")).to_contain_text("due in")
    await row.get_by_role("link").click()
    await ana.wait_for_url(re.compile(f"/tickets/{number}$"))
    await live(ana)
    await expect(ana.locator("#ticket-reasons")).not_to_be_empty()
    # Claim with the keyboard shortcut, reply with the reply box's.
    await ana.keyboard.press("c")
    await expect(ana.locator("#flash")).to_have_text(f"Ticket #{number} is yours.")
    await expect(ana.locator("#ticket-assignee")).to_have_text("Ana")
    await live(ana)
    await ana.keyboard.press("r")
    await expect(ana.locator("#reply-text")).to_be_focused()
    await ana.keyboard.type("Olá! Vou verificar seu pedido agora.")
    await ana.locator("#reply-button").click()
    await expect(ana.locator("#flash")).to_have_text("Reply sent to the customer.")
    customer = desk.phone.texts("+5511900000001")
    assert any("Ana" in text and "Vou verificar seu pedido" in text for text in customer)
    # The customer answers: it appears in the transcript live.
    await live(ana)
    await desk.phone.write("+5511900000001", "obrigada, fico no aguardo")
    await expect(ana.locator("#transcript li.inbound").last).to_contain_text("fico no aguardo")
    # A private note is shown apart from what the customer reads.
    await ana.locator("#note-text").fill("cliente VIP, conferir transportadora")
    await ana.locator("#note-button").click()
    note = ana.locator("#transcript li.note")
    await expect(note).to_contain_text("conferir transportadora")
    await expect(note).to_contain_text("Private note")
    assert not any("transportadora" in text for text in desk.phone.texts("+5511900000001"))
    # Escalate to N2 with a reason.
    await ana.locator("#escalate-tier").select_option("N2")
    await ana.locator("#escalate-reason").fill("precisa de especialista em logística")
    await ana.locator("#escalate-button").click()
    await expect(ana.locator("#flash")).to_have_text(f"Ticket #{number} escalated to N2.")
    await expect(ana.locator("#ticket-tier")).to_have_text("N2")
    await expect(ana.locator("#transcript li.system").last).to_contain_text(
        "precisa de especialista em logística"
    )
    # Bruno (N2) claims and resolves; the CSAT answer shows up on his page live.
    bruno = await browser.new_page(locale="en-US")
    await sign_in(bruno, desk.url, "bruno")
    await bruno.goto(f"{desk.url}/tickets/{number}")
    await bruno.locator("#claim-button").click()
    await expect(bruno.locator("#ticket-assignee")).to_have_text("Bruno")
    await bruno.locator("#resolve-button").click()
    await expect(bruno.locator("#ticket-state")).to_have_text("resolved")
    await expect(bruno.locator("#ticket-csat")).to_have_text("waiting for the customer's answer")
    await live(bruno)
    await desk.phone.write("+5511900000001", "5")
    await expect(bruno.locator("#ticket-csat")).to_have_text("5/5")
    ticket = await desk.escala.desk.ticket(number)
    assert ticket is not None and ticket.csat == 5 and ticket.state is TicketState.CLOSED
    await bruno.goto(f"{desk.url}/inbox")
    await expect(bruno.locator("ul.resolved")).to_contain_text(f"#{number} · N2 · CSAT 5/5")


async def test_two_agents_claim_at_once_one_wins_and_the_other_is_told(
    desk: WebDesk, browser: Browser
) -> None:
    number = await desk.phone.open_ticket("+5511900000002", "meu pedido atrasou")
    pages = []
    for login in ("ana", "bruno"):
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await sign_in(page, desk.url, login)
        await page.goto(f"{desk.url}/tickets/{number}")
        await live(page)
        pages.append(page)
    await asyncio.gather(*(page.locator("#claim-button").click() for page in pages))

    async def claimed() -> bool:
        found = await desk.escala.desk.ticket(number)
        return found is not None and found.assignee is not None

    await until(claimed)
    ticket = await desk.escala.desk.ticket(number)
    assert ticket is not None and ticket.assignee in ("ana", "bruno")
    winner, loser = (pages[0], pages[1]) if ticket.assignee == "ana" else (pages[1], pages[0])
    winner_name = "Ana" if ticket.assignee == "ana" else "Bruno"
    await expect(winner.locator("#resolve-button")).to_be_visible()
    await expect(loser.locator("#claimed-by")).to_have_text(f"{winner_name} claimed this ticket.")
    await expect(loser.locator("#claim-button")).to_have_count(0)


async def test_customer_text_renders_inert(desk: WebDesk, browser: Browser) -> None:
    hostile = [
        "<script>window.__pwned = 1</script>",
        '"><img src=x onerror="window.__pwned = 2">',
        "[clique aqui](javascript:window.__pwned=3) javascript:window.__pwned=4",
    ]
    address = "+5511900000003"
    await desk.phone.write(address, hostile[0], name='<b onmouseover="x()">Eve</b>')
    for text in hostile[1:]:
        await desk.phone.write(address, text, name='<b onmouseover="x()">Eve</b>')
    await desk.phone.write(address, "quero falar com um atendente", name="Eve")
    ticket = await desk.escala.edge.current_ticket("phone", address)
    assert ticket is not None
    page = await browser.new_page(locale="en-US")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await sign_in(page, desk.url, "ana")
    await expect(page.locator(f"tr[data-ticket='{ticket.number}']")).to_be_visible()
    await page.goto(f"{desk.url}/tickets/{ticket.number}")
    transcript = page.locator("#transcript")
    for text in hostile:
        await expect(transcript).to_contain_text(text)  # shown as the customer typed it
    assert await transcript.locator("script, img, a, b").count() == 0
    assert await page.locator("a[href^='javascript']").count() == 0
    assert await page.evaluate("window.__pwned") is None
    assert dialogs == []


async def test_supervisor_sees_the_desk_board_live(desk: WebDesk, browser: Browser) -> None:
    page = await browser.new_page(locale="en-US")
    await sign_in(page, desk.url, "sam")
    await page.goto(f"{desk.url}/board")
    await live(page)
    n1 = page.locator("#board-tiers tr[data-tier='N1']")
    await expect(n1.locator(".waiting")).to_have_text("0")
    await desk.phone.open_ticket("+5511900000004", "preciso de ajuda")
    await expect(n1.locator(".waiting")).to_have_text("1")
    # An agent goes online and takes the ticket: availability and load follow live.
    ana = await (await browser.new_context(locale="en-US")).new_page()
    await sign_in(ana, desk.url, "ana")
    agent_row = page.locator("#board-agents tr[data-agent='ana']")
    for state, shown in (("away", "Away"), ("online", "Online")):
        await ana.locator("#availability").select_option(state)
        await ana.locator("#availability").locator("xpath=..").get_by_role("button").click()
        await expect(ana.locator("#my-availability")).to_have_text(shown)
        await expect(agent_row.locator(".availability")).to_have_text(shown)
    await ana.keyboard.press("n")
    await ana.wait_for_url(re.compile(r"/tickets/\d+$"))
    await expect(agent_row.locator(".load")).to_have_text("1 / 5")
    await expect(n1.locator(".waiting")).to_have_text("0")


async def test_reports_show_the_kpis_with_charts(desk: WebDesk, browser: Browser) -> None:
    number = await desk.phone.open_ticket("+5511900000005", "não consigo entrar")
    edge = desk.escala.edge
    assert (await edge.desk.claim("ana", number)).ok
    assert (await edge.desk.reply("ana", number, "Vamos resolver")).ok
    assert (await edge.desk.resolve("ana", number)).ok
    page = await browser.new_page(locale="pt-BR")
    await sign_in(page, desk.url, "sam")
    await page.goto(f"{desk.url}/reports")
    await expect(page.locator("h1")).to_have_text("Relatórios")
    await expect(page.locator("#report-tickets")).to_have_text("1")
    n1 = page.locator("#report-tiers tr[data-tier='N1']")
    await expect(n1.locator("td").nth(0)).to_have_text("1")  # opened
    await expect(n1.locator("td").nth(1)).to_have_text("1")  # resolved
    assert await page.locator("figure.chart svg rect").count() >= 2
    await page.goto(f"{desk.url}/reports?from=2026-13-01")
    await expect(page.locator(".flash.error")).to_contain_text("Datas inválidas")


async def test_language_follows_the_browser_then_the_users_choice(
    desk: WebDesk, browser: Browser
) -> None:
    page = await browser.new_page(locale="pt-BR")
    await page.goto(f"{desk.url}/login")
    await expect(page.locator("h1")).to_contain_text("Entrar")
    await sign_in(page, desk.url, "ana")
    await expect(page.locator("h1")).to_have_text("Caixa de entrada")
    await page.locator("#locale-choice").select_option("en")
    await page.locator("#locale-choice").locator("xpath=..").get_by_role("button").click()
    await expect(page.locator("h1")).to_have_text("Inbox")
    user = await desk.escala.edge.users.get("ana")
    assert user is not None and user.locale == "en"
