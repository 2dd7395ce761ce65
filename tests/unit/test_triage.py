"""Triage: the shipped routing rules, matching tolerance, and bad rule files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.hours import BusinessHours
from bot.models import Priority, Tier
from bot.settings import PACKAGED_ROUTING, default_settings
from bot.triage import Triage, TriageContext, load_triage

BAD = Path(__file__).resolve().parents[1] / "data" / "bad_routing"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
OPEN = datetime(2025, 3, 3, 10, 0, tzinfo=SAO_PAULO)  # Monday morning
CLOSED = datetime(2025, 3, 8, 10, 0, tzinfo=SAO_PAULO)  # Saturday
TIERS = default_settings().tiers


@pytest.fixture(scope="module")
def shipped() -> Triage:
    return load_triage(PACKAGED_ROUTING, TIERS, BusinessHours())


def ctx(text: str, **kwargs: object) -> TriageContext:
    values: dict[str, object] = {"channel": "telegram", "now": OPEN}
    values.update(kwargs)
    return TriageContext(text, **values)  # type: ignore[arg-type]


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped rules -------------------------------------------------------------------

SHIPPED = [
    # (text, rule, tier, priority, handoff)
    (
        "Acho que houve um vazamento de dados na minha conta",
        "security-incident",
        "N3",
        "urgent",
        True,
    ),
    ("minha conta foi hackeada ontem", "security-incident", "N3", "urgent", True),
    ("I think there was a data leak", "security-incident", "N3", "urgent", True),
    ("my account was hacked", "security-incident", "N3", "urgent", True),
    ("o sistema está fora do ar desde cedo", "system-outage", "N3", "urgent", True),
    ("caiu tudo aqui, nada funciona", "system-outage", "N3", "urgent", True),
    ("the system down since 9am?", "system-outage", "N3", "urgent", True),
    ("your site is down", "system-outage", "N3", "urgent", True),
    ("aparece erro 500 quando salvo", "error-code", "N3", "high", True),
    ("deu código 404 na tela", "error-code", "N3", "high", True),
    ("I get error 503 on checkout", "error-code", "N3", "high", True),
    ("the page says 502 Bad Gateway", "error-code", "N3", "high", True),
    ("apareceu service unavailable na tela", "error-code", "N3", "high", True),
    ("como faço a integração com meu ERP?", "integration", "N3", "normal", False),
    ("the webhook is not firing", "integration-failure", "N3", "high", True),
    ("how do I set up a webhook?", "integration", "N3", "normal", False),
    ("preciso configurar a impressora", "configuration", "N2", "normal", False),
    ("how do I install the desktop app?", "configuration", "N2", "normal", False),
    ("a atualização não terminou", "setup-problem", "N2", "normal", True),
    ("como atualizar o aplicativo?", "configuration", "N2", "normal", False),
    ("how do I update the software on the tablet?", "configuration", "N2", "normal", False),
    # updating data is not configuration: the card keeps billing's routing
    ("preciso atualizar o cartão cadastrado", "private-billing", "N1", "normal", True),
    ("quero pagar a fatura com outro cartão", "private-billing", "N1", "normal", True),
    ("my payment was declined", "private-billing", "N1", "normal", True),
    ("posso enviar meus dados de saúde?", "private-health", "N1", "normal", True),
    ("I have a question about my health records", "private-health", "N1", "normal", True),
    ("é urgente, me ajudem", "customer-says-urgent", "N1", "high", True),
    ("this is urgent please", "customer-says-urgent", "N1", "high", True),
]


@pytest.mark.parametrize(("text", "rule", "tier", "priority", "handoff"), SHIPPED)
def test_shipped_rules(
    shipped: Triage, text: str, rule: str, tier: str, priority: str, handoff: bool
) -> None:
    decision = shipped.decide(ctx(text))
    assert (decision.rule, decision.tier, decision.priority) == (
        rule,
        tier,
        Priority.parse(priority),
    )
    assert decision.handoff is handoff
    assert len(decision.reasons) == 2 and decision.reasons[1].startswith("matched: ")


def test_security_incident_decision_in_full(shipped: Triage) -> None:
    decision = shipped.decide(ctx("We had a data leak this morning"))
    assert decision.skills == ("security",)
    assert decision.private is False
    assert decision.reasons == (
        "Possible security incident or data leak",
        "matched: keyword 'data leak'",
    )


def test_private_billing_is_private_with_billing_skill(shipped: Triage) -> None:
    decision = shipped.decide(ctx("problema na cobrança do meu cartão"))
    assert decision.private is True and decision.skills == ("billing",)
    assert shipped.decide(ctx("dados de saúde")).skills == ("health",)


def test_error_code_reason_shows_the_regex_and_the_text(shipped: Triage) -> None:
    decision = shipped.decide(ctx("Erro 502 no painel"))
    assert decision.reasons[1].startswith("matched: regex ")
    assert decision.reasons[1].endswith("on 'Erro 502'")


def test_bot_could_not_answer_after_two_attempts(shipped: Triage) -> None:
    decision = shipped.decide(ctx("blorft quux", kb_outcome="none", failed_attempts=2))
    assert (decision.rule, decision.tier, decision.handoff) == ("bot-could-not-answer", "N1", True)
    assert decision.reasons == (
        "bot could not answer after 2 attempts",
        "matched: KB outcome 'none'; failed attempts 2 ≥ 2",
    )
    # one failure is not enough, and a late good answer is given, not handed off
    assert shipped.decide(ctx("blorft", kb_outcome="none", failed_attempts=1)).handoff is False
    assert shipped.decide(ctx("prazo", kb_outcome="answer", failed_attempts=2)).handoff is False


def test_customer_asked_for_a_human(shipped: Triage) -> None:
    decision = shipped.decide(ctx("quero falar com um atendente", requested_human=True))
    assert (decision.rule, decision.tier, decision.handoff) == (
        "customer-asked-for-human",
        "N1",
        True,
    )
    assert decision.reasons[0] == "customer asked for a human"
    english = shipped.decide(ctx("talk to a human", requested_human=True))
    assert english.rule == "customer-asked-for-human"


def test_what_the_customer_said_before_asking_for_a_human_routes_it(shipped: Triage) -> None:
    text = "the webhook stopped\ntalk to a human"
    decision = shipped.decide(ctx(text, requested_human=True))
    assert (decision.rule, decision.tier, decision.handoff) == ("integration", "N3", True)
    assert decision.reasons[-1] == (
        "handoff now: customer asked for a human (rule 'customer-asked-for-human')"
    )


def test_routing_only_rule_hands_off_when_the_bot_gives_up(shipped: Triage) -> None:
    decision = shipped.decide(ctx("como configurar", kb_outcome="none", failed_attempts=2))
    assert (decision.rule, decision.tier, decision.handoff) == ("configuration", "N2", True)
    assert "bot could not answer" in decision.reasons[-1]


def test_an_example_of_one_meaningful_word_matches_only_as_written(shipped: Triage) -> None:
    """ "vou processar vocês" comes down to "processar", "liga pra mim" to "liga": by
    stems alone every order "em processamento" was a legal threat and every device that
    "não liga" a request for a person."""
    assert shipped.decide(ctx("o pedido segue em processamento")).rule is None
    assert shipped.human_request("a impressora não liga mais") is None
    assert shipped.human_request("como ligar o modo escuro?") is None
    assert shipped.decide(ctx("vou processar vcs")).rule == "legal-threat"
    assert shipped.human_request("alguém pode ligar pra mim?") is not None
    # nearly as written, or not at all
    assert shipped.human_request("vocês ligam para confirmar a compra?") is None


def test_first_match_wins(shipped: Triage) -> None:
    # security beats the error code, the error code beats "urgente", billing beats "urgente"
    both = shipped.decide(ctx("fomos hackeados, aparece erro 500"))
    assert both.rule == "security-incident"
    assert shipped.decide(ctx("urgente: erro 500 no checkout")).rule == "error-code"
    assert shipped.decide(ctx("urgente, cobrança errada no cartão")).rule == "private-billing"


def test_no_match_is_the_default_tier(shipped: Triage) -> None:
    decision = shipped.decide(ctx("qual o prazo de entrega?"))
    assert decision.tier == "N1" and decision.priority is Priority.NORMAL
    assert decision.handoff is False and decision.rule is None
    assert decision.reasons == ("no routing rule matched; default tier N1",)


# --- keyword tolerance -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "houve um vazamneto de dados",  # transposed letters
        "VAZAMENTO DE DADOS!!!",  # case and punctuation
        "minha conta foi hackeda",  # a letter missing
        "invadiram minha conta",
        "a integracao parou",  # no accent where the rule has one
    ],
)
def test_keywords_tolerate_typos_case_and_accents(shipped: Triage, text: str) -> None:
    assert shipped.decide(ctx(text)).rule is not None


@pytest.mark.parametrize(
    "text",
    [
        "dados",  # one word of the phrase "vazamento de dados"
        "meus dados cadastrais estão errados",
        "I love terror movies",  # "error" inside another word
        "o arquivo não abre",  # "fora do ar" must not match "ar" in a word
        "erro ao abrir",  # an error without a code
        "status 500",  # a ticket number, not an HTTP status
    ],
)
def test_keywords_do_not_match_unrelated_words(shipped: Triage, text: str) -> None:
    decision = shipped.decide(ctx(text))
    assert decision.rule is None, decision.reasons


def test_short_keywords_match_exactly(tmp_path: Path) -> None:
    triage = load_triage(
        rules_file(
            tmp_path,
            '[[rule]]\nname = "api"\nreason = "API"\ntier = "N3"\n'
            '[rule.when]\nkeywords = ["api", "fora do ar"]\n',
        ),
        TIERS,
        BusinessHours(),
    )
    assert triage.decide(ctx("minha API key")).rule == "api"
    assert triage.decide(ctx("apis")).rule is None
    assert triage.decide(ctx("api")).rule == "api"
    assert triage.decide(ctx("fora do arquivo")).rule is None
    assert triage.decide(ctx("o site está fora do ar")).rule == "api"


# --- other conditions, on a custom rules file ----------------------------------------------

CONDITIONS = """
[[rule]]
name = "after-hours-enterprise"
reason = "Enterprise customer outside business hours"
tier = "N2"
priority = "high"
[rule.when]
contact = { plan = ["enterprise"] }
business_hours = false

[[rule]]
name = "sms-billing"
reason = "Billing on SMS, KB suggested"
tier = "N1"
[rule.when]
channel = ["sms", "whatsapp"]
kb_outcome = ["suggest"]
kb_category = ["billing"]

[[rule]]
name = "open-hours"
reason = "During business hours"
tier = "N1"
priority = "low"
handoff = false
[rule.when]
business_hours = true

[[rule]]
name = "catch-all"
reason = "Everything else"
tier = "N3"
"""


@pytest.fixture
def custom(tmp_path: Path) -> Triage:
    return load_triage(rules_file(tmp_path, CONDITIONS), TIERS, BusinessHours())


def test_business_hours_conditions(custom: Triage) -> None:
    enterprise = {"plan": "Enterprise"}
    closed = custom.decide(ctx("oi", now=CLOSED, contact_attributes=enterprise))
    assert closed.rule == "after-hours-enterprise"
    assert closed.reasons[1] == "matched: contact plan = 'Enterprise'; outside business hours"
    opened = custom.decide(ctx("oi", now=OPEN, contact_attributes=enterprise))
    assert opened.rule == "open-hours" and opened.priority is Priority.LOW
    assert opened.reasons[1] == "matched: within business hours"
    assert custom.decide(ctx("oi", now=CLOSED)).rule == "catch-all"


def test_channel_and_kb_conditions(custom: Triage) -> None:
    decision = custom.decide(
        ctx("segunda via", channel="sms", now=CLOSED, kb_outcome="suggest", kb_category="billing")
    )
    assert decision.rule == "sms-billing"
    assert decision.reasons[1] == (
        "matched: KB outcome 'suggest'; KB category 'billing'; channel 'sms'"
    )
    telegram = ctx("x", channel="telegram", now=CLOSED, kb_outcome="suggest", kb_category="billing")
    assert custom.decide(telegram).rule == "catch-all"


def test_catch_all_explains_itself(custom: Triage) -> None:
    decision = custom.decide(ctx("oi", now=CLOSED))
    assert decision.reasons == ("Everything else", "matched: catch-all rule")
    assert decision.tier == "N3" and decision.handoff is True


def test_default_tier_is_the_lowest_level(tmp_path: Path) -> None:
    tiers = (Tier("L2", 2, 60), Tier("L1", 1, 10))
    triage = load_triage(rules_file(tmp_path, ""), tiers, BusinessHours())
    assert triage.decide(ctx("oi")).tier == "L1"


# --- bad rule files ------------------------------------------------------------------------

BAD_CASES = [
    ("bad_regex.toml", "rule[2] 'error-code'.when.regex[1]", "bad regular expression"),
    ("unknown_tier.toml", "rule[1] 'security-incident'.tier", "unknown tier 'N5'"),
    ("unknown_priority.toml", "rule[1] 'outage'.priority", "'critical' is not one of low"),
    ("unknown_when_key.toml", "rule[1] 'outage'.when.keyword", "did you mean 'keywords'?"),
    ("unknown_rule_key.toml", "rule[1] 'outage'.prority", "did you mean 'priority'?"),
    ("early_catch_all.toml", "rule[1] 'everything'.when", "only the last rule may be a catch-all"),
    ("unknown_channel.toml", "rule[1] 'sms-only'.when.channel[2]", "did you mean 'whatsapp'?"),
    ("duplicate_name.toml", "rule[2] 'same'.name", "duplicate rule name 'same'"),
    ("empty_keywords.toml", "rule[1] 'nothing'.when.keywords", "must not be an empty list"),
    ("regex_matches_everything.toml", "rule[1] 'greedy'.when.regex[1]", "matches an empty text"),
    ("missing_reason.toml", "rule[1] 'no-reason'.reason", "missing"),
    ("bad_failed_attempts.toml", "rule[1] 'failed'.when.failed_attempts_at_least", "an integer"),
    ("syntax.toml", "line 2, column 15", "TOML syntax error"),
    ("unknown_section.toml", "rules", "unknown section (did you mean 'rule'?)"),
]


@pytest.mark.parametrize(("name", "place", "reason"), BAD_CASES)
def test_bad_rules_file_names_the_place(name: str, place: str, reason: str) -> None:
    path = BAD / name
    with pytest.raises(ConfigError) as caught:
        load_triage(path, TIERS, BusinessHours())
    assert caught.value.file == str(path)
    assert caught.value.place == place
    assert reason in caught.value.reason


def test_every_bad_rules_file_is_tested() -> None:
    assert sorted(p.name for p in BAD.glob("*.toml")) == sorted(case[0] for case in BAD_CASES)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_triage(tmp_path / "nope.toml", TIERS, BusinessHours())
