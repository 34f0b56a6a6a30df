"""The SQL state store: SQLAlchemy 2 models, engines and Alembic migrations."""

from orchestrator.store.sql.connection import make_engine, normalize_url, upgrade
from orchestrator.store.sql.retry import Retry
from orchestrator.store.sql.store import SqlStore

__all__ = ["Retry", "SqlStore", "make_engine", "normalize_url", "upgrade"]
