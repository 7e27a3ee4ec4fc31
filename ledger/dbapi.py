"""A DB-API driver's exceptions as the ``eventsourcing`` library's, for both stores.

``sqlite3`` and ``psycopg`` name their exception classes as PEP 249 does, and so does
the library: a driver's error becomes the library's class of the same name, the most
specific first (``IntegrityError`` and the rest derive from ``DatabaseError``).
"""

from __future__ import annotations

from types import ModuleType

import eventsourcing.persistence as persistence
from eventsourcing.persistence import PersistenceError

NAMES = (
    "IntegrityError",
    "OperationalError",
    "DataError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "InterfaceError",
    "DatabaseError",
)


def persistence_error(error: Exception, driver: ModuleType) -> PersistenceError:
    """The library's exception for ``error``, raised by ``driver`` (a DB-API module)."""
    for name in NAMES:
        if isinstance(error, getattr(driver, name)):
            found: type[PersistenceError] = getattr(persistence, name)
            return found(str(error))
    return PersistenceError(str(error))
