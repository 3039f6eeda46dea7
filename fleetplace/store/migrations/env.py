"""Alembic's entry point for the plan store: always online, on the connection ``PlanStore`` hands in.

``PlanStore`` opens a write transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction
holding an advisory lock), puts the connection in ``config.attributes["connection"]`` and runs
``alembic.command.upgrade``; so two processes opening a new store at once migrate it once.
"""

from __future__ import annotations

from alembic import context

from fleetplace.store.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
