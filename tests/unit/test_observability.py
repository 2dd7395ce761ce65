"""Issue 14 in one process: metrics fed by the event recorder and the edge, structured
logs with a correlation id, and the ``[metrics]`` / ``[logging]`` sections."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import logs
from bot.app import Escala, build
from bot.clock import FakeClock, SequentialIds, stable_id
from bot.errors import ConfigError
from bot.metrics import Metrics, parse_metrics
from bot.models import InboundMessage
from bot.settings import default_settings, load_settings
from tests.journeys.harness import RecordingChannel

PHONE = "+5511987654321"


class Desk:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.metrics = Metrics()
        self.escala: Escala = build(
            default_settings(), clock=self.clock, ids=SequentialIds(), metrics=self.metrics
        )
        self.sms = RecordingChannel("sms")
        self.escala.outbox.register("sms", self.sms)
        self.n = 0

    async def say(self, text: str, message_id: str | None = None) -> None:
        self.n += 1
        self.clock.advance(seconds=5)
        await self.escala.edge.receive(
            InboundMessage(
                "sms", PHONE, text, message_id or f"m{self.n}", self.clock.now(), "pt-BR"
            )
        )

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found


async def test_metrics_follow_a_ticket_through_tiers() -> None:
    desk = Desk()
    await desk.say("oi")
    await desk.say("quero falar com um atendente")
    await desk.say("quero falar com um atendente", message_id="m2")  # redelivered
    number = 1001
    d = desk.escala.desk
    desk.clock.advance(minutes=16)
    await desk.escala.timers.sweep()  # N1's 15 minutes passed: an SLA breach
    assert (await d.claim("ana", number)).ok
    assert (await d.escalate("ana", number, "N2", "specialist")).ok
    assert (await d.claim("bruno", number)).ok
    desk.clock.advance(minutes=4)
    assert (await d.reply("bruno", number, "Olá")).ok
    assert (await d.reply("bruno", number, "Resolvido")).ok
    desk.clock.advance(minutes=10)
    assert (await d.resolve("bruno", number)).ok
    await desk.say("4")

    value = desk.value
    assert value("escala_messages_in_total", channel="sms", outcome="small_talk") == 2  # oi, CSAT
    assert value("escala_messages_in_total", channel="sms", outcome="handed_off") == 1
    assert value("escala_messages_in_total", channel="sms", outcome="duplicate") == 1
    assert value("escala_turn_seconds_count", channel="sms") == 4
    assert value("escala_tickets_opened_total", tier="N1", priority="normal") == 1
    assert value("escala_sla_breaches_total", tier="N1", promise="first_response") == 1
    assert value("escala_tickets_escalated_total", tier="N1", to_tier="N2", priority="normal") == 1
    assert value("escala_tickets_resolved_total", tier="N2", priority="normal") == 1
    # One first response (not two), on N2 where it happened: 20 min 5 s after opening.
    assert value("escala_first_response_seconds_count", tier="N2") == 1
    assert value("escala_first_response_seconds_sum", tier="N2") == 20 * 60 + 5
    assert value("escala_first_response_seconds_count", tier="N1") == 0
    assert value("escala_resolution_seconds_sum", tier="N2") == 30 * 60 + 5
    assert value("escala_csat_answers_total", tier="N2", score="4") == 1
    assert value("escala_redis_operation_seconds_count", operation="turn_start") == 0  # memory


async def test_every_line_of_a_turn_carries_the_correlation_id_and_no_customer_data() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure(logs.LoggingConfig("json", "debug", {"aiohttp": "warning"}), out)
        desk = Desk()
        await desk.say("quero falar com um atendente")
        await desk.say("meu cartão 4111 1111 1111 1111 foi recusado")
        await desk.say("meu cartão 4111 1111 1111 1111 foi recusado", message_id="m2")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    conversation = stable_id("cnv", "sms", PHONE)
    turn_lines = [line for line in lines if line["logger"] == "bot.edge"]
    assert len(turn_lines) == 3
    assert {line["conversation_id"] for line in lines} == {conversation}
    assert [line["ticket"] for line in turn_lines] == [1001, 1001, 1001]
    duplicate = next(line for line in lines if line["message"].startswith("duplicate"))
    assert (duplicate["conversation_id"], duplicate["ticket"]) == (conversation, 1001)
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    text = out.getvalue()
    assert PHONE not in text and PHONE[1:] not in text
    assert "4111" not in text and "atendente" not in text


def test_text_logs_show_the_correlation_id_and_outside_a_turn_a_dash() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure(logs.LoggingConfig(), out)
        logging.getLogger("bot.test").info("outside")
        with logs.conversation("cnv_abc"):
            logs.ticket(1042)
            logging.getLogger("bot.test").info("inside")
        logging.getLogger("bot.test").debug("below the level")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    first, second = out.getvalue().splitlines()
    assert first.endswith("INFO bot.test [- #-]: outside")
    assert second.endswith("INFO bot.test [cnv_abc #1042]: inside")


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "escala.toml"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[logging]\nformat = "xml"', "logging.format: 'xml' is not one of text, json"),
        ('[logging]\nlevel = "loud"', "logging.level: 'loud' is not one of debug"),
        ('[logging]\nlevels = { "bot" = "chatty" }', "logging.levels.bot: 'chatty' is not one of"),
        ('[metrics]\npath = "metrics"', "metrics.path: expected an absolute path"),
        ("[metrics]\nport = 70000", "metrics.port: must be at most 65535"),
        ('[metrics]\ntoken_env = "ESCALA_TEST_UNSET_TOKEN"', "metrics.token_env: "),
        ("[metrics]\nenable = true", "metrics.enable: unknown key"),
    ],
)
def test_bad_logging_or_metrics_sections_stop_check(
    config: Path, table: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    config.write_text(table + "\n", encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: {message}" in err


def test_metrics_section_defaults_and_token(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALA_TEST_TOKEN_SET", "s3cret")
    config.write_text('[metrics]\ntoken_env = "ESCALA_TEST_TOKEN_SET"\nport = 9100\n')
    parsed = parse_metrics(str(config), load_settings(config).metrics)
    assert (parsed.enabled, parsed.path, parsed.port, parsed.token) == (
        True,
        "/metrics",
        9100,
        "s3cret",
    )
    assert "s3cret" not in repr(parsed)
    with pytest.raises(ConfigError):
        parse_metrics("f", {"enabled": "yes"})


ROOT = Path(__file__).resolve().parents[2]


def test_the_dashboard_and_alert_rules_use_metrics_escala_exposes() -> None:
    import re

    from bot.metrics import DESK_GAUGES

    exposed = {family.name for family in Metrics().registry.collect()} | set(DESK_GAUGES)
    dashboard = json.loads((ROOT / "ops/grafana/escala-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    rules = (ROOT / "ops/prometheus/escala-alerts.yml").read_text()
    used = set(re.findall(r"escala_[a-z_]+", " ".join(exprs) + rules))
    used = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    assert used and used <= exposed, used - exposed
    for alert in ("EscalaSlaBreachBurst", "EscalaProviderSendFailures", "EscalaRedisErrors"):
        assert f"alert: {alert}" in rules
