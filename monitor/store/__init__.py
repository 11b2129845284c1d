"""Persistence: the schema, its migrations and the :class:`Store` (all the SQL).

SQLAlchemy and Alembic are imported only inside this package.
"""

from monitor.store.sql import Store

__all__ = ["Store"]
