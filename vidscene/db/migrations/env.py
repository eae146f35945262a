"""Alembic environment: the engine comes from vidscene's own factory so SQLite pragmas apply to migrations too."""

from __future__ import annotations

from alembic import context

from vidscene.db.models import Base
from vidscene.db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
if not url:
    raise RuntimeError("run migrations through vidscene.db.migrate, which sets sqlalchemy.url")


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
