"""State backends behind one contract (see :mod:`bot.store.base`)."""

from bot.store.base import ChangeError, Lease, Store, TicketChange
from bot.store.memory import MemoryStore

__all__ = ["ChangeError", "Lease", "MemoryStore", "Store", "TicketChange"]
