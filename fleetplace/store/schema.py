"""The plan store's tables as SQLAlchemy Core objects, as the migrations at head leave them.

The migrations (``migrations/versions``) own the schema; these objects are what queries use.
``tests/test_store.py`` compares the two on SQLite and PostgreSQL (Alembic's
``compare_metadata``), so they cannot drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION_TABLE = "fleetplace_schema_version"
REQUESTERS = ("cli", "rpc", "cron")
KINDS = ("plan", "rebalance")

metadata = sa.MetaData()

plans = sa.Table(
    "fleetplace_plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requested_by", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("is_current", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("fleetplace_plans.id"), nullable=True),
    sa.Column("input_digest", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stop_reason", sa.String(16), nullable=False),
    sa.Column("bound", sa.Float, nullable=True),
    sa.Column("gap", sa.Float, nullable=True),
    sa.Column("placed_work", sa.BigInteger, nullable=False),
    sa.Column("energy", sa.BigInteger, nullable=False),
    sa.Column("moves", sa.BigInteger, nullable=False),
    sa.Column("fragmentation", sa.BigInteger, nullable=False),
    sa.Column("move_price", sa.BigInteger, nullable=False, server_default="0"),  # revision 0002
    sa.Column("replicas", sa.Integer, nullable=False),
    sa.Column("unplaced_workloads", sa.Integer, nullable=False),
    sa.Column("wall_s", sa.Float, nullable=False),
    sa.Column("code_revision", sa.String(64), nullable=False),
    sa.Column("changes", sa.Text, nullable=False, server_default=""),
    sa.Column("input_z", sa.LargeBinary, nullable=False),
    sa.Column("plan_z", sa.LargeBinary, nullable=False),
    sa.Column("changes_z", sa.LargeBinary, nullable=True),
    sa.Column("plan_sha256", sa.String(64), nullable=False),
    sa.CheckConstraint("requested_by IN ('cli', 'rpc', 'cron')", name="fleetplace_plans_requested_by"),
    sa.CheckConstraint("kind IN ('plan', 'rebalance')", name="fleetplace_plans_kind"),
    sa.Index("fleetplace_plans_input_digest", "input_digest"),
    sa.Index(
        "fleetplace_plans_one_current",
        "is_current",
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    ),
)

locks = sa.Table(
    "fleetplace_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# the columns of a record: everything but the payloads
RECORD_COLUMNS = [c for c in plans.columns if c.name not in ("input_z", "plan_z", "changes_z")]
