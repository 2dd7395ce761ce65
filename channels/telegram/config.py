"""``[channels.telegram]``: validated at start-up; secrets only from environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.models import LOCALES
from bot.settings import Section, secret_from_env

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


KEYS = (
    "enabled", "mode", "token_env", "secret_token_env", "webhook_path", "webhook_url",
    "default_locale",
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
            secret_from_env(file, s.at("secret_token_env"), secret_env) if secret_env else None
        ),
        webhook_path=path,
        webhook_url=url,
        default_locale=locale,
    )
