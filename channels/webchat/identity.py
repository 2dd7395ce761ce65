"""Who is chatting: signed visitor cookies, short-lived connection tokens, and the
site's signature on a logged-in user's id (identity verification).

* An anonymous visitor is a random id in an HttpOnly cookie signed with the channel's
  secret, so the conversation survives page loads and cannot be forged or read by the
  page's scripts.
* A logged-in user is the site's own user id, trusted only with the site back end's
  signature: ``hex(HMAC-SHA256(identity_secret, user_id))``. Their address is the user
  id, so their tickets follow them across devices.
* ``POST <path>/session`` turns either into a token (address, locale, expiry, signed)
  that the socket, the SSE stream and message posts carry: a bearer token, not an
  ambient cookie, so another site cannot ride on a visitor's cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from bot.models import LOCALES

#: Visitor ids: 22 URL-safe characters (128 bits).
_VISITOR = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: What a site's user id may look like (the id is data: never interpreted).
_USER_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
#: A connection token's lifetime: long enough to connect, short enough not to matter.
TOKEN_SECONDS = 15 * 60


def _sign(secret: bytes, purpose: str, payload: str) -> str:
    mac = hmac.new(secret, f"{purpose}\x1f{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def visitor_cookie(secret: bytes, visitor_id: str) -> str:
    return f"{visitor_id}.{_sign(secret, 'visitor', visitor_id)}"


def visitor_from_cookie(secret: bytes, value: str | None) -> str | None:
    """The visitor id in a cookie we signed, None for anything else."""
    if not value or value.count(".") != 1:
        return None
    visitor_id, signature = value.split(".")
    if not _VISITOR.match(visitor_id):
        return None
    if not hmac.compare_digest(signature, _sign(secret, "visitor", visitor_id)):
        return None
    return visitor_id


def valid_user_id(user_id: str) -> bool:
    return bool(_USER_ID.match(user_id))


def user_signature(identity_secret: bytes, user_id: str) -> str:
    """What the site's back end computes for a logged-in user (documented in README)."""
    return hmac.new(identity_secret, user_id.encode(), hashlib.sha256).hexdigest()


def verify_user(identity_secret: bytes | None, user_id: str, signature: str) -> bool:
    if identity_secret is None or not valid_user_id(user_id):
        return False
    return hmac.compare_digest(signature.strip().lower(), user_signature(identity_secret, user_id))


@dataclass(frozen=True)
class Claims:
    """What a connection token says: who, in which language, until when."""

    address: str
    locale: str
    expires: int


def issue_token(secret: bytes, claims: Claims) -> str:
    body = json.dumps({"a": claims.address, "l": claims.locale, "e": claims.expires})
    payload = base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()
    return f"{payload}.{_sign(secret, 'token', payload)}"


def read_token(secret: bytes, token: str | None, now: int) -> Claims | None:
    """The claims of a token we signed and that has not expired; None otherwise."""
    if not token or len(token) > 1024 or token.count(".") != 1:
        return None
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(secret, "token", payload)):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims = Claims(address=body["a"], locale=body["l"], expires=body["e"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if not isinstance(claims.expires, int) or claims.expires < now:
        return None
    if not isinstance(claims.address, str) or claims.locale not in LOCALES:
        return None
    return claims
