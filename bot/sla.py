"""Promises (SLA) in calendar time: when a ticket is due, and what the customer is told.

A tier promises a first response and (optionally) a resolution, counted on its
calendar: ``business`` (``[business_hours]``: days, hours, holidays, time zone) or
``24x7``. A routing rule may bring its own promise (:class:`~bot.models.SlaTerms`,
carried on the ticket), which holds while the ticket stays in the rule's tier: an
urgent incident gets a 30-minute 24x7 promise where its tier says 8 business hours.

Both clocks start when the ticket enters its tier's queue (``queued_at``: opened,
escalated; a release keeps it). Every time a ticket enters a queue
:meth:`Deadlines.arm` sets two store timers, ``sla:<ticket id>:<tier>`` at the first
response deadline and ``sla-resolution:<ticket id>:<tier>`` at the resolution deadline;
:mod:`bot.breach` acts when they fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import i18n
from bot.hours import BusinessHours, WorkingTime, working_time
from bot.models import BreachAction, Calendar, Promise, Ticket, TicketState
from bot.tiers import TierMap
from bot.timers import Timers

#: The timer kind of a first-response deadline: ``sla:<ticket id>:<tier>``.
SLA_TIMER = "sla"
#: The timer kind of a resolution deadline: ``sla-resolution:<ticket id>:<tier>``.
RESOLUTION_TIMER = "sla-resolution"
TIMERS = {Promise.FIRST_RESPONSE: SLA_TIMER, Promise.RESOLUTION: RESOLUTION_TIMER}


@dataclass(frozen=True)
class Terms:
    """The promise in force for a ticket in its current tier."""

    calendar: Calendar
    first_response_minutes: int
    resolution_minutes: int | None
    on_first_response_breach: tuple[BreachAction, ...]
    on_resolution_breach: tuple[BreachAction, ...]

    def minutes(self, promise: Promise) -> int | None:
        if promise is Promise.FIRST_RESPONSE:
            return self.first_response_minutes
        return self.resolution_minutes

    def actions(self, promise: Promise) -> tuple[BreachAction, ...]:
        if promise is Promise.FIRST_RESPONSE:
            return self.on_first_response_breach
        return self.on_resolution_breach


def waiting_for_first_response(ticket: Ticket, tier: str) -> bool:
    """Open in ``tier`` and no agent reply since it entered that tier's queue (a claim
    alone is no answer: the customer still waits)."""
    return (
        ticket.state in (TicketState.QUEUED, TicketState.ASSIGNED)
        and ticket.tier == tier
        and (ticket.replied_at is None or ticket.replied_at < ticket.queued_at)
    )


class Deadlines:
    """When each ticket is due, on which calendar, and the timers that watch it."""

    def __init__(self, tiers: TierMap, hours: BusinessHours, timers: Timers) -> None:
        self._tiers = tiers
        self._hours = hours
        self._timers = timers
        self._zone = ZoneInfo(hours.timezone)

    def terms(self, ticket: Ticket) -> Terms | None:
        """The tier's terms, with the routing rule's over them while the ticket is in
        the rule's tier; None for a tier no longer configured."""
        tier = self._tiers.get(ticket.tier)
        if tier is None:
            return None
        rule = ticket.terms
        if rule.empty or not ticket.tier_history or ticket.tier_history[0] != ticket.tier:
            rule = type(rule)()
        return Terms(
            calendar=rule.calendar or tier.calendar,
            first_response_minutes=rule.first_response_minutes or tier.first_response_minutes,
            resolution_minutes=rule.resolution_minutes or tier.resolution_minutes,
            on_first_response_breach=tier.on_first_response_breach
            if rule.on_first_response_breach is None
            else rule.on_first_response_breach,
            on_resolution_breach=tier.on_resolution_breach
            if rule.on_resolution_breach is None
            else rule.on_resolution_breach,
        )

    def working_time(self, terms: Terms) -> WorkingTime:
        return working_time(terms.calendar, self._hours)

    def due(self, ticket: Ticket, promise: Promise) -> datetime | None:
        """When ``promise`` falls due for the ticket's stay in its tier (None: no such
        promise)."""
        terms = self.terms(ticket)
        minutes = None if terms is None else terms.minutes(promise)
        if terms is None or minutes is None:
            return None
        return self.working_time(terms).add(ticket.queued_at, minutes)

    def first_response_due(self, ticket: Ticket) -> datetime | None:
        return self.due(ticket, Promise.FIRST_RESPONSE)

    async def arm(self, ticket: Ticket) -> None:
        """Set the timers of both promises for the ticket's stay in its tier. Called
        whenever a ticket enters a queue: opened, escalated or routed (a new tier: new
        timers), released (the same timers, set again)."""
        for promise, kind in TIMERS.items():
            due = self.due(ticket, promise)
            if due is not None:
                await self._timers.schedule(kind, f"{ticket.id}:{ticket.tier}", due)

    # -- what the customer is told ---------------------------------------------------

    def promise_text(self, ticket: Ticket, locale: str, now: datetime) -> tuple[str, str | None]:
        """The first-response promise as the customer reads it, and a line saying when
        we open (None while open). Inside hours, a deadline that falls before closing
        reads "em até 15 minutos"; otherwise it is the actual moment, in the business
        hours' time zone: "até segunda às 8h10"."""
        terms = self.terms(ticket)
        if terms is None:
            return i18n.within(0, locale), None
        minutes = terms.first_response_minutes
        clock = self.working_time(terms)
        due = clock.add(ticket.queued_at, minutes)
        local_now, local_due = now.astimezone(self._zone), due.astimezone(self._zone)
        if clock.is_open(now) and due - ticket.queued_at == timedelta(minutes=minutes):
            phrase = i18n.within(minutes, locale)
        else:
            phrase = i18n.by(local_due, local_now, locale)
        if clock.is_open(now):
            return phrase, None
        opens = clock.opens(now).astimezone(self._zone)
        closed = i18n.text(
            "handoff_closed_hours",
            locale,
            opens=i18n.moment(opens, local_now, locale),
            due=i18n.moment(local_due, opens, locale),
        )
        return phrase, closed
