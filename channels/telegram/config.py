"""``[channels.telegram]``: validated at start-up; secrets only from environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.models import LOCALES
from bot.toml_config import MIN_WEBHOOK_SECRET, Section, secret_from_env

MODES = ("webhook", "polling")


@dataclass(frozen=True)
class TelegramConfig:
    token: str = field(repr=False)
    mode: Literal["webhook", "polling"] = "webhook"
    #: Checked against ``X-Telegram-Bot-Api-Secret-Token``; required in webhook mode.
    secret_token: str | None = field(default=None, repr=False)
    webhook_path: str = "/telegram/webhook"
    #: When set, ``setWebhook`` is called at start-up with this URL and the secret token.
    webhook_url: str | None = None
    default_locale: str = "pt-BR"
    enabled: bool = True
    #: A self-hosted Telegram Bot API server (``http(s)://host[:port][/prefix]``, no
    #: trailing slash); None: the public ``https://api.telegram.org``.
    api_base: str | None = None


KEYS = (
    "enabled", "mode", "token_env", "secret_token_env", "webhook_path", "webhook_url",
    "default_locale", "api_base",
)  # fmt: skip


def parse_telegram(file: str, data: Mapping[str, Any], default_locale: str) -> TelegramConfig:
    s = Section(file, "channels.telegram", data)
    s.check_keys(KEYS)
    enabled = s.boolean("enabled", True)
    mode = s.string("mode", "webhook")
    if mode not in MODES:
        raise s.error("mode", f"'{mode}' is not one of {', '.join(MODES)}")
    path = s.string("webhook_path", TelegramConfig.webhook_path)
    if not path.startswith("/"):
        raise s.error("webhook_path", f"must start with '/', got {path!r}")
    url = s.optional_string("webhook_url")
    if url is not None and not url.startswith("https://"):
        raise s.error("webhook_url", "Telegram only calls https:// webhooks")
    api_base = s.optional_string("api_base")
    if api_base is not None:
        parts = urlsplit(api_base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise s.error("api_base", f"expected an http(s)://host[:port] URL, got {api_base!r}")
        try:
            _ = parts.port  # raises on a port that is not a number or out of range
        except ValueError as e:
            raise s.error("api_base", f"bad port in {api_base!r}: {e}") from None
        if parts.query or parts.fragment:
            raise s.error("api_base", f"no query or fragment allowed, got {api_base!r}")
        api_base = api_base.rstrip("/")
    locale = s.string("default_locale", default_locale)
    if locale not in LOCALES:
        raise s.error("default_locale", f"'{locale}' is not one of {', '.join(LOCALES)}")
    token_env = s.string("token_env")
    secret_env = s.optional_string("secret_token_env")
    if mode == "webhook" and secret_env is None:
        raise s.error("secret_token_env", "required in webhook mode (requests are verified)")
    if not enabled:
        return TelegramConfig(token="", enabled=False)
    return TelegramConfig(
        token=secret_from_env(file, s.at("token_env"), token_env),
        mode="polling" if mode == "polling" else "webhook",
        secret_token=(
            secret_from_env(
                file, s.at("secret_token_env"), secret_env, min_length=MIN_WEBHOOK_SECRET
            )
            if secret_env
            else None
        ),
        webhook_path=path,
        webhook_url=url,
        default_locale=locale,
        api_base=api_base,
    )
