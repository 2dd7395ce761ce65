"""The indexed rule-word matching (issue 18) gives exactly what matching word by word
gives: same positions for every rule word, whatever the text. The phrases a text is
near are the same with the run filter (:meth:`Vocabulary.may_be_near`) as scoring them
all."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process

from bot.triage_text import (
    PHRASE_CUTOFF,
    WORD_CUTOFF,
    TextForms,
    Vocabulary,
    _common_run,
    _word_hit,
)
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


PHRASES = [
    "conta invadida",
    "fora do ar",
    "sistema fora do ar",
    "vazamento de dados",
    "vazaram meus dados",
    "ninguem consegue acessar",
    "cartao de credito",
    "set up",
    "api key",
    "data leak",
    "site is down",
    "o mais rapido possivel",
]


def _mutated(text: str, edits: list[tuple[int, int, str]]) -> str:
    chars = list(text)
    for kind, at, char in edits:
        if not chars:
            break
        at %= len(chars)
        if kind == 0:
            del chars[at]
        elif kind == 1:
            chars.insert(at, char)
        else:
            chars[at] = char
    return "".join(chars)


_EDITS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 200), st.sampled_from("aeiorsdcn ")),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(
    needle=st.text(alphabet="aeiorsdcn ", min_size=1, max_size=30),
    edits=_EDITS,
    before=st.text(alphabet="aeiorsdcn ", max_size=12),
    after=st.text(alphabet="aeiorsdcn ", max_size=12),
)
def test_a_near_phrase_shares_a_run_of_the_length_the_bound_says(
    needle: str, edits: list[tuple[int, int, str]], before: str, after: str
) -> None:
    """The arithmetic behind the filter, against rapidfuzz itself: whenever
    ``partial_ratio`` reaches the cutoff, the two strings share a run of
    ``_common_run(len of the shorter)`` characters (a small alphabet and a few edits
    make near misses and near hits common)."""
    text = before + _mutated(needle, edits) + after
    if fuzz.partial_ratio(needle, text) < PHRASE_CUTOFF:
        return
    size = _common_run(min(len(needle), len(text)))
    shorter, longer = sorted((needle, text), key=len)
    runs = {shorter[at : at + size] for at in range(len(shorter) - size + 1)}
    assert any(longer[at : at + size] in runs for at in range(len(longer) - size + 1))


@settings(max_examples=300, deadline=None)
@given(
    picked=st.lists(st.sampled_from(PHRASES), max_size=3),
    edits=_EDITS,
    words=st.lists(st.sampled_from(TEXT_WORDS), max_size=12),
)
def test_the_run_filter_keeps_every_phrase_the_text_is_near(
    picked: list[str], edits: list[tuple[int, int, str]], words: list[str]
) -> None:
    vocabulary = Vocabulary((), PHRASES)
    forms = TextForms.of(_mutated(" ".join([*words[:6], *picked, *words[6:]]), edits), vocabulary)
    kept = vocabulary.may_be_near(forms.folded)
    assert kept == [p for p in vocabulary.phrase_list if p in kept]  # in order
    near = process.extract(
        forms.folded, vocabulary.phrase_list, scorer=fuzz.partial_ratio,
        score_cutoff=PHRASE_CUTOFF, limit=None,
    )  # fmt: skip
    assert {phrase for phrase, _, _ in near} <= set(kept)
    assert forms.near_phrases == {phrase for phrase, _, _ in near}


def test_a_question_about_opening_hours_is_scored_against_few_phrases() -> None:
    vocabulary = Vocabulary((), PHRASES)
    kept = vocabulary.may_be_near("qual o horario de atendimento de voces")
    assert "conta invadida" not in kept and "vazaram meus dados" not in kept
    assert len(kept) < len(PHRASES) // 2, kept
    # a short text is scored against every phrase (the bound is weaker there)
    assert vocabulary.may_be_near("fora do ar") == vocabulary.phrase_list


def test_a_word_close_enough_has_a_length_the_group_keeps() -> None:
    # One letter repeated: rapidfuzz's ratio is then exactly the length bound, and
    # lengths like 17 and 23 sit on the cutoff itself.
    vocabulary = Vocabulary(["a" * n for n in range(5, 80)])
    for n in range(1, 100):
        word = "a" * n
        close = {w for w in vocabulary.words if fuzz.ratio(word, w) >= WORD_CUTOFF}
        assert close <= set(vocabulary._fuzzy_group(word)), n
    assert fuzz.ratio("a" * 17, "a" * 23) == WORD_CUTOFF  # the bound's equality is tried
    assert "a" * 23 in vocabulary._fuzzy_group("a" * 17)


@settings(max_examples=500, deadline=None)
@given(st.text("abcd", min_size=5, max_size=30), st.text("abcd", max_size=6), st.integers(0, 6))
def test_a_typo_close_enough_keeps_its_rule_word_in_the_group(
    word: str, extra: str, cut: int
) -> None:
    rule_word = (word + extra)[: max(len(word) + len(extra) - cut, 5)]
    vocabulary = Vocabulary([rule_word])
    if fuzz.ratio(word, rule_word) >= WORD_CUTOFF:
        assert rule_word in vocabulary._fuzzy_group(word)
