"""A recording customer channel and agent workspace, and an Escala built on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.app import Escala, build
from bot.clock import FakeClock, SequentialIds
from bot.desk import Desk
from bot.errors import DeliveryError
from bot.models import InboundMessage, Message, OutboundMessage
from bot.ports import TicketChangeKind, TicketView
from bot.settings import Settings, default_settings
from bot.store import Store

JOURNEY_KB = Path(__file__).parent.parent / "data" / "journey_kb.toml"


@dataclass
class Sent:
    address: str
    message: OutboundMessage
    locale: str


@dataclass
class RecordingChannel:
    """A customer channel that keeps what the customer would see."""

    name: str
    sent: list[Sent] = field(default_factory=list)
    fail_with: DeliveryError | None = None

    async def send(self, address: str, message: OutboundMessage, locale: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(Sent(address, message, locale))

    def texts(self, address: str | None = None) -> list[str]:
        return [s.message.text for s in self.sent if address is None or s.address == address]

    def last(self) -> OutboundMessage:
        assert self.sent, "the customer received nothing"
        return self.sent[-1].message

    def take(self) -> list[OutboundMessage]:
        taken = [s.message for s in self.sent]
        self.sent.clear()
        return taken


@dataclass
class RecordingWorkspace:
    """An agent workspace that keeps what agents would see."""

    opened: list[TicketView] = field(default_factory=list)
    changed: list[tuple[TicketView, TicketChangeKind]] = field(default_factory=list)
    relayed: list[tuple[TicketView, Message]] = field(default_factory=list)

    async def ticket_opened(self, view: TicketView) -> None:
        self.opened.append(view)

    async def ticket_changed(self, view: TicketView, change: TicketChangeKind) -> None:
        self.changed.append((view, change))

    async def customer_message(self, view: TicketView, message: Message) -> None:
        self.relayed.append((view, message))


class Journey:
    """Drives one Escala like customers and agents would, with a fake clock."""

    def __init__(self, settings: Settings | None = None, store: Store | None = None) -> None:
        self.clock = FakeClock()
        self.settings = settings or default_settings()
        self.escala: Escala = build(
            self.settings, store=store, clock=self.clock, ids=SequentialIds()
        )
        self.channels = {name: RecordingChannel(name) for name in ("telegram", "sms", "whatsapp")}
        for name, channel in self.channels.items():
            self.escala.outbox.register(name, channel)
        self.workspace = RecordingWorkspace()
        self.escala.workspaces.add(self.workspace)
        self._sequence = 0

    @property
    def desk(self) -> Desk:
        return self.escala.desk

    async def say(
        self,
        text: str,
        *,
        channel: str = "telegram",
        address: str = "1001",
        locale: str = "pt-BR",
        choice_id: str | None = None,
        message_id: str | None = None,
        at: datetime | None = None,
        locale_known: bool = True,
    ) -> list[OutboundMessage]:
        """The customer writes; returns what they received in answer."""
        self._sequence += 1
        recorder = self.channels[channel]
        before = len(recorder.sent)
        self.clock.advance(seconds=5)
        await self.escala.engine.handle(
            InboundMessage(
                channel=channel,
                address=address,
                text=text,
                provider_message_id=message_id or f"m{self._sequence}",
                received_at=at or self.clock.now(),
                locale=locale,
                locale_known=locale_known,
                choice_id=choice_id,
            )
        )
        return [s.message for s in recorder.sent[before:]]
