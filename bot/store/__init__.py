"""State backends behind one contract (see :mod:`bot.store.base`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from bot.errors import ConfigError, StoreUnavailable
from bot.store.base import ChangeError, Lease, Store, TicketChange
from bot.store.memory import MemoryStore

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["ChangeError", "Lease", "MemoryStore", "Store", "TicketChange", "open_store"]


async def open_store(settings: Settings, *, max_connections: int = 50) -> Store:
    """The store the settings ask for, checked: a Redis store answers ``PING`` first.

    An unreachable Redis stops start-up with a :class:`ConfigError` naming the file,
    the key and the URL (password masked), never a silent fall-back to memory. The
    caller owns the store and closes it. ``max_connections``: the Redis pool's size
    (``escala serve`` sizes it to its requests in flight; a request that finds it full
    waits briefly, then fails as a quick 503 rather than a 30 s stall).
    """
    config = settings.store
    if config.backend == "memory":
        return MemoryStore(
            max_transcript_messages=config.transcript_hot_messages
            + config.transcript_archive_messages,
            events_stream_cap=config.events_stream_cap,
            max_transcript_bytes=config.transcript_max_bytes,
        )
    file = str(settings.source or "settings")
    place = "store.url" if config.url is not None else "store.url_env"
    url = config.redis_url(file)
    if url is None:
        raise ConfigError(file, place, "backend 'redis' needs url or url_env")
    from bot.store.redis import RedisStore  # redis is only needed for this backend

    store = RedisStore.from_url(
        url,
        transcript_hot_messages=config.transcript_hot_messages,
        transcript_archive_messages=config.transcript_archive_messages,
        conversation_events_cap=config.conversation_events_cap,
        events_cap=config.events_stream_cap,
        cluster=config.cluster,
        transcript_max_bytes=config.transcript_max_bytes,
        conversation_ttl_seconds=None
        if config.conversation_ttl_days is None
        else config.conversation_ttl_days * 86400,
        max_connections=max_connections,
        pool_timeout=2.0,
    )
    try:
        await store.ping()
        await store.load_scripts()
    except StoreUnavailable as e:
        await store.close()
        cause = e.__cause__ or e
        raise ConfigError(file, place, f"cannot reach Redis at {masked(url)}: {cause}") from e
    return store


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
