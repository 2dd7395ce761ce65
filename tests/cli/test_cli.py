"""The ``escala`` command as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.models import Priority, Ticket, TicketState
from bot.store.redis import RedisStore
from tests.waits import PATIENCE

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "kb" / "content"


#: ``escala chat`` runs on the wall clock: with the shipped business hours (weekdays
#: 08:00-20:00 in São Paulo) its promises depend on when the suite runs ("em até 15
#: minutos" by day, "amanhã às 08:15" at night and at weekends). These tests are about
#: the journey, so their desk never closes; the calendars have tests of their own on a
#: fake clock (tests/journeys/test_desk_calendars.py).
ALWAYS_OPEN = """
[[tiers]]
name = "N1"
level = 1
first_response_minutes = 15
resolution_minutes = 480
calendar = "24x7"

[[tiers]]
name = "N2"
level = 2
first_response_minutes = 120
resolution_minutes = 1440
calendar = "24x7"

[[tiers]]
name = "N3"
level = 3
first_response_minutes = 480
resolution_minutes = 2880
calendar = "24x7"
"""


def run_chat(script: list[str], *args: str, config: Path | None = None) -> str:
    """``escala chat`` in a real process, its stdin a pipe, as README shows."""
    options = [] if config is None else ["--config", str(config)]
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", *options, *args],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def always_open(tmp_path: Path) -> Path:
    config = tmp_path / "always-open.toml"
    config.write_text(ALWAYS_OPEN, encoding="utf-8")
    return config


def test_chat_runs_the_whole_journey_from_a_pipe(tmp_path: Path) -> None:
    out = run_chat(
        [
            "oi",
            "qual o prazo de entrega?",
            "Não",
            "/agent claim",
            "/agent reply Olá! Vou verificar seu pedido.",
            "/agent escalate N2 precisa de especialista",
            "/agent as bruno",
            "/agent claim",
            "/agent resolve",
            "5",
            "/agent stats",
            "/agent stats 7d",
            "/agent stats forever",
        ],
        config=always_open(tmp_path),
    )
    assert "bot> Olá! 👋" in out
    assert "Abri o chamado #1001" in out and "15 minutos" in out
    assert "[N1 queue] new ticket #1001" in out
    assert "bot> Ana: Olá! Vou verificar seu pedido." in out
    assert "[N2 queue] new ticket #1001" in out
    assert "equipe especializada N2" in out
    assert "De 1 a 5" in out
    assert "[agents] #1001 CSAT 5/5" in out
    # Issue 13 item 7 / issue 14: Ana answered in N1 and escalated; Bruno resolved in N2.
    stats = [line for line in out.splitlines() if line.startswith("[desk] N")]
    assert len(stats) == 6  # three tiers, twice
    assert stats[0].startswith("[desk] N1: opened 1, escalated in 0, resolved 0, ")
    assert "first response 0 min" in stats[0] and "escalated 1 to N2" in stats[0]
    assert stats[1].startswith("[desk] N2: opened 0, escalated in 1, resolved 1, first-contact 0/1")
    assert "first response -" in stats[1] and "CSAT 5.0 (1)" in stats[1]
    assert stats[:3] == stats[3:]
    assert "[desk] usage: /agent stats [7d|30d]" in out


def test_chat_in_english(tmp_path: Path) -> None:
    out = run_chat(["talk to a human"], "--locale", "en", config=always_open(tmp_path))
    assert "I've opened ticket #1001" in out and "within 15 minutes" in out


def test_chat_follows_the_language_the_customer_writes_in() -> None:
    """Without ``--locale`` nobody said which language the customer speaks: an English
    question gets the English answer. ``--locale`` says it, and the words do not."""
    english = run_chat(["What are your opening hours?"])
    assert "bot> We're open Monday to Friday" in english
    assert "bot> Did this answer help?" in english and "1) Yes" in english
    portuguese = run_chat(["What are your opening hours?"], "--locale", "pt-BR")
    assert "bot> Atendemos de segunda a sexta" in portuguese
    assert "bot> Atendemos de segunda a sexta" in run_chat(["qual o horário de atendimento?"])


def test_chat_agent_refusals_are_explained() -> None:
    out = run_chat(["/agent claim", "/agent frobnicate 1"])
    assert "[desk] no ticket in this chat yet" in out
    assert "unknown agent command 'frobnicate'" in out


def test_kb_ask_prints_the_decision_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "ask", "--kb", str(KB), "esqueci minha senha"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["outcome"] == "answer"
    assert decision["entry_id"] == "reset_password"
    assert set(decision) >= {"outcome", "entry_id", "score", "suggestions"}


def test_kb_ask_accepts_several_kb_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(
        """
[[entry]]
id = "pet_policy"
category = "store"
questions = ["posso levar meu cachorro na loja?", "are dogs allowed in the store?",
             "aceitam animais de estimação na loja?", "can I bring my pet to the shop?"]
[entry.answers]
pt-BR = "Sim, animais são bem-vindos."
en = "Yes, pets are welcome."
""",
        encoding="utf-8",
    )
    assert main(["kb", "ask", "--kb", str(KB), "--kb", str(extra), "can I bring my dog?"]) == 0
    assert json.loads(capsys.readouterr().out)["entry_id"] == "pet_policy"


def test_kb_eval_prints_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    cases = ROOT / "tests" / "data" / "kb_cases.jsonl"
    assert main(["kb", "eval", "--kb", str(KB), "--cases", str(cases)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["cases"] > 50
    assert 0.0 <= metrics["coverage"] <= 1.0 and metrics["precision"] >= 0.9


def test_kb_eval_bad_cases_file_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"text": "oi", "expected": null}\n{"text": oops}\n', encoding="utf-8")
    assert main(["kb", "eval", "--kb", str(KB), "--cases", str(cases)]) == 2
    err = capsys.readouterr().err
    assert str(cases) in err and "line 2" in err


def test_bad_kb_file_stops_with_file_place_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[entry]]\nid = "x_entry"\ncategory = "c"\nquestions = ["a b c"]\n'
        '[entry.answers]\npt-BR = "resposta"\n',
        encoding="utf-8",
    )
    assert main(["kb", "ask", "--kb", str(bad), "hello"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("escala: configuration error: ")
    assert str(bad) in err and "x_entry" in err and "en" in err
    assert "Traceback" not in err


def test_flows_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["flows", "check", str(ROOT / "flows" / "default")]) == 0
    assert "greeting" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[flow]]\nid = "f"\n[[flow.step]]\nid = "s1"\ntype = "say"\n'
        'text = { pt-BR = "oi", en = "hi" }\ngoto = "nowhere"\n',
        encoding="utf-8",
    )
    assert main(["flows", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'f'" in err and "s1" in err and "nowhere" in err


def test_check_with_the_example_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(ROOT / "config.example.toml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "KB entries" in out


def test_bad_config_stops_start_up_with_file_key_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "escala.toml"
    config.write_text("[kb]\nanswer_threshold = 'high'\n", encoding="utf-8")
    assert main(["chat", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "kb.answer_threshold" in err and "number" in err


def test_config_naming_a_missing_flow_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "escala.toml"
    config.write_text('[engine]\ngreeting_flow = "welcome"\n', encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "engine.greeting_flow" in err and "welcome" in err


def test_bad_routing_file_names_the_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = tmp_path / "routing.toml"
    rules.write_text(
        '[[rule]]\nname = "broken"\nreason = "r"\ntier = "N7"\n[rule.when]\nkeywords = ["x"]\n',
        encoding="utf-8",
    )
    config = tmp_path / "escala.toml"
    config.write_text('[triage]\nrules = "routing.toml"\n', encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(rules) in err and "broken" in err and "N7" in err


def test_prune_forgets_tickets_resolved_before_the_cut_off(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`escala prune` on the Redis store a config names: old finished tickets go."""
    now = datetime.now(UTC)

    async def given() -> None:
        store = RedisStore.from_url(redis_url)
        try:
            await store.redis.flushdb()
            for n, resolved_days_ago in ((1, 40.0), (2, 1.0), (3, None)):
                await store.open_ticket(_ticket(n, now - timedelta(days=50)))
                if resolved_days_ago is not None:
                    await store.claim(f"tkt_{n}", "ana", now - timedelta(days=45))
                    await store.resolve(f"tkt_{n}", "ana", now - timedelta(days=resolved_days_ago))
        finally:
            await store.close()

    async def remaining() -> list[int]:
        store = RedisStore.from_url(redis_url)
        try:
            return [n for n in (1, 2, 3) if await store.get_ticket(f"tkt_{n}") is not None]
        finally:
            await store.close()

    asyncio.run(given())
    config = tmp_path / "escala.toml"
    config.write_text(f'[store]\nbackend = "redis"\nurl = "{redis_url}"\n', encoding="utf-8")

    assert main(["prune", "--config", str(config), "--older-than-days", "30"]) == 0

    assert json.loads(capsys.readouterr().out)["pruned"] == 1
    assert asyncio.run(remaining()) == [2, 3]


def test_prune_refuses_a_bad_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["prune", "--config", str(tmp_path / "x.toml"), "--older-than-days", "0"])
    assert "must be more than 0 days" in capsys.readouterr().err


def _ticket(n: int, queued_at: datetime) -> Ticket:
    return Ticket(
        id=f"tkt_{n}",
        number=1000 + n,
        conversation_id=f"cnv_{n}",
        tier="N1",
        priority=Priority.NORMAL,
        state=TicketState.QUEUED,
        created_at=queued_at,
        queued_at=queued_at,
        tier_history=("N1",),
    )
