"""Persistence: the schema, its migrations and the :class:`Store` (all the SQL).

SQLAlchemy and Alembic are imported only inside this package, and only when
:class:`Store` is first used: ``monitor.store.direct`` lists hits without
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The Alembic revision this code expects (a test checks that it is the head).
SCHEMA_REVISION = "0005"

if TYPE_CHECKING:
    from monitor.store.sql import Store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from monitor.store.sql import Store

        return Store
    raise AttributeError(f"module 'monitor.store' has no attribute {name!r}")


__all__ = ["SCHEMA_REVISION", "Store"]
