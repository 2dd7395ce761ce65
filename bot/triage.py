"""Triage: ordered routing rules, first match wins, every decision explainable.

The rules file (``flows/routing.toml`` by default) lists ``[[rule]]`` tables in order.
A rule matches when every condition in its ``[rule.when]`` table holds (AND); a list
value matches when any item does (OR). The first matching rule decides the tier,
priority, skills and private flag, and the reasons shown to agents say which rule and
which condition matched.

``handoff`` (default true) says "hand off now, the bot stops trying". A rule with
``handoff = false`` only routes: it says where the conversation goes *when* it goes to a
human (the customer asks, the bot gives up), and the bot keeps trying meanwhile. So that
such a rule never hides a later rule that would hand off (bot could not answer, customer
asked for a human), when a later matching rule has ``handoff = true`` the decision
hands off, keeps the first rule's routing and adds that rule's reason. Likewise a later
matching rule with ``private = true`` makes the decision private (issue 12: an urgent
security ticket that mentions a card still keeps the card out of the open chat).

Text conditions (``bot.triage_text``): ``keywords`` (stems, typos, inserted words and
word order tolerated), ``regex`` (Python syntax, case-insensitive, searched in the text
as written and with accents removed: ``c[oó]digo`` and ``codigo`` both work) and
``examples`` (customer phrasings matched with the KB's matcher; ``example_threshold``,
0..100, says how close is close enough). When a rule lists more than one of them, the
text matches when *any* of them does; every other condition must hold as well. A rule
with ``examples`` may also list ``messages``: reviewed customer messages of the problem,
as written, matched on meaning only (the ``semantic`` extra; as for the KB's
``messages``, ``kb.loader``, a real message's other words are not the rule's).

``[human_request] examples = [...]`` (optional, top level) lists how customers ask for
a person in their own words ("quero conversar com uma pessoa"): the engine treats a
message close to one of them like the "talk to a human" command
(:meth:`Triage.human_request`). It may list ``messages`` too.

An empty or missing ``when`` matches everything: only the last rule may be such a
catch-all, since no rule after it could ever match. Without one, the default is the
lowest tier, normal priority, no handoff.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path

from bot.errors import ConfigError, Problems
from bot.hours import BusinessHours
from bot.models import EMPTY, BreachAction, Calendar, Priority, SlaTerms, Tier, TriageDecision
from bot.settings import breach_actions, choice, minutes
from bot.toml_config import Section, did_you_mean, read_toml
from bot.triage_text import (
    EXAMPLE_THRESHOLD,
    HUMAN_REQUEST_COSINE,
    ExampleHit,
    Examples,
    Keyword,
    TextForms,
    Vocabulary,
)
from kb.fused import phrasings
from kb.lowinfo import is_low_information
from kb.matcher import Nearest
from kb.model import KnowledgeBase
from kb.normalize import fold
from kb.semantic import Embeddings, PhrasingVectors

KB_OUTCOMES = ("answer", "suggest", "none")
CHANNELS = ("telegram", "sms", "whatsapp", "console")
#: The pseudo-rule under which ``[human_request]`` examples are indexed.
HUMAN_REQUEST = "[human_request]"

RULE_KEYS = (
    "name", "reason", "tier", "priority", "skills", "private", "handoff", "when",
    # the rule's own promise (issue 13), over its tier's
    "calendar", "first_response_minutes", "resolution_minutes",
    "on_first_response_breach", "on_resolution_breach",
)  # fmt: skip
WHEN_KEYS = (
    "keywords", "regex", "examples", "messages", "example_threshold", "kb_outcome", "kb_category",
    "failed_attempts_at_least", "channel", "contact", "business_hours", "requested_human",
)  # fmt: skip


@dataclass(frozen=True)
class TriageContext:
    text: str
    channel: str
    now: datetime
    kb_outcome: str | None = None
    kb_category: str | None = None
    failed_attempts: int = 0
    contact_attributes: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    requested_human: bool = False


@dataclass(frozen=True)
class Conditions:
    """``[rule.when]``. An empty tuple or ``None`` means "not a condition"."""

    keywords: tuple[Keyword, ...] = ()
    regex: tuple[re.Pattern[str], ...] = ()
    examples: tuple[str, ...] = ()
    #: Reviewed customer messages, matched on meaning only (module doc).
    messages: tuple[str, ...] = ()
    example_threshold: float = EXAMPLE_THRESHOLD
    kb_outcome: tuple[str, ...] = ()
    kb_category: tuple[str, ...] = ()
    failed_attempts_at_least: int | None = None
    channel: tuple[str, ...] = ()
    contact: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EMPTY)
    business_hours: bool | None = None
    requested_human: bool | None = None

    @property
    def catch_all(self) -> bool:
        return self == Conditions()

    @property
    def reads_text(self) -> bool:
        return bool(self.keywords or self.regex or self.examples)

    @cached_property
    def _keyword_index(
        self,
    ) -> tuple[frozenset[str], frozenset[str], frozenset[str], dict[str, list[frozenset[str]]]]:
        """The keywords' words; their phrases (a keyword's words, joined); the one-word
        keywords; the words :meth:`Keyword.find` needs all of to look for a phrase in a
        window, by one of them (each set is under its least word: a text can hold the
        set only if it holds that word)."""
        words = frozenset(w for keyword in self.keywords for w in keyword.words)
        phrases = frozenset(k.phrase for k in self.keywords if len(k.words) > 1)
        single = frozenset(k.words[0] for k in self.keywords if len(k.words) == 1)
        needs: dict[str, list[frozenset[str]]] = {}
        for keyword in self.keywords:
            if keyword.needed is not None:
                needs.setdefault(min(keyword.needed), []).append(keyword.needed)
        return words, phrases, single, needs

    def _keywords_may_hit(self, text: TextForms) -> bool:
        """False when no keyword can match ``text``, decided from what the text's forms
        worked out once for every rule (which rule words match a word of it, which
        phrases it nearly holds) instead of asking each keyword (issue 18). A keyword
        matches only if its one word matches, or the text nearly holds its phrase, or
        each of its meaningful words matches (:meth:`Keyword.find`)."""
        matched, vocabulary = text.matched, text.vocabulary
        words, phrases, single, needs = self._keyword_index
        if matched is None or vocabulary is None or not vocabulary.covers(words, phrases):
            return True  # the text's forms were not worked out for these keywords
        if matched and (
            not single.isdisjoint(matched)
            or any(needed <= matched for word in matched for needed in needs.get(word, ()))
        ):
            return True
        return bool(phrases) and not phrases.isdisjoint(text.near_phrases)

    def _text_hit(self, text: TextForms, nearest: Nearest | None) -> str | None:
        """Why the text matches (any one text condition is enough), or ``None``."""
        if self.keywords and self._keywords_may_hit(text):
            for keyword in self.keywords:
                matched = keyword.find(text)
                if matched is not None:
                    as_written = " ".join(keyword.words)
                    return f"keyword '{keyword.text}'" + (
                        f" (as '{matched}')" if matched != as_written else ""
                    )
        if self.regex:
            hit = self._regex_hit(text)
            if hit is not None:
                return hit
        if nearest is not None and nearest.score >= self.example_threshold:
            return ExampleHit(nearest.entry_id, nearest.phrasing, nearest.score).explain()
        return None

    def _regex_hit(self, text: TextForms) -> str | None:
        for pattern in self.regex:
            found = pattern.search(text.raw) or pattern.search(text.bare)
            if found is not None:
                return f"regex '{pattern.pattern}' on '{found.group(0)[:60]}'"
        return None

    def may_hold(self, ctx: TriageContext) -> bool:
        """False when a condition that does not read the text fails."""
        return (
            (not self.kb_outcome or ctx.kb_outcome in self.kb_outcome)
            and (not self.kb_category or ctx.kb_category in self.kb_category)
            and (
                self.failed_attempts_at_least is None
                or ctx.failed_attempts >= self.failed_attempts_at_least
            )
            and (not self.channel or ctx.channel in self.channel)
            and (self.requested_human is None or ctx.requested_human is self.requested_human)
        )

    def explain(
        self,
        ctx: TriageContext,
        text: TextForms,
        hours: BusinessHours,
        nearest: Nearest | None = None,
    ) -> list[str] | None:
        """Why every condition holds, or ``None`` as soon as one does not.
        ``nearest``: this rule's example nearest to the text, if it has examples."""
        if not self.may_hold(ctx):
            return None  # the cheap conditions first: reading the text costs the most
        why: list[str] = []
        if self.reads_text:
            hit = self._text_hit(text, nearest)
            if hit is None:
                return None
            why.append(hit)
        if self.kb_outcome:
            if ctx.kb_outcome not in self.kb_outcome:
                return None
            why.append(f"KB outcome '{ctx.kb_outcome}'")
        if self.kb_category:
            if ctx.kb_category not in self.kb_category:
                return None
            why.append(f"KB category '{ctx.kb_category}'")
        if self.failed_attempts_at_least is not None:
            if ctx.failed_attempts < self.failed_attempts_at_least:
                return None
            why.append(f"failed attempts {ctx.failed_attempts} ≥ {self.failed_attempts_at_least}")
        if self.channel:
            if ctx.channel not in self.channel:
                return None
            why.append(f"channel '{ctx.channel}'")
        for name, values in self.contact.items():
            value = ctx.contact_attributes.get(name)
            if value is None or value.strip().casefold() not in values:
                return None
            why.append(f"contact {name} = '{value}'")
        if self.business_hours is not None:
            if hours.is_open(ctx.now) is not self.business_hours:
                return None
            why.append("within business hours" if self.business_hours else "outside business hours")
        if self.requested_human is not None:
            if ctx.requested_human is not self.requested_human:
                return None
            why.append(
                "customer asked for a human" if ctx.requested_human else "no human asked for"
            )
        return why


@dataclass(frozen=True)
class Rule:
    name: str
    reason: str
    tier: str
    priority: Priority = Priority.NORMAL
    skills: tuple[str, ...] = ()
    private: bool = False
    handoff: bool = True
    when: Conditions = Conditions()
    terms: SlaTerms = field(default_factory=SlaTerms)


class Triage:
    def __init__(
        self,
        rules: Sequence[Rule],
        default_tier: str,
        hours: BusinessHours,
        human_examples: Sequence[str] = (),
        human_threshold: float = EXAMPLE_THRESHOLD,
        embeddings: Embeddings | None = None,
        kb: KnowledgeBase | None = None,
        human_messages: Sequence[str] = (),
    ) -> None:
        """``embeddings``: match ``examples`` (and ``messages``) on meaning too (the
        ``semantic`` extra); ``kb``: the knowledge base whose phrasings an example must
        beat to match on meaning alone (:class:`bot.triage_text.Examples`)."""
        self.rules = tuple(rules)
        self.default_tier = default_tier
        self.hours = hours
        self._vocabulary = Vocabulary(
            (word for r in self.rules for keyword in r.when.keywords for word in keyword.words),
            (k.phrase for r in self.rules for k in r.when.keywords if len(k.words) > 1),
        )
        competitors = (
            PhrasingVectors.build(phrasings(kb), embeddings.encoder, embeddings.cache)
            if embeddings is not None and kb is not None and kb.entries
            else None
        )
        # The KB's text is ordinary customer language: its words are real words, not
        # typos of an example's word.
        kb_text = (
            [t for e in kb.entries for t in (*e.questions, *e.titles.values(), *e.answers.values())]
            if kb is not None
            else []
        )
        self._human = Examples(
            {HUMAN_REQUEST: tuple(human_examples)},
            embeddings,
            competitors,
            HUMAN_REQUEST_COSINE,
            discounts=False,
            real_words=kb_text,
            messages={HUMAN_REQUEST: tuple(human_messages)},
        )
        self._examples = Examples(
            {r.name: r.when.examples for r in self.rules},
            embeddings,
            competitors,
            real_words=kb_text,
            messages={r.name: r.when.messages for r in self.rules},
            requests=self._human,
        )
        self._human_threshold = human_threshold
        #: The least score a rule's example must reach to match: lower ones go unread.
        self._example_floor = min(
            (r.when.example_threshold for r in self.rules if r.when.examples), default=0.0
        )

    def human_request(self, text: str) -> ExampleHit | None:
        """The ``[human_request]`` example ``text`` is close to: the customer asks for a
        person in their own words. ``None`` for a low-information text."""
        if is_low_information(text):
            return None
        found = self._human.nearest(text, self._human_threshold).get(HUMAN_REQUEST)
        if found is None or found.score < self._human_threshold:
            return None
        return ExampleHit(HUMAN_REQUEST, found.phrasing, found.score)

    def decide(self, ctx: TriageContext) -> TriageDecision:
        text = TextForms.of(ctx.text, self._vocabulary)
        # Examples match only a message that says something: "ok" is close to no problem.
        # Scored for every rule at once, and only once a rule whose other conditions
        # hold asks (issue 18: most turns, none does).
        nearest: dict[str, Nearest] | None = {} if is_low_information(ctx.text) else None

        def nearest_for(rule: Rule) -> Nearest | None:
            nonlocal nearest
            if not rule.when.examples or not rule.when.may_hold(ctx):
                return None  # explain reads no example for it
            if nearest is None:
                nearest = self._examples.nearest(ctx.text, self._example_floor)
            return nearest.get(rule.name)

        explained: dict[str, list[str] | None] = {}

        def explain(rule: Rule) -> list[str] | None:
            # A rule is asked again when an earlier one routes without handing off or
            # is not private: once is enough.
            if rule.name not in explained:
                explained[rule.name] = rule.when.explain(ctx, text, self.hours, nearest_for(rule))
            return explained[rule.name]

        for i, rule in enumerate(self.rules):
            why = explain(rule)
            if why is None:
                continue
            matched = "; ".join(why) or "catch-all rule"
            # "customer asked for a human" twice says nothing more (issue 12)
            reasons: tuple[str, ...] = (
                (rule.reason,) if matched == rule.reason else (rule.reason, f"matched: {matched}")
            )
            decision = TriageDecision(
                tier=rule.tier,
                priority=rule.priority,
                skills=rule.skills,
                private=rule.private,
                reasons=reasons,
                rule=rule.name,
                handoff=rule.handoff,
                terms=rule.terms,
            )
            if not rule.handoff:
                later = next(
                    (r for r in self.rules[i + 1 :] if r.handoff and explain(r) is not None),
                    None,
                )
                if later is not None:
                    reasons = (
                        *decision.reasons,
                        f"handoff now: {later.reason} (rule '{later.name}')",
                    )
                    decision = replace(decision, handoff=True, reasons=reasons)
            if not rule.private:
                # Privacy is about the data, not the team: a later private rule that
                # matches keeps card numbers and health data out of the open chat.
                private = next(
                    (r for r in self.rules[i + 1 :] if r.private and explain(r) is not None),
                    None,
                )
                if private is not None:
                    reasons = (
                        *decision.reasons,
                        f"private: {private.reason} (rule '{private.name}')",
                    )
                    decision = replace(decision, private=True, reasons=reasons)
            return decision
        return TriageDecision(
            tier=self.default_tier,
            priority=Priority.NORMAL,
            skills=(),
            private=False,
            reasons=(f"no routing rule matched; default tier {self.default_tier}",),
            handoff=False,
        )


# --- the rules file -------------------------------------------------------------------


def load_triage(
    path: Path,
    tiers: Sequence[Tier],
    hours: BusinessHours,
    embeddings: Embeddings | None = None,
    kb: KnowledgeBase | None = None,
) -> Triage:
    """The rules in ``path``, checked against ``tiers``; the default is the lowest tier.
    ``embeddings``: rule and ``[human_request]`` examples also match on meaning, when
    nearer the text than every phrasing of ``kb``."""
    if not tiers:
        raise ConfigError(str(path), "", "no tiers to route to")
    root = Section(str(path), "", read_toml(path))
    root.check_keys(("rule", "human_request"), "section")
    problems = Problems()
    sections = root.tables("rule") or []
    names = [t.name for t in sorted(tiers, key=lambda t: t.level)]
    rules: list[Rule] = []
    catch_alls: list[int] = []
    for i, raw in enumerate(sections, start=1):
        with problems.check():
            name = raw.string("name")
            s = Section(raw.file, f"rule[{i}] '{name}'", raw.data)
            if any(r.name == name for r in rules):
                raise s.error("name", f"duplicate rule name '{name}'")
            rule = _rule(s, name, names)
            if rule.when.catch_all:
                catch_alls.append(i)
            rules.append(rule)
    for i in catch_alls:
        if i < len(sections):
            problems.errors.append(
                ConfigError(
                    str(path),
                    f"rule[{i}] '{sections[i - 1].data.get('name')}'.when",
                    "empty: it matches everything, so the rules after it could never match"
                    " (only the last rule may be a catch-all)",
                )
            )
    human = root.table("human_request")
    examples: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    threshold = EXAMPLE_THRESHOLD
    with problems.check():
        human.check_keys(("examples", "messages", "example_threshold"))
        examples = human.strings("examples", (), empty=False)
        messages = human.strings("messages", (), empty=False)
        if messages and not examples:
            raise human.error("messages", "set, but there are no examples")
        threshold = _threshold(human)
    problems.raise_if_any()
    return Triage(
        rules, names[0], hours, examples, threshold, embeddings, kb, human_messages=messages
    )


def _threshold(s: Section) -> float:
    value = s.number("example_threshold", EXAMPLE_THRESHOLD, low=1, high=100)
    assert value is not None
    return value


def _terms(s: Section, tier: str, tiers: list[str]) -> SlaTerms:
    calendar = choice(s, "calendar", Calendar, Calendar.BUSINESS) if "calendar" in s.data else None
    terms = SlaTerms(
        calendar=calendar,
        first_response_minutes=minutes(s, "first_response_minutes"),
        resolution_minutes=minutes(s, "resolution_minutes"),
        on_first_response_breach=breach_actions(s, "on_first_response_breach"),
        on_resolution_breach=breach_actions(s, "on_resolution_breach"),
    )
    for key in ("on_first_response_breach", "on_resolution_breach"):
        actions = getattr(terms, key)
        if actions and BreachAction.ESCALATE in actions and tier == tiers[-1]:
            raise s.error(key, f"escalate: {tier} is the last tier")
    return terms


def _rule(s: Section, name: str, tiers: list[str]) -> Rule:
    s.check_keys(RULE_KEYS)
    tier = s.string("tier")
    if tier not in tiers:
        raise s.error(
            "tier", f"unknown tier '{tier}'{did_you_mean(tier, tiers)} (tiers: {', '.join(tiers)})"
        )
    priority = s.string("priority", "normal")
    labels = [p.label for p in Priority]
    if priority not in labels:
        raise s.error("priority", f"'{priority}' is not one of {', '.join(labels)}")
    return Rule(
        name=name,
        reason=s.string("reason"),
        tier=tier,
        priority=Priority.parse(priority),
        skills=s.strings("skills", ()),
        private=s.boolean("private", False),
        handoff=s.boolean("handoff", True),
        when=_when(s.table("when")),
        terms=_terms(s, tier, tiers),
    )


def _choices(s: Section, key: str, allowed: Sequence[str]) -> tuple[str, ...]:
    values = s.strings(key, (), empty=False)
    for i, value in enumerate(values, start=1):
        if value not in allowed:
            raise s.error(
                f"{key}[{i}]",
                f"'{value}' is not one of {', '.join(allowed)}{did_you_mean(value, allowed)}",
            )
    return values


def _when(s: Section) -> Conditions:
    s.check_keys(WHEN_KEYS)
    keywords: list[Keyword] = []
    for i, text in enumerate(s.strings("keywords", (), empty=False), start=1):
        words = tuple(fold(text).split())
        if not words:
            raise s.error(f"keywords[{i}]", f"'{text}' has no letters or digits")
        keywords.append(Keyword(text, words))
    patterns: list[re.Pattern[str]] = []
    for i, pattern in enumerate(s.strings("regex", (), empty=False), start=1):
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise s.error(f"regex[{i}]", f"bad regular expression: {e}") from None
        if compiled.search("") is not None:
            raise s.error(f"regex[{i}]", "matches an empty text, so it would match every message")
        patterns.append(compiled)
    contact: dict[str, tuple[str, ...]] = {}
    contact_table = s.table("contact")
    for key in contact_table.data:
        values = contact_table.strings(key, empty=False)
        contact[key] = tuple(v.strip().casefold() for v in values)
    failed = (
        s.integer("failed_attempts_at_least", 0, minimum=1)
        if "failed_attempts_at_least" in s.data
        else None
    )
    for key in ("example_threshold", "messages"):
        if key in s.data and "examples" not in s.data:
            raise s.error(key, "set, but the rule has no examples")
    return Conditions(
        keywords=tuple(keywords),
        regex=tuple(patterns),
        examples=s.strings("examples", (), empty=False),
        messages=s.strings("messages", (), empty=False),
        example_threshold=_threshold(s),
        kb_outcome=_choices(s, "kb_outcome", KB_OUTCOMES),
        kb_category=s.strings("kb_category", (), empty=False),
        failed_attempts_at_least=failed,
        channel=_choices(s, "channel", CHANNELS),
        contact=contact or EMPTY,
        business_hours=s.boolean("business_hours") if "business_hours" in s.data else None,
        requested_human=s.boolean("requested_human") if "requested_human" in s.data else None,
    )
