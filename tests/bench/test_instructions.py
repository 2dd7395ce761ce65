"""bench.instructions: the turns it counts are real turns, its arithmetic is right, and
without valgrind it says how to get it. (The counts themselves need valgrind, which
the test machines need not have: README has them.)"""

from __future__ import annotations

import asyncio

import pytest

from bench import instructions


def test_the_counted_turns_answer_every_question() -> None:
    said = asyncio.run(instructions.turns(2 * instructions.CUSTOMERS))
    assert said["turns"] == 2 * instructions.CUSTOMERS
    # each turn: the KB's answer, then "did this help?"
    assert said["replies"] == instructions.REPLIES * said["turns"]
    assert said["matcher"].startswith("lexical")  # "lexical + semantic (...)" with the extra


def test_the_counted_turns_run_on_redis(redis_url: str) -> None:
    said = asyncio.run(instructions.turns(instructions.CUSTOMERS, redis_url))
    assert said["replies"] == instructions.REPLIES * instructions.CUSTOMERS


def test_varied_first_messages_are_real_turns_from_the_answer_cases() -> None:
    texts = instructions.answer_texts()
    assert len(texts) >= 600 and len({text for text, _ in texts}) == len(texts)
    assert texts == instructions.answer_texts()  # the same order every time
    assert {locale for _, locale in texts} == {"pt-BR", "en"}
    said = asyncio.run(instructions.turns(instructions.CUSTOMERS, texts="answers"))
    assert said["turns"] == instructions.CUSTOMERS
    # Every first message gets a reply: an answer and "did this help?", or a choice of
    # answers (one message), so between one and two each.
    assert instructions.CUSTOMERS <= said["replies"] <= instructions.REPLIES * said["turns"]
    first = asyncio.run(instructions.turns(instructions.CUSTOMERS, texts="question-first"))
    assert first["replies"] == instructions.REPLIES * first["turns"]


def test_instructions_per_turn_is_the_difference_of_two_counts() -> None:
    output = "==1== Events    : Ir\n==1== Collected : 3846167626\n==1==\n"
    assert instructions.collected(output) == 3_846_167_626
    assert instructions.per_turn((100, 3_846_167_626), (300, 4_474_889_561)) == pytest.approx(
        3_143_609.675
    )
    with pytest.raises(ValueError, match="more turns"):
        instructions.per_turn((300, 2), (100, 1))
    with pytest.raises(ValueError, match="no instruction count"):
        instructions.collected("valgrind: command not found")


def test_without_valgrind_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    assert instructions.main([]) == 2
    assert "apt-get install valgrind" in capsys.readouterr().err
    assert instructions.main(["--small", "30"]) == 2  # not a multiple of the customers
    assert "multiple of 20" in capsys.readouterr().err
