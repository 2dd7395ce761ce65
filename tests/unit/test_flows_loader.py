"""Loading and validating flow files: every broken file names its file, place and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.errors import FlowError
from flows.loader import default_flows_path, load_flows
from flows.text import normalize, render, template_problem

BAD = Path(__file__).parent.parent / "data" / "bad_flows"

OK = """
[[flow]]
id = "%s"
triggers = [%s]
[[flow.step]]
id = "bye"
type = "end"
"""


BAD_CASES = [
    ("syntax.toml", "line 7, column 33", "TOML syntax: Unclosed inline table"),
    ("unknown_type.toml", "flow 'demo', step 'hello'.type", "unknown step type 'sya'"),
    ("unknown_key.toml", "flow 'demo', step 'hello'.goot", "did you mean 'goto'?"),
    ("missing_locale.toml", "flow 'demo', step 'hello'.text", "missing the 'en' text"),
    ("plain_text.toml", "flow 'demo', step 'hello'.text", "one text per locale"),
    ("unknown_locale.toml", "flow 'demo', step 'hello'.text.es", "unknown key"),
    ("dangling_goto.toml", "flow 'demo', step 'hello'.goto", "no step 'by' in this flow"),
    (
        "dangling_choice.toml",
        "flow 'demo', step 'menu'.choices[1].goto",
        "no step 'nowhere' in this flow",
    ),
    ("duplicate_step.toml", "flow 'demo', step 'hello'", "duplicate step id"),
    (
        "bad_regex.toml",
        "flow 'demo', step 'ask_number'.pattern",
        "invalid regular expression: missing )",
    ),
    ("empty_choices.toml", "flow 'demo', step 'menu'.choices", "at least one choice"),
    ("bad_var.toml", "flow 'demo', step 'ask_email'.var", "'e-mail' is not a variable name"),
    ("reserved_var.toml", "flow 'demo', step 'ask_email'.var", "'input' is reserved"),
    ("self_loop.toml", "flow 'demo', step 'again'", "loops forever without waiting"),
    ("bad_template.toml", "flow 'demo', step 'hello'.text.pt-BR", "a lone '{'"),
    ("handoff_no_reason.toml", "flow 'demo', step 'human'.reason", "required"),
    ("bad_priority.toml", "flow 'demo', step 'human'.priority", "'asap' is not one of low"),
    (
        "bad_condition.toml",
        "flow 'demo', step 'check'.cases[1].if",
        "needs exactly one of var, attribute, tag",
    ),
    ("unknown_flow.toml", "flow 'demo', step 'jump'.flow", "no flow 'nowhere'"),
]


@pytest.mark.parametrize(("name", "place", "reason"), BAD_CASES)
def test_bad_file_names_file_place_and_reason(name: str, place: str, reason: str) -> None:
    path = BAD / name
    with pytest.raises(FlowError) as raised:
        load_flows([path])
    error = raised.value
    assert error.file == str(path)
    assert error.place == place
    assert reason in error.reason
    assert str(error) == f"{path}: {place}: {error.reason}"


def test_every_bad_fixture_has_a_case() -> None:
    assert sorted(p.name for p in BAD.glob("*.toml")) == sorted(c[0] for c in BAD_CASES)


def test_a_directory_stops_at_its_first_bad_file() -> None:
    with pytest.raises(FlowError) as raised:
        load_flows([BAD])
    assert raised.value.file == str(BAD / "bad_condition.toml")


def test_duplicate_flow_id_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(OK % ("same", ""), encoding="utf-8")
    (tmp_path / "b.toml").write_text(OK % ("same", ""), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows([tmp_path])
    assert raised.value.file == str(tmp_path / "b.toml")
    assert raised.value.place == "flow 'same'"
    assert raised.value.reason == f"duplicate flow id (also in {tmp_path / 'a.toml'})"


def test_duplicate_flow_id_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(OK % ("same", "") + OK % ("same", ""), encoding="utf-8")
    with pytest.raises(FlowError, match="duplicate flow id"):
        load_flows([path])


def test_duplicate_trigger_across_flows_ignores_case_and_accents(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(OK % ("first", '"Olá"'), encoding="utf-8")
    (tmp_path / "b.toml").write_text(OK % ("second", '"ola!"'), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows([tmp_path / "a.toml", tmp_path / "b.toml"])
    assert raised.value.file == str(tmp_path / "b.toml")
    assert raised.value.place == "flow 'second'.triggers"
    assert "trigger 'ola!' already starts flow 'first'" in raised.value.reason


def test_trigger_without_letters_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(OK % ("x", '"?!"'), encoding="utf-8")
    with pytest.raises(FlowError, match="has no letters or digits"):
        load_flows([path])


def test_missing_path_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="no such file"):
        load_flows([tmp_path / "nope.toml"])
    with pytest.raises(FlowError, match=r"no \*.toml flow files"):
        load_flows([tmp_path])


def test_file_without_flows(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows([path])
    assert raised.value.place == "file" and "[[flow]]" in raised.value.reason


def test_flow_without_steps_and_unknown_start(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('[[flow]]\nid = "x"\n', encoding="utf-8")
    with pytest.raises(FlowError, match="no steps"):
        load_flows([path])
    path.write_text(OK.replace("triggers = [%s]", 'start = "hello"') % "x", encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows([path])
    assert raised.value.place == "flow 'x'.start"


def test_a_loop_through_a_waiting_step_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        """
[[flow]]
id = "loop"
[[flow.step]]
id = "ask"
type = "collect"
text = { pt-BR = "De novo?", en = "Again?" }
var = "answer"
goto = "say"
[[flow.step]]
id = "say"
type = "say"
text = { pt-BR = "Ok", en = "Ok" }
goto = "ask"
""",
        encoding="utf-8",
    )
    assert load_flows([path]).ids() == ("loop",)


def test_shipped_flows_load() -> None:
    flows = load_flows([default_flows_path()])
    assert set(flows.ids()) == {
        "greeting",
        "talk_to_human",
        "ticket_status",
        "password_reset",
        "order_status",
        "kb_feedback",
    }
    assert flows.handoff_tiers() == {
        ("password_reset", "failed", "N1"),
        ("order_status", "human", "N1"),
        ("order_status", "no_number", "N1"),
    }


@pytest.mark.parametrize(
    ("text", "flow_id"),
    [
        ("Olá!", "greeting"),
        ("OLA", "greeting"),
        ("  bom   dia.", "greeting"),
        ("/start", "greeting"),
        ("Menu", "greeting"),
        ("Esqueci minha senha", "password_reset"),
        ("reset password!", "password_reset"),
        ("Cadê meu pedido?", "order_status"),
        ("oi, quero saber do meu pedido", None),
        ("", None),
        ("!!!", None),
        # Several triggers in a row: the last one's flow (a greeting is courtesy).
        ("Oi, bom dia!", "greeting"),
        ("olá boa tarde", "greeting"),
        ("Good morning!", "greeting"),
        ("hey there", "greeting"),
        ("Olá! Esqueci minha senha", "password_reset"),
        ("hi, forgot my password", "password_reset"),
        # Something else after them: not by itself (see the next test).
        ("bom dia, tudo bem?", None),
        ("oi menu de opções", None),
    ],
)
def test_find_trigger(text: str, flow_id: str | None) -> None:
    assert load_flows([default_flows_path()]).find_trigger(text) == flow_id


def test_what_may_follow_the_triggers_is_the_callers_to_say() -> None:
    flows = load_flows([default_flows_path()])
    heard: list[str] = []

    def then(rest: str) -> bool:
        heard.append(rest)
        return rest == "tudo bem"

    assert flows.find_trigger("Bom dia, tudo bem?", then=then) == "greeting"
    assert flows.find_trigger("Bom dia, meu pedido não chegou", then=then) is None
    assert heard == ["tudo bem", "meu pedido nao chegou"]
    assert flows.find_trigger("Qual o horário?", then=then) is None
    assert len(heard) == 2  # no trigger first: nothing to ask about


def test_normalize() -> None:
    assert normalize("  Olá, Ação!  ") == "ola acao"
    assert normalize("SÃO   Paulo\n") == "sao paulo"
    assert normalize("👋 hi") == "hi"


def test_render_template() -> None:
    variables = {"name": "Ana", "n": "7"}
    assert render("Oi {name}, pedido {n}", variables) == "Oi Ana, pedido 7"
    assert render("{missing}|{{name}}|{ name }|{", variables) == "|{name}|{ name }|{"
    assert template_problem("Oi {name} {{ok}}") is None
    assert template_problem("Oi {name") is not None
    assert template_problem("{0}") is not None
