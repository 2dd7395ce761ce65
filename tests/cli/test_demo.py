"""``escala demo`` as a new user runs it: one command, then a customer in the web chat
page and an agent in the web console, on the embedded default."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from aiohttp import ClientSession, CookieJar

from bench.processes import free_port
from tests.waits import PATIENCE, eventually
from tests.web.harness import csrf_of

ROOT = Path(__file__).resolve().parents[2]


async def test_escala_demo_serves_the_web_chat_and_the_console(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {**os.environ, "ESCALA_DEMO_PASSWORD": "demo-password-123"}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once; waits are async below
            [sys.executable, "-m", "bot.cli", "demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await eventually(
            lambda: (
                "console logins:" in log.read_text(encoding="utf-8") or process.poll() is not None
            ),
            "escala demo to print its URLs",
        )
        printed = log.read_text(encoding="utf-8")
        assert process.poll() is None, printed
        base = f"http://127.0.0.1:{port}"
        assert f"web chat (customer): {base}/webchat/demo" in printed
        assert f"agent console:       {base}/console/" in printed
        assert "ana, bruno, sofia, admin; password demo-password-123" in printed

        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
            async with session.get(f"{base}/webchat/demo") as page:
                assert page.status == 200
                assert "webchat.js" in await page.text()
            token = await csrf_of(session, f"{base}/console/login")
            async with session.post(
                f"{base}/console/login",
                data={"login": "ana", "password": "wrong-password-1", "csrf": token},
            ) as refused:
                assert not refused.url.path.endswith("/inbox")
            token = await csrf_of(session, f"{base}/console/login")
            async with session.post(
                f"{base}/console/login",
                data={"login": "ana", "password": "demo-password-123", "csrf": token},
            ) as inbox:
                assert inbox.status == 200 and inbox.url.path.endswith("/inbox")
                assert re.search(r'class="who">ana · agent<', await inbox.text())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(encoding="utf-8")
