"""``[channels.webchat]``: validated at start-up; secrets only from environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.models import LOCALES
from bot.toml_config import Section, secret_from_env


@dataclass(frozen=True)
class WebchatConfig:
    #: Signs the visitor cookie and the short-lived connection tokens.
    secret: bytes = field(repr=False)
    #: Shared with the site's back end, which signs logged-in users' ids with it
    #: (``hex(HMAC-SHA256(identity_secret, user_id))``); None: anonymous visitors only.
    identity_secret: bytes | None = field(default=None, repr=False)
    #: Where the channel's routes live (``/webchat/webchat.js``, ``/webchat/ws`` ...).
    path: str = "/webchat"
    #: Pages (``scheme://host[:port]``) allowed to embed the chat; the server's own
    #: origin always is.
    allowed_origins: tuple[str, ...] = ()
    default_locale: str = "pt-BR"
    #: Longest message a visitor may send (characters); longer ones are refused politely.
    max_message_chars: int = 2000
    #: Messages per visitor, and requests (messages and sessions) per IP address, per minute.
    visitor_messages_per_minute: int = 20
    ip_requests_per_minute: int = 120
    #: ``Secure; SameSite=None; Partitioned`` cookies (needed when the site and Escala
    #: are on different sites, over https); False for a plain-http local setup.
    cookie_secure: bool = False
    #: Serve a demo page at ``<path>/demo`` (``escala demo`` turns it on).
    demo_page: bool = False
    title: str = ""
    #: ``[server] public_base_url``'s origin: the server's own pages may always chat.
    public_origin: str | None = None
    enabled: bool = True


KEYS = (
    "enabled", "path", "secret_env", "identity_secret_env", "allowed_origins",
    "default_locale", "max_message_chars", "visitor_messages_per_minute",
    "ip_requests_per_minute", "cookie_secure", "demo_page", "title",
)  # fmt: skip


def parse_webchat(
    file: str, data: Mapping[str, Any], default_locale: str, public_base_url: str | None
) -> WebchatConfig:
    s = Section(file, "channels.webchat", data)
    s.check_keys(KEYS)
    enabled = s.boolean("enabled", True)
    path = s.string("path", WebchatConfig.path).rstrip("/")
    if not path.startswith("/") or any(c in path for c in "?#{} "):
        raise s.error("path", f"must be a path starting with '/', got {path!r}")
    origins = []
    for i, origin in enumerate(s.strings("allowed_origins", ())):
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise s.error(
                f"allowed_origins[{i}]",
                f"expected an origin such as https://www.example.com, got {origin!r}",
            )
        origins.append(origin.rstrip("/").lower())
    locale = s.string("default_locale", default_locale)
    if locale not in LOCALES:
        raise s.error("default_locale", f"'{locale}' is not one of {', '.join(LOCALES)}")
    d = WebchatConfig(secret=b"")
    max_chars = s.integer("max_message_chars", d.max_message_chars, minimum=1)
    if max_chars > 8000:
        raise s.error("max_message_chars", f"must be at most 8000, got {max_chars}")
    per_visitor = s.integer("visitor_messages_per_minute", d.visitor_messages_per_minute, minimum=1)
    per_ip = s.integer("ip_requests_per_minute", d.ip_requests_per_minute, minimum=1)
    secure_default = bool(public_base_url and public_base_url.startswith("https://"))
    cookie_secure = s.boolean("cookie_secure", secure_default)
    demo = s.boolean("demo_page", False)
    title = s.optional_string("title") or ""
    secret_env = s.string("secret_env")
    identity_env = s.optional_string("identity_secret_env")
    if not enabled:
        return WebchatConfig(secret=b"", enabled=False)
    secret = secret_from_env(file, s.at("secret_env"), secret_env)
    if len(secret) < 16:
        raise s.error("secret_env", f"{secret_env} must hold at least 16 characters")
    identity = None
    if identity_env is not None:
        identity = secret_from_env(file, s.at("identity_secret_env"), identity_env)
    return WebchatConfig(
        secret=secret.encode(),
        identity_secret=identity.encode() if identity is not None else None,
        path=path,
        allowed_origins=tuple(origins),
        default_locale=locale,
        max_message_chars=max_chars,
        visitor_messages_per_minute=per_visitor,
        ip_requests_per_minute=per_ip,
        cookie_secure=cookie_secure,
        demo_page=demo,
        title=title,
        public_origin=_origin(public_base_url),
    )


def _origin(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
