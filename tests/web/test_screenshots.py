"""README's screenshots, taken here from a real desk in a real browser.

``ESCALA_SCREENSHOTS=docs python -m pytest tests/web/test_screenshots.py`` writes them
to ``docs/screenshots/``; otherwise they go to a temporary folder, and the test
still checks each one is a real picture of a page that rendered.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from bot.models import Availability
from tests.web.harness import WebDesk, live, screenshot_dir, sign_in

PNG = b"\x89PNG\r\n\x1a\n"


async def test_screenshots_of_the_inbox_a_ticket_and_the_board(
    desk: WebDesk, browser: Browser, tmp_path: Path
) -> None:
    phone, edge = desk.phone, desk.escala.edge
    mine = await phone.open_ticket(
        "+5511988887777", "meu pedido 48213 não chegou", name="Rita Souza"
    )
    assert (await edge.desk.claim("ana", mine)).ok
    assert (await edge.desk.reply("ana", mine, "Oi Rita! Vou verificar com a transportadora.")).ok
    await phone.write("+5511988887777", "obrigada, é um presente de aniversário")
    assert (await edge.desk.note("ana", mine, "transportadora confirmou atraso; prazo D+2")).ok
    await phone.open_ticket("+5511977776666", "não consigo fazer login no app", name="João Lima")
    await phone.open_ticket("+5511966665555", "cobrança duplicada no cartão", name="Marta Reis")
    await phone.open_ticket("+5511955554444", "fui hackeado, vazamento de dados", name="Paulo Dias")
    assert (await edge.desk.set_availability("bruno", Availability.AWAY)).ok
    target = screenshot_dir(tmp_path)
    shots = []

    ana = await browser.new_page(locale="pt-BR", viewport={"width": 1280, "height": 860})
    await sign_in(ana, desk.url, "ana")
    await live(ana)
    await expect(ana.locator(f"tr[data-ticket='{mine}']")).to_be_visible()
    shots.append(target / "inbox.png")
    await ana.screenshot(path=str(shots[-1]), full_page=True)
    await ana.goto(f"{desk.url}/tickets/{mine}")
    await live(ana)
    await expect(ana.locator("#transcript li.note")).to_be_visible()
    shots.append(target / "ticket.png")
    await ana.screenshot(path=str(shots[-1]), full_page=True)

    sam = await browser.new_page(locale="en-US", viewport={"width": 1280, "height": 640})
    await sign_in(sam, desk.url, "sam")
    await sam.goto(f"{desk.url}/board")
    await live(sam)
    await expect(sam.locator("#board-agents tr[data-agent='ana'] .load")).to_have_text("1 / 5")
    shots.append(target / "board.png")
    await sam.screenshot(path=str(shots[-1]), full_page=True)

    for shot in shots:
        data = shot.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, shot


async def test_screenshots_of_the_studio(desk: WebDesk, browser: Browser, tmp_path: Path) -> None:
    target = screenshot_dir(tmp_path)
    shots = []
    page = await browser.new_page(locale="en-US", viewport={"width": 1280, "height": 900})
    await sign_in(page, desk.url, "root")
    await page.goto(f"{desk.url}/studio/kb/entry/opening_hours")
    await page.locator("#answer-pt-BR").fill(
        "Atendemos todos os dias, das 7h às 22h (horário de Brasília)."
    )
    await page.locator("#answer-en").fill("We're open every day, 7am to 10pm (Brasília time).")
    await page.locator("#save-entry").click()
    await expect(page.locator("#flash")).to_be_visible()
    shots.append(target / "studio-entry.png")
    await page.screenshot(path=str(shots[-1]), full_page=False)
    await page.goto(f"{desk.url}/studio/try?text=at%C3%A9+que+horas+voc%C3%AAs+abrem+no+domingo%3F")
    await expect(page.locator("#try-draft .kb")).to_be_visible()
    shots.append(target / "studio-try.png")
    await page.screenshot(path=str(shots[-1]), full_page=True)
    await page.goto(f"{desk.url}/studio/routing")
    await page.locator("#rule-2-tier").fill("N9")
    await page.locator("#rule-2-save").click()
    await expect(page.locator("#rule-2-problems")).to_be_visible()
    await page.goto(f"{desk.url}/studio")
    await expect(page.locator("#problems")).to_be_visible()
    shots.append(target / "studio-draft.png")
    await page.screenshot(path=str(shots[-1]), full_page=True)
    await page.goto(f"{desk.url}/studio/diff")
    await expect(page.locator("pre.diff").first).to_be_visible()
    shots.append(target / "studio-diff.png")
    await page.screenshot(path=str(shots[-1]), full_page=True)
    for shot in shots:
        data = shot.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, shot
