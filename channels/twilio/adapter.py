"""SMS and WhatsApp through Twilio: signed webhooks in, REST API out (async client).

One adapter, two channels: WhatsApp addresses carry the ``whatsapp:`` prefix and the
channel has its own sender number. Choices become numbered lines ("1. Sim"); a reply
"1" or the option's text is resolved by the engine. Carrier keywords are recognised
here and applied by the engine, under the conversation's lock like any message:
STOP/PARAR/SAIR/CANCELAR opt out (so on these channels "cancelar" means opt-out, not
the engine's cancel-flow command), START/VOLTAR opt back in, HELP/AJUDA get a short
help text.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from bot.edge import ChannelPort
from bot.errors import DeliveryError
from bot.models import CarrierKeyword, EventKind, InboundMessage, Media, OutboundMessage
from channels.sending import Backoff, NotSent, RetryingSender, RetryLater, split_text
from channels.twilio.config import TwilioConfig

log = logging.getLogger(__name__)

TEXT_LIMIT = 1600
SIGNATURE_HEADER = "X-Twilio-Signature"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit",
                        "parar", "sair", "cancelar"})  # fmt: skip
START_WORDS = frozenset({"start", "unstop", "voltar"})
HELP_WORDS = frozenset({"help", "ajuda"})
#: Twilio sends at most 10 media per message; NumMedia is bounded in case it lies.
MAX_MEDIA = 10
_MIME = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
#: Twilio error code: the recipient replied STOP (Twilio refuses the send).
UNSUBSCRIBED = 21610
FINAL_STATUSES = frozenset({"delivered", "read", "undelivered", "failed"})

WHATSAPP = "whatsapp"
#: WhatsApp allows free-form messages only this long after the customer's last message
#: (Twilio error 63016 otherwise); later, only approved templates.
SESSION_WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW = "outside WhatsApp's 24-hour window"
#: When the customer last wrote, per WhatsApp address (ISO 8601, a store link).
LAST_INBOUND = "whatsapp:last_inbound:{address}"
#: The template's {{1}}: the message's text on one line, at most this many characters.
TEMPLATE_VARIABLE_LIMIT = 100


@dataclass(frozen=True)
class Part:
    """One message's chunk at Twilio's limit; ``whole`` is the message it came from."""

    text: str
    first: bool
    whole: str


def template_variable(text: str) -> str:
    """A message as the approved template's first variable: whitespace collapsed to
    single spaces (WhatsApp refuses newlines and tabs in variables), cut short."""
    flat = " ".join(text.split())
    if len(flat) <= TEMPLATE_VARIABLE_LIMIT:
        return flat
    return flat[: TEMPLATE_VARIABLE_LIMIT - 1].rstrip() + "…"


#: The Retry-After of the last Twilio response seen in this task (set by a trace hook,
#: because TwilioRestException does not carry the response headers).
_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


async def _on_request_end(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    value = params.response.headers.get("Retry-After")
    try:
        _retry_after.set(float(value) if value is not None else None)
    except ValueError:
        _retry_after.set(None)


def make_client(config: TwilioConfig) -> Any:
    """A Twilio REST client on the async HTTP client (never the blocking one)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_on_request_end)
    http = AsyncTwilioHttpClient(trace_configs=[trace])
    return Client(config.account_sid, config.auth_token, http_client=http)


def mask(address: str) -> str:
    """A phone number for logs: ``whatsapp:+5511912340000`` → ``whatsapp:+55119****0000``."""
    prefix, _, number = address.rpartition(":")
    shown = f"{number[:6]}****{number[-4:]}" if len(number) > 10 else "****"
    return f"{prefix}:{shown}" if prefix else shown


class TwilioChannel:
    """The SMS or WhatsApp plugin: routes, start/stop, and the channel's sender."""

    def __init__(
        self,
        config: TwilioConfig,
        port: ChannelPort,
        client: Any,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.name = config.channel
        self.port = port
        self.client = client
        self.validator = RequestValidator(config.auth_token)
        self.sender: RetryingSender[Part] = RetryingSender(
            config.channel,
            render=self._render,
            deliver=self._deliver,
            port=port,
            backoff=backoff,
            sleep=sleep,
            jitter=random.random,
        )
        port.register_sender(config.channel, self.sender)

    @classmethod
    def from_config(cls, config: TwilioConfig, port: ChannelPort) -> TwilioChannel:
        return cls(config, port, make_client(config))

    # -- Plugin -------------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return (
            web.post(self.config.webhook_path, self.inbound),
            web.post(self.config.status_path, self.status),
        )

    async def start(self) -> None:
        """Nothing to start: Twilio calls the webhook set on the number."""

    async def stop(self, flush_timeout: float | None = None) -> None:
        """Deliver what is queued within ``flush_timeout`` seconds (default: what is
        left of the server's shutdown timeout); the rest stays in the outbox."""
        await self.sender.flush(
            self.port.time_to_stop() if flush_timeout is None else flush_timeout
        )
        await self.client.http_client.close()

    # -- inbound ------------------------------------------------------------------------

    async def inbound(self, request: web.Request) -> web.Response:
        form = await self._verified_form(request, self.config.webhook_url)
        sid, address = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
        if not isinstance(sid, str) or not sid or not isinstance(address, str) or not address:
            return web.Response(status=400, text="MessageSid and From are required\n")
        body = str(form.get("Body") or "")
        if self.name == WHATSAPP:
            # Before the engine: its replies are checked against the window they open.
            now = self.port.now()
            await self.port.remember(LAST_INBOUND.format(address=address), now.isoformat())
        await self.port.receive(
            InboundMessage(
                channel=self.name,
                address=address,
                text=body,
                provider_message_id=sid,
                received_at=self.port.now(),
                locale=self.config.default_locale,
                locale_known=False,  # Twilio says nothing of it: the words will
                raw={"MessageSid": sid, "NumMedia": _count(form.get("NumMedia"))},
                media=_media(form),
                keyword=_keyword(body),
            )
        )
        return web.Response(text=TWIML_EMPTY, content_type="text/xml")

    async def status(self, request: web.Request) -> web.Response:
        form = await self._verified_form(request, self.config.status_url)
        sid, state, to = form.get("MessageSid"), form.get("MessageStatus"), form.get("To")
        if not all(isinstance(v, str) and v for v in (sid, state, to)):
            return web.Response(status=400, text="MessageSid, MessageStatus and To are required\n")
        assert isinstance(sid, str) and isinstance(state, str) and isinstance(to, str)
        if state not in FINAL_STATUSES:
            return web.Response(status=204)
        code = str(form.get("ErrorCode") or "")
        await self.port.record_status(self.name, to, sid, state, error_code=code)
        failed = state in ("undelivered", "failed")
        if failed:
            log.warning("%s to %s %s (error %s)", self.name, mask(to), state, code or "-")
        return web.Response(status=204)

    async def _verified_form(self, request: web.Request, url: str) -> MultiDictProxy[str]:
        """The POSTed fields, when Twilio signed them over ``url``; else 403 (or 400)."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            log.warning("%s webhook refused: unsigned", self.name)
            raise web.HTTPForbidden(text="forbidden\n")
        try:
            raw = await request.post()
        except web.HTTPException:
            raise
        except Exception:  # malformed form or multipart: not a Twilio request
            raise web.HTTPBadRequest(text="expected a form body\n") from None
        if any(not isinstance(v, str) for v in raw.values()):
            raise web.HTTPBadRequest(text="unexpected file field\n")
        form = MultiDictProxy(MultiDict((k, v) for k, v in raw.items() if isinstance(v, str)))
        if request.query_string:
            url = f"{url}?{request.query_string}"
        if not self.validator.validate(url, form, signature):
            log.warning("%s webhook refused: signature does not match", self.name)
            raise web.HTTPForbidden(text="forbidden\n")
        return form

    # -- outbound -----------------------------------------------------------------------

    async def _render(self, message: OutboundMessage, locale: str) -> Sequence[Part]:
        lines = [message.text] if message.text else []
        lines += [f"{n}. {choice.label}" for n, choice in enumerate(message.choices, start=1)]
        text = "\n".join(lines)
        chunks = [chunk for chunk in split_text(text, TEXT_LIMIT) if chunk]
        return [Part(chunk, first=n == 0, whole=text) for n, chunk in enumerate(chunks)]

    async def _deliver(self, address: str, part: Part) -> None:
        fields: dict[str, str] = {"body": part.text}
        if self.name == WHATSAPP and not await self._in_session_window(address):
            template = self.config.template_content_sid
            if template is None:
                raise NotSent(self.name, OUTSIDE_WINDOW)
            if not part.first:
                return  # the template sent for the first part stands for the whole message
            variable = template_variable(part.whole)
            fields = {
                "content_sid": template,
                "content_variables": json.dumps({"1": variable}, ensure_ascii=False),
            }
        _retry_after.set(None)
        try:
            await self.client.messages.create_async(
                to=address,
                from_=self.config.from_number,
                status_callback=self.config.status_url,
                **fields,
            )
        except TwilioRestException as e:
            if e.status == 429 or e.status >= 500:
                raise RetryLater(self.name, f"HTTP {e.status}", _retry_after.get()) from e
            if e.code == UNSUBSCRIBED:
                await self._mark_opted_out(address)
            raise DeliveryError(self.name, f"HTTP {e.status} code {e.code}", permanent=True) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise RetryLater(self.name, f"network: {type(e).__name__}") from e
        if "content_sid" in fields:  # agents see the customer got the template, not the text
            await self.port.note(
                self.name,
                address,
                EventKind.DELIVERY_TEMPLATE,
                content_sid=fields["content_sid"],
                reason=OUTSIDE_WINDOW,
            )

    async def _in_session_window(self, address: str) -> bool:
        """Whether WhatsApp allows free-form messages to ``address`` now: the customer
        wrote within 24 hours (counted from messages this store has seen)."""
        value = await self.port.recall(LAST_INBOUND.format(address=address))
        if value is None:
            return False
        try:
            last = datetime.fromisoformat(value)
        except ValueError:
            return False
        return self.port.now() - last < SESSION_WINDOW

    async def _mark_opted_out(self, address: str) -> None:
        await self.port.update_contact(self.name, address, opted_out=True)


def _keyword(body: str) -> CarrierKeyword | None:
    # Carriers match a keyword as the whole message, in any case ("Stop", "PARAR!").
    word = " ".join(body.casefold().split()).strip(" .!?")
    if word in STOP_WORDS:
        return CarrierKeyword.OPT_OUT
    if word in START_WORDS:
        return CarrierKeyword.OPT_IN
    if word in HELP_WORDS:
        return CarrierKeyword.HELP
    return None


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    """What came besides the body: content types only. ``MediaUrl<n>`` is never passed
    on: opening it takes the account's credentials."""
    count = min(_count(form.get("NumMedia")), MAX_MEDIA)
    return tuple(
        Media("media", _content_type(form.get(f"MediaContentType{n}"))) for n in range(count)
    )


def _content_type(value: str | None) -> str:
    """A MIME type as Twilio sends it (``image/jpeg``); anything else is left out."""
    if value and len(value) <= 100 and _MIME.fullmatch(value):
        return value
    return ""


def _count(value: object) -> int:
    try:
        return max(0, int(str(value))) if value else 0
    except ValueError:
        return 0
