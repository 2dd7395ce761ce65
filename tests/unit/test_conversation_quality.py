"""Small talk, low information, CSAT parsing, access codes, rule examples (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import csat, smalltalk
from bot.access_code import ALPHABET, access_code, code_given
from bot.commands import Command, detect
from bot.errors import ConfigError
from bot.hours import BusinessHours
from bot.models import Priority, Ticket, TicketState
from bot.settings import PACKAGED_ROUTING, default_settings
from bot.triage import Triage, TriageContext, load_triage
from bot.triage_text import Keyword, TextForms
from kb.lowinfo import is_low_information
from kb.normalize import expand_negations, fold, stem

TIERS = default_settings().tiers


@pytest.fixture(scope="module")
def shipped() -> Triage:
    return load_triage(PACKAGED_ROUTING, TIERS, BusinessHours())


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("obrigado", smalltalk.Kind.THANKS),
        ("Muito obrigada pela ajuda!!", smalltalk.Kind.THANKS),
        ("vlw", smalltalk.Kind.THANKS),
        ("thank you so much", smalltalk.Kind.THANKS),
        ("tchau", smalltalk.Kind.BYE),
        ("ok obrigado tchau", smalltalk.Kind.THANKS),
        ("👍", smalltalk.Kind.ACK),
        ("🙏🙏", smalltalk.Kind.THANKS),
        ("kkkkkkk", smalltalk.Kind.LAUGH),
        ("hahahaha", smalltalk.Kind.LAUGH),
        ("oi de novo", smalltalk.Kind.GREETING_AGAIN),
        ("tudo bem?", smalltalk.Kind.HOW_ARE_YOU),
        ("beleza", smalltalk.Kind.ACK),
        ("obrigado, mas meu pedido não chegou", None),
        ("????", None),
        ("sim", None),
        ("😡 meu pedido", None),
        # Upset emoji are no small talk: never "Combinado!" to an angry customer.
        ("😡😡😡", None),
        ("👎🏽", None),
        ("🤦\u200d♀️", None),
        ("👍🏽", smalltalk.Kind.ACK),
    ],
)
def test_small_talk(text: str, kind: smalltalk.Kind | None) -> None:
    assert smalltalk.classify(text) == kind


@pytest.mark.parametrize(
    ("text", "low"),
    [
        ("no", True),
        ("sim", True),
        ("?", True),
        ("👍", True),
        ("oi de novo", True),
        ("hmm", True),
        ("tenho uma dúvida", True),
        ("boleto", False),
        ("prazo de entrega", False),
        ("1234567", False),
    ],
)
def test_low_information(text: str, low: bool) -> None:
    assert is_low_information(text) is low


@pytest.mark.parametrize("text", ["não", "no", "nenhuma dessas", "nope", "Não, obrigado"])
def test_negative_replies(text: str) -> None:
    assert smalltalk.is_negative(text)


@pytest.mark.parametrize("text", ["não chegou", "sim", "no way this is right"])
def test_not_plain_negative(text: str) -> None:
    assert not smalltalk.is_negative(text)


@pytest.mark.parametrize(
    ("text", "read", "score"),
    [
        ("5", csat.Read.SCORE, 5),
        ("nota 4!", csat.Read.SCORE, 4),
        ("dou 3 pq demorou", csat.Read.SCORE, 3),
        ("4/5", csat.Read.SCORE, 4),
        ("cinco", csat.Read.SCORE, 5),
        ("Três", csat.Read.SCORE, 3),
        ("five", csat.Read.SCORE, 5),
        ("uma", csat.Read.SCORE, 1),
        ("nota um", csat.Read.SCORE, 1),
        ("⭐⭐⭐⭐", csat.Read.SCORE, 4),
        ("★★", csat.Read.SCORE, 2),
        ("👍", csat.Read.SCORE, 5),
        ("👎", csat.Read.SCORE, 1),
        ("7", csat.Read.OUT_OF_RANGE, None),
        ("10/10", csat.Read.OUT_OF_RANGE, None),
        ("0", csat.Read.OUT_OF_RANGE, None),
        ("⭐⭐⭐⭐⭐⭐", csat.Read.OUT_OF_RANGE, None),
        ("ótimo", csat.Read.NOTHING, None),
        ("foi uma ótima ajuda", csat.Read.NOTHING, None),
    ],
)
def test_csat_parse(text: str, read: csat.Read, score: int | None) -> None:
    assert csat.parse(text) == csat.Answer(read, score)


def ticket(ticket_id: str, number: int = 1042) -> Ticket:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    return Ticket(ticket_id, number, "cnv_x", "N1", Priority.NORMAL, TicketState.QUEUED, now, now)


def test_access_code_is_short_stable_and_unambiguous() -> None:
    code = access_code(ticket("tkt_1"))
    assert len(code) == 4 and set(code) <= set(ALPHABET)
    assert not set(code) & set("01OIL")
    assert code == access_code(ticket("tkt_1", number=7))
    codes = {access_code(ticket(f"tkt_{i}")) for i in range(500)}
    assert len(codes) > 480  # distinct per ticket


def test_access_code_in_a_message() -> None:
    t = ticket("tkt_1")
    code = access_code(t)
    assert code_given(f"status 1042 {code.lower()}", t)
    assert code_given(f"status 1042 código {code}", t)
    assert not code_given("status 1042", t)
    assert not code_given(f"status 1042 {code}X", t)


@pytest.mark.parametrize(
    "text", ["status 1042 K7P2", "status 1042 código K7P2", "status do chamado 1042 k7p2"]
)
def test_status_with_a_code_is_the_status_command(text: str) -> None:
    found = detect(text)
    assert found is not None and found.command is Command.STATUS and found.number == 1042


def test_stems_cover_past_tense_and_contractions() -> None:
    assert stem("invadida") == stem("invadiram")
    assert stem("paguei") == stem("pagar")
    assert stem("faltava") == stem("faltou") == stem("falta")  # the imperfect
    assert stem("java") == "java" and stem("lava") == "lava"  # too short to be one
    assert expand_negations("it doesn't work, I cant") == "it does not work, I can not"
    assert fold(expand_negations("won't")) == "will not"


@pytest.mark.parametrize(
    ("keyword", "text", "found"),
    [
        ("conta invadida", "minha conta foi invadida", "conta foi invadida"),
        ("vazamento de dados", "teve vazamento dos meus dados", "vazamento dos meus dados"),
        ("invasão", "invadiram", None),  # a different stem: examples cover it
        ("hackeado", "hackearam minha conta", "hackearam"),
        ("fora do ar", "o ar condicionado ficou fora", None),  # an expression keeps its order
        # an article or a possessive ties nothing: any order
        ("vazaram meus dados", "meus dados pessoais vazaram", "dados pessoais vazaram"),
        # the text's small words ride along free; one meaningful word inserted
        (
            "ninguém consegue acessar",
            "ninguém aqui no escritório consegue acessar",
            "ninguem aqui no escritorio consegue acessar",
        ),
        (
            "ninguém consegue acessar",
            "ninguém da loja nem do escritório e do depósito consegue acessar",
            None,
        ),
        ("data leak", "the leak of our data", "leak of our data"),
        ("error", "terror", None),
        # a phrase of one meaningful word is matched as a phrase, not by that word's stem
        ("reclame aqui", "vou botar no reclame aqui", "reclame aqui"),
        ("reclame aqui", "vou por no reclameaqui", "reclameaqui"),
        ("reclame aqui", "tem gente reclamando do atraso", None),
        ("caiu tudo", "aqui caiu tudo de novo", "caiu tudo"),
        ("caiu tudo", "o pagamento caiu ontem", None),
    ],
)
def test_keyword_tolerance(keyword: str, text: str, found: str | None) -> None:
    assert Keyword(keyword, tuple(fold(keyword).split())).find(TextForms.of(text)) == found


def ctx(text: str) -> TriageContext:
    return TriageContext(text, channel="telegram", now=datetime(2026, 11, 23, 13, tzinfo=UTC))


def test_examples_match_inflections_inserted_words_and_typos(shipped: Triage) -> None:
    for text in (
        "alguem entrou na minha conta sem permissao",
        "alguém entrou ontem na minha conta",
        "alguem entrou na minha cnota",
    ):
        decision = shipped.decide(ctx(text))
        assert (decision.rule, decision.tier, decision.priority) == (
            "security-incident",
            "N3",
            Priority.URGENT,
        ), text


def test_a_negated_example_never_matches_a_text_without_negation(shipped: Triage) -> None:
    decision = shipped.decide(ctx("how do I install the desktop app?"))
    assert (decision.rule, decision.handoff) == ("configuration", False)


def test_low_information_never_matches_examples(shipped: Triage) -> None:
    assert shipped.decide(ctx("ok")).rule is None
    assert shipped.human_request("sim") is None


def test_human_request_in_own_words(shipped: Triage) -> None:
    hit = shipped.human_request("quero conversar com uma pessoa")
    assert hit is not None and hit.example == "quero conversar com uma pessoa"
    assert shipped.human_request("fala com <@U0AAA> agora") is None


def test_a_later_private_rule_keeps_the_decision_private(shipped: Triage) -> None:
    decision = shipped.decide(ctx("invadiram minha conta e usaram meu cartão"))
    assert (decision.rule, decision.tier, decision.private) == ("security-incident", "N3", True)
    assert any(r.startswith("private: ") for r in decision.reasons)


def routing(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_threshold_is_checked(tmp_path: Path) -> None:
    rule = '[[rule]]\nname = "a"\nreason = "r"\ntier = "N1"\n[rule.when]\n'
    with pytest.raises(ConfigError) as caught:
        load_triage(
            routing(tmp_path, rule + 'keywords = ["x"]\nexample_threshold = 50\n'),
            TIERS,
            BusinessHours(),
        )
    assert caught.value.place == "rule[1] 'a'.when.example_threshold"
    with pytest.raises(ConfigError) as caught:
        load_triage(
            routing(tmp_path, rule + 'examples = ["x y"]\nexample_threshold = 0\n'),
            TIERS,
            BusinessHours(),
        )
    assert "between 1 and 100" in caught.value.reason
    with pytest.raises(ConfigError) as caught:
        load_triage(routing(tmp_path, "[human_request]\nexample = []\n"), TIERS, BusinessHours())
    assert caught.value.place == "human_request.example"


def test_messages_need_examples_and_never_match_on_words(tmp_path: Path) -> None:
    """A rule's ``messages`` (reviewed customer messages) need ``examples`` beside them
    and match on meaning only: without the extra, their words match nothing."""
    rule = '[[rule]]\nname = "a"\nreason = "r"\ntier = "N2"\n[rule.when]\n'
    with pytest.raises(ConfigError) as caught:
        load_triage(
            routing(tmp_path, rule + 'keywords = ["x"]\nmessages = ["x y"]\n'),
            TIERS,
            BusinessHours(),
        )
    assert caught.value.place == "rule[1] 'a'.when.messages"
    with pytest.raises(ConfigError) as caught:
        load_triage(
            routing(tmp_path, '[human_request]\nmessages = ["me passa pra alguem"]\n'),
            TIERS,
            BusinessHours(),
        )
    assert caught.value.place == "human_request.messages"
    message = "o congelador da geladeira nova faz um barulho alto de motor a noite toda"
    triage = load_triage(
        routing(
            tmp_path,
            rule + f'examples = ["a geladeira não gela"]\nmessages = ["{message}"]\n',
        ),
        TIERS,
        BusinessHours(),
    )
    assert triage.rules[0].when.messages == (message,)
    assert triage.decide(ctx(message)).rule is None, "a message's words are not the rule's"
    assert triage.decide(ctx("minha geladeira nao gela")).rule == "a"


def test_rule_with_only_examples(tmp_path: Path) -> None:
    path = routing(
        tmp_path,
        '[[rule]]\nname = "fridge"\nreason = "Fridge problem"\ntier = "N2"\n'
        '[rule.when]\nexamples = ["a geladeira não gela", "the fridge is not cooling"]\n',
    )
    triage = load_triage(path, TIERS, BusinessHours())
    decision = triage.decide(ctx("oi, minha geladeira nova nao gela nada desde ontem"))
    assert decision.rule == "fridge"
    assert decision.reasons[1] == "matched: example 'a geladeira não gela' (score 100)"
    assert triage.decide(ctx("qual geladeira vocês vendem?")).rule is None


@pytest.mark.parametrize(
    "text", ["como troco minha senha?", "quero trocar minha senha", "how do I install the app?"]
)
def test_a_how_to_question_is_not_an_incident(shipped: Triage, text: str) -> None:
    # containment is one-way: "troco minha senha" is part of "alguém trocou minha senha",
    # but it does not contain it
    assert shipped.decide(ctx(text)).handoff is False
