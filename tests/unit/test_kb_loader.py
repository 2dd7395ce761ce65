"""The KB loader: the shipped content loads, and every kind of bad file is named precisely."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kb.errors import KbError
from kb.loader import default_kb_path, load_kb
from kb.model import KnowledgeBase
from kb.normalize import fold

GOOD_ENTRY = """
[[entry]]
id = "{id}"
category = "contact"
questions = ["qual o horário?", "when are you open?"]
[entry.answers]
pt-BR = "Das 8h às 20h."
en = "From 8am to 8pm."
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(*paths: Path) -> KbError:
    with pytest.raises(KbError) as caught:
        load_kb(list(paths))
    return caught.value


def test_shipped_kb_loads_with_both_locales_everywhere() -> None:
    kb = load_kb([default_kb_path()])
    assert len(kb.entries) >= 32
    assert len({e.id for e in kb.entries}) == len(kb.entries)
    assert len({e.category for e in kb.entries}) >= 7
    for entry in kb.entries:
        assert entry.answers["pt-BR"] and entry.answers["en"], entry.id
        assert entry.titles["pt-BR"] and entry.titles["en"], entry.id
        assert len(entry.questions) >= 4, entry.id
    assert kb.get("reset_password") is not None
    assert kb.get("reset_password").flow == "password_reset"  # type: ignore[union-attr]
    assert kb.get("order_status").flow == "order_status"  # type: ignore[union-attr]
    assert kb.get("app_not_opening").tier_hint == "N2"  # type: ignore[union-attr]
    assert kb.synonyms["nota fiscal"] == "invoice"
    assert kb.synonyms["senha"] == "password"


def test_entry_falls_back_to_english_then_any_locale() -> None:
    kb = load_kb([default_kb_path()])
    entry = kb.get("opening_hours")
    assert entry is not None
    assert entry.answer("pt-BR").startswith("Atendemos")
    assert entry.answer("pt").startswith("Atendemos")
    assert entry.answer("es").startswith("We're open")
    assert entry.title("en") == "Opening hours"
    assert kb.get("no_such_entry") is None


def test_titles_default_to_the_first_question(tmp_path: Path) -> None:
    kb = load_kb([write(tmp_path, "a.toml", GOOD_ENTRY.format(id="hours"))])
    assert kb.entries[0].title("pt-BR") == "qual o horário?"


def test_a_single_file_and_a_directory_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, "b.toml", GOOD_ENTRY.format(id="second"))
    write(tmp_path, "a.toml", GOOD_ENTRY.format(id="first"))
    assert [e.id for e in load_kb([tmp_path]).entries] == ["first", "second"]
    assert [e.id for e in load_kb([tmp_path / "b.toml"]).entries] == ["second"]


def test_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.toml", GOOD_ENTRY.format(id="x") + 'oops = "unclosed\n')
    error = load_error(path)
    assert error.file == str(path)
    assert error.place == "toml"
    assert "syntax error" in error.reason and "line 9" in error.reason
    assert str(error) == f"{path}: toml: {error.reason}"


def test_missing_english_answer(tmp_path: Path) -> None:
    text = GOOD_ENTRY.format(id="hours").replace('en = "From 8am to 8pm."\n', "")
    error = load_error(write(tmp_path, "a.toml", text))
    assert error.place == "entry[1] 'hours'.answers.en"
    assert "missing locale 'en'" in error.reason


def test_missing_answers_table(tmp_path: Path) -> None:
    text = GOOD_ENTRY.format(id="hours").split("[entry.answers]")[0]
    error = load_error(write(tmp_path, "a.toml", text))
    assert (error.place, error.reason) == ("entry[1] 'hours'.answers", "missing required key")


def test_unknown_key_is_a_typo_guard(tmp_path: Path) -> None:
    text = GOOD_ENTRY.format(id="hours").replace("[entry.answers]", "[entry.anwsers]")
    error = load_error(write(tmp_path, "a.toml", text))
    assert error.place == "entry[1] 'hours'.anwsers"
    assert "unknown key" in error.reason


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "a.toml", "[[entries]]\nid = 'x'\n"))
    assert (error.place, error.reason.split(" (")[0]) == ("entries", "unknown top-level key")


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.toml", GOOD_ENTRY.format(id="hours"))
    second = write(
        tmp_path, "b.toml", GOOD_ENTRY.format(id="other") + GOOD_ENTRY.format(id="hours")
    )
    error = load_error(first, second)
    assert error.file == str(second)
    assert error.place == "entry[2] 'hours'.id"
    assert error.reason == f"duplicate id 'hours' (first in {first})"


def test_empty_questions(tmp_path: Path) -> None:
    text = GOOD_ENTRY.format(id="hours").replace(
        'questions = ["qual o horário?", "when are you open?"]', "questions = []"
    )
    error = load_error(write(tmp_path, "a.toml", text))
    assert (error.place, error.reason) == (
        "entry[1] 'hours'.questions",
        "must have at least one item",
    )


@pytest.mark.parametrize(
    ("old", "new", "place", "reason"),
    [
        (
            'questions = ["qual o horário?", "when are you open?"]',
            'questions = "qual o horário?"',
            "entry[1] 'hours'.questions",
            "must be a list of strings, got string",
        ),
        (
            'questions = ["qual o horário?", "when are you open?"]',
            'questions = ["qual o horário?", 3]',
            "entry[1] 'hours'.questions[2]",
            "must be a string, got integer",
        ),
        (
            'category = "contact"',
            "category = 7",
            "entry[1] 'hours'.category",
            "must be a string, got integer",
        ),
        (
            'category = "contact"',
            'category = "  "',
            "entry[1] 'hours'.category",
            "must not be empty",
        ),
        (
            'en = "From 8am to 8pm."',
            "en = true",
            "entry[1] 'hours'.answers.en",
            "must be a string, got boolean",
        ),
        (
            'category = "contact"',
            'category = "contact"\ntags = "x"',
            "entry[1] 'hours'.tags",
            "must be a list of strings, got string",
        ),
        (
            'category = "contact"',
            'category = "contact"\nmessages = ["vcs abrem sabado?", ""]',
            "entry[1] 'hours'.messages[2]",
            "must not be empty",
        ),
    ],
)
def test_wrong_types(tmp_path: Path, old: str, new: str, place: str, reason: str) -> None:
    text = GOOD_ENTRY.format(id="hours").replace(old, new)
    error = load_error(write(tmp_path, "a.toml", text))
    assert (error.place, error.reason) == (place, reason)


def test_missing_id_and_bad_id(tmp_path: Path) -> None:
    text = GOOD_ENTRY.format(id="x").replace('id = "x"\n', "")
    assert load_error(write(tmp_path, "a.toml", text)).place == "entry[1].id"
    error = load_error(write(tmp_path, "b.toml", GOOD_ENTRY.format(id="Reset Password")))
    assert error.place == "entry[1] 'Reset Password'.id" and "snake_case" in error.reason


def test_synonyms_must_be_lists_and_not_conflict(tmp_path: Path) -> None:
    entry = write(tmp_path, "a.toml", GOOD_ENTRY.format(id="hours"))
    bad = write(tmp_path, "s.toml", '[synonyms]\nsenha = "password"\n')
    error = load_error(entry, bad)
    assert (error.file, error.place) == (str(bad), "synonyms.senha")
    assert error.reason == "must be a list of strings, got string"
    first = write(tmp_path, "s1.toml", '[synonyms]\npassword = ["senha"]\n')
    second = write(tmp_path, "s2.toml", '[synonyms]\npin = ["Senha"]\n')
    error = load_error(entry, first, second)
    assert error.place == "synonyms.pin[1]"
    assert "already maps to 'password'" in error.reason


def test_synonym_variants_that_stem_alike_must_agree(tmp_path: Path) -> None:
    entry = write(tmp_path, "a.toml", GOOD_ENTRY.format(id="hours"))
    synonyms = write(tmp_path, "s.toml", '[synonyms]\nchange = ["trocar"]\nexchange = ["troca"]\n')
    error = load_error(entry, synonyms)
    assert error.place == "synonyms.exchange[1]"
    assert "matches the same words as 'trocar', which maps to 'change'" in error.reason


def test_synonyms_are_folded(tmp_path: Path) -> None:
    entry = write(tmp_path, "a.toml", GOOD_ENTRY.format(id="hours"))
    synonyms = write(tmp_path, "s.toml", '[synonyms]\n"Horário" = ["Expediente", "NF-e"]\n')
    kb = load_kb([entry, synonyms])
    assert dict(kb.synonyms) == {"expediente": "horario", "nf e": "horario"}


def test_missing_path_and_empty_kb(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.toml")
    assert (error.place, error.reason) == ("path", "no such file or directory")
    error = load_error(write(tmp_path, "s.toml", '[synonyms]\npassword = ["senha"]\n'))
    assert error.reason == "the knowledge base has no entries"


def test_shipped_questions_are_not_duplicated_within_an_entry() -> None:
    for entry in load_kb([default_kb_path()]).entries:
        folded = [fold(q) for q in entry.questions]
        assert len(folded) == len(set(folded)), entry.id


def test_reviewed_messages_are_held_apart_from_the_questions(tmp_path: Path) -> None:
    """``messages`` are matched on meaning only (``kb.fused.phrasings``): the words
    matcher scores every text as if they were not there."""
    from kb.fused import phrasings
    from kb.matcher import Matcher

    message = "boa noite, vcs abrem no sabado? moro longe e queria passar ai com meu filho"
    plain = load_kb([write(tmp_path, "a.toml", GOOD_ENTRY.format(id="hours"))])
    with_messages = load_kb(
        [
            write(
                tmp_path,
                "b.toml",
                GOOD_ENTRY.format(id="hours").replace(
                    'category = "contact"', f'category = "contact"\nmessages = ["{message}"]'
                ),
            )
        ]
    )
    assert with_messages.entries[0].messages == (message,)
    assert with_messages.entries[0].questions == plain.entries[0].questions
    assert (0, message) in phrasings(with_messages)
    assert (0, message) not in phrasings(plain)
    for text in (message, "meu filho mora longe", "qual o horário?"):
        scores = Matcher(with_messages).entry_scores(text)
        without = Matcher(plain).entry_scores(text)
        assert scores is not None and without is not None
        assert list(scores) == list(without)
    as_question = replace(plain.entries[0], questions=(*plain.entries[0].questions, message))
    lexical = Matcher(KnowledgeBase((as_question,))).entry_scores("meu filho mora longe")
    held_apart = Matcher(with_messages).entry_scores("meu filho mora longe")
    assert lexical is not None and held_apart is not None
    assert lexical[0] > held_apart[0] + 20, "as a question, its words would count"
