"""The named queries of ``worker/queries.sql``: an alias of the database boundary
(``worker.db.run`` / ``worker.db.one`` / ``worker.db.named_queries``), kept so that
``queries.run(conn, "claim_chunk", ...)`` reads as before. The implementation, and the
translation of SQL errors into ``worker.errors`` exceptions, live in ``worker.db``.
"""

from __future__ import annotations

from .db import named_queries as queries
from .db import one, run

__all__ = ["one", "queries", "run"]
