"""Server-side checks, by direct HTTP requests (no browser can be trusted to enforce
them): roles on every page and action, CSRF on every POST, security headers."""

from __future__ import annotations

import pytest

from tests.web.harness import WebDesk, http_session

SUPERVISOR_PAGES = ["/board", "/board/live", "/reports"]
ADMIN_PAGES = ["/users"]


async def test_signed_out_requests_go_to_login_or_are_refused(desk: WebDesk) -> None:
    session, token = await http_session(desk.url, None)
    async with session:
        async with session.get(f"{desk.url}/inbox", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console/login"
        async with session.post(f"{desk.url}/tickets/1001/claim", data={"csrf": token}) as response:
            assert response.status == 401


@pytest.mark.parametrize("path", SUPERVISOR_PAGES + ADMIN_PAGES)
async def test_an_agent_cannot_open_supervisor_or_admin_pages(desk: WebDesk, path: str) -> None:
    session, _ = await http_session(desk.url, "ana")
    async with session, session.get(f"{desk.url}{path}") as response:
        assert response.status == 403
        assert "Sua função não permite abrir esta página." in await response.text()  # pt-BR default


async def test_a_supervisor_opens_the_board_but_not_admin_pages(desk: WebDesk) -> None:
    session, _ = await http_session(desk.url, "sam")
    async with session:
        for path in SUPERVISOR_PAGES:
            async with session.get(f"{desk.url}{path}") as response:
                assert response.status == 200, path
        async with session.get(f"{desk.url}/users") as response:
            assert response.status == 403


async def test_only_an_admin_may_post_admin_actions(desk: WebDesk) -> None:
    for login in ("ana", "sam"):
        session, token = await http_session(desk.url, login)
        async with (
            session,
            session.post(f"{desk.url}/users/bruno/remove", data={"csrf": token}) as response,
        ):
            assert response.status == 403
    assert await desk.escala.edge.users.get("bruno") is not None
    session, token = await http_session(desk.url, "root")
    async with (
        session,
        session.post(f"{desk.url}/users/bruno/remove", data={"csrf": token}) as response,
    ):
        assert response.status == 200 and response.url.path == "/console/users"
    assert await desk.escala.edge.users.get("bruno") is None


async def test_a_post_without_its_csrf_token_is_refused_and_does_nothing(desk: WebDesk) -> None:
    number = await desk.phone.open_ticket("+5511900000010", "meu pedido atrasou")
    session, token = await http_session(desk.url, "ana")
    async with session:
        for data in ({}, {"csrf": "forged"}):
            async with session.post(f"{desk.url}/tickets/{number}/claim", data=data) as response:
                assert response.status == 403
                assert "CSRF" in await response.text()
        ticket = await desk.escala.desk.ticket(number)
        assert ticket is not None and ticket.assignee is None
        async with session.post(
            f"{desk.url}/tickets/{number}/claim", data={"csrf": token}
        ) as response:
            assert response.status == 200
        async with session.post(
            f"{desk.url}/tickets/{number}/reply", data={"text": "sem token"}
        ) as response:
            assert response.status == 403
    assert not any("sem token" in text for text in desk.phone.texts("+5511900000010"))
    # The login form is no exception.
    session, _ = await http_session(desk.url, None)
    async with (
        session,
        session.post(f"{desk.url}/login", data={"login": "ana", "password": "x"}) as response,
    ):
        assert response.status == 403


async def test_pages_carry_a_strict_content_security_policy(desk: WebDesk) -> None:
    session, _ = await http_session(desk.url, "ana")
    async with session, session.get(f"{desk.url}/inbox") as response:
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert "<script>" not in await response.text()  # no inline script at all
        cookie = response.cookies.get("escala_session") or session.cookie_jar
        assert cookie is not None


async def test_the_session_cookie_is_httponly_and_samesite(desk: WebDesk) -> None:
    session, token = await http_session(desk.url, None)
    async with (
        session,
        session.post(
            f"{desk.url}/login",
            data={"login": "ana", "password": "correct horse battery", "csrf": token},
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 303
        header = next(v for v in response.headers.getall("Set-Cookie") if "escala_session" in v)
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/console" in header


async def test_bad_action_input_is_a_4xx_never_a_500(desk: WebDesk) -> None:
    number = await desk.phone.open_ticket("+5511900000011", "meu pedido atrasou")
    session, token = await http_session(desk.url, "ana")
    async with session:
        cases = [
            (f"/tickets/{number}/explode", {"csrf": token}, 404),
            ("/tickets/999999/claim", {"csrf": token}, 404),
            ("/availability", {"csrf": token, "availability": "asleep"}, 400),
            (f"/tickets/{number}/reply", {"csrf": token, "text": "x" * 5000}, 413),
        ]
        for path, data, status in cases:
            async with session.post(f"{desk.url}{path}", data=data) as response:
                assert response.status == status, path
    session, _ = await http_session(desk.url, "sam")
    async with session, session.get(f"{desk.url}/reports?from=2026-02-30") as response:
        assert response.status == 400
