"""The runner, step type by step type, asserted on what the customer would see."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import pytest

from flows.errors import FlowError
from flows.loader import FlowSet, load_flows
from flows.position import FlowPosition
from flows.runner import FlowReply, FlowRunner, Option
from flows.text import normalize

T = '{ pt-BR = "%s", en = "%s" }'


def text(pt: str, en: str | None = None) -> str:
    return T % (pt, en if en is not None else pt)


@dataclass
class FakeHost:
    """Records what the customer was sent and what the flow asked of the world."""

    locale: str = "pt-BR"
    channel: str = "telegram"
    tags: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    #: normalized question -> answer the fake knowledge base gives
    kb: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[str, tuple[Option, ...]]] = field(default_factory=list)
    handoffs: list[tuple[str | None, str | None, str]] = field(default_factory=list)
    statuses: list[int | None] = field(default_factory=list)
    kb_queries: list[str] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        return self.attributes.get(name)

    async def send(self, text: str, options: Sequence[Option] = ()) -> None:
        self.sent.append((text, tuple(options)))

    async def add_tags(self, tags: Sequence[str]) -> None:
        self.tags = (*self.tags, *(t for t in tags if t not in self.tags))

    async def handoff(self, tier: str | None, priority: str | None, reason: str) -> None:
        self.handoffs.append((tier, priority, reason))

    async def ticket_status(self, number: int | None) -> None:
        self.statuses.append(number)

    async def kb_answer(self, query: str) -> bool:
        self.kb_queries.append(query)
        answer = self.kb.get(normalize(query))
        if answer is None:
            return False
        await self.send(answer)
        return True

    @property
    def texts(self) -> list[str]:
        return [t for t, _ in self.sent]

    @property
    def last_options(self) -> list[str]:
        return [o.label for o in self.sent[-1][1]]


Loader = Callable[[str], FlowSet]


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    def load(source: str) -> FlowSet:
        path = tmp_path / "flows.toml"
        path.write_text(source, encoding="utf-8")
        return load_flows([path])

    return load


MENU = f"""
[[flow]]
id = "menu"

[[flow.step]]
id = "ask"
type = "ask"
text = {text("Escolha:", "Pick one:")}
var = "picked"
choices = [
  {{ id = "pix", label = {text("Pix")}, goto = "paid_pix" }},
  {{ id = "card", label = {text("Cartão de crédito", "Credit card")}, goto = "paid_card" }},
]
on_invalid = "human"

[[flow.step]]
id = "paid_pix"
type = "end"
text = {text("Pix ({picked})")}

[[flow.step]]
id = "paid_card"
type = "end"
text = {text("Cartão ({picked})", "Card ({picked})")}

[[flow.step]]
id = "human"
type = "handoff"
reason = "no choice"
"""


async def test_say_steps_run_in_file_order_and_the_flow_ends_after_the_last(
    load: Loader,
) -> None:
    flows = load(f"""
[[flow]]
id = "hello"
[[flow.step]]
id = "one"
type = "say"
text = {text("um", "one")}
[[flow.step]]
id = "two"
type = "say"
text = {text("dois", "two")}
""")
    host = FakeHost(locale="en")
    assert await FlowRunner(flows).start("hello", host) is None
    assert host.texts == ["one", "two"]


async def test_say_goto_skips_steps(load: Loader) -> None:
    flows = load(f"""
[[flow]]
id = "hello"
[[flow.step]]
id = "one"
type = "say"
text = {text("um")}
goto = "three"
[[flow.step]]
id = "two"
type = "say"
text = {text("dois")}
[[flow.step]]
id = "three"
type = "end"
text = {text("três")}
""")
    host = FakeHost()
    assert await FlowRunner(flows).start("hello", host) is None
    assert host.texts == ["um", "três"]


async def test_ask_sends_options_in_the_customer_locale_and_waits(load: Loader) -> None:
    runner = FlowRunner(load(MENU))
    host = FakeHost(locale="en")
    position = await runner.start("menu", host)
    assert position == FlowPosition("menu", "ask", MappingProxyType({}))
    assert host.sent == [("Pick one:", (Option("pix", "Pix"), Option("card", "Credit card")))]


@pytest.mark.parametrize(
    "reply",
    [
        FlowReply("", choice_id="card"),
        FlowReply("2"),
        FlowReply(" 2. "),
        FlowReply("cartao de credito"),
        FlowReply("Credit Card!"),  # the other locale's label
    ],
)
async def test_ask_accepts_choice_id_number_or_label(load: Loader, reply: FlowReply) -> None:
    runner = FlowRunner(load(MENU))
    host = FakeHost()
    position = await runner.start("menu", host)
    assert position is not None
    assert await runner.resume(position, reply, host) is None
    assert host.texts[-1] == "Cartão (card)"


async def test_ask_invalid_reply_asks_again_then_goes_on_invalid(load: Loader) -> None:
    runner = FlowRunner(load(MENU))
    host = FakeHost()
    position = await runner.start("menu", host)
    assert position is not None
    for wrong in ("3", "boleto"):
        assert position is not None
        position = await runner.resume(position, FlowReply(wrong), host)
        if wrong == "3":
            assert position is not None and position.retries == 1
            assert host.sent[-1] == host.sent[0], "the question and its options, again"
    assert position is None
    assert host.handoffs == [(None, None, "no choice")]
    assert len(host.sent) == 2


async def test_ask_without_on_invalid_ends_quietly_after_retries(load: Loader) -> None:
    flows = load(MENU.replace('on_invalid = "human"', "max_retries = 0"))
    runner = FlowRunner(flows)
    host = FakeHost()
    position = await runner.start("menu", host)
    assert position is not None
    assert await runner.resume(position, FlowReply("boleto"), host) is None
    assert len(host.sent) == 1 and host.handoffs == []


COLLECT = f"""
[[flow]]
id = "order"

[[flow.step]]
id = "number"
type = "collect"
text = {text("Número do pedido?", "Order number?")}
var = "order_number"
pattern = '#?\\d{{6,10}}'
error = {text("Número inválido: {input}", "Invalid number: {input}")}
on_invalid = "give_up"

[[flow.step]]
id = "got_it"
type = "end"
text = {text("Pedido {order_number} encontrado", "Order {order_number} found")}

[[flow.step]]
id = "give_up"
type = "handoff"
tier = "N1"
priority = "high"
reason = "no order number after {{input}}"
"""


async def test_collect_stores_the_stripped_value(load: Loader) -> None:
    runner = FlowRunner(load(COLLECT))
    host = FakeHost(locale="en")
    position = await runner.start("order", host)
    assert position is not None and host.texts == ["Order number?"]
    assert await runner.resume(position, FlowReply("  #1234567 "), host) is None
    assert host.texts[-1] == "Order #1234567 found"


async def test_collect_invalid_shows_error_while_retries_remain_then_on_invalid(
    load: Loader,
) -> None:
    runner = FlowRunner(load(COLLECT))
    host = FakeHost()
    position = await runner.start("order", host)
    for attempt, wrong in enumerate(["abc", "12", ""], start=1):
        assert position is not None
        position = await runner.resume(position, FlowReply(wrong), host)
        if attempt < 3:  # max_retries defaults to 2
            assert position is not None and position.retries == attempt
            assert host.texts[-1] == f"Número inválido: {wrong}"
    assert position is None
    assert host.handoffs == [("N1", "high", "no order number after ")]


async def test_collect_valid_after_a_retry(load: Loader) -> None:
    runner = FlowRunner(load(COLLECT))
    host = FakeHost()
    position = await runner.start("order", host)
    assert position is not None
    position = await runner.resume(position, FlowReply("abc"), host)
    assert position is not None
    assert await runner.resume(position, FlowReply("9876543"), host) is None
    assert host.texts[-1] == "Pedido 9876543 encontrado"
    assert host.handoffs == []


async def test_collect_without_error_text_repeats_the_question(load: Loader) -> None:
    flows = load(COLLECT.replace("error = ", "# error = "))
    runner = FlowRunner(flows)
    host = FakeHost()
    position = await runner.start("order", host)
    assert position is not None
    await runner.resume(position, FlowReply("abc"), host)
    assert host.texts == ["Número do pedido?", "Número do pedido?"]


KB = f"""
[[flow]]
id = "help"

[[flow.step]]
id = "problem"
type = "collect"
text = {text("Qual o problema?")}
var = "problem"

[[flow.step]]
id = "lookup"
type = "kb"
query = "{{problem}}"
on_answer = "answered"
on_none = "human"

[[flow.step]]
id = "answered"
type = "end"

[[flow.step]]
id = "human"
type = "handoff"
reason = "kb had nothing on: {{problem}}"
"""


async def test_kb_step_answered_by_the_host(load: Loader) -> None:
    runner = FlowRunner(load(KB))
    host = FakeHost(kb={"horario": "Das 8h às 20h."})
    position = await runner.start("help", host)
    assert position is not None
    assert await runner.resume(position, FlowReply("Horário"), host) is None
    assert host.kb_queries == ["Horário"]
    assert host.texts[-1] == "Das 8h às 20h."
    assert host.handoffs == []


async def test_kb_step_without_answer_goes_on_none(load: Loader) -> None:
    runner = FlowRunner(load(KB))
    host = FakeHost()
    position = await runner.start("help", host)
    assert position is not None
    assert await runner.resume(position, FlowReply("impressora pegando fogo"), host) is None
    assert host.handoffs == [(None, None, "kb had nothing on: impressora pegando fogo")]


async def test_kb_step_default_query_is_the_latest_reply(load: Loader) -> None:
    runner = FlowRunner(load(KB.replace('query = "{problem}"\n', "")))
    host = FakeHost(kb={"horario": "Das 8h às 20h."})
    position = await runner.start("help", host)
    assert position is not None
    await runner.resume(position, FlowReply("horario"), host)
    assert host.kb_queries == ["horario"]


async def test_kb_step_with_nothing_to_ask_skips_the_lookup(load: Loader) -> None:
    runner = FlowRunner(load(KB))
    host = FakeHost()
    assert await runner.start("help", host, {}) is not None
    # started straight at the lookup: no problem yet, so no query and on_none
    flows = load(KB.replace('id = "help"', 'id = "help"\nstart = "lookup"'))
    host = FakeHost()
    assert await FlowRunner(flows).start("help", host) is None
    assert host.kb_queries == []
    assert host.handoffs == [(None, None, "kb had nothing on: ")]


BRANCH = f"""
[[flow]]
id = "route"

[[flow.step]]
id = "check"
type = "branch"
cases = [
  {{ if = {{ all = [{{ tag = "vip" }}, {{ attribute = "plan", equals = "Enterprise" }}] }}, goto = "vip" }},
  {{ if = {{ var = "ticket", matches = '\\d+' }}, goto = "number" }},
  {{ if = {{ var = "email", set = true }}, goto = "email" }},
  {{ if = {{ var = "color", equals = "blue" }}, goto = "blue" }},
  {{ if = {{ any = [{{ channel = "sms" }}, {{ locale = "en" }}] }}, goto = "sms_or_en" }},
  {{ if = {{ not = {{ attribute = "plan", set = true }} }}, goto = "no_plan" }},
]
else = "other"

[[flow.step]]
id = "vip"
type = "end"
text = {text("vip")}

[[flow.step]]
id = "number"
type = "end"
text = {text("number")}

[[flow.step]]
id = "email"
type = "end"
text = {text("email")}

[[flow.step]]
id = "blue"
type = "end"
text = {text("blue")}

[[flow.step]]
id = "sms_or_en"
type = "end"
text = {text("sms_or_en")}

[[flow.step]]
id = "no_plan"
type = "end"
text = {text("no_plan")}

[[flow.step]]
id = "other"
type = "end"
text = {text("other")}
"""


@pytest.mark.parametrize(
    ("host", "variables", "expected"),
    [
        (FakeHost(tags=("vip",), attributes={"plan": "enterprise"}), {}, "vip"),
        (FakeHost(tags=("vip",), attributes={"plan": "pro"}), {}, "other"),
        (FakeHost(attributes={"plan": "pro"}), {"ticket": "1042"}, "number"),
        (FakeHost(attributes={"plan": "pro"}), {"ticket": "#1042x"}, "other"),
        (FakeHost(attributes={"plan": "pro"}), {"email": "a@b.co"}, "email"),
        (FakeHost(attributes={"plan": "pro"}), {"email": "  "}, "other"),
        (FakeHost(attributes={"plan": "pro"}), {"color": " BLUE "}, "blue"),
        (FakeHost(attributes={"plan": "pro"}, channel="sms"), {}, "sms_or_en"),
        (FakeHost(attributes={"plan": "pro"}, locale="en"), {}, "sms_or_en"),
        (FakeHost(), {}, "no_plan"),
    ],
)
async def test_branch_conditions(
    load: Loader, host: FakeHost, variables: dict[str, str], expected: str
) -> None:
    assert await FlowRunner(load(BRANCH)).start("route", host, variables) is None
    assert host.texts == [expected]


async def test_tag_step_adds_tags_and_sets_vars(load: Loader) -> None:
    flows = load(f"""
[[flow]]
id = "tagging"
[[flow.step]]
id = "mark"
type = "tag"
add = ["billing", "vip"]
set = {{ topic = "cobrança de {{month}}", copy = "{{{{literal}}}} {{missing}}!" }}
[[flow.step]]
id = "ask"
type = "collect"
text = {text("{topic} / {copy}")}
var = "anything"
""")
    host = FakeHost(tags=("vip",))
    position = await FlowRunner(flows).start("tagging", host, {"month": "março"})
    assert host.tags == ("vip", "billing")
    assert host.texts == ["cobrança de março / {literal} !"]
    assert position is not None
    assert dict(position.vars) == {
        "month": "março",
        "topic": "cobrança de março",
        "copy": "{literal} !",
    }


async def test_templates_never_evaluate_anything(load: Loader) -> None:
    flows = load(f"""
[[flow]]
id = "echo"
[[flow.step]]
id = "say"
type = "say"
text = {text("Olá {name}")}
""")
    host = FakeHost()
    await FlowRunner(flows).start("echo", host, {"name": "{__class__} {0} {{x}}"})
    assert host.texts == ["Olá {__class__} {0} {{x}}"]


async def test_handoff_ends_the_flow(load: Loader) -> None:
    flows = load(f"""
[[flow]]
id = "escalate"
[[flow.step]]
id = "human"
type = "handoff"
tier = "N2"
priority = "Urgent"
reason = "order {{order}} is stuck"
[[flow.step]]
id = "never"
type = "say"
text = {text("nunca")}
""")
    host = FakeHost()
    assert await FlowRunner(flows).start("escalate", host, {"order": "123"}) is None
    assert host.handoffs == [("N2", "urgent", "order 123 is stuck")]
    assert host.sent == []
    assert flows.handoff_tiers() == {("escalate", "human", "N2")}


@pytest.mark.parametrize(
    ("variables", "expected"),
    [({"n": "1042"}, [1042, None]), ({"n": "#77"}, [77, None]), ({}, [None, None])],
)
async def test_status_step(
    load: Loader, variables: dict[str, str], expected: list[int | None]
) -> None:
    flows = load("""
[[flow]]
id = "status"
[[flow.step]]
id = "by_number"
type = "status"
ticket = "{n}"
[[flow.step]]
id = "own"
type = "status"
""")
    host = FakeHost()
    assert await FlowRunner(flows).start("status", host, variables) is None
    assert host.statuses == expected


async def test_flow_step_continues_in_another_flow_with_the_vars(load: Loader) -> None:
    flows = load(
        MENU
        + f"""
[[flow]]
id = "start_here"
[[flow.step]]
id = "hello"
type = "say"
text = {text("Oi {name}")}
[[flow.step]]
id = "go"
type = "flow"
flow = "menu"
"""
    )
    host = FakeHost()
    position = await FlowRunner(flows).start("start_here", host, {"name": "Ana"})
    assert host.texts == ["Oi Ana", "Escolha:"]
    assert position is not None and (position.flow_id, position.step_id) == ("menu", "ask")
    assert position.vars["name"] == "Ana"


async def test_a_runaway_loop_raises_at_runtime(load: Loader) -> None:
    # the loader cannot prove this branch loops: it only does while the var stays unset
    flows = load(f"""
[[flow]]
id = "spin"
[[flow.step]]
id = "check"
type = "branch"
cases = [{{ if = {{ var = "done", set = true }}, goto = "out" }}]
else = "again"
[[flow.step]]
id = "again"
type = "say"
text = {text("de novo")}
goto = "check"
[[flow.step]]
id = "out"
type = "end"
""")
    host = FakeHost()
    with pytest.raises(FlowError) as raised:
        await FlowRunner(flows).start("spin", host)
    assert raised.value.place.startswith("flow 'spin', step ")
    assert "without waiting" in raised.value.reason
    assert len(host.sent) <= 50


async def test_unknown_flow_does_not_start(load: Loader) -> None:
    host = FakeHost()
    assert await FlowRunner(load(MENU)).start("nope", host) is None
    assert host.sent == []


@pytest.mark.parametrize(
    "position",
    [
        FlowPosition("deleted_flow", "ask"),
        FlowPosition("menu", "deleted_step"),
        FlowPosition("menu", "paid_pix"),  # now a step that does not wait for a reply
    ],
)
async def test_stale_position_ends_the_flow_gracefully(
    load: Loader, position: FlowPosition
) -> None:
    runner = FlowRunner(load(MENU))
    host = FakeHost()
    assert await runner.resume(position, FlowReply("1", choice_id="pix"), host) is None
    assert host.sent == [] and host.handoffs == []


async def test_position_survives_a_round_trip_through_a_new_runner(load: Loader) -> None:
    """The engine stores the position between messages, maybe in another process."""
    flows = load(MENU)
    host = FakeHost()
    position = await FlowRunner(flows).start("menu", host)
    assert position is not None
    stored = replace(position, vars=dict(position.vars))
    assert await FlowRunner(flows).resume(stored, FlowReply("1"), host) is None
    assert host.texts[-1] == "Pix (pix)"
