"""The indexed rule-word matching (issue 18) gives exactly what matching word by word
gives: same positions for every rule word, whatever the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.triage_text import TextForms, Vocabulary, _word_hit
from kb.normalize import stem

RULE_WORDS = [
    "invadida",
    "invasao",
    "hacked",
    "hacking",
    "cartao",
    "clonado",
    "fraude",
    "golpe",
    "senha",
    "bloqueada",
    "urgente",
    "erro",
    "error",
    "fora",
    "do",
    "ar",
    "login",
    "aplicativo",
    "pagamento",
    "cobranca",
    "reembolso",
    "estorno",
    "pix",
    "boleto",
    "conta",
    "acesso",
    "app",
    "vazaram",
    "dados",
]
#: Text words: the rule words, their typos and inflections, and unrelated words.
TEXT_WORDS = (
    *RULE_WORDS,
    "invadiram", "invadido", "hackeada", "cartaoo", "carta", "clonaram", "fraudes",
    "senhas", "bloqueado", "urgentee", "erros", "terror", "logins", "aplicativos",
    "pagamentos", "cobraram", "reembolsar", "estornar", "boletos", "contas", "minha",
    "meu", "alguem", "entrou", "na", "sem", "permissao", "o", "e", "de",
    # typos scored just over the cutoff (85..90) and just under it
    "bloqeuada", "reenbolso", "cobransa", "estornu", "pagamentu", "fraudi", "aplicatvo",
)  # fmt: skip


def by_word(text: TextForms, word: str) -> tuple[int, ...]:
    fuzzy = sum(c.isalpha() for c in word) >= 5
    return tuple(
        i
        for i, (c, s) in enumerate(zip(text.words, text.stems, strict=True))
        if _word_hit(word, stem(word), fuzzy, c, s)
    )


@settings(max_examples=200, deadline=None)
@given(
    rule_words=st.lists(st.sampled_from(RULE_WORDS), min_size=1, max_size=12, unique=True),
    text_words=st.lists(st.sampled_from(TEXT_WORDS), min_size=0, max_size=25),
)
def test_indexed_positions_equal_word_by_word(rule_words: list[str], text_words: list[str]) -> None:
    vocabulary = Vocabulary(rule_words)
    text = " ".join(text_words)
    indexed = TextForms.of(text, vocabulary)
    plain = TextForms.of(text)
    for word in rule_words:
        assert indexed.hits(word, stem(word)) == by_word(plain, word), word


def test_a_typo_and_an_inflection_are_found_where_they_are() -> None:
    vocabulary = Vocabulary(["invadida", "cartao"])
    text = TextForms.of("Minha conta foi invadiram e o cartaoo também", vocabulary)
    assert text.hits("invadida", stem("invadida")) == (3,)
    assert text.hits("cartao", stem("cartao")) == (6,)
