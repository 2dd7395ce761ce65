"""The web chat in real headless Chromium (issue 17): what a visitor sees and does.

The server runs in the test's process (its desk plays the agent); the widget is
embedded by a "company site" on another origin, as in production.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from bot import i18n
from bot.app import Escala
from channels.webchat.identity import user_signature
from tests.webchat.conftest import IDENTITY_SECRET, WAIT_MS, ChatServer, Site

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "webchat.png"

#: Markup a visitor or agent might type: must show as text and never run.
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


async def open_chat(browser: Browser, url: str, **context: object) -> Page:
    page = await (await browser.new_context(locale="pt-BR", **context)).new_page()  # type: ignore[arg-type]
    await page.goto(url)
    await page.click(".bubble")
    return page


async def say(page: Page, text: str) -> None:
    await page.fill(".input", text)
    await page.press(".input", "Enter")


async def ticket_number(page: Page) -> int:
    badge = page.locator(".ticket")
    await expect(badge).to_have_attribute("data-number", re.compile(r"^\d+$"), timeout=WAIT_MS)
    return int(await badge.get_attribute("data-number") or 0)


async def agent_claims(escala: Escala, number: int) -> None:
    result = await escala.desk.claim("ana", number)
    assert result.ok, result.message


async def test_a_visitor_asks_the_kb_and_picks_a_suggestion(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    page = await open_chat(browser, site.page("shop", server.url))
    await say(page, "pedido")
    suggestion = page.locator(".msg.bot .choice").first
    await expect(suggestion).to_be_visible(timeout=WAIT_MS)
    label = await suggestion.inner_text()
    bot_lines = await page.locator(".msg.bot").count()
    await suggestion.click()
    # The pick is sent as the visitor's message (its label) and stored (it has an id);
    # the bot answers it with what that entry leads to.
    picked = page.locator(".msg.in").last
    await expect(picked).to_have_text(label, timeout=WAIT_MS)
    await expect(picked).to_have_attribute("data-id", re.compile("."), timeout=WAIT_MS)
    await expect(page.locator(".msg.bot")).not_to_have_count(bot_lines, timeout=WAIT_MS)
    await expect(page.locator(".msg.bot .choice").first).to_be_disabled()


async def test_a_human_a_live_agent_reply_and_csat_stars(
    browser: Browser, server: ChatServer, site: Site, tmp_path: Path
) -> None:
    page = await open_chat(browser, site.page("shop", server.url))
    await say(page, "quero falar com um atendente")
    number = await ticket_number(page)
    handoff = page.locator(".msg.bot", has_text=f"#{number}")
    await expect(handoff).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".ticket")).to_contain_text(f"Chamado #{number}", timeout=WAIT_MS)

    await agent_claims(server.escala, number)
    reply = await server.escala.desk.reply("ana", number, "Olá! Vou verificar seu pedido.")
    assert reply.ok
    agent_line = page.locator(".msg.agent").last
    await expect(agent_line.locator(".author")).to_have_text("Ana", timeout=WAIT_MS)
    await expect(agent_line.locator(".text")).to_have_text("Olá! Vou verificar seu pedido.")
    await expect(page.locator(".ticket")).to_contain_text("em atendimento", timeout=WAIT_MS)

    screenshot = (
        SCREENSHOT if os.environ.get("ESCALA_UPDATE_SCREENSHOTS") else tmp_path / "webchat.png"
    )
    await page.screenshot(path=str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert (await server.escala.desk.resolve("ana", number)).ok
    stars = page.locator(".stars .star")
    await expect(stars).to_have_count(5, timeout=WAIT_MS)
    await stars.nth(4).click()
    await expect(page.locator(".msg.bot .text").last).to_have_text(
        i18n.text("csat_thanks", "pt-BR"), timeout=WAIT_MS
    )
    ticket = await server.escala.desk.ticket(number)
    assert ticket is not None and ticket.csat == 5


async def test_a_reply_sent_while_the_socket_is_down_arrives_on_reconnect(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    page = await open_chat(browser, site.page("shop", server.url))
    await say(page, "atendente")
    number = await ticket_number(page)
    await agent_claims(server.escala, number)

    await page.context.set_offline(True)  # no reconnect until the reply is written
    await server.chat.stop()  # the server drops every socket (a process going away)
    await expect(page.locator(".status")).to_have_text("Reconectando…", timeout=WAIT_MS)
    assert (await server.escala.desk.reply("ana", number, "Resposta enquanto você estava fora")).ok
    await page.context.set_offline(False)

    line = page.locator(".msg.agent .text", has_text="Resposta enquanto você estava fora")
    await expect(line).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator(".status")).to_be_hidden(timeout=WAIT_MS)
    # Resumed, not replayed from the start: every line once.
    handoffs = page.locator(".msg.bot", has_text=f"#{number}")
    await expect(handoffs).to_have_count(1)


async def test_a_page_reload_keeps_the_conversation(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    page = await open_chat(browser, site.page("shop", server.url))
    await say(page, "atendente")
    number = await ticket_number(page)
    await page.reload()
    await page.click(".bubble")
    await expect(page.locator(".msg.in").first).to_have_text("atendente", timeout=WAIT_MS)
    await expect(page.locator(".msg.bot", has_text=f"#{number}")).to_have_count(1, timeout=WAIT_MS)
    assert await ticket_number(page) == number
    # Same visitor (cookie): status works without a ticket number.
    await say(page, "status")
    await expect(page.locator(".msg.bot").last).to_contain_text(f"#{number}", timeout=WAIT_MS)


async def test_a_signed_user_is_the_same_customer_on_another_device(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    signed = {
        "user-id": "cliente-42",
        "user-hash": user_signature(IDENTITY_SECRET.encode(), "cliente-42"),
    }
    laptop = await open_chat(browser, site.page("account", server.url, signed))
    await say(laptop, "atendente")
    number = await ticket_number(laptop)
    phone = await open_chat(
        browser, site.page("account", server.url, signed), viewport={"width": 390, "height": 780}
    )
    assert await ticket_number(phone) == number
    await say(phone, "status")
    await expect(phone.locator(".msg.bot").last).to_contain_text(f"#{number}", timeout=WAIT_MS)
    box = await phone.locator(".panel").bounding_box()
    assert box is not None and box["width"] == 390  # full screen on a phone


async def test_a_forged_identity_signature_is_refused(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    forged = {"user-id": "cliente-42", "user-hash": "0" * 64}
    page = await open_chat(browser, site.page("forged", server.url, forged))
    await expect(page.locator(".status")).to_have_text(
        "Não conseguimos confirmar sua identidade. Recarregue a página.", timeout=WAIT_MS
    )
    await expect(page.locator(".input")).to_be_disabled()
    assert await server.escala.store.find_conversation("webchat", "u:cliente-42") is None


@pytest.mark.webchat(allowed_origins=["https://www.example.com"])
async def test_a_site_not_in_the_allowlist_is_refused(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    page = await open_chat(browser, site.page("elsewhere", server.url))
    await expect(page.locator(".status")).to_have_text(
        "Este site não tem permissão para usar o chat.", timeout=WAIT_MS
    )


async def test_markup_in_any_message_renders_as_inert_text(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    page = await open_chat(browser, site.page("shop", server.url))
    await say(page, "atendente")
    number = await ticket_number(page)
    await say(page, HOSTILE)
    await agent_claims(server.escala, number)
    assert (await server.escala.desk.reply("ana", number, HOSTILE)).ok
    await expect(page.locator(".msg.agent .text")).to_have_text(HOSTILE, timeout=WAIT_MS)
    await expect(page.locator(".msg.in", has_text="onerror")).to_have_count(1)
    root = page.locator("#escala-webchat")
    assert await root.locator("img, script:not([src])").count() == 0
    assert await page.evaluate("window.__pwned === undefined")


@pytest.mark.webchat(visitor_messages_per_minute=2)
async def test_the_rate_limit_answers_politely(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    page = await open_chat(browser, site.page("shop", server.url))
    for text in ("oi", "tudo bem?", "alô?"):
        await say(page, text)
    notice = page.locator(".notice")
    await expect(notice).to_have_text(
        "Você enviou muitas mensagens em pouco tempo. Aguarde um minutinho e tente de novo, por favor.",
        timeout=WAIT_MS,
    )
    await expect(page.locator(".msg.in.failed")).to_have_text("alô?não enviada", timeout=WAIT_MS)


async def test_where_websocket_is_blocked_the_chat_falls_back_to_sse(
    browser: Browser, server: ChatServer, site: Site
) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    # A proxy that refuses WebSocket upgrades: every socket closes before it opens.
    await page.route_web_socket("**/webchat/ws**", lambda ws: ws.close(code=1011))
    await page.goto(site.page("shop", server.url))
    await page.click(".bubble")
    await say(page, "how long does delivery take?")
    await expect(page.locator(".msg.bot").first).to_contain_text("dias úteis", timeout=WAIT_MS)
    assert await page.evaluate("window.EscalaWebchat.transport") == "sse"


async def test_the_demo_page_serves_the_widget_under_a_strict_csp(
    browser: Browser, server: ChatServer
) -> None:
    page = await (await browser.new_context(locale="en-US")).new_page()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    response = await page.goto(f"{server.url}/webchat/demo?lang=en")
    assert response is not None
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    await page.click(".bubble")
    await say(page, "talk to a human")
    await expect(page.locator(".ticket")).to_contain_text("Ticket #", timeout=WAIT_MS)
    assert not [e for e in errors if "Content Security Policy" in e]
