"""The declarative base every state-store table registers with.

Apart from :mod:`.store` so that the modules holding the tables (journal,
audit, drift queue, records cache) and the store itself all import it, and
none of them imports another: each class creates its own tables on first
use (``Base.metadata.create_all``), so the store need not know them.
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlalchemy.orm import DeclarativeBase

#: A document column: TEXT, LONGTEXT on MySQL/MariaDB (TEXT stops at 64 KiB there).
BIG_TEXT = Text().with_variant(Text(2**32 - 1), "mysql")


class Base(DeclarativeBase):
    """Declarative base of every state-store table."""
