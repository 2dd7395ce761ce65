"""``[channels.sms]`` and ``[channels.whatsapp]`` (Twilio): validated at start-up;
the account SID and auth token only from environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.models import LOCALES
from bot.toml_config import Section, secret_from_env

TWILIO_CHANNELS = ("sms", "whatsapp")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class TwilioConfig:
    channel: str
    account_sid: str = field(repr=False)
    auth_token: str = field(repr=False)
    #: Our sender: ``+15550001111`` for SMS, ``whatsapp:+15550001111`` for WhatsApp.
    from_number: str
    #: The public base URL Twilio calls (signatures are computed over it).
    public_base_url: str
    webhook_path: str
    status_path: str
    default_locale: str = "pt-BR"
    enabled: bool = True
    #: WhatsApp only: an approved Content API template (``HX...``) sent instead of a
    #: message that falls outside the 24-hour session window; None: such messages are
    #: not sent (a ``delivery.failed`` event says why).
    template_content_sid: str | None = None

    @property
    def webhook_url(self) -> str:
        return self.public_base_url + self.webhook_path

    @property
    def status_url(self) -> str:
        return self.public_base_url + self.status_path


KEYS = (
    "enabled", "account_sid_env", "auth_token_env", "from_number", "public_base_url",
    "webhook_path", "status_path", "default_locale", "template_content_sid",
)  # fmt: skip


def parse_twilio(
    file: str,
    channel: str,
    data: Mapping[str, Any],
    default_locale: str,
    server_public_url: str | None = None,
) -> TwilioConfig:
    s = Section(file, f"channels.{channel}", data)
    s.check_keys(KEYS)
    enabled = s.boolean("enabled", True)
    number = s.string("from_number")
    bare = number.removeprefix("whatsapp:")
    if not _E164.match(bare):
        raise s.error(
            "from_number", f"expected an E.164 number like +5511999990000, got {number!r}"
        )
    from_number = f"whatsapp:{bare}" if channel == "whatsapp" else bare
    base = s.optional_string("public_base_url") or server_public_url
    if base is None:
        raise s.error(
            "public_base_url",
            "missing: Twilio signs the URL it calls (or set server.public_base_url)",
        )
    if not base.startswith(("https://", "http://")):
        raise s.error("public_base_url", f"expected an http(s):// URL, got {base!r}")
    paths = {}
    for key, default in (
        ("webhook_path", f"/twilio/{channel}"),
        ("status_path", f"/twilio/{channel}/status"),
    ):
        path = s.string(key, default)
        if not path.startswith("/"):
            raise s.error(key, f"must start with '/', got {path!r}")
        paths[key] = path
    if paths["webhook_path"] == paths["status_path"]:
        raise s.error("status_path", "must differ from webhook_path")
    locale = s.string("default_locale", default_locale)
    if locale not in LOCALES:
        raise s.error("default_locale", f"'{locale}' is not one of {', '.join(LOCALES)}")
    template = s.optional_string("template_content_sid")
    if template is not None and channel != "whatsapp":
        raise s.error("template_content_sid", "only WhatsApp has a 24-hour session window")
    if template is not None and not _CONTENT_SID.match(template):
        raise s.error(
            "template_content_sid",
            f"expected a Content SID like HX followed by 32 hex digits, got {template!r}",
        )
    sid_env = s.string("account_sid_env")
    token_env = s.string("auth_token_env")
    secrets = ("", "")
    if enabled:
        secrets = (
            secret_from_env(file, s.at("account_sid_env"), sid_env),
            secret_from_env(file, s.at("auth_token_env"), token_env),
        )
    return TwilioConfig(
        channel=channel,
        account_sid=secrets[0],
        auth_token=secrets[1],
        from_number=from_number,
        public_base_url=base.rstrip("/"),
        webhook_path=paths["webhook_path"],
        status_path=paths["status_path"],
        default_locale=locale,
        enabled=enabled,
        template_content_sid=template,
    )
