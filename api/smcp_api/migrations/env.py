"""Alembic environment: the engine comes from the service (config.attributes['engine'])."""

from __future__ import annotations

from alembic import context

from smcp_api.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations copy a table and drop the old one: with foreign keys on, SQLite's DROP TABLE would
        # delete (ON DELETE CASCADE) the rows that point at it, e.g. a job's events. Off for the migration only;
        # on the raw connection, outside any transaction (the pragma is a no-op inside one).
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.commit()
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
        if broken:
            raise RuntimeError(f"the migrated SQLite store has rows whose foreign key points nowhere: {broken[:5]}")
