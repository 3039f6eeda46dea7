"""Plans with their input, status, bound, gap, objective, provenance; one current plan; locks.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleetplace_plans",
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
        sa.Column("replicas", sa.Integer, nullable=False),
        sa.Column("unplaced_workloads", sa.Integer, nullable=False),
        sa.Column("wall_s", sa.Float, nullable=False),
        sa.Column("code_revision", sa.String(64), nullable=False),
        sa.Column("changes", sa.Text, nullable=False, server_default=""),
        # zlib-compressed protobuf bytes: placement.v1 PlaceRequest, Plan, FleetChanges
        sa.Column("input_z", sa.LargeBinary, nullable=False),
        sa.Column("plan_z", sa.LargeBinary, nullable=False),
        sa.Column("changes_z", sa.LargeBinary, nullable=True),
        sa.Column("plan_sha256", sa.String(64), nullable=False),  # of the uncompressed plan bytes
        sa.CheckConstraint("requested_by IN ('cli', 'rpc', 'cron')", name="fleetplace_plans_requested_by"),
        sa.CheckConstraint("kind IN ('plan', 'rebalance')", name="fleetplace_plans_kind"),
    )
    op.create_index("fleetplace_plans_input_digest", "fleetplace_plans", ["input_digest"])
    # at most one current plan, whatever the writers do: a unique index over the current rows only
    op.create_index(
        "fleetplace_plans_one_current",
        "fleetplace_plans",
        ["is_current"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )
    op.create_table(
        "fleetplace_locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),  # seconds since the epoch
    )


def downgrade() -> None:
    op.drop_table("fleetplace_locks")
    op.drop_index("fleetplace_plans_one_current", table_name="fleetplace_plans")
    op.drop_index("fleetplace_plans_input_digest", table_name="fleetplace_plans")
    op.drop_table("fleetplace_plans")
